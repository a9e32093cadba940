"""Image classification data as uint8 arrays, and the batches training reads.

Every dataset loads to splits of `images` uint8 `[N, H, W, C]` and `labels`
int32 `[N]`: "train", "validation" and "test".

- "digits": scikit-learn's bundled 1797 handwritten digits (8 x 8, 17 grey
  levels, scaled to 0..255); no download. Shuffled once with `data.seed` and
  cut into test, validation and train.
- "fashion_mnist": the 60k / 10k idx files (optionally gzipped) in
  `data.path`, as Debian's dataset-fashion-mnist installs them at
  /usr/share/datasets/fashion-mnist. Validation is a seeded sample of
  `data.validation_size` training images, held out of training.
- "mnist", "cifar10": TFDS by name (downloaded and prepared into
  `data.tfds_data_dir` on first use; needs internet), validation as for
  fashion_mnist.

Bad or missing files raise ValueError / FileNotFoundError naming the file,
before anything compiles. `BatchIterator` yields shuffled training batches and
saves its position as a small dict for resuming.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments.common.splits import hold_out
from experiments.images.idx import read_idx  # noqa: F401  (vision.use reads idx stacks)
from experiments.images.sources import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    check_fashion_mnist_dir,
    read_fashion_mnist,
    read_tfds,
)

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10")


@dataclasses.dataclass(frozen=True)
class Split:
    """images uint8 `[N, H, W, C]`, labels int32 `[N]`."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices) -> Split:
        return Split(self.images[indices], self.labels[indices])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    image_shape: tuple[int, int, int]  # (H, W, C)
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of the training images scaled to [0, 1]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _digits() -> Split:
    from sklearn.datasets import load_digits  # imported here: only this dataset needs it

    digits = load_digits()
    # 17 grey levels (0..16) -> 0..255.
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return Split(images, digits.target.astype(np.int32))


def _hold_out(split: Split, size: int, seed: int) -> tuple[Split, Split]:
    """(rest, held_out): `size` examples drawn with `seed`."""
    rest, held = hold_out(len(split), size, seed)
    return split.take(rest), split.take(held)


def load(data_config) -> tuple[dict[str, Split], DatasetInfo]:
    """Splits "train", "validation", "test" of `data_config.name`, and what describes them."""
    name = data_config.name
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    validation_size = data_config.validation_size
    if name == "digits":
        everything = _digits()
        test_size = data_config.test_size
        if validation_size + test_size >= len(everything):
            raise ValueError(
                f"data.validation_size={validation_size} + data.test_size={test_size} leave "
                f"no training images of the {len(everything)} digits."
            )
        rest, test = _hold_out(everything, test_size, data_config.seed)
        train, validation = _hold_out(rest, validation_size, data_config.seed + 1)
        class_names = tuple(str(d) for d in range(10))
    else:
        if name == "fashion_mnist":
            check_fashion_mnist_dir(data_config.path)
            raw = {s: Split(*pair) for s, pair in read_fashion_mnist(data_config.path).items()}
            class_names = FASHION_MNIST_CLASSES
        else:
            raw = {
                s: Split(*pair) for s, pair in read_tfds(name, data_config.tfds_data_dir).items()
            }
            class_names = CIFAR10_CLASSES if name == "cifar10" else tuple(map(str, range(10)))
        if raw["train"].images.shape[1:] != raw["test"].images.shape[1:]:
            raise ValueError(
                f"{name}: train images {raw['train'].images.shape[1:]} and test images "
                f"{raw['test'].images.shape[1:]} differ in shape."
            )
        if validation_size >= len(raw["train"]):
            raise ValueError(
                f"data.validation_size={validation_size} leaves no training images of the "
                f"{len(raw['train'])} in {name}."
            )
        train, validation = _hold_out(raw["train"], validation_size, data_config.seed)
        test = raw["test"]
    if data_config.get("train_size", 0):
        train = train.take(np.arange(min(data_config.train_size, len(train))))
    scaled = train.images.astype(np.float32) / 255.0
    info = DatasetInfo(
        name=name,
        image_shape=tuple(int(s) for s in train.images.shape[1:]),
        class_names=class_names,
        mean=tuple(float(m) for m in scaled.mean(axis=(0, 1, 2))),
        std=tuple(float(s) + 1e-6 for s in scaled.std(axis=(0, 1, 2))),
    )
    return {"train": train, "validation": validation, "test": test}, info


class BatchIterator:
    """Endless shuffled batches of a split; every epoch a fresh order.

    The order of epoch e is a permutation drawn from `(seed, e)`, so the state
    `{"seed", "epoch", "position"}` (`get_state` / `set_state`) fixes the
    stream: a restored iterator yields exactly what the saved one would have.
    The tail of an epoch that does not fill a batch is skipped.
    """

    def __init__(self, split: Split, batch_size: int, seed: int):
        if not 0 < batch_size <= len(split):
            raise ValueError(
                f"batch size {batch_size} must be between 1 and the {len(split)} training images."
            )
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.epoch, self.position = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.split))

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self.position + self.batch_size > len(self.split):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        indices = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return {"images": self.split.images[indices], "labels": self.split.labels[indices]}

    def get_state(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def set_state(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(
                f"iterator state was saved with seed {state['seed']}, this run uses {self.seed}."
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)


def eval_batches(split: Split, batch_size: int) -> list[dict[str, np.ndarray]]:
    """The whole split in order, in batches of one shape: the last is padded.

    Each batch holds images, labels and `valid` (bool `[batch_size]`, False on
    padding), so one compiled evaluation step serves every batch.
    """
    batches = []
    for start in range(0, len(split), batch_size):
        images = split.images[start : start + batch_size]
        labels = split.labels[start : start + batch_size]
        pad = batch_size - len(labels)
        batches.append(
            {
                "images": np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)]),
                "labels": np.concatenate([labels, np.zeros(pad, np.int32)]),
                "valid": np.arange(batch_size) < len(labels),
            }
        )
    return batches


__all__ = [
    "DATASETS",
    "BatchIterator",
    "DatasetInfo",
    "Split",
    "check_fashion_mnist_dir",
    "eval_batches",
    "load",
    "read_idx",
]
