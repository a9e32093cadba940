"""The long-range tasks' data: splits per task and a resumable batch iterator.

Each task (`TASKS`) gives arrays per split: "inputs" `[n, length]` int32 (0
is padding), and for a classification task "labels" `[n]`; for MQAR
"targets" `[n, length]` and "queries" `[n, length]` (the positions scored).

- Generated tasks (listops, mqar, pathfinder) draw their splits from
  different seeds (`data.seed` + 0, 1, 2 for train, validation, test), so no
  example is shared; each split is drawn once into `data.cache_dir` and read
  from there by later launches with the same settings (cache.py).
- `image` reads real images (experiments/images): Fashion-MNIST's idx files
  from `data.image.path` offline, or a TFDS dataset by name (`cifar10`, made
  grey as LRA does); validation is a seeded sample held out of the training
  images, the test split is the dataset's own.

- `text` (IMDB) and `retrieval` (AAN pairs) read byte-level documents
  (experiments/long_range/documents.py): IMDB through TFDS by name or from an
  aclImdb folder, AAN from LRA's TSV files. Retrieval's arrays hold the
  second document of each pair as "second" `[n, length]`.

Images of both pixel tasks become sequences of `height * width` grey levels,
row by row, as tokens 1..256 (grey level + 1; 0 stays padding); documents
their UTF-8 bytes, 1..256 likewise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType

import numpy as np

from experiments.common.splits import hold_out
from experiments.images import sources
from experiments.long_range import cache, documents, listops, mqar, pathfinder

SPLITS = ("train", "validation", "test")
PIXEL_VOCABULARY = 257  # padding and 256 grey levels (or bytes)
IMAGE_DATASETS = ("fashion_mnist", "cifar10")
_IMAGE_SHAPES = {"fashion_mnist": (28, 28), "cifar10": (32, 32)}
# ITU-R 601 luma weights, as tf.image.rgb_to_grayscale (LRA's greyscale CIFAR-10) uses.
_LUMA = np.array([0.2989, 0.5870, 0.1140])


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What the model needs to know of a task."""

    # "classify" (one label per sequence), "match" (one label per pair of sequences) or
    # "recall" (per-position, causal)
    kind: str
    vocab_size: int
    num_classes: int  # classify: classes; recall: the vocabulary
    length: int  # the longest sequence


@dataclasses.dataclass(frozen=True)
class Task:
    """How to load a task, describe it and check its settings (`section` is data.<task>)."""

    load: Callable  # (data_config) -> {split: arrays}
    info: Callable[..., TaskInfo]  # (section) -> TaskInfo
    check: Callable[..., None]  # (section) -> None, or a one-line ValueError


def _generated(generate: Callable, generator: ModuleType) -> Callable:
    """`load` for a generated task: `generate(section, seed, size, split)` per split,
    kept in `data.cache_dir` (experiments/long_range/cache.py; "" keeps nothing)."""

    def load(data_config):
        task, section = data_config.task, data_config[data_config.task]
        sizes = (data_config.train_size, data_config.validation_size, data_config.test_size)
        splits = {}
        for offset, (split, size) in enumerate(zip(SPLITS, sizes)):
            seed = data_config.seed + offset
            splits[split], read = cache.cached(
                data_config.cache_dir,
                task,
                section.to_dict(),
                seed,
                size,
                generator,
                lambda seed=seed, size=size, split=split: generate(section, seed, size, split),
            )
            if read:
                print(f"{task} {split}: {size} examples read from {data_config.cache_dir}")
        return splits

    return load


def pixel_tokens(images: np.ndarray) -> np.ndarray:
    """uint8 images `[n, height, width]` -> tokens int32 `[n, height * width]`, 1..256."""
    return images.reshape(len(images), -1).astype(np.int32) + 1


def _listops(section, seed, size, split):
    del split  # every split is drawn alike
    ids, _, labels = listops.generate(
        seed,
        size,
        min_length=section.min_length,
        max_length=section.max_length,
        max_depth=section.max_depth,
        max_args=section.max_args,
    )
    return {"inputs": ids, "labels": labels}


def _mqar(section, seed, size, split):
    # Only training mixes pair counts: validation and test measure recall at num_pairs.
    mixed = split == "train" and section.train_min_pairs
    inputs, targets, queries = mqar.generate(
        seed,
        size,
        vocab_size=section.vocab_size,
        num_pairs=section.num_pairs,
        length=section.length,
        min_pairs=section.train_min_pairs if mixed else None,
    )
    return {"inputs": inputs, "targets": targets, "queries": queries}


def _pathfinder_settings(section) -> pathfinder.Settings:
    return pathfinder.Settings(**dict(section))


