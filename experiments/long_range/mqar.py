"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology").

One sequence holds `num_pairs` key-value pairs, then the same keys again as
queries, in random order and at random places, each followed by its value:

    k1 v1 k2 v2 k3 v3 | . . k2 v2 . k1 v1 . . k3 v3 .

A causal model reads it left to right and must predict, at each query, the
value that followed that key earlier; accuracy counts those positions only.
Keys are drawn from the lower half of the vocabulary and values from the
upper half (token 0 is padding and 1 the filler between queries), without
repetition within a sequence, as in Zoology's generator.

With `min_pairs` below `num_pairs` each sequence draws its own number of
pairs from `[min_pairs, num_pairs]` (Zoology trains on such a mixture): the
few-pair sequences give the recall heads a signal early in training that
many pairs alone do not. Validation and test keep `num_pairs` exactly.
"""

from __future__ import annotations

import numpy as np

PAD, FILLER = 0, 1
FIRST_KEY = 2  # keys: [2, vocab_size // 2), values: [vocab_size // 2, vocab_size)


def check_settings(
    *, vocab_size: int, num_pairs: int, length: int, min_pairs: int | None = None
) -> None:
    """One-line ValueError naming an impossible setting."""
    if not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(f"mqar num_pairs={num_pairs!r}; valid: 1 or more")
    if min_pairs is not None and (
        not isinstance(min_pairs, int) or not 1 <= min_pairs <= num_pairs
    ):
        raise ValueError(f"mqar min_pairs={min_pairs!r}; valid: 1 to num_pairs={num_pairs}")
    if not isinstance(length, int) or length < 4 * num_pairs:
        raise ValueError(
            f"mqar num_pairs={num_pairs} do not fit length={length!r}: the pairs and their "
            f"queries take {4 * num_pairs} positions; use length >= {4 * num_pairs} or fewer pairs"
        )
    keys, values = vocab_size // 2 - FIRST_KEY, vocab_size - vocab_size // 2
    if not isinstance(vocab_size, int) or min(keys, values) < num_pairs:
        raise ValueError(
            f"mqar vocab_size={vocab_size!r} holds too few keys or values for num_pairs="
            f"{num_pairs} distinct ones; use vocab_size >= {2 * (num_pairs + FIRST_KEY)}"
        )


def generate(
    seed: int,
    count: int,
    *,
    vocab_size: int,
    num_pairs: int,
    length: int,
    min_pairs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` sequences: (inputs `[count, length]`, targets `[count, length]` (the
    next token), query mask `[count, length]` (True where the target is a recalled
    value)), deterministic from `seed`. `min_pairs` (None: `num_pairs`): each
    sequence holds a number of pairs drawn uniformly from `[min_pairs, num_pairs]`."""
    check_settings(vocab_size=vocab_size, num_pairs=num_pairs, length=length, min_pairs=min_pairs)
    rng = np.random.default_rng(seed)
    sequences = np.full((count, length + 1), FILLER, np.int32)
    queries = np.zeros((count, length + 1), bool)
    mixed = min_pairs is not None and min_pairs < num_pairs
    for i in range(count):
        # A fixed count draws nothing here, so its sequences match those of before mixing.
        pairs = int(rng.integers(min_pairs, num_pairs + 1)) if mixed else num_pairs
        context = 2 * pairs
        # Query slots: pairs of positions (query, value) in the part after the context.
        slots = (length + 1 - context) // 2
        keys = rng.choice(np.arange(FIRST_KEY, vocab_size // 2), pairs, replace=False)
        values = rng.choice(np.arange(vocab_size // 2, vocab_size), pairs, replace=False)
        sequences[i, 0:context:2], sequences[i, 1:context:2] = keys, values
        order = rng.permutation(pairs)
        places = context + 2 * np.sort(rng.choice(slots, pairs, replace=False))
        sequences[i, places], sequences[i, places + 1] = keys[order], values[order]
        queries[i, places] = True
    return sequences[:, :-1], sequences[:, 1:], queries[:, :-1]


__all__ = ["FILLER", "FIRST_KEY", "PAD", "check_settings", "generate"]
