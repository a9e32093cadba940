"""Translation batches: sentence pairs encoded once, then padded id batches.

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
from collections.abc import Sequence
from typing import NamedTuple

import grain
import numpy as np

from experiments.text.token_ids import BOS_ID, EOS_ID, PAD_ID
from experiments.text.toy_corpus import SentencePair

_MAX_GRAIN_SEED = 2**32 - 1

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
