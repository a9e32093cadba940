"""Checkpoints of a training run: orbax arrays plus a small JSON side record.

A checkpoint holds the train state (params, optimizer state, step) as arrays
and a JSON dict for what is not an array: the data iterator's position, the
wall-clock time spent so far. The last `keep` checkpoints are kept.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used; the message names the file."""


class Checkpointer:
    """Saves and restores `(state, extra)` under `<workdir>/checkpoints/<step>`."""

    def __init__(self, workdir: str, *, keep: int = 3):
        if keep < 1:
            raise ValueError(f"checkpoint.keep must be >= 1, got {keep}.")
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def path(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def saved_shapes(self, step: int | None = None) -> dict:
        """The saved state as nested dicts of array shapes, read from the metadata only.

        Cheap enough to check a config against a checkpoint before the model is
        built: no array is read. CheckpointError if the metadata is unreadable.
        """
        step = self.latest_step() if step is None else step
        path = os.path.join(self.path(step), "state")
        try:
            tree = ocp.StandardCheckpointHandler().metadata(epath.Path(path)).tree
        except Exception as error:  # orbax raises many types for bad files
            raise CheckpointError(
                f"cannot read the metadata of checkpoint {self.path(step)}: "
                f"{type(error).__name__}: {_first_line(error)} -- it is corrupt; delete it or "
                f"use another --workdir."
            ) from error
        return jax.tree.map(lambda leaf: tuple(leaf.shape), tree)

    def save(self, step: int, state: Any, extra: dict) -> None:
        self._manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), extra=ocp.args.JsonSave(extra)
            ),
        )

    def restore(self, like_state: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores into the structure of `like_state`; CheckpointError if it won't fit."""
        step = self.latest_step() if step is None else step
        path = self.path(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()
                ),
            )
        except Exception as error:  # orbax raises many types for bad files
            raise CheckpointError(
                f"cannot restore checkpoint {path}: {type(error).__name__}: "
                f"{_first_line(error)} -- it is corrupt or "
                f"was written by a different model/config; delete it or use another "
                f"--workdir."
            ) from error
        _check_same_structure(abstract, restored["state"], path)
        return restored["state"], restored["extra"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else ""


def _check_same_structure(expected, restored, path: str) -> None:
    want = {
        jax.tree_util.keystr(k): np.shape(v)
        for k, v in jax.tree_util.tree_flatten_with_path(expected)[0]
    }
    got = {
        jax.tree_util.keystr(k): np.shape(v)
        for k, v in jax.tree_util.tree_flatten_with_path(restored)[0]
    }
    mismatched = [
        f"{k}: checkpoint {got.get(k)} vs model {want[k]}" for k in want if got.get(k) != want[k]
    ]
    if mismatched:
        raise CheckpointError(
            f"checkpoint {path} does not match the model: "
            f"{'; '.join(mismatched[:3])}{' ...' if len(mismatched) > 3 else ''}."
        )
