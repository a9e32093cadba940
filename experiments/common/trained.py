"""A finished (or interrupted) run, loaded from its workdir alone, to be used.

`load_config(workdir)` reads `config.json`; `restore_params(workdir, init, tx,
step)` rebuilds the train state's shapes from `init` and the optimizer and
restores its parameters from `checkpoints/<step>` (the latest by default).
Nothing here writes into the workdir. Bad input raises `UseError`, a
one-line message naming the value and the valid ones (launch.py: exit 2).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from flax.training import train_state

from experiments.common.checkpoints import Checkpointer
from experiments.common.errors import ConfigError


class UseError(ConfigError):
    """A trained run cannot be used as asked; the message is one line."""


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The run's config.json as a ConfigDict."""
    if not os.path.isdir(workdir):
        raise UseError(f"--workdir={workdir} does not exist")
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise UseError(
            f"--workdir={workdir} has no config.json: it is not a training run's workdir "
            f"(a sweep's trials are its subdirectories)"
        )
    try:
        with open(path) as f:
            return ml_collections.ConfigDict(json.load(f))
    except (OSError, ValueError) as error:
        raise UseError(f"cannot read {path}: {error}") from error


def require_experiment(config, workdir: str, flag: str, experiment: str) -> None:
    """UseError unless the run is of `experiment`, the one `flag` is for."""
    found = config.get("experiment")
    if found != experiment:
        usable = {"translation": "--translate", "language_model": "--generate"}
        usable["vision"] = "--classify"
        hint = f"; use {usable[found]} on it" if found in usable else ""
        raise UseError(
            f"{flag} needs a {experiment} run, but --workdir={workdir} is a {found} run{hint}"
        )


def saved_steps(workdir: str) -> list[int]:
    """The checkpoint steps held under `<workdir>/checkpoints`, ascending."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name))
    )


def choose_step(workdir: str, step: int | None) -> int:
    """`step` if the run holds it, else the latest step; UseError if there is none."""
    steps = saved_steps(workdir)
    if not steps:
        raise UseError(f"--workdir={workdir} has no checkpoint: train it first (or wait)")
    if step is None:
        return steps[-1]
    if step not in steps:
        raise UseError(
            f"--step={step}: no such checkpoint in {workdir}; valid: {', '.join(map(str, steps))}"
        )
    return step


def restore_params(workdir: str, init, tx, step: int | None = None):
    """The parameters ({"params": ...}) of checkpoint `step` (latest if None).

    `init()` returns the model's parameters (it is only traced, for their
    shapes) and `tx` is the optimizer the run trained with: a checkpoint holds
    the whole train state, so restoring needs its structure.

    Returns:
      (params, step)
    """
    step = choose_step(workdir, step)

    def init_state():
        return train_state.TrainState.create(apply_fn=None, params=init(), tx=tx)

    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        jax.eval_shape(init_state),
    )
    checkpointer = Checkpointer(workdir, keep=max(len(saved_steps(workdir)), 1))
    try:
        state, _ = checkpointer.restore(like, step)
    finally:
        checkpointer.close()
    return {"params": state.params}, step


def check_out_path(out: str | None, workdir: str) -> None:
    """--out must lie outside the run's workdir: using a run never changes it."""
    if not out:
        return
    inside = os.path.commonpath([os.path.abspath(out), os.path.abspath(workdir)])
    if inside == os.path.abspath(workdir):
        raise UseError(
            f"--out={out} lies inside --workdir={workdir}; using a run writes nothing "
            f"there, pick a path outside it"
        )


def png_path(out: str, name: str, count: int) -> str:
    """Where picture `name` goes: `out` itself if it is one .png for one picture,
    else `<out>/<name>.png`."""
    if out.lower().endswith(".png"):
        if count > 1:
            root, _ = os.path.splitext(out)
            return f"{root}.{name}.png"
        return out
    return os.path.join(out, f"{name}.png")


# What the commands print: the end token's row label and the output formats.
END = "</s>"
FORMATS = ("text", "tsv", "jsonl")


def format_matrix(weights: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> str:
    """Target words down, source words across, two decimals, each row's largest marked *."""
    label = max(len(w) for w in rows) + 2
    width = max(6, *(len(w) + 2 for w in columns))
    lines = [" " * label + "".join(f"{w:>{width}}" for w in columns)]
    for word, row in zip(rows, weights):
        best = int(np.argmax(row))
        cells = "".join(f"{x:{width - 1}.2f}{'*' if j == best else ' '}" for j, x in enumerate(row))
        lines.append(f"{word:<{label}}{cells}".rstrip())
    return "\n".join(lines)


__all__ = [
    "END",
    "FORMATS",
    "format_matrix",
    "UseError",
    "check_out_path",
    "choose_step",
    "load_config",
    "png_path",
    "require_experiment",
    "restore_params",
    "saved_steps",
    "warn",
]
