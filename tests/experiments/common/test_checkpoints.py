"""Checkpointer: round trip, mismatched structure, corrupt files."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.common.checkpoints import Checkpointer, CheckpointError


def state(width=3):
    return {"params": {"w": jnp.arange(width, dtype=jnp.float32)}, "step": 7}


def test_round_trip_and_keep(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, state(), {"iterator": {"position": step}})
    checkpointer.wait()
    assert checkpointer.latest_step() == 3
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "3"]
    restored, extra = checkpointer.restore(state())
    np.testing.assert_array_equal(restored["params"]["w"], [0, 1, 2])
    assert int(restored["step"]) == 7 and extra == {"iterator": {"position": 3}}
    checkpointer.close()


def test_a_different_model_is_named(tmp_path):
    checkpointer = Checkpointer(str(tmp_path))
    checkpointer.save(5, state(width=3), {})
    checkpointer.wait()
    with pytest.raises(CheckpointError, match=r"checkpoints/5"):
        checkpointer.restore(state(width=4))


def test_a_corrupt_checkpoint_is_named(tmp_path):
    checkpointer = Checkpointer(str(tmp_path))
    checkpointer.save(5, state(), {})
    checkpointer.close()
    for root, _, files in os.walk(tmp_path / "checkpoints" / "5" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot restore checkpoint .*checkpoints/5"):
        Checkpointer(str(tmp_path)).restore(state())


def test_saved_shapes_come_from_the_metadata(tmp_path):
    checkpointer = Checkpointer(str(tmp_path))
    checkpointer.save(5, {"params": {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}, "step": 5}, {})
    checkpointer.close()
    reopened = Checkpointer(str(tmp_path))
    assert reopened.saved_shapes() == {"params": {"w": (2, 3), "b": (3,)}, "step": ()}
    assert reopened.path(5) == str(tmp_path / "checkpoints" / "5")
    os.remove(tmp_path / "checkpoints" / "5" / "state" / "_METADATA")
    with pytest.raises(CheckpointError, match=r"cannot read the metadata of checkpoint .*/5"):
        reopened.saved_shapes()
