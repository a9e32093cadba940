"""The idx format of the MNIST family (MNIST, Fashion-MNIST), plain or gzipped.

`read_idx_split(directory, "train" | "test")` gives images uint8
`[N, H, W, 1]` and labels int32 `[N]`. A file that is not an idx file of
unsigned bytes, or whose size disagrees with its header, raises a ValueError
naming the file; a missing one a FileNotFoundError naming what a folder holds.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

# idx file stems of the MNIST family: (images, labels) per split.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08


def read_idx(path: str, *, ndim: int) -> np.ndarray:
    """An idx file (`.gz` or plain) of unsigned bytes with `ndim` dimensions.

    Raises ValueError naming the file when its header is not that of an idx
    file of unsigned bytes with `ndim` dimensions, or its size does not match
    the header (a truncated or wrong file).
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:  # e.g. a corrupt gzip stream
        raise ValueError(f"cannot read {path}: {error}") from error
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an idx file: it should start with two zero bytes and hold a "
            f"{header}-byte header, got {len(raw)} bytes starting {raw[:4].hex() or 'empty'}."
        )
    if raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise ValueError(
            f"{path} holds idx data of type 0x{raw[2]:02x} with {raw[3]} dimensions; expected "
            f"unsigned bytes (0x08) with {ndim} dimensions."
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{path} is {len(raw)} bytes (uncompressed) but its header {shape} needs "
            f"{expected}: the file is truncated or not the one expected."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def find_idx_file(directory: str, stem: str, *, hint: str = "") -> str:
    """`directory/stem` or `directory/stem.gz`; FileNotFoundError listing what a folder holds."""
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise FileNotFoundError(
        f"{stem}[.gz] not found in {directory}: an MNIST-format folder holds "
        f"{', '.join(s for pair in IDX_FILES.values() for s in pair)} (each optionally .gz)"
        + (f"; {hint}" if hint else ".")
    )


def read_idx_split(
    directory: str, split: str, *, num_classes: int = 10, hint: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """The "train" or "test" images uint8 `[N, H, W, 1]` and labels int32 `[N]` of a folder."""
    image_stem, label_stem = IDX_FILES[split]
    image_path = find_idx_file(directory, image_stem, hint=hint)
    label_path = find_idx_file(directory, label_stem, hint=hint)
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels."
        )
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"{label_path} holds label {labels.max()}; expected 0..{num_classes - 1}.")
    return images[..., None], labels.astype(np.int32)
