"""Multi-process training on one machine: launch.py's jax.distributed flags.

Two and four processes on localhost, each with one CPU device, train the tiny
translation and language-model configs at the same global batch as one
process: the loss at every logged step follows the one-process run; process 0
alone writes the logs, the TensorBoard events and eval.json; the processes save
a checkpoint together and a resumed run ends bitwise where an uninterrupted one
does. A killed process stops the survivors within seconds with one line naming
it (status.json says why), and running every process again resumes, here
started the way a SLURM job step starts them (`--distributed`).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments.common.writers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXPERIMENTS = {
    "translation": (
        "--config=experiments/configs/translation.py:additive,tiny",
        "--config.eval.splits=('test',)",
    ),
    "language_model": ("--config=experiments/configs/language_model.py:tiny",),
}
# A constant learning rate: a run of 6 steps then 8 trains its first 6 as a run of 8 does.
STEPS = (
    "--config.eval.every_steps=100",
    "--config.checkpoint.every_steps=3",
    "--config.train.schedule=constant",
    "--config.train.log_every_steps=2",
)

pytestmark = pytest.mark.slow  # each test launches launch.py 3 to 5 times, up to 4 processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(experiment, workdir, steps, *args, process=None, processes=None, port=None, env=None):
    command = [
        sys.executable,
        "launch.py",
        *EXPERIMENTS[experiment],
        f"--workdir={workdir}",
        f"--config.train.steps={steps}",
        *STEPS,
        *args,
    ]
    if process is not None:
        command += [
            f"--coordinator_address=127.0.0.1:{port}",
            f"--num_processes={processes}",
            f"--process_id={process}",
        ]
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(*processes):
    results = [p.communicate(timeout=600) for p in processes]
    for p, (_, err) in zip(processes, results):
        assert p.returncode == 0, err[-3000:]
    return results


def start_processes(count, experiment, workdir, steps, *args):
    port = free_port()
    return [
        launch(experiment, workdir, steps, *args, process=i, processes=count, port=port)
        for i in range(count)
    ]


def slurm_processes(count, experiment, workdir, steps, *args):
    """The processes of a SLURM job step on this machine: `--distributed` and the
    variables SLURM sets, from which JAX derives the coordinator and the indices."""
    job = 1000
    while True:  # JAX puts the coordinator on port 61440 + job id % 4096
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 61440 + job % 4096))
            break
        except OSError:
            job += 1
    slurm = dict(SLURM_JOB_ID=str(job), SLURM_STEP_NODELIST="localhost", SLURM_NTASKS=str(count))
    return [
        launch(
            experiment,
            workdir,
            steps,
            "--distributed",
            *args,
            env=dict(slurm, SLURM_PROCID=str(i), SLURM_LOCALID=str(i)),
        )
        for i in range(count)
    ]


def data_flag(experiment, tmp_path):
    # The translation corpus is prepared once on disk; the language model's is made in memory.
    if experiment == "translation":
        return f"--config.data.data_dir={tmp_path / 'data'}"
    return "--config.seed=0"


def losses(workdir):
    return {m["step"]: m["train/loss"] for m in read_metrics(workdir) if "train/loss" in m}


def final(workdir):
    return json.loads((workdir / "eval.json").read_text())


def check_written_by_one_process(workdir):
    # Every step once in metrics.jsonl, one TensorBoard writer.
    steps = [m["step"] for m in read_metrics(workdir) if "train/loss" in m]
    assert steps == sorted(set(steps))
    events = os.listdir(workdir / "tensorboard")
    assert len([e for e in events if e.startswith("events.")]) == 1, events


@pytest.mark.parametrize("experiment", ["translation", "language_model"])
def test_two_processes_follow_one_and_resume_bitwise(tmp_path, experiment):
    data = data_flag(experiment, tmp_path)
    finish(launch(experiment, tmp_path / "one", 8, data))  # also builds the corpus the others read
    finish(*start_processes(2, experiment, tmp_path / "two", 8, data))
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == sorted(one) and len(one) >= 3
    np.testing.assert_allclose([two[s] for s in sorted(two)], [one[s] for s in sorted(one)], 1e-5)
    check_written_by_one_process(tmp_path / "two")
    # Two processes of one device each: the steps were data-parallel over both.
    assert (final(tmp_path / "two")["processes"], final(tmp_path / "two")["devices"]) == (2, 2)
    assert final(tmp_path / "one")["processes"] == 1

    # 6 steps, then 2 more from the checkpoint both saved: bitwise the uninterrupted run.
    finish(*start_processes(2, experiment, tmp_path / "resumed", 6, data))
    results = finish(*start_processes(2, experiment, tmp_path / "resumed", 8, data))
    assert any("Resumed from" in out for out, _ in results)
    resumed = losses(tmp_path / "resumed")
    assert max(resumed) == 8
    assert [resumed[s] for s in sorted(resumed)] == [two[s] for s in sorted(two)]
    split = "test" if experiment == "translation" else "validation"
    assert final(tmp_path / "resumed")["splits"][split] == final(tmp_path / "two")["splits"][split]


@pytest.mark.parametrize("experiment", ["translation", "language_model"])
def test_four_processes_follow_one(tmp_path, experiment):
    data = data_flag(experiment, tmp_path)
    finish(launch(experiment, tmp_path / "one", 6, data))
    finish(*start_processes(4, experiment, tmp_path / "four", 6, data))
    one, four = losses(tmp_path / "one"), losses(tmp_path / "four")
    assert sorted(four) == sorted(one)
    np.testing.assert_allclose([four[s] for s in sorted(four)], [one[s] for s in sorted(one)], 1e-5)
    check_written_by_one_process(tmp_path / "four")
    assert (final(tmp_path / "four")["processes"], final(tmp_path / "four")["devices"]) == (4, 4)


def test_a_killed_process_stops_the_others_with_one_line_and_a_restart_resumes(tmp_path):
    data = f"--config.data.data_dir={tmp_path / 'data'}"
    workdir = tmp_path / "run"
    args = (data, "--peer_timeout_seconds=20")
    processes = start_processes(2, "translation", workdir, 100000, *args)
    deadline = time.monotonic() + 300
    while not os.path.isdir(workdir / "checkpoints" / "6"):  # a checkpoint to resume from
        assert time.monotonic() < deadline and processes[0].poll() is None
        time.sleep(0.5)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    out, err = processes[0].communicate(timeout=120)
    stopped_after = time.monotonic() - killed
    processes[1].communicate()
    assert processes[0].returncode == 1
    assert stopped_after < 20 + 10  # the roll call lasts 10 s at most; no 100 s heartbeat abort
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: lost process 1 of 2 (JaxRuntimeError: ")
    assert lines[-1].endswith(
        "run every process again with the same command to resume from the last checkpoint"
    )
    assert "Traceback" not in err and "Fatal Python error" not in err
    status = json.loads((workdir / "status.json").read_text())
    assert status["status"] == "failed" and status["lost_processes"] == [1]
    assert status["error"] == lines[-1][len("error: ") :]

    # Every process again, this time as a SLURM job step would start them.
    saved = max(int(step) for step in os.listdir(workdir / "checkpoints") if step.isdigit())
    results = finish(*slurm_processes(2, "translation", workdir, saved + 2, *args))
    resumed_lines = [line for out, _ in results for line in out.splitlines() if "Resumed" in line]
    assert resumed_lines and all(line.endswith(f"/checkpoints/{saved}") for line in resumed_lines)
    assert (final(workdir)["steps"], final(workdir)["processes"]) == (saved + 2, 2)
    assert json.loads((workdir / "status.json").read_text())["status"] == "done"


def _slurm_partition() -> str | None:
    """The default partition of a SLURM cluster this machine can submit to, if any."""
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = out.stdout.split() if out.returncode == 0 else []
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0] if names else None)


def _wait_for_the_end(workdir, seconds=600) -> dict:
    """status.json once the run is done or failed (a SLURM job runs after its command returns)."""
    deadline, status = time.time() + seconds, {}
    while time.time() < deadline and status.get("status") not in ("done", "failed"):
        time.sleep(2)
        if (workdir / "status.json").exists():
            status = json.loads((workdir / "status.json").read_text())
    return status


@pytest.mark.parametrize("executor", ["submitit_local", "slurm"])
def test_a_submitit_job_of_two_tasks_is_one_run_of_two_processes(tmp_path, executor):
    # The SLURM-via-submitit route: one job, each task a process of the run, joined by
    # the flags each task derives from submitit's job environment. submitit's local
    # executor stands in for the cluster; "slurm" runs where `sinfo` finds a cluster.
    cluster = []
    if executor == "slurm":
        partition = _slurm_partition()
        if partition is None:
            pytest.skip("no SLURM cluster reachable from this machine (sinfo)")
        cluster = [f"--slurm_partition={partition}"]
    data = data_flag("language_model", tmp_path)
    finish(launch("language_model", tmp_path / "one", 6, data))
    job = launch(
        "language_model",
        tmp_path / "job",
        6,
        data,
        f"--executor={executor}",
        *cluster,
        "--slurm_tasks_per_node=2",
        "--slurm_timeout_min=10",
    )
    ((out, _),) = finish(job)
    assert "submitted job" in out and "2 processes" in out
    if executor == "submitit_local":
        assert "done" in out  # the local executor waits for the job
    assert _wait_for_the_end(tmp_path / "job").get("status") == "done"
    one, job_losses = losses(tmp_path / "one"), losses(tmp_path / "job")
    assert sorted(job_losses) == sorted(one) and len(one) >= 3
    np.testing.assert_allclose(
        [job_losses[s] for s in sorted(job_losses)], [one[s] for s in sorted(one)], 1e-5
    )
    check_written_by_one_process(tmp_path / "job")
    assert (final(tmp_path / "job")["processes"], final(tmp_path / "job")["devices"]) == (2, 2)
    assert (tmp_path / "job" / "submitit").is_dir()
