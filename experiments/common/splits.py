"""Seeded hold-out of examples: validation (or test) rows drawn from a source's own split."""

from __future__ import annotations

import numpy as np


def hold_out(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out): row indices of `count` examples, `size` of them drawn with `seed`,
    each in file order."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[size:]), np.sort(order[:size])
