"""Multi-process training on one machine: launch.py's jax.distributed flags, two processes.

Two processes on localhost, each with one CPU device, train the tiny
translation config at the same global batch as one process; the loss at every
logged step must follow the one-process run, process 0 alone writes the logs
and eval.json, and both save the checkpoint together and resume from it.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from experiments.common.writers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIG = "--config=experiments/configs/translation.py:additive,tiny"
STEPS = (
    "--config.train.steps=6",
    "--config.eval.every_steps=100",
    "--config.eval.splits=('test',)",
)

pytestmark = pytest.mark.slow  # five launches of launch.py, about a minute


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(workdir, *args, process=None, port=None):
    command = [sys.executable, "launch.py", CONFIG, f"--workdir={workdir}", *STEPS, *args]
    if process is not None:
        command += [
            f"--coordinator_address=127.0.0.1:{port}",
            "--num_processes=2",
            f"--process_id={process}",
        ]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(*processes):
    results = [p.communicate(timeout=600) for p in processes]
    for p, (_, err) in zip(processes, results):
        assert p.returncode == 0, err[-3000:]
    return results


def losses(workdir):
    return {m["step"]: m["train/loss"] for m in read_metrics(workdir) if "train/loss" in m}


def two_processes(workdir, *args):
    port = free_port()
    return finish(*(launch(workdir, *args, process=i, port=port) for i in (0, 1)))


def test_two_processes_follow_one_and_resume_from_their_checkpoint(tmp_path):
    data = f"--config.data.data_dir={tmp_path / 'data'}"
    finish(launch(tmp_path / "one", data))  # also builds the corpus both runs read
    two_processes(tmp_path / "two", data)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == sorted(one) and len(one) >= 3
    np.testing.assert_allclose([two[s] for s in sorted(two)], [one[s] for s in sorted(one)], 1e-5)
    # Process 0 alone writes the logs: every step is in metrics.jsonl once.
    steps = [m["step"] for m in read_metrics(tmp_path / "two") if "train/loss" in m]
    assert steps == sorted(set(steps))
    final = json.loads((tmp_path / "two" / "eval.json").read_text())
    # Two processes of one device each: the steps above were data-parallel over both.
    assert (final["steps"], final["processes"], final["devices"]) == (6, 2, 2)
    assert json.loads((tmp_path / "one" / "eval.json").read_text())["processes"] == 1
    # Two more steps from the collectively saved checkpoint, against one process doing the same.
    more = "--config.train.steps=8"
    finish(launch(tmp_path / "one", data, more))
    results = two_processes(tmp_path / "two", data, more)
    assert any("Resumed from" in out for out, _ in results)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert max(two) == 8
    np.testing.assert_allclose(two[8], one[8], rtol=1e-5)
