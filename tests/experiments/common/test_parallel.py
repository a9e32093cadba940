"""Data-parallel training: sharding rules, and 8 devices following 1 device."""

import os
import subprocess
import sys

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from experiments.common import parallel
from experiments.common.writers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_parameter_sharding_rules():
    assert parallel.leaf_spec((64, 128), 8, "replicate", 0) == P()
    assert parallel.leaf_spec((64, 128), 8, "fsdp", 0) == P(None, "data")
    assert parallel.leaf_spec((64, 12), 8, "fsdp", 0) == P("data", None)
    assert parallel.leaf_spec((12, 6), 8, "fsdp", 0) == P()  # nothing divisible
    assert parallel.leaf_spec((64, 128), 8, "fsdp", 10**6) == P()  # too small to split
    assert parallel.leaf_spec((), 8, "fsdp", 0) == P()
    with pytest.raises(ValueError, match="unknown parameter sharding 'zero3'"):
        parallel.leaf_spec((8,), 8, "zero3", 0)


BATCH_CHECK = """
import pytest
from experiments.common import parallel

mesh = parallel.make_mesh()
assert mesh.devices.size == 8 and mesh.axis_names == ("data",)
for ok in (8, 16, 24):
    parallel.check_batch_size(ok, mesh)
for bad in (4, 9, 12, 20):
    with pytest.raises(ValueError, match=f"batch_size={bad} must be divisible by the 8 devices"):
        parallel.check_batch_size(bad, mesh)
print("checked")
"""


def test_batch_must_divide_over_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", BATCH_CHECK], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and result.stdout.strip() == "checked", result.stderr[-3000:]


def run(tmp_path, name, devices, *overrides):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    workdir = tmp_path / name
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "launch.py"),
            f"--config={ROOT}/experiments/configs/translation.py:additive,tiny",
            f"--workdir={workdir}",
            f"--config.data.data_dir={tmp_path / 'data'}",
            "--config.train.steps=8",
            "--config.train.log_every_steps=1",
            "--config.eval.every_steps=1000",
            "--config.eval.splits=()",
            "--config.eval.attention_sentence_count=0",
            "--config.model.dropout_rate=0.1",
            *overrides,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [m["train/loss"] for m in read_metrics(workdir) if "train/loss" in m]


@pytest.mark.slow  # eight host devices in a subprocess: about 90 s on 2 cores
def test_eight_devices_follow_one_device(tmp_path):
    one = run(tmp_path, "one", 1)
    replicated = run(tmp_path, "replicated", 8)
    fsdp = run(
        tmp_path,
        "fsdp",
        8,
        "--config.train.param_sharding=fsdp",
        "--config.train.min_shard_size=64",
    )
    assert len(one) == 8 and one[-1] < one[0]
    np.testing.assert_allclose(replicated, one, rtol=1e-4)
    np.testing.assert_allclose(fsdp, one, rtol=1e-4)
