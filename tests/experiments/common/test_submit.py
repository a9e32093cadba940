"""Submitting one run as a submitit job: the arguments each task runs with."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

from experiments.common import submit
from tests.experiments.common.test_multiprocess import ROOT


def test_tasks_run_the_users_arguments_less_the_submission_flags():
    argv = [
        "--config=experiments/configs/language_model.py:tiny",
        "--workdir=runs/x",
        "--executor=slurm",
        "--slurm_partition",
        "gpu",
        "--slurm_nodes=2",
        "--config.train.steps=5",
        "--slurm_tasks_per_node",
        "4",
    ]
    assert submit.task_args(argv) == [
        "--config=experiments/configs/language_model.py:tiny",
        "--workdir=runs/x",
        "--config.train.steps=5",
    ]


def test_each_task_joins_process_0_on_the_first_node_with_its_own_rank():
    task = submit.RunTask(root="/repo", args=("--workdir=runs/x",))
    env = SimpleNamespace(hostnames=["node7", "node8"], num_tasks=8, global_rank=5, job_id="4321")
    command = task.command(env)
    assert command[1:] == [
        "/repo/launch.py",
        "--workdir=runs/x",
        "--coordinator_address=node7:24321",
        "--num_processes=8",
        "--process_id=5",
    ]
    # Every task of one job derives the same port; array jobs' ids have an underscore.
    assert submit.coordinator_port("4321") == 24321
    assert submit.coordinator_port("123_4") == 21234


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_processes=2"], "--num_processes cannot be given with --executor=submitit_local"),
        (["--slurm_tasks_per_node=0"], "--slurm_tasks_per_node=0; valid: 1 or more"),
        (["--slurm_nodes=2"], "--slurm_nodes=2 with --executor=submitit_local; valid: 1"),
    ],
)
def test_bad_submission_flags_are_one_line_before_anything_runs(tmp_path, args, message):
    result = subprocess.run(
        [
            sys.executable,
            "launch.py",
            "--config=experiments/configs/language_model.py:tiny",
            f"--workdir={tmp_path / 'run'}",
            "--executor=submitit_local",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "run" / "submitit").exists()
