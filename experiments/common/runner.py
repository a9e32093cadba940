"""Runs the trials of a sweep, each in its own process, and records how each ended.

Every trial directory holds `status.json`, written by the trial itself
("running", "done", "diverged" with the step, "failed" with the error,
"interrupted" after SIGTERM) and completed by the runner when a process dies
without saying why (killed, out of memory). Rerunning a sweep skips trials
that ended ("done", "failed", "diverged"; failed ones again with
`retry_failed`) and resumes the others from their checkpoints.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from experiments.common.sweeps import Trial

STATUS_FILE = "status.json"
ENDED = ("done", "failed", "diverged")
LAUNCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "launch.py")


def read_status(workdir: str) -> dict | None:
    try:
        with open(os.path.join(workdir, STATUS_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_status(workdir: str, status: str, **details) -> None:
    """Atomically replaces `<workdir>/status.json`."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, STATUS_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"status": status, "time": time.time(), **details}, f, indent=2, default=str)
    os.replace(path + ".tmp", path)


def trial_command(trial: Trial, config_path: str, workdir: str) -> list[str]:
    config = f"{config_path}:{trial.config_arg}" if trial.config_arg else config_path
    return [
        sys.executable,
        LAUNCH,
        f"--config={config}",
        f"--workdir={workdir}",
        "--sweep_trial",  # its --config flags were given to the whole sweep
        *trial.flag_args(),
    ]


def plan(trials: Sequence[Trial], sweep_dir: str, *, retry_failed: bool = False) -> list[tuple]:
    """(trial, workdir, action) with action in new | resume | skip."""
    rows = []
    for trial in trials:
        workdir = os.path.join(sweep_dir, trial.name)
        status = (read_status(workdir) or {}).get("status")
        if status in ENDED and not (retry_failed and status != "done"):
            action = "skip"
        elif os.path.isdir(os.path.join(workdir, "checkpoints")):
            action = "resume"
        else:
            action = "new"
        rows.append((trial, workdir, action))
    return rows


def run_trial(trial: Trial, config_path: str, workdir: str) -> dict:
    """Runs one trial to its end; returns its final status."""
    os.makedirs(workdir, exist_ok=True)
    print(f"  {trial.name}: started, log in {os.path.join(workdir, 'log.txt')}", flush=True)
    with open(os.path.join(workdir, "log.txt"), "a") as log:
        returncode = subprocess.run(
            trial_command(trial, config_path, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ).returncode
    status = read_status(workdir)
    if status is None or status["status"] == "running":
        write_status(
            workdir,
            "failed",
            error=f"process exited with code {returncode} without a result; "
            f"last lines of log.txt: {_tail(os.path.join(workdir, 'log.txt'))}",
            returncode=returncode,
        )
        status = read_status(workdir)
    return status


def write_sweep_record(
    trials: Sequence[Trial],
    config_path: str,
    sweep_dir: str,
    command_line_overrides: dict[str, str] | None,
) -> None:
    """sweep.json: the config, the command line's overrides and every trial (what
    --report reads to tell the trials apart), however the trials are run."""
    os.makedirs(sweep_dir, exist_ok=True)
    with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
        json.dump(
            {
                "config": config_path,
                "command_line_overrides": dict(command_line_overrides or {}),
                "trials": [
                    {
                        "name": t.name,
                        "config_arg": t.config_arg,
                        "overrides": t.overrides,
                        "swept": list(t.swept),
                    }
                    for t in trials
                ],
            },
            f,
            indent=2,
            default=str,
        )


def run_sweep(
    trials: Sequence[Trial],
    *,
    config_path: str,
    sweep_dir: str,
    parallel: int = 1,
    dry_run: bool = False,
    retry_failed: bool = False,
    command_line_overrides: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Runs what is left of a sweep; returns [(trial name, status)] for every trial.

    `command_line_overrides` (field -> value, already in the trials' overrides,
    see `sweeps.with_overrides`) are recorded in sweep.json.
    """
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    rows = plan(trials, sweep_dir, retry_failed=retry_failed)
    if dry_run:
        for trial, workdir, action in rows:
            print(f"{action:<7} {workdir}  {' '.join(trial.flag_args())}")
        return [(t.name, action) for t, _, action in rows]
    write_sweep_record(trials, config_path, sweep_dir, command_line_overrides)
    todo = [(t, w) for t, w, action in rows if action != "skip"]
    print(
        f"{len(rows)} trials: {len(rows) - len(todo)} ended before, {len(todo)} to run "
        f"({parallel} at a time)"
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(run_trial, t, config_path, w): t for t, w in todo}
        for future in concurrent.futures.as_completed(futures):
            trial = futures[future]
            status = future.result()
            detail = status.get("error") or status.get("step") or ""
            print(f"  {trial.name}: {status['status']} {str(detail)[:200]}")
    return [(t.name, (read_status(w) or {}).get("status", "missing")) for t, w, _ in rows]


def submit_sweep(
    trials: Sequence[Trial],
    *,
    config_path: str,
    sweep_dir: str,
    executor,
    command_line_overrides: dict[str, str] | None = None,
) -> list:
    """Submits every trial that has not ended as a job of a submitit executor.

    `executor` is e.g. `submitit.AutoExecutor(folder=..., cluster="slurm")` with its
    `update_parameters(...)` already set (partition, gpus_per_node, timeout_min, ...).
    Writes sweep.json as `run_sweep` does. Returns the submitted jobs.
    """
    from submitit.helpers import CommandFunction

    write_sweep_record(trials, config_path, sweep_dir, command_line_overrides)
    jobs = []
    for trial, workdir, action in plan(trials, sweep_dir):
        if action == "skip":
            continue
        os.makedirs(workdir, exist_ok=True)
        command = CommandFunction(trial_command(trial, config_path, workdir), verbose=False)
        jobs.append(executor.submit(command))
    return jobs


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [line.strip() for line in f.readlines()[-lines:] if line.strip()]
        return " | ".join(text)[-600:]
    except FileNotFoundError:
        return "(no log)"
