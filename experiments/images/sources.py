"""Where the image datasets come from: Debian's Fashion-MNIST files, or TFDS by name.

- Fashion-MNIST: the idx files Debian's `dataset-fashion-mnist` installs in
  FASHION_MNIST_DIR (or any folder of them): offline.
- MNIST, CIFAR-10 and the rest of TFDS: `read_tfds(name, data_dir)`,
  downloaded and prepared into `data_dir` on first use (needs internet).

Both give {"train", "test"} -> (images uint8 `[N, H, W, C]`, labels int32 `[N]`).
"""

from __future__ import annotations

import os

import numpy as np

from experiments.images import idx

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_INSTALL = (
    f"Debian's package dataset-fashion-mnist installs them in {FASHION_MNIST_DIR} "
    "(apt-get install dataset-fashion-mnist)."
)


def check_fashion_mnist_dir(path: str, *, field: str = "data.path") -> None:
    """FileNotFoundError with the fix unless `path` is a folder (checked before loading)."""
    if not path or not os.path.isdir(path):
        raise FileNotFoundError(
            f"Fashion-MNIST folder not found: {field}={path!r}. Install Debian's "
            f"dataset-fashion-mnist (apt-get install dataset-fashion-mnist, into "
            f"{FASHION_MNIST_DIR}) or point {field} at a folder of the idx files."
        )


def read_fashion_mnist(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 60k training and 10k test images of a Fashion-MNIST folder."""
    return {split: idx.read_idx_split(path, split, hint=_INSTALL) for split in ("train", "test")}


def read_tfds(name: str, data_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A TFDS image dataset's "train" and "test" splits by name (downloaded on first use)."""
    import tensorflow_datasets as tfds  # imported here: only these datasets need it

    sources = tfds.data_source(name, data_dir=data_dir or None, download=True)
    splits = {}
    for split in ("train", "test"):
        source = sources[split]
        examples = [source[i] for i in range(len(source))]
        images = np.stack([np.asarray(e["image"], np.uint8) for e in examples])
        labels = np.asarray([e["label"] for e in examples], np.int32)
        splits[split] = (images, labels)
    return splits