def _pathfinder(section, seed, size, split):
    del split  # every split is drawn alike
    images, labels = pathfinder.generate(seed, size, _pathfinder_settings(section))
    return {"inputs": pixel_tokens(images), "labels": labels}


def _grey(images: np.ndarray) -> np.ndarray:
    """uint8 `[n, h, w, c]` -> uint8 `[n, h, w]`: luma for colour, the one channel otherwise."""
    if images.shape[-1] == 1:
        return images[..., 0]
    return np.clip(np.rint(images[..., :3] @ _LUMA), 0, 255).astype(np.uint8)


def _downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each `factor x factor` block (edges that do not fill a block are cut)."""
    if factor == 1:
        return images
    n, h, w = images.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = images[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor)
    return np.rint(blocks.mean((2, 4))).astype(np.uint8)


def _image(data_config):
    section = data_config.image
    if section.dataset == "fashion_mnist":
        raw = sources.read_fashion_mnist(section.path)
    else:
        raw = sources.read_tfds(section.dataset, section.tfds_data_dir)
    pixels = {s: _downsample(_grey(images), section.downsample) for s, (images, _) in raw.items()}
    labels = {s: labels for s, (_, labels) in raw.items()}
    picked = _held_out(len(labels["train"]), data_config)
    splits = {
        split: {"inputs": pixel_tokens(pixels["train"][rows]), "labels": labels["train"][rows]}
        for split, rows in picked.items()
    }
    test_rows = _test_rows(len(labels["test"]), data_config)
    splits["test"] = {
        "inputs": pixel_tokens(pixels["test"][test_rows]),
        "labels": labels["test"][test_rows],
    }
    return {split: splits[split] for split in SPLITS}


def _held_out(count: int, data_config) -> dict[str, np.ndarray]:
    """Rows of a source's training examples for "train" and a seeded "validation" sample."""
    if data_config.validation_size >= count:
        raise ValueError(
            f"data.validation_size={data_config.validation_size} leaves no training examples of "
            f"the {count} in data.task={data_config.task!r}"
        )
    rest, validation = hold_out(count, data_config.validation_size, data_config.seed)
    return {"validation": validation, "train": rest[: data_config.train_size]}


def _test_rows(count: int, data_config) -> np.ndarray:
    """Every test example, or a seeded sample of `data.test_size` of them (in file order):
    a source's test split may be sorted by class (aclImdb's folders are)."""
    if data_config.test_size >= count:
        return np.arange(count)
    return hold_out(count, data_config.test_size, data_config.seed + 2)[1]


def _text(data_config):
    section = data_config.text
    raw = documents.read_imdb(section.source, section.tfds_data_dir)
    rows = _held_out(len(raw["train"]), data_config)
    picked = {split: [raw["train"][i] for i in rows[split]] for split in rows}
    picked["test"] = [raw["test"][i] for i in _test_rows(len(raw["test"]), data_config)]
    return {
        split: {
            "inputs": documents.byte_tokens([t for t, _ in picked[split]], section.max_length),
            "labels": np.array([label for _, label in picked[split]], np.int32),
        }
        for split in SPLITS
    }


def _retrieval(data_config):
    section = data_config.retrieval
    raw = documents.read_aan(section.path)
    sizes = {
        "train": data_config.train_size,
        "validation": data_config.validation_size,
        "test": data_config.test_size,
    }
    out = {}
    for split in SPLITS:
        pairs = raw[split][: sizes[split]]
        out[split] = {
            "inputs": documents.byte_tokens([a for a, _, _ in pairs], section.max_length),
            "second": documents.byte_tokens([b for _, b, _ in pairs], section.max_length),
            "labels": np.array([label for _, _, label in pairs], np.int32),
        }
    return out


def _check_length(section, name):
    if not isinstance(section.max_length, int) or section.max_length < 1:
        raise ValueError(f"data.{name}.max_length={section.max_length!r}; valid: 1 or more")


def _check_text(section):
    _check_length(section, "text")
    documents.check_imdb_source(section.source)


def _check_retrieval(section):
    _check_length(section, "retrieval")
    documents.check_aan_folder(section.path)


def _check_listops(section):
    listops.check_settings(
        min_length=section.min_length,
        max_length=section.max_length,
        max_depth=section.max_depth,
        max_args=section.max_args,
    )


def _check_mqar(section):
    low = section.train_min_pairs
    if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= section.num_pairs:
        raise ValueError(
            f"data.mqar.train_min_pairs={low!r}; valid: 0 (every training sequence holds "
            f"num_pairs) or 1 to num_pairs={section.num_pairs}"
        )
    mqar.check_settings(
        vocab_size=section.vocab_size,
        num_pairs=section.num_pairs,
        length=section.length,
        min_pairs=section.train_min_pairs or None,
    )


