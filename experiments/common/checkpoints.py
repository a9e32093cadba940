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
        self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

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

    def _restore(self, abstract, step: int):
        return self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()
            ),
        )

    def restore(self, like_state: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores into the structure of `like_state`; CheckpointError if it won't fit.

        `step` None (or 0): the latest. An earlier step is restored only when
        asked for (`checkpoint.restore_step`), never as a silent fallback; the
        later checkpoints are then moved to `checkpoints_set_aside/`, so that
        training can save those steps again.
        """
        steps = sorted(self._manager.all_steps())
        latest = self.latest_step()
        if step and step not in steps:
            raise CheckpointError(
                f"checkpoint.restore_step={step}: no such checkpoint in {self.directory}; "
                f"steps there: {', '.join(map(str, steps)) or 'none'}"
            )
        step = latest if not step else step
        path = self.path(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        try:
            restored = self._restore(abstract, step)
        except Exception as error:  # orbax raises many types for bad files
            raise CheckpointError(self._corrupt_message(abstract, step, error)) from None
        _check_same_structure(abstract, restored["state"], path)
        if step != latest:
            self._set_aside([s for s in steps if s > step])
        return restored["state"], restored["extra"]

    def _corrupt_message(self, abstract, step: int, error: Exception) -> str:
        """One line: the checkpoint, why (shortened), and the newest earlier one that restores."""
        path = self.path(step)
        reason = f"{type(error).__name__}: {_first_line(error)}"
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        intact = None
        for earlier in sorted((s for s in self._manager.all_steps() if s < step), reverse=True):
            try:
                self._restore(abstract, earlier)
            except Exception:  # noqa: BLE001 - any failure means not intact
                continue
            intact = earlier
            break
        if intact is None:
            advice = "no earlier checkpoint restores; delete it or use another --workdir"
        else:
            advice = (
                f"resume from step {intact}, the newest intact one, with "
                f"--config.checkpoint.restore_step={intact}, or delete it"
            )
        return (
            f"cannot restore checkpoint {path} (corrupt, or written by a different "
            f"model/config; {reason}); {advice}"
        )

    def _set_aside(self, steps) -> None:
        if not steps:
            return
        self._manager.wait_until_finished()
        self._manager.close()
        aside = self.directory + "_set_aside"
        os.makedirs(aside, exist_ok=True)
        for step in steps:
            os.replace(self.path(step), os.path.join(aside, str(step)))
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

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
