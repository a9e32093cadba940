"""Long-range comparison of attention mechanisms: ListOps and associative recall, offline.

    python launch.py --config=experiments/configs/long_range.py:listops,cpu --workdir=runs/listops
    python launch.py --config=experiments/configs/long_range.py:mqar,cpu --workdir=runs/mqar \\
        --config.model.attention=linear
    python launch.py --config=experiments/configs/long_range.py --sweep=quick \\
        --workdir=runs/long_range_quick --parallel=1
    python launch.py --report=runs/long_range_quick

Tasks (`data.task`), generated from `data.seed`, nothing downloaded:

- `listops`: ListOps expressions (Nangia & Bowman 2018) as Long Range Arena
  uses them: MAX, MIN, MED, SM over digits, nested up to `max_depth`, 10
  classes (experiments/long_range/listops.py). An encoder classifier.
- `mqar`: multi-query associative recall (Arora et al. 2023): key-value
  pairs, then the keys again, each to be answered with its value
  (experiments/long_range/mqar.py). A causal decoder; accuracy at the queries.

The config argument is TASK,SIZE: `tiny` (seconds; tests), `cpu` (minutes
per trial on 2 CPU cores: ListOps of 50-200 tokens, depth 6; MQAR of 4 pairs
in 32 tokens), `lra` (LRA's ListOps: 96k training expressions of 500-2,000
tokens, depth 10, a 4-layer d_model 512 encoder; an accelerator's job).

Sweeps: `listops` and `mqar` train every registered mechanism that can run
the task (`cpu` size); `quick` both tasks at the `tiny` size; `mqar_pairs`
softmax against linear attention and Performer as the pairs grow at a fixed
width (Zoology's comparison).
"""

from __future__ import annotations

import ml_collections

import attn
from experiments.common import attention_config, sections

TASKS = ("listops", "mqar")
SIZES = ("cpu", "tiny", "lra")
TASK_NEEDS = {"listops": ("padding",), "mqar": ("causal", "padding")}


def get_config(arg: str = "listops,cpu") -> ml_collections.ConfigDict:
    """`arg` is "TASK,SIZE" (TASK in TASKS, SIZE in SIZES), or a SIZE for ListOps."""
    task, _, size = arg.rpartition(",")
    task = task or "listops"
    if task not in TASKS or size not in SIZES:
        raise ValueError(
            f"unknown config {arg!r}; valid: TASK,SIZE with TASK in {', '.join(TASKS)} and "
            f"SIZE in {', '.join(SIZES)}"
        )
    config = ml_collections.ConfigDict()
    config.experiment = "long_range"
    config.preset = size
    config.seed = 0

    config.data = ml_collections.ConfigDict(
        dict(
            task=task,  # listops | mqar
            seed=0,  # splits are drawn from seed, seed + 1, seed + 2
            train_size=20000,
            validation_size=500,
            test_size=500,
            listops=dict(min_length=50, max_length=200, max_depth=6, max_args=5),
            mqar=dict(vocab_size=32, num_pairs=4, length=32),
        )
    )
    config.model = ml_collections.ConfigDict(
        dict(
            d_model=64,
            num_heads=4,
            num_layers=2,
            d_ff=128,
            dropout_rate=0.1,
            attention_dropout_rate=0.0,
            pre_layer_norm=True,
            positions="sinusoidal",  # also learned, relative, rope, alibi, t5
            max_length=256,  # positions (sinusoidal, learned): at least the task's length
            max_relative_distance=16,
        )
    )
    config.model.update(attention_config.fields("scaled_dot"))

    config.train = sections.train_section(
        steps=1500, batch_size=32, learning_rate=1e-3, warmup_steps=100, log_every_steps=50
    )
    config.eval = ml_collections.ConfigDict(dict(every_steps=500, batch_size=100))
    config.checkpoint = sections.checkpoint_section(every_steps=500, keep=2)

    if task == "mqar":  # recall needs no dropout, a larger step and batch to form its heads
        config.model.dropout_rate = 0.0
        config.train.update(learning_rate=3e-3, batch_size=64, steps=2000)
    if size == "tiny":
        config.data.update(train_size=64, validation_size=16, test_size=16)
        config.data.listops.update(min_length=10, max_length=24, max_depth=3, max_args=3)
        config.data.mqar.update(vocab_size=16, num_pairs=2, length=12)
        config.model.update(d_model=16, num_heads=2, num_layers=1, d_ff=32, max_length=32)
        config.model.dropout_rate = 0.0
        config.train.update(
            steps=4, batch_size=8, learning_rate=1e-3, warmup_steps=1, log_every_steps=2
        )
        config.eval.update(every_steps=2, batch_size=16)
        config.checkpoint.every_steps = 2
    elif size == "lra":
        # LRA's ListOps (Tay et al. 2021, appendix): 96k / 2k / 2k expressions.
        config.data.update(train_size=96000, validation_size=2000, test_size=2000)
        config.data.listops.update(min_length=500, max_length=2000, max_depth=10, max_args=10)
        config.model.update(d_model=512, num_heads=8, num_layers=4, d_ff=1024, max_length=2048)
        config.train.update(steps=5000, batch_size=32, learning_rate=5e-4, warmup_steps=1000)
        config.eval.every_steps = 1000
        config.checkpoint.every_steps = 1000
    return config


def _able(task: str) -> list[str]:
    return attn.available(*TASK_NEEDS[task])


def get_sweeps() -> dict[str, dict]:
    """Named sweeps (see experiments/common/sweeps.py for the format)."""
    # The tiny sizes of both tasks are set whichever task the config starts from.
    every = [
        {"data.task": task, "model.attention": kind} for task in TASK_NEEDS for kind in _able(task)
    ]
    return {
        "listops": {"config": "listops,cpu", "grid": {"model.attention": _able("listops")}},
        "mqar": {"config": "mqar,cpu", "grid": {"model.attention": _able("mqar")}},
        "quick": {"config": "listops,tiny", "trials": every},
        "mqar_pairs": {
            "config": "mqar,cpu",
            "fixed": {"data.mqar.length": 128, "data.mqar.vocab_size": 128},
            "grid": {
                "model.attention": ["scaled_dot", "linear", "performer"],
                "data.mqar.num_pairs": [4, 8, 16, 32],
            },
        },
    }