def _check_pathfinder(section):
    known = {f.name for f in dataclasses.fields(pathfinder.Settings)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"unknown data.pathfinder fields {unknown}; valid: {', '.join(known)}")
    pathfinder.check_settings(_pathfinder_settings(section))


def _check_image(section):
    if section.dataset not in IMAGE_DATASETS:
        raise ValueError(
            f"unknown data.image.dataset {section.dataset!r}; valid: {', '.join(IMAGE_DATASETS)}"
        )
    if not isinstance(section.downsample, int) or section.downsample < 1:
        raise ValueError(f"data.image.downsample={section.downsample!r}; valid: 1 or more")
    if section.dataset == "fashion_mnist":
        try:
            sources.check_fashion_mnist_dir(section.path, field="data.image.path")
        except FileNotFoundError as error:
            raise ValueError(str(error)) from error


def _image_info(section) -> TaskInfo:
    h, w = (side // section.downsample for side in _IMAGE_SHAPES[section.dataset])
    return TaskInfo("classify", PIXEL_VOCABULARY, 10, h * w)


TASKS = {
    "listops": Task(
        _generated(_listops, listops),
        lambda s: TaskInfo("classify", len(listops.VOCABULARY), listops.NUM_CLASSES, s.max_length),
        _check_listops,
    ),
    "mqar": Task(
        _generated(_mqar, mqar),
        lambda s: TaskInfo("recall", s.vocab_size, s.vocab_size, s.length),
        _check_mqar,
    ),
    "pathfinder": Task(
        _generated(_pathfinder, pathfinder),
        lambda s: TaskInfo("classify", PIXEL_VOCABULARY, 2, s.size * s.size),
        _check_pathfinder,
    ),
    "image": Task(_image, _image_info, _check_image),
    "text": Task(
        _text, lambda s: TaskInfo("classify", PIXEL_VOCABULARY, 2, s.max_length), _check_text
    ),
    "retrieval": Task(
        _retrieval,
        lambda s: TaskInfo("match", PIXEL_VOCABULARY, 2, s.max_length),
        _check_retrieval,
    ),
}


def check(data_config) -> None:
    """One-line ValueError for an unknown task or impossible settings (before loading)."""
    if data_config.task not in TASKS:
        raise ValueError(f"unknown data.task {data_config.task!r}; valid: {', '.join(TASKS)}")
    if not isinstance(data_config.cache_dir, str):
        raise ValueError(
            f"data.cache_dir={data_config.cache_dir!r}; valid: a folder, or '' to keep nothing"
        )
    TASKS[data_config.task].check(data_config[data_config.task])


def info(data_config) -> TaskInfo:
    return TASKS[data_config.task].info(data_config[data_config.task])


def load(data_config) -> dict[str, dict[str, np.ndarray]]:
    """Every split of `data.task`: generated from `data.seed`, or read (`image`)."""
    return TASKS[data_config.task].load(data_config)


class BatchIterator:
    """Endless shuffled epochs of a split's rows, resumable: the order of epoch e
    is drawn from (seed, e), so the state is (epoch, position)."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int):
        self.arrays, self.batch_size, self.seed = arrays, batch_size, seed
        self.size = len(next(iter(arrays.values())))
        if self.size < batch_size:
            raise ValueError(
                f"the training split has {self.size} examples, fewer than train.batch_size="
                f"{batch_size}; lower train.batch_size or raise data.train_size"
            )
        self.epoch, self.position = 0, 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self.position + self.batch_size > self.size:
            self.epoch, self.position = self.epoch + 1, 0
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        rows = order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return {name: array[rows] for name, array in self.arrays.items()}

    def get_state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def set_state(self, state) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def batches(arrays: dict[str, np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """A split in order, in batches (the last one padded with empty rows, which score nothing)."""
    size = len(next(iter(arrays.values())))
    out = []
    for start in range(0, size, batch_size):
        batch = {name: array[start : start + batch_size] for name, array in arrays.items()}
        short = batch_size - len(batch["inputs"])
        if short:
            batch = {
                name: np.concatenate([a, np.zeros((short,) + a.shape[1:], a.dtype)])
                for name, a in batch.items()
            }
        batch["weight"] = (np.arange(batch_size) < batch_size - short).astype(np.float32)
        out.append(batch)
    return out


__all__ = [
    "SPLITS",
    "TASKS",
    "BatchIterator",
    "Task",
    "TaskInfo",
    "batches",
    "check",
    "info",
    "load",
    "pixel_tokens",
]
