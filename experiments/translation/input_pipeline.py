"""Input pipeline for translation: corpus splits and tokenizers.

`load_splits` reads the configured corpus (the generated toy corpus, a TSV
file, ding, or TFDS by name) and cuts it into train/validation/test splits;
`build_tokenizers` fits the source and target tokenizers on the training
split. `experiments.translation.batching` turns the splits into id batches.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import ml_collections
import numpy as np

from experiments.text import corpora, ding, tokenizers
from experiments.text.toy_corpus import SentencePair
from experiments.translation import tfds_builder

DATASET_NAMES = ("toy_translation", "tsv", "ding", "tfds")


# ---------------------------------------------------------------------------
# Loading splits.


def split_pairs(
    pairs: Sequence[SentencePair],
    *,
    seed: int,
    validation_size: int,
    test_size: int,
    train_size: int | None = None,
) -> dict[str, list[SentencePair]]:
    """Shuffles `pairs` with `seed` and cuts them into train/validation/test.

    Validation and test take the first `validation_size` and `test_size`
    shuffled pairs, train the rest (at most `train_size` if it is given and
    positive). The same pairs and seed always give the same splits.

    Raises:
      ValueError: for negative sizes, or if no pair would be left for training.
    """
    if validation_size < 0 or test_size < 0:
        raise ValueError(
            f"validation_size and test_size must be >= 0, got {validation_size} and {test_size}"
        )
    if validation_size + test_size >= len(pairs):
        raise ValueError(
            f"validation_size + test_size = {validation_size + test_size} leaves no training "
            f"pairs out of {len(pairs)}"
        )
    order = np.random.default_rng(seed).permutation(len(pairs))
    shuffled = [pairs[i] for i in order]
    held_out = validation_size + test_size
    train = shuffled[held_out:]
    if train_size:
        train = train[:train_size]
    return {
        "train": train,
        "validation": shuffled[:validation_size],
        "test": shuffled[validation_size:held_out],
    }


def _required(data_config: ml_collections.ConfigDict, field: str):
    value = data_config.get(field, None)
    if value is None or value == "":
        raise ValueError(f"data_config.{field} must be set for dataset {data_config.name!r}")
    return value


def load_splits(
    data_config: ml_collections.ConfigDict,
) -> tuple[dict[str, list[SentencePair]], dict[str, object]]:
    """Loads the corpus named by `data_config.name` and returns (splits, stats).

    Fields read from `data_config`:
      name: "toy_translation" (generated corpus, prepared as array_record with
        TFDS under data_dir), "tsv" (tab-separated file at path), "ding" (Ding
        dictionary at path, or its system default when path is empty) or "tfds"
        (the TFDS dataset tfds_name).
      path: input file for "tsv" and "ding".
      tfds_name: TFDS dataset name for "tfds", e.g. "wmt14_translate/fr-en".
      data_dir: TFDS data directory ("toy_translation": required, where the
        prepared corpus is written and reused; "tfds": optional).
      seed: corpus generator seed ("toy_translation") or split shuffling seed
        ("tsv", "ding").
      train_size: number of generated training pairs ("toy_translation"); upper
        bound on the train split for other corpora (None or 0: no bound).
      validation_size, test_size: sizes of the held-out splits; for "tfds"
        upper bounds on its validation/test splits (None or 0: no bound).
      test_long_size, train_max_words, long_max_words: toy corpus only (size of
        "test_long"; longest source sentence in words of the other splits and
        of "test_long").
      Optional: max_pairs ("tsv", "ding": read at most this many pairs),
        source_column, target_column, source_language, target_language
        ("tsv"), reverse ("ding": swap the languages), source_key, target_key
        ("tfds": feature names of the two languages).
    The tokenizer fields (tokenizer, source_vocab_size, target_vocab_size) are
    read by `build_tokenizers`, max_length by the batching functions' callers.

    Returns:
      splits: split name -> list of SentencePair; "train", "validation", "test"
        and, for the toy corpus, "test_long".
      stats: JSON-friendly facts to report: "dataset", "split_sizes" and, per
        source, "read" (line counts of the reader), "builder_config",
        "prepared_dir", "prepare_seconds", "reused_prepared".

    Raises:
      ValueError: unknown `name` (the message lists the valid ones) or a
        missing required field.
    """
    name = data_config.get("name", None)
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset name {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    stats: dict[str, object] = {"dataset": name}
    if name == "toy_translation":
        splits = _load_toy(data_config, stats)
    elif name == "tfds":
        splits = _load_tfds(data_config)
    else:
        pairs, read_stats = _read_file_corpus(data_config)
        stats["read"] = dataclasses.asdict(read_stats)
        splits = split_pairs(
            pairs,
            seed=int(data_config.get("seed", 0)),
            validation_size=int(data_config.get("validation_size", 0)),
            test_size=int(data_config.get("test_size", 0)),
            train_size=data_config.get("train_size", None),
        )
    stats["split_sizes"] = {split: len(pairs) for split, pairs in splits.items()}
    return splits, stats


def _read_file_corpus(data_config: ml_collections.ConfigDict):
    """Reads all pairs of a "tsv" or "ding" corpus; returns (pairs, ReadStats)."""
    if data_config.name == "tsv":
        return corpora.read_tsv(
            _required(data_config, "path"),
            source_column=data_config.get("source_column", 0),
            target_column=data_config.get("target_column", 1),
            source_language=data_config.get("source_language", "en"),
            target_language=data_config.get("target_language", "fr"),
            max_pairs=data_config.get("max_pairs", None),
        )
    # Ding: an empty path means the dictionary's system-wide default location.
    ding_path = data_config.get("path", None)
    path_argument = {"path": ding_path} if ding_path else {}
    return ding.read_ding(
        max_pairs=data_config.get("max_pairs", None),
        reverse=bool(data_config.get("reverse", False)),
        **path_argument,
    )


def _load_toy(data_config: ml_collections.ConfigDict, stats: dict) -> dict[str, list[SentencePair]]:
    """Prepares (or reuses) the toy corpus as array_record and reads it back."""
    config_values = {
        field: int(data_config[field])
        for field in tfds_builder.CORPUS_PARAMETERS
        if data_config.get(field, None) is not None
    }
    builder_config = tfds_builder.toy_translation_config(**config_values)
    start = time.perf_counter()
    builder = tfds_builder.ToyTranslation(
        data_dir=_required(data_config, "data_dir"),
        config=builder_config,
        file_format="array_record",
    )
    stats["reused_prepared"] = builder.is_prepared()
    builder.download_and_prepare()
    stats["prepare_seconds"] = round(time.perf_counter() - start, 3)
    stats["builder_config"] = builder_config.name
    stats["prepared_dir"] = str(builder.data_dir)
    return tfds_builder.read_splits(builder)


def _load_tfds(data_config: ml_collections.ConfigDict) -> dict[str, list[SentencePair]]:
    """Reads train/validation/test of a TFDS translation dataset."""
    tfds_name = _required(data_config, "tfds_name")
    split_limits = {
        "train": data_config.get("train_size", None) or None,
        "validation": data_config.get("validation_size", None) or None,
        "test": data_config.get("test_size", None) or None,
    }
    return {
        split: corpora.load_tfds(
            tfds_name,
            split,
            data_dir=data_config.get("data_dir", None),
            source_key=data_config.get("source_key", None),
            target_key=data_config.get("target_key", None),
            max_pairs=limit,
        )
        for split, limit in split_limits.items()
    }


def build_tokenizers(train_pairs: Sequence[SentencePair], data_config: ml_collections.ConfigDict):
    """Trains (source_tokenizer, target_tokenizer) on the training pairs only.

    Reads data_config.tokenizer ("word" or "sentencepiece"),
    data_config.source_vocab_size and data_config.target_vocab_size.

    Raises:
      ValueError: if `train_pairs` is empty.
    """
    if not train_pairs:
        raise ValueError("cannot build tokenizers from an empty training split")
    kind = data_config.tokenizer
    source = tokenizers.make_tokenizer(
        kind, [p.source for p in train_pairs], vocab_size=data_config.source_vocab_size
    )
    target = tokenizers.make_tokenizer(
        kind, [p.target for p in train_pairs], vocab_size=data_config.target_vocab_size
    )
    return source, target


# ---------------------------------------------------------------------------
