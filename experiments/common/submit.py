"""One training run as one submitit job: every task of the job is one process of the run.

    python launch.py --config=... --workdir=runs/x --executor=slurm \\
        --slurm_nodes=2 --slurm_tasks_per_node=4 --slurm_gpus_per_node=4

submits a job of nodes x tasks_per_node tasks; each task runs the same
launch.py command, joined to the others through `--coordinator_address`,
`--num_processes` and `--process_id`, which it reads from submitit's view
of the job (`submitit.JobEnvironment`: the first node's host name, the task
count, the task's global rank). `--executor=submitit_local` runs the same
job as processes of this machine (submitit's local executor), to try a job
before a cluster has it; it waits for the job and fails as the job does.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

# Flags that pick where the run goes; the tasks must not submit again.
SUBMIT_FLAGS = (
    "--executor",
    "--slurm_partition",
    "--slurm_timeout_min",
    "--slurm_gpus_per_node",
    "--slurm_nodes",
    "--slurm_tasks_per_node",
)
# Set by each task from the job; given by hand they would contradict it.
PROCESS_FLAGS = ("--coordinator_address", "--num_processes", "--process_id", "--distributed")
CLUSTERS = {"slurm": "slurm", "submitit_local": "local"}


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def task_args(argv: list[str]) -> list[str]:
    """launch.py's arguments for a task: the user's, less the submission flags.

    `--flag value` pairs are dropped whole; every flag here takes a value.
    """
    args, rest = [], list(argv)
    while rest:
        arg = rest.pop(0)
        name = _flag_name(arg)
        if name in SUBMIT_FLAGS:
            if "=" not in arg and rest and not rest[0].startswith("--"):
                rest.pop(0)
            continue
        args.append(arg)
    return args


def process_flags(argv: list[str]) -> list[str]:
    """The multi-host flags in `argv`, which a submitted run sets itself."""
    return [_flag_name(a) for a in argv if _flag_name(a) in PROCESS_FLAGS]


def coordinator_port(job_id: str) -> int:
    """A port every task of one job derives alike, in 20000-39999."""
    digits = "".join(c for c in str(job_id) if c.isdigit()) or "0"
    return 20000 + int(digits) % 20000


def join_flags(*, hostnames, num_tasks: int, global_rank: int, job_id: str) -> list[str]:
    """The flags that join one task to its job's run: process 0 on the first node."""
    return [
        f"--coordinator_address={hostnames[0]}:{coordinator_port(job_id)}",
        f"--num_processes={num_tasks}",
        f"--process_id={global_rank}",
    ]


@dataclasses.dataclass(frozen=True)
class RunTask:
    """What each task of the job runs (pickled by submitit): launch.py as a subprocess."""

    root: str
    args: tuple[str, ...]

    def command(self, env) -> list[str]:
        join = join_flags(
            hostnames=env.hostnames,
            num_tasks=env.num_tasks,
            global_rank=env.global_rank,
            job_id=env.job_id,
        )
        return [sys.executable, os.path.join(self.root, "launch.py"), *self.args, *join]

    def __call__(self) -> int:
        import submitit

        env = submitit.JobEnvironment()
        completed = subprocess.run(self.command(env), cwd=self.root)
        if completed.returncode:
            raise RuntimeError(
                f"task {env.global_rank} of job {env.job_id}: launch.py exited with "
                f"{completed.returncode}"
            )
        return completed.returncode


def submit_run(
    argv: list[str],
    *,
    executor_name: str,
    workdir: str,
    nodes: int,
    tasks_per_node: int,
    partition: str | None,
    timeout_min: int,
    gpus_per_node: int,
):
    """Submits the run of `argv` (launch.py's arguments) as one job; returns the job."""
    import submitit

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    executor = submitit.AutoExecutor(
        folder=os.path.join(workdir, "submitit"), cluster=CLUSTERS[executor_name]
    )
    executor.update_parameters(
        nodes=nodes,
        tasks_per_node=tasks_per_node,
        timeout_min=timeout_min,
        gpus_per_node=gpus_per_node,
        **({"slurm_partition": partition} if partition else {}),
    )
    return executor.submit(RunTask(root=root, args=tuple(task_args(argv))))
