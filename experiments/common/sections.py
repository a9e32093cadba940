"""The train and checkpoint sections every experiment's config shares, and their checks.

Each config takes `train_section(...)` and `checkpoint_section(...)` with its
own values, so every experiment has the same fields (`schedule`,
`compute_dtype`, `param_sharding`, ...) and the shared trainer
(common/trainer.py) reads them the same way. Eval sections differ by task and
stay in each config; `eval.every_steps` and `eval.batch_size` are common.
"""

from __future__ import annotations

import ml_collections

from experiments.common import parallel
from experiments.common.errors import ConfigError
from experiments.common.optimizers import SCHEDULES

COMPUTE_DTYPE_NAMES = ("float32", "bfloat16")

TRAIN_DEFAULTS = dict(
    steps=1000,
    max_seconds=0.0,  # wall-clock training budget in seconds; 0: none
    batch_size=64,
    learning_rate=1e-3,
    warmup_steps=100,
    schedule="cosine",  # cosine | constant | rsqrt
    grad_clip_norm=1.0,
    label_smoothing=0.0,
    weight_decay=0.0,
    log_every_steps=50,
    compute_dtype="float32",  # float32 | bfloat16 (parameters stay float32)
    param_sharding="replicate",  # replicate | fsdp, over all devices
    min_shard_size=2**14,  # fsdp: arrays smaller than this stay replicated
)


def train_section(**values) -> ml_collections.ConfigDict:
    """`TRAIN_DEFAULTS` with the experiment's `values` (which may add fields of its own)."""
    return ml_collections.ConfigDict({**TRAIN_DEFAULTS, **values})


def checkpoint_section(every_steps: int, keep: int = 3) -> ml_collections.ConfigDict:
    """Save every `every_steps` and at the end, keep the last `keep`; `restore_step`
    0 resumes from the latest."""
    return ml_collections.ConfigDict(dict(every_steps=every_steps, keep=keep, restore_step=0))


def check_train(config) -> None:
    """One-line ConfigErrors for the shared choices: schedule, compute dtype,
    parameter sharding, and a training batch that splits evenly over the devices."""
    train = config.train
    choices = (
        ("train.schedule", train.schedule, SCHEDULES),
        ("train.compute_dtype", train.compute_dtype, COMPUTE_DTYPE_NAMES),
        ("train.param_sharding", train.param_sharding, tuple(parallel.PARAM_RULES)),
    )
    for field, value, valid in choices:
        if value not in valid:
            raise ConfigError(f"unknown {field} {value!r}; valid: {', '.join(valid)}")
    try:
        parallel.check_batch_size(train.batch_size, parallel.make_mesh())
    except ValueError as error:
        raise ConfigError(str(error)) from error


__all__ = ["TRAIN_DEFAULTS", "check_train", "checkpoint_section", "train_section"]
