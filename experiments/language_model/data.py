"""Sentences for the language model, their tokenizer and fixed-shape batches.

Two sources (`data.name`):

- "toy_french": the French side of the generated toy translation corpus
  (experiments/text/toy_corpus), with its own train/validation/test
  splits;
- "text": a UTF-8 text file (`data.path`), one sentence per line, split into
  lower-case word tokens by the translation corpora's `tokenize_words`
  (`data.language`); blank lines are skipped, and the held-out splits are
  drawn at random (`data.seed`) from the lines.

Every sentence is one example: BOS, its tokens, EOS, cut to
`data.max_length + 1` ids and padded with PAD=0, so every batch has the same
shape `[batch, max_length]` and the step compiles once. Inputs are ids
0..L-1, targets ids 1..L, and `mask` is False where the target is padding.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Sequence

import numpy as np

from experiments.text import corpora
from experiments.text import tokenizers as tokenizers_lib
from experiments.text.token_ids import BOS_ID, EOS_ID, PAD_ID
from experiments.text.toy_corpus import make_splits

DATASET_NAMES = ("toy_french", "text")
SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """The data cannot be used; the message names the file or field."""


def check_text_file(path: str) -> None:
    """Raises DataError unless `path` is a readable, non-empty file."""
    if not path:
        raise DataError("data.name='text' needs a file: set --config.data.path=FILE")
    if not os.path.isfile(path):
        raise DataError(f"text file not found: data.path={path!r}")
    if os.path.getsize(path) == 0:
        raise DataError(f"text file is empty: data.path={path!r}")


def read_text_file(path: str, language: str) -> list[str]:
    """The tokenized, non-blank lines of `path` (space-separated words)."""
    check_text_file(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [corpora.tokenize_words(line, language=language) for line in f]
    except OSError as error:
        raise DataError(f"cannot read text file data.path={path!r}: {error}") from error
    sentences = [line for line in lines if line]
    if not sentences:
        raise DataError(f"text file has no usable line (no word in any line): data.path={path!r}")
    return sentences


def split_sentences(
    sentences: Sequence[str], *, seed: int, validation_size: int, test_size: int
) -> dict[str, list[str]]:
    """Shuffles and splits; each held-out split gets at most a tenth of the lines."""
    order = list(sentences)
    random.Random(seed).shuffle(order)
    cap = len(order) // 10
    validation = order[: min(validation_size, cap)]
    test = order[len(validation) : len(validation) + min(test_size, cap)]
    return {
        "train": order[len(validation) + len(test) :],
        "validation": validation,
        "test": test,
    }


def load_splits(data_config) -> tuple[dict[str, list[str]], dict[str, object]]:
    """Sentences per split ("train", "validation", "test") and JSON-friendly stats.

    Raises:
      DataError: an unknown `data.name`, a missing, empty or wordless text file.
    """
    name = data_config.name
    if name == "toy_french":
        try:
            pairs = make_splits(
                seed=data_config.seed,
                train_size=data_config.train_size,
                validation_size=data_config.validation_size,
                test_size=data_config.test_size,
                test_long_size=0,
                train_max_words=data_config.max_words,
                long_max_words=data_config.max_words + 1,
            )
        except ValueError as error:
            raise DataError(f"toy_french: {error}") from error
        splits = {split: [pair.target for pair in pairs[split]] for split in SPLITS}
    elif name == "text":
        splits = split_sentences(
            read_text_file(data_config.path, data_config.language),
            seed=data_config.seed,
            validation_size=data_config.validation_size,
            test_size=data_config.test_size,
        )
    else:
        raise DataError(f"unknown data.name {name!r}; valid: {', '.join(DATASET_NAMES)}")
    stats = {"dataset": name, "split_sizes": {split: len(s) for split, s in splits.items()}}
    if name == "text":
        stats["path"] = os.path.abspath(data_config.path)
    return splits, stats


def build_tokenizer(train_sentences: Sequence[str], data_config):
    """A word (or sentencepiece) tokenizer of the training sentences."""
    return tokenizers_lib.make_tokenizer(
        data_config.tokenizer, train_sentences, vocab_size=data_config.vocab_size
    )


@dataclasses.dataclass
class Encoded:
    """Sentences as one padded array.

    Attributes:
      tokens: int32 `[examples, max_length + 1]`: BOS, ids, EOS, then PAD.
      truncated: how many sentences did not fit and lost their end.
    """

    tokens: np.ndarray
    truncated: int

    def __len__(self) -> int:
        return len(self.tokens)


def encode(sentences: Sequence[str], tokenizer, max_length: int) -> Encoded:
    """Encodes each sentence as BOS + ids + EOS, cut to `max_length + 1` ids."""
    tokens = np.full((len(sentences), max_length + 1), PAD_ID, np.int32)
    truncated = 0
    for row, sentence in enumerate(sentences):
        ids = [BOS_ID, *tokenizer.encode(sentence)[0], EOS_ID]
        truncated += len(ids) > max_length + 1
        ids = ids[: max_length + 1]
        tokens[row, : len(ids)] = ids
    return Encoded(tokens, truncated)


def make_batch(tokens: np.ndarray) -> dict[str, np.ndarray]:
    """`[batch, max_length + 1]` ids -> "inputs", "targets" `[batch, max_length]`
    int32 and "mask" `[batch, max_length]` bool (False on padding targets)."""
    targets = tokens[:, 1:]
    return {"inputs": tokens[:, :-1], "targets": targets, "mask": targets != PAD_ID}


def eval_batches(encoded: Encoded, batch_size: int) -> list[dict[str, np.ndarray]]:
    """Every example once, in order; the last batch is filled up to a single shape
    with rows of BOS alone, whose targets are all padding and so masked out."""
    batches = []
    for start in range(0, len(encoded), batch_size):
        rows = encoded.tokens[start : start + batch_size]
        if len(rows) < batch_size:
            # A BOS keeps every query of the filler rows with a key to attend to.
            filler = np.full((batch_size - len(rows), rows.shape[1]), PAD_ID, np.int32)
            filler[:, 0] = BOS_ID
            rows = np.concatenate([rows, filler])
        batches.append(make_batch(rows))
    return batches


class TrainIterator:
    """Endless shuffled epochs of training batches, resumable exactly.

    The order of epoch e is a permutation drawn from (seed, e), so the state
    is just (epoch, position) and survives a restart through `get_state`.
    Batches never straddle epochs: the last incomplete one is dropped.
    """

    def __init__(self, encoded: Encoded, batch_size: int, seed: int):
        if len(encoded) < batch_size:
            raise DataError(
                f"the training split has {len(encoded)} sentences, fewer than "
                f"train.batch_size={batch_size}; lower train.batch_size or use more data"
            )
        self.encoded, self.batch_size, self.seed = encoded, batch_size, seed
        self.epoch, self.position = 0, 0
        self._orders: dict[int, np.ndarray] = {}

    def _order(self) -> np.ndarray:
        if self.epoch not in self._orders:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._orders = {self.epoch: rng.permutation(len(self.encoded))}
        return self._orders[self.epoch]

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self.position + self.batch_size > len(self.encoded):
            self.epoch, self.position = self.epoch + 1, 0
        rows = self._order()[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return make_batch(self.encoded.tokens[rows])

    def get_state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def set_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Encoded",
    "TrainIterator",
    "build_tokenizer",
    "check_text_file",
    "encode",
    "eval_batches",
    "load_splits",
    "make_batch",
    "read_text_file",
    "split_sentences",
]
