"""A killed run resumes exactly; SIGTERM saves a checkpoint and exits cleanly."""

import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.common.runner import read_status

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STEPS = 60


def command(tmp_path, workdir):
    return [
        sys.executable,
        os.path.join(ROOT, "launch.py"),
        f"--config={ROOT}/experiments/configs/translation.py:general,tiny",
        f"--workdir={workdir}",
        f"--config.data.data_dir={tmp_path / 'data'}",
        f"--config.train.steps={STEPS}",
        "--config.checkpoint.every_steps=5",
        "--config.eval.every_steps=1000",
        "--config.model.dropout_rate=0.2",
        "--config.eval.splits=()",
        "--config.eval.attention_sentence_count=0",
    ]


def start(tmp_path, workdir):
    return subprocess.Popen(
        command(tmp_path, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for_checkpoint(workdir, process, timeout=300):
    deadline = time.time() + timeout
    while not os.path.isdir(os.path.join(workdir, "checkpoints", "5")):
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def final_state(workdir):
    return ocp.StandardCheckpointer().restore(
        os.path.join(workdir, "checkpoints", str(STEPS), "state")
    )


# About 35 s (three launches). make test keeps resuming through the language model's
# tiny run (tests/experiments/language_model/test_train.py) and the SIGTERM checkpoint below.
@pytest.mark.slow
def test_sigkill_then_restart_gives_bitwise_equal_parameters(tmp_path):
    reference = tmp_path / "uninterrupted"
    assert subprocess.run(command(tmp_path, reference), capture_output=True).returncode == 0

    killed = tmp_path / "killed"
    process = start(tmp_path, killed)
    wait_for_checkpoint(killed, process)
    time.sleep(random.uniform(0.0, 0.3))
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert read_status(killed)["status"] == "running"  # it never got to say more
    stopped_at = max(int(s) for s in os.listdir(killed / "checkpoints") if s.isdigit())
    assert stopped_at < STEPS

    result = subprocess.run(command(tmp_path, killed), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_status(killed)["status"] == "done"
    want, got = final_state(reference), final_state(killed)
    assert jax.tree.structure(want) == jax.tree.structure(got)
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow  # a subprocess trained then stopped; make test resumes in-process (test_trainer.py)
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    workdir = tmp_path / "run"
    process = start(tmp_path, workdir)
    wait_for_checkpoint(workdir, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    status = read_status(workdir)
    assert status["status"] == "interrupted"
    assert str(status["step"]) in os.listdir(workdir / "checkpoints")
    assert "interrupted by SIGTERM" in process.stderr.read()
    # Resuming from it is the SIGKILL test's business.
