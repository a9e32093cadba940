"""Corpus generation: `generate` draws aligned pairs, `make_splits` builds the splits.

The splits ("train", "validation", "test", "test_long") share no source
sentence, and "test_long" holds sentences longer than any in "train".
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from experiments.text.toy_corpus.description import SentencePair
from experiments.text.toy_corpus.expansions import sentence_of_length
from experiments.text.toy_corpus.rendering import render


def _pairs(rng: random.Random, min_words: int, max_words: int) -> Iterator[SentencePair]:
    while True:
        yield render(sentence_of_length(rng, rng.randint(min_words, max_words)))


def _check_lengths(min_words: int, max_words: int) -> None:
    if min_words < 3:
        raise ValueError(f"min_words={min_words}; valid values: min_words >= 3")
    if max_words < min_words:
        raise ValueError(f"max_words={max_words}; valid values: max_words >= min_words={min_words}")


def generate(
    num_pairs: int, *, seed: int, min_words: int = 3, max_words: int = 40
) -> list[SentencePair]:
    """Generates aligned English/French pairs.

    Each English sentence length is drawn uniformly from [min_words, max_words],
    so long sentences are as frequent as short ones. The result depends only on
    the arguments.

    Raises:
      ValueError: if num_pairs < 0, min_words < 3 or max_words < min_words.
    """
    if num_pairs < 0:
        raise ValueError(f"num_pairs={num_pairs}; valid values: num_pairs >= 0")
    _check_lengths(min_words, max_words)
    return list(itertools.islice(_pairs(random.Random(seed), min_words, max_words), num_pairs))


def _unique_pairs(
    rng: random.Random, size: int, min_words: int, max_words: int, seen: set[str]
) -> list[SentencePair]:
    """`size` pairs whose sources are not in `seen`; adds their sources to `seen`."""
    pairs = []
    draws = 0
    limit = 50 * size + 1000
    for pair in _pairs(rng, min_words, max_words):
        if len(pairs) == size:
            break
        draws += 1
        if draws > limit:
            raise ValueError(
                f"could not find {size} distinct sentences of {min_words}..{max_words} words "
                f"(found {len(pairs)}); ask for fewer pairs or allow longer sentences"
            )
        if pair.source not in seen:
            seen.add(pair.source)
            pairs.append(pair)
    return pairs


def make_splits(
    *,
    seed: int = 0,
    train_size: int = 20000,
    validation_size: int = 1000,
    test_size: int = 1000,
    test_long_size: int = 500,
    train_max_words: int = 20,
    long_max_words: int = 40,
) -> dict[str, list[SentencePair]]:
    """Builds the "train", "validation", "test" and "test_long" splits.

    train, validation and test have 3..train_max_words English words;
    test_long has train_max_words + 1..long_max_words, longer than anything in
    train. Every source sentence occurs once across all splits, so evaluation
    sentences are never seen in training. Each split draws from its own random
    stream derived from `seed`.

    Raises:
      ValueError: for negative sizes, train_max_words < 3, long_max_words <=
        train_max_words, or when too few distinct sentences exist for the sizes.
    """
    sizes = {
        "train": train_size,
        "validation": validation_size,
        "test": test_size,
        "test_long": test_long_size,
    }
    for name, size in sizes.items():
        if size < 0:
            raise ValueError(f"{name}_size={size}; valid values: >= 0")
    _check_lengths(3, train_max_words)
    if long_max_words <= train_max_words:
        raise ValueError(
            f"long_max_words={long_max_words}; valid values: "
            f"long_max_words > train_max_words={train_max_words}"
        )
    seen: set[str] = set()
    splits = {}
    for name, size in sizes.items():
        lengths = (
            (train_max_words + 1, long_max_words) if name == "test_long" else (3, train_max_words)
        )
        rng = random.Random(f"toy-corpus/{seed}/{name}")
        splits[name] = _unique_pairs(rng, size, *lengths, seen)
    return splits
