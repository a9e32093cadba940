"""The idx format of the MNIST family, and the image datasets' sources."""

import gzip
import os

import numpy as np
import pytest

from experiments.images import idx, sources


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, *, train=30, test=10, gz=True):
    """A small MNIST-format folder; returns the arrays written."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        for stem, array in zip(idx.IDX_FILES[split], (images, labels)):
            raw = idx_bytes(array)
            if gz:
                with gzip.open(folder / f"{stem}.gz", "wb") as f:
                    f.write(raw)
            else:
                (folder / stem).write_bytes(raw)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[:-7], r"is \d+ bytes .* needs \d+: the file is truncated"),
        (lambda raw: raw + b"\0", "truncated or not the one expected"),
        (lambda raw: b"\x1f\x8b" + raw[2:], "is not an idx file"),
        (lambda raw: raw[:2] + b"\x0d" + raw[3:], r"type 0x0d .* expected unsigned bytes"),
        (lambda raw: b"", "is not an idx file"),
    ],
    ids=["truncated", "too-long", "bad-magic", "float-data", "empty"],
)
def test_damaged_idx_files_are_clear_errors(tmp_path, damage, message):
    write_idx_folder(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message) as error:
        idx.read_idx_split(str(tmp_path), "train")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_mismatched_counts_and_labels_are_clear_errors(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    with pytest.raises(ValueError, match="holds 30 images but .* holds 29 labels"):
        idx.read_idx_split(str(tmp_path), "train")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(30, 12, np.uint8)))
    with pytest.raises(ValueError, match="holds label 12; expected 0..9"):
        idx.read_idx_split(str(tmp_path), "train")


def test_a_missing_file_lists_what_a_folder_holds(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match=r"train-labels-idx1-ubyte\[.gz\] not found") as e:
        idx.read_idx_split(str(tmp_path), "train", hint="install it")
    assert "t10k-images-idx3-ubyte" in str(e.value) and str(e.value).endswith("; install it")


@pytest.mark.skipif(
    not os.path.isdir(sources.FASHION_MNIST_DIR),
    reason="Debian's dataset-fashion-mnist not installed",
)
def test_reads_the_real_fashion_mnist():
    for split, count in (("train", 60000), ("test", 10000)):
        images, labels = idx.read_idx_split(sources.FASHION_MNIST_DIR, split)
        assert images.shape == (count, 28, 28, 1) and images.dtype == np.uint8
        assert np.bincount(labels).tolist() == [count // 10] * 10
