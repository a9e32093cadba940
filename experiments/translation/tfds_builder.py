"""TFDS builder for the generated English-French toy corpus, stored as array_record.

The corpus comes from `experiments.text.toy_corpus.make_splits`; nothing
is downloaded. Preparing writes one array_record file per split under
`<data_dir>/toy_translation/<config name>/<version>/`, and reading goes through
TFDS's random-access data sources (`builder.as_data_source()`, which wraps
array_record readers). Neither step imports TensorFlow: tensorflow-datasets
only needs it for `as_dataset()` (tf.data) and for the tfrecord format, and
neither is used here.

Every corpus parameter (seed, split sizes, word limits) is part of the
builder config name, so corpora with different parameters live in different
directories and preparing the same corpus again reuses the files on disk. The
name also carries a short fingerprint of the generator's output, so that a
change to the toy grammar cannot silently reuse files written by an older
generator.

Example:

    splits = load_toy_translation("/tmp/data", train_size=100, seed=3)
    splits["train"][0]  # SentencePair(source=..., target=..., alignment=...)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from experiments.text import toy_corpus
from experiments.text.toy_corpus import SentencePair

DATASET_NAME = "toy_translation"
SPLIT_NAMES = ("train", "validation", "test", "test_long")
# The corpus parameters, i.e. the keyword arguments of `toy_translation_config`.
CORPUS_PARAMETERS = (
    "seed",
    "train_size",
    "validation_size",
    "test_size",
    "test_long_size",
    "train_max_words",
    "long_max_words",
)

# How many generated pairs feed the generator fingerprint: enough to notice a
# change of vocabulary or grammar, cheap enough to compute on every load.
_FINGERPRINT_PAIRS = 16


@dataclasses.dataclass(eq=False, kw_only=True)
class ToyTranslationConfig(tfds.core.BuilderConfig):
    """Parameters of one generated corpus (the arguments of `make_splits`).

    Build instances with `toy_translation_config`, which validates the values
    and derives the unique `name`.

    Attributes:
      seed: seed of the corpus generator.
      train_size, validation_size, test_size, test_long_size: number of
        sentence pairs in each split.
      train_max_words: longest source sentence (in words) of the train,
        validation and test splits.
      long_max_words: longest source sentence (in words) of `test_long`.
    """

    seed: int = 0
    train_size: int = 20000
    validation_size: int = 1000
    test_size: int = 1000
    test_long_size: int = 500
    train_max_words: int = 20
    long_max_words: int = 40


def _generator_fingerprint(seed: int, max_words: int) -> str:
    """Returns 8 hex digits summarising what the toy generator produces."""
    sample = toy_corpus.generate(_FINGERPRINT_PAIRS, seed=seed, max_words=max_words)
    text = "\n".join(f"{p.source}\t{p.target}\t{p.alignment}" for p in sample)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def toy_translation_config(
    *,
    seed: int = 0,
    train_size: int = 20000,
    validation_size: int = 1000,
    test_size: int = 1000,
    test_long_size: int = 500,
    train_max_words: int = 20,
    long_max_words: int = 40,
) -> ToyTranslationConfig:
    """Returns the builder config of one corpus, named after all its parameters.

    The defaults are those of `toy_corpus.make_splits` (a ~20k-pair corpus).

    Raises:
      ValueError: if a size is negative, the train split is empty, or the word
        limits are not 1 <= train_max_words <= long_max_words.
    """
    sizes = {
        "train_size": train_size,
        "validation_size": validation_size,
        "test_size": test_size,
        "test_long_size": test_long_size,
    }
    for field_name, value in sizes.items():
        if value < 0:
            raise ValueError(f"{field_name} must be >= 0, got {value}")
    if train_size == 0:
        raise ValueError("train_size must be >= 1, got 0")
    if not 1 <= train_max_words <= long_max_words:
        raise ValueError(
            "word limits must satisfy 1 <= train_max_words <= long_max_words, got "
            f"train_max_words={train_max_words}, long_max_words={long_max_words}"
        )
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    fingerprint = _generator_fingerprint(seed, long_max_words)
    name = (
        f"seed{seed}-train{train_size}-validation{validation_size}-test{test_size}"
        f"-long{test_long_size}-words{train_max_words}to{long_max_words}-gen{fingerprint}"
    )
    return ToyTranslationConfig(
        name=name,
        description=f"Generated English-French toy corpus ({name}).",
        seed=seed,
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
        test_long_size=test_long_size,
        train_max_words=train_max_words,
        long_max_words=long_max_words,
    )


class ToyTranslation(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS builder `toy_translation`: the generated corpus as array_record.

    Construct it as `ToyTranslation(data_dir=..., config=toy_translation_config(...),
    file_format="array_record")` (or use `prepare_toy_translation`). Without a
    `config` it builds the default ~20k-pair corpus.

    Features of every example:
      source: text, the English sentence.
      target: text, the French sentence.
      alignment: int32 [num_links, 2], (source word index, target word index).

    The class is not added to TFDS's global registry (so importing this module
    twice cannot fail on a name clash); a prepared directory can still be
    opened without it through `tfds.builder_from_directory`.
    """

    name = DATASET_NAME
    # TFDS would locate this file through `importlib_resources`, which it
    # requires only on Python < 3.9 and which is therefore missing here; the
    # path is only used to look for (absent) checksum files next to the code.
    code_path = epath.Path(__file__)
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Generated corpus with word alignments."}

    def __init__(self, *, config: ToyTranslationConfig | None = None, **kwargs):
        super().__init__(config=config or toy_translation_config(), **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo is built directly: `dataset_info_from_configs` would look
        # for README/CITATIONS files next to the module, which a generated
        # corpus does not have.
        return tfds.core.DatasetInfo(
            builder=self,
            description="Generated English-French sentence pairs with word alignments.",
            features=tfds.features.FeaturesDict(
                {
                    "source": tfds.features.Text(),
                    "target": tfds.features.Text(),
                    "alignment": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),
                }
            ),
            supervised_keys=("source", "target"),
            # Keep the generator's order, so that the record index equals the
            # index of the pair in `make_splits`.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager) -> dict[str, Iterator]:
        del dl_manager  # Nothing to download.
        config = self.builder_config
        splits = toy_corpus.make_splits(
            seed=config.seed,
            train_size=config.train_size,
            validation_size=config.validation_size,
            test_size=config.test_size,
            test_long_size=config.test_long_size,
            train_max_words=config.train_max_words,
            long_max_words=config.long_max_words,
        )
        return {name: self._generate_examples(splits[name]) for name in SPLIT_NAMES}

    def _generate_examples(self, pairs: list[SentencePair]) -> Iterator[tuple[int, dict]]:
        # With shuffling disabled TFDS sorts records by key, so integer keys
        # preserve the order of `pairs`.
        for index, pair in enumerate(pairs):
            alignment = np.asarray(pair.alignment, dtype=np.int32).reshape(-1, 2)
            yield index, {"source": pair.source, "target": pair.target, "alignment": alignment}


def example_to_pair(example: Mapping[str, object]) -> SentencePair:
    """Converts one decoded record ({"source": bytes, ...}) to a SentencePair."""
    source = example["source"]
    target = example["target"]
    alignment = np.asarray(example["alignment"]).reshape(-1, 2)
    return SentencePair(
        source=source.decode("utf-8") if isinstance(source, bytes) else str(source),
        target=target.decode("utf-8") if isinstance(target, bytes) else str(target),
        alignment=tuple((int(s), int(t)) for s, t in alignment),
    )


def prepare_toy_translation(
    data_dir: str, config: ToyTranslationConfig | None = None
) -> ToyTranslation:
    """Prepares the corpus under `data_dir` (unless already there); returns the builder.

    Args:
      data_dir: root directory of prepared TFDS datasets.
      config: corpus parameters; the default ~20k-pair corpus if None.
    """
    builder = ToyTranslation(data_dir=data_dir, config=config, file_format="array_record")
    builder.download_and_prepare()
    return builder


def read_splits(builder: tfds.core.DatasetBuilder) -> dict[str, list[SentencePair]]:
    """Reads every split of a prepared builder through its array_record data sources."""
    data_sources = builder.as_data_source()
    splits = {}
    for split_name, source in data_sources.items():
        records = source.__getitems__(range(len(source))) if len(source) else []
        splits[split_name] = [example_to_pair(record) for record in records]
    return splits


def load_toy_translation(data_dir: str, **config_values: int) -> dict[str, list[SentencePair]]:
    """Prepares (or reuses) and reads the toy corpus.

    Args:
      data_dir: root directory of prepared TFDS datasets.
      **config_values: keyword arguments of `toy_translation_config`.

    Returns:
      {"train", "validation", "test", "test_long"} -> list of SentencePair,
      in the order produced by `toy_corpus.make_splits`.
    """
    builder = prepare_toy_translation(data_dir, toy_translation_config(**config_values))
    return read_splits(builder)
