"""Input pipeline for translation: corpus splits, tokenizers and padded id batches.

Batches are dicts of numpy int32 arrays:

  "source":        [batch, S]  source ids + EOS, then PAD (0).
  "target_input":  [batch, T]  BOS + target ids (teacher-forcing input), then PAD.
  "target_output": [batch, T]  target ids + EOS (labels), then PAD.
  "index":         [batch]     index of the example in its split; -1 marks an
                               empty padding row (eval batches only).

S and T are the longest source / target of the batch (EOS or BOS included)
rounded up to a multiple of `length_multiple`, so jit sees few distinct shapes.
Sentences longer than `max_length` tokens (EOS/BOS not counted) are truncated;
`TruncationStats` counts how many were.

Splits are encoded once into id arrays; the training pipeline then only
shuffles and batches those (grain, checkpointable), see `train_iterator`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from typing import NamedTuple

import grain
import ml_collections
import numpy as np

from experiments.text import corpora, tokenizers
from experiments.text.token_ids import BOS_ID, EOS_ID, PAD_ID
from experiments.text.toy_corpus import SentencePair
from experiments.translation import tfds_builder

DATASET_NAMES = ("toy_translation", "tsv", "ding", "tfds")
_MAX_GRAIN_SEED = 2**32 - 1


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
    return corpora.read_ding(
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
# Encoding and batching.


@dataclasses.dataclass(frozen=True)
class TruncationStats:
    """How many of `examples` pairs had their source / target cut at max_length."""

    examples: int
    source_truncated: int
    target_truncated: int


class EncodedPair(NamedTuple):
    """One sentence pair as token ids, without BOS/EOS.

    index: position of the pair in its split.
    source_ids, target_ids: int32 [length] arrays, at most max_length long.
    """

    index: int
    source_ids: np.ndarray
    target_ids: np.ndarray


def encode_pairs(
    pairs: Sequence[SentencePair], source_tokenizer, target_tokenizer, *, max_length: int | None
) -> tuple[list[EncodedPair], TruncationStats]:
    """Tokenizes every pair once; returns the encoded pairs and truncation counts."""
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be >= 1 or None, got {max_length}")
    encoded = []
    source_truncated = target_truncated = 0
    for index, pair in enumerate(pairs):
        source_ids, source_cut = source_tokenizer.encode(pair.source, max_length=max_length)
        target_ids, target_cut = target_tokenizer.encode(pair.target, max_length=max_length)
        source_truncated += bool(source_cut)
        target_truncated += bool(target_cut)
        encoded.append(
            EncodedPair(index, np.asarray(source_ids, np.int32), np.asarray(target_ids, np.int32))
        )
    return encoded, TruncationStats(len(pairs), source_truncated, target_truncated)


def _round_up(length: int, multiple: int) -> int:
    return max(multiple, -(-length // multiple) * multiple)


def collate(
    examples: Sequence[EncodedPair], *, batch_size: int, length_multiple: int
) -> dict[str, np.ndarray]:
    """Pads encoded pairs into one batch (see the module docstring for the layout).

    Rows after `len(examples)` (up to `batch_size`) are all PAD with index -1.
    """
    if len(examples) > batch_size:
        raise ValueError(f"{len(examples)} examples do not fit in batch_size={batch_size}")
    source_width = _round_up(
        max((len(e.source_ids) + 1 for e in examples), default=1), length_multiple
    )
    target_width = _round_up(
        max((len(e.target_ids) + 1 for e in examples), default=1), length_multiple
    )
    source = np.full((batch_size, source_width), PAD_ID, np.int32)
    target_input = np.full((batch_size, target_width), PAD_ID, np.int32)
    target_output = np.full((batch_size, target_width), PAD_ID, np.int32)
    index = np.full((batch_size,), -1, np.int32)
    for row, example in enumerate(examples):
        source_length, target_length = len(example.source_ids), len(example.target_ids)
        source[row, :source_length] = example.source_ids
        source[row, source_length] = EOS_ID
        target_input[row, 0] = BOS_ID
        target_input[row, 1 : target_length + 1] = example.target_ids
        target_output[row, :target_length] = example.target_ids
        target_output[row, target_length] = EOS_ID
        index[row] = example.index
    return {
        "source": source,
        "target_input": target_input,
        "target_output": target_output,
        "index": index,
    }


def _check_batching(batch_size: int, length_multiple: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if length_multiple < 1:
        raise ValueError(f"length_multiple must be >= 1, got {length_multiple}")


def eval_batches(
    pairs: Sequence[SentencePair],
    source_tokenizer,
    target_tokenizer,
    *,
    batch_size: int,
    max_length: int | None,
    length_multiple: int = 8,
) -> tuple[list[dict[str, np.ndarray]], TruncationStats]:
    """Batches a split in order, every example exactly once.

    Every batch has `batch_size` rows; the last one is completed with empty
    rows whose "index" is -1 (they must be masked out of metrics).
    """
    _check_batching(batch_size, length_multiple)
    encoded, truncation = encode_pairs(
        pairs, source_tokenizer, target_tokenizer, max_length=max_length
    )
    batches = [
        collate(
            encoded[start : start + batch_size],
            batch_size=batch_size,
            length_multiple=length_multiple,
        )
        for start in range(0, len(encoded), batch_size)
    ]
    return batches, truncation


def _sorted_window_batches(
    window_index: int, window: list[EncodedPair], *, seed: int, batch_size: int
) -> list[list[EncodedPair]]:
    """Splits a window of shuffled examples into batches of similar lengths."""
    by_length = sorted(window, key=lambda e: (len(e.source_ids), len(e.target_ids), e.index))
    batches = [
        by_length[start : start + batch_size] for start in range(0, len(by_length), batch_size)
    ]
    # Visit the batches of a window in random order: in length order the model
    # would see a short-to-long sawtooth every window.
    order = np.random.default_rng([seed, window_index]).permutation(len(batches))
    return [batches[i] for i in order]


class _Flatten(grain.experimental.FlatMapTransform):
    """Yields the batches of a window one by one."""

    def __init__(self, max_fan_out: int):
        self.max_fan_out = max_fan_out

    def flat_map(self, element):
        return element


def train_iterator(
    pairs: Sequence[SentencePair],
    source_tokenizer,
    target_tokenizer,
    *,
    batch_size: int,
    max_length: int | None,
    seed: int,
    length_multiple: int = 8,
    bucket_window_batches: int = 0,
) -> tuple[grain.DatasetIterator, TruncationStats]:
    """Returns an endless, checkpointable iterator of shuffled training batches.

    The split is encoded once; the grain pipeline is
    source(encoded pairs) -> shuffle(seed) -> repeat -> batch(collate), and
    repeat reshuffles every epoch (deterministically from `seed`). Batches are
    full (no -1 rows) and may straddle an epoch boundary.

    With `bucket_window_batches` = k >= 2, windows of k * batch_size shuffled
    examples are sorted by length and cut into k batches visited in a seeded
    random order: batches hold sentences of similar length, so less padding,
    at the cost of batches being less random.

    `iterator.get_state()` returns a small JSON-friendly dict; a fresh iterator
    from the same arguments given that state via `set_state` yields exactly
    the batches the original would have yielded next.

    Returns:
      (iterator of batch dicts, TruncationStats of the split).
    """
    _check_batching(batch_size, length_multiple)
    if not 0 <= seed <= _MAX_GRAIN_SEED:
        raise ValueError(f"seed must be in [0, {_MAX_GRAIN_SEED}], got {seed}")
    if bucket_window_batches < 0:
        raise ValueError(f"bucket_window_batches must be >= 0, got {bucket_window_batches}")
    if not pairs:
        raise ValueError("cannot iterate over an empty training split")
    encoded, truncation = encode_pairs(
        pairs, source_tokenizer, target_tokenizer, max_length=max_length
    )
    make_batch = functools.partial(collate, batch_size=batch_size, length_multiple=length_multiple)
    # The examples are in memory already, so reading threads would only
    # contend for the GIL.
    read_options = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    examples = grain.MapDataset.source(encoded).shuffle(seed=seed).repeat()
    if bucket_window_batches >= 2:
        windows = examples.batch(bucket_window_batches * batch_size, batch_fn=list).map_with_index(
            functools.partial(_sorted_window_batches, seed=seed, batch_size=batch_size)
        )
        dataset = grain.experimental.FlatMapIterDataset(
            windows.to_iter_dataset(read_options), _Flatten(bucket_window_batches)
        ).map(make_batch)
    else:
        dataset = examples.batch(batch_size, batch_fn=make_batch).to_iter_dataset(read_options)
    return iter(dataset), truncation
