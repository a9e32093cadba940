"""The long-range tasks' data: generated splits and a resumable batch iterator.

Each task (`TASKS`) gives arrays per split: "inputs" `[n, length]` int32 (0
is padding), and for a classification task "labels" `[n]`; for MQAR
"targets" `[n, length]` and "queries" `[n, length]` (the positions scored).
Splits are drawn from different seeds (`data.seed` + 0, 1, 2 for train,
validation, test), so no example is shared.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments.long_range import listops, mqar

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What the model needs to know of a task."""

    kind: str  # "classify" (one label per sequence) or "recall" (per-position, causal)
    vocab_size: int
    num_classes: int  # classify: classes; recall: the vocabulary
    length: int  # the longest sequence


def _listops(section, seed, size):
    ids, _, labels = listops.generate(
        seed,
        size,
        min_length=section.min_length,
        max_length=section.max_length,
        max_depth=section.max_depth,
        max_args=section.max_args,
    )
    return {"inputs": ids, "labels": labels}


def _mqar(section, seed, size):
    inputs, targets, queries = mqar.generate(
        seed,
        size,
        vocab_size=section.vocab_size,
        num_pairs=section.num_pairs,
        length=section.length,
    )
    return {"inputs": inputs, "targets": targets, "queries": queries}


def _listops_info(section) -> TaskInfo:
    return TaskInfo("classify", len(listops.VOCABULARY), listops.NUM_CLASSES, section.max_length)


def _mqar_info(section) -> TaskInfo:
    return TaskInfo("recall", section.vocab_size, section.vocab_size, section.length)


def _check_listops(section):
    listops.check_settings(
        min_length=section.min_length,
        max_length=section.max_length,
        max_depth=section.max_depth,
        max_args=section.max_args,
    )


def _check_mqar(section):
    mqar.check_settings(
        vocab_size=section.vocab_size, num_pairs=section.num_pairs, length=section.length
    )


# name -> (generate(section, seed, size), info(section), check(section))
TASKS = {
    "listops": (_listops, _listops_info, _check_listops),
    "mqar": (_mqar, _mqar_info, _check_mqar),
}


def check(data_config) -> None:
    """One-line ValueError for an unknown task or impossible generator settings."""
    if data_config.task not in TASKS:
        raise ValueError(f"unknown data.task {data_config.task!r}; valid: {', '.join(TASKS)}")
    TASKS[data_config.task][2](data_config[data_config.task])


def info(data_config) -> TaskInfo:
    return TASKS[data_config.task][1](data_config[data_config.task])


def load(data_config) -> dict[str, dict[str, np.ndarray]]:
    """Every split of `data.task`, generated from `data.seed`."""
    generate = TASKS[data_config.task][0]
    section = data_config[data_config.task]
    sizes = (data_config.train_size, data_config.validation_size, data_config.test_size)
    return {
        split: generate(section, data_config.seed + offset, size)
        for offset, (split, size) in enumerate(zip(SPLITS, sizes))
    }


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


__all__ = ["SPLITS", "TASKS", "BatchIterator", "TaskInfo", "batches", "check", "info", "load"]
