"""Generated splits kept on disk, so a sweep's trials and a relaunch draw them once.

Drawing Pathfinder's 10k training images at 16 x 16 takes about a minute on
2 cores, and every trial of a sweep over mechanisms asks for the same images.
A split is stored as `<cache_dir>/<task>-<key>.npz`, where the key hashes
everything the arrays depend on: the task's settings, the split's seed and
size, and the source of the generator itself, so that editing the generator
never serves images it would no longer draw.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from types import ModuleType

import numpy as np


def key(task: str, settings: dict, seed: int, size: int, generator: ModuleType) -> str:
    """The hash naming one split's file (16 hex digits)."""
    with open(generator.__file__, "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()
    fields = dict(task=task, settings=settings, seed=seed, size=size, generator=source)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _read(path: str) -> dict[str, np.ndarray] | None:
    """The stored arrays, or None when the file is missing or unreadable."""
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError):  # absent, truncated or not an npz
        return None


def _write(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Written beside its place, then renamed: trials that race never read half a file."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".npz.partial")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def cached(
    cache_dir: str,
    task: str,
    settings: dict,
    seed: int,
    size: int,
    generator: ModuleType,
    draw: Callable[[], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], bool]:
    """`draw()`'s arrays for one split, read from `cache_dir` when it holds them.

    Returns (arrays, whether they were read). An empty `cache_dir` draws every
    time and writes nothing; an unreadable file is drawn again and replaced.
    """
    if not cache_dir:
        return draw(), False
    path = os.path.join(cache_dir, f"{task}-{key(task, settings, seed, size, generator)}.npz")
    stored = _read(path)
    if stored is not None:
        return stored, True
    arrays = draw()
    _write(path, arrays)
    return arrays, False


__all__ = ["cached", "key"]
