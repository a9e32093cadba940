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


def _overwrite_arrays(step_dir):
    """Overwrites every array file of a checkpoint with garbage, keeping its metadata."""
    for root, _, files in os.walk(step_dir / "state"):
        for name in files:
            if "ocdbt" in root or root.endswith("/d"):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")


def test_a_corrupt_checkpoint_names_the_intact_one_and_resumes_from_it_on_request(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), keep=3)
    for step in (2, 4):
        checkpointer.save(step, state(), {"iterator": {"position": step}})
    checkpointer.close()
    _overwrite_arrays(tmp_path / "checkpoints" / "4")

    checkpointer = Checkpointer(str(tmp_path), keep=3)
    with pytest.raises(CheckpointError) as error:
        checkpointer.restore(state())
    message = str(error.value)
    assert "\n" not in message and len(message) < 600, message
    assert f"cannot restore checkpoint {tmp_path / 'checkpoints' / '4'} (corrupt" in message
    assert message.endswith(
        "resume from step 2, the newest intact one, with "
        "--config.checkpoint.restore_step=2, or delete it"
    )
    with pytest.raises(CheckpointError, match=r"restore_step=3: no such checkpoint .* 2, 4$"):
        checkpointer.restore(state(), 3)

    restored, extra = checkpointer.restore(state(), 2)
    assert extra == {"iterator": {"position": 2}}
    assert sorted(os.listdir(tmp_path / "checkpoints_set_aside")) == ["4"]
    checkpointer.save(4, restored, {"iterator": {"position": 4}})  # the step saves again
    checkpointer.close()
    assert Checkpointer(str(tmp_path)).restore(state())[1] == {"iterator": {"position": 4}}
