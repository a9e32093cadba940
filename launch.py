"""Trains an experiment, runs a sweep of them, or reports on a sweep.

Train one run (any config field can be overridden with --config.FIELD=VALUE):

    python launch.py --config=experiments/configs/translation.py:additive --workdir=runs/additive \\
        --config.train.steps=2000

Run a sweep declared in the config file (each trial its own process; rerunning
skips trials that ended and resumes interrupted ones):

    python launch.py --config=experiments/configs/translation.py --sweep=variants --workdir=runs/s \\
        --parallel=2 [--dry_run]

Compare the trials of a sweep (writes report.md and report.html there):

    python launch.py --report=runs/s

Use a trained run: translate your own sentences and print where attention
looks (text, or --format=tsv / jsonl; heatmaps with --out), continue a
language model's prompt, or classify an image (see experiments/use_run.py):

    python launch.py --workdir=runs/demo/attention-additive --translate="i love you"
    python launch.py --workdir=runs/lm --generate="le petit chat"
    python launch.py --workdir=runs/vision --classify=image.png --out=/tmp/pictures
    python launch.py --workdir=runs/demo/attention-additive --evaluate=test --beam_size=4

Bad input (an unknown variant, dataset or sweep, a missing file, impossible
sizes) is reported in one line with exit code 2, before anything compiles.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import experiments
from experiments.common import peers, report, runner, submit, sweeps
from experiments.common.checkpoints import CheckpointError
from experiments.common.errors import ConfigError, Diverged, Interrupted

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/configs/translation.py:additive."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run (or sweep) directory.")
_SWEEP = flags.DEFINE_string("sweep", None, "Name of a sweep declared in the config file.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Sweep trials to run at once.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the sweep's trials and workdirs only.")
_RETRY_FAILED = flags.DEFINE_bool("retry_failed", False, "Rerun failed and diverged trials.")
_SWEEP_TRIAL = flags.DEFINE_bool(
    "sweep_trial",
    False,
    "Set by --sweep on each trial it starts: its --config flags were given to the whole "
    "sweep, so one this trial's model or task does not read is not refused here.",
)
_EXECUTOR = flags.DEFINE_enum(
    "executor",
    "local",
    ["local", "slurm", "submitit_local"],
    "Where a run or sweep trials run: here, as SLURM jobs through submitit, or as "
    "submitit's local jobs (this machine's processes; to try a job before a cluster).",
)
_SLURM_PARTITION = flags.DEFINE_string("slurm_partition", None, "SLURM partition.")
_SLURM_TIMEOUT = flags.DEFINE_integer("slurm_timeout_min", 240, "SLURM time limit per trial.")
_SLURM_GPUS = flags.DEFINE_integer("slurm_gpus_per_node", 0, "GPUs per SLURM trial.")
_SLURM_NODES = flags.DEFINE_integer("slurm_nodes", 1, "A submitted run (no --sweep): nodes.")
_SLURM_TASKS = flags.DEFINE_integer(
    "slurm_tasks_per_node", 1, "A submitted run (no --sweep): processes per node."
)
_REPORT = flags.DEFINE_string("report", None, "Sweep directory to write a comparison report for.")
_TRANSLATE = flags.DEFINE_multi_string(
    "translate", [], "With --workdir of a translation run: a sentence to translate (repeatable)."
)
_INPUT_FILE = flags.DEFINE_string(
    "input_file", None, "With --workdir: a file of sentences (or prompts), one a line."
)
_EVALUATE = flags.DEFINE_string(
    "evaluate",
    None,
    "With --workdir of a translation run: score it again on these splits (comma-separated, "
    "e.g. validation,test), with --beam_size and --step.",
)
_GENERATE = flags.DEFINE_multi_string(
    "generate", [], "With --workdir of a language model run: a prompt to continue (repeatable)."
)
_CLASSIFY = flags.DEFINE_multi_string(
    "classify", [], "With --workdir of a vision run: a PNG, or an idx/npz file[:index]."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to use (default: the latest).")
_BEAM_SIZE = flags.DEFINE_integer("beam_size", 1, "--translate: beam size (1: greedy).")
_OUT = flags.DEFINE_string(
    "out", None, "Where to draw the attention pictures: a .png path or a directory."
)
_FORMAT = flags.DEFINE_enum("format", "text", ["text", "tsv", "jsonl"], "How to print the results.")
_LAYER = flags.DEFINE_string(
    "layer", "", "Transformer/LM/vision: the attention layer to show (1-based, or all)."
)
_HEAD = flags.DEFINE_integer("head", 0, "Transformer: the head to show (1-based; 0: the mean).")
_ROLLOUT = flags.DEFINE_bool("rollout", False, "Transformer: also show the attention rollout.")
_PIXELS = flags.DEFINE_string(
    "pixels", "", "--classify: query pixels as row,col fractions, e.g. 0.5,0.5;0.25,0.75."
)
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 0, "--generate: tokens (0: the run's).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-host training."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in a multi-host run.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Join a multi-host run whose coordinator, process count and index come from the "
    "cluster's environment (a SLURM job step, Cloud TPU); the three flags above win.",
)
_PEER_TIMEOUT = flags.DEFINE_integer(
    "peer_timeout_seconds",
    60,
    "Multi-host: how long a silent peer may take before the others stop (and how long "
    "survivors of a failed step wait to learn which process was lost).",
)


def _one_line(error: Exception) -> str:
    """A flag or config error as one readable line."""
    text = str(error)
    if isinstance(error, (AttributeError, KeyError)):
        # ml_collections puts the repr of its message in these.
        text = text.strip("'\"").replace("\\n", "\n").replace("\\'", "'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        lines = [lines[-1].split(": ", 1)[-1]]  # keep the config file's own message
    message = " ".join(lines)
    if isinstance(error, (AttributeError, KeyError)):
        message = f"no such config field: {message}"
    return message


def _fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def check_workdir(path: str) -> None:
    """Exits with one line unless `path` is, or can be made, a directory."""
    if os.path.exists(path) and not os.path.isdir(path):
        _fail(f"--workdir={path} is a file, not a directory; give a directory's path")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        _fail(
            f"--workdir={path}: {parent} is a file, not a directory; give a path whose "
            f"parents are directories"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        _fail(f"--workdir={path}: {parent} is not writable; give a directory you can write")


def check_report_dir(path: str) -> None:
    """Exits with one line unless `path` is a directory (that it holds trials is checked next)."""
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        _fail(f"--report={path} {what}; give the --workdir of a sweep")


def parse_flags(argv):
    """absl's parser, with flag and config mistakes reported in one line (exit code 2)."""
    try:
        remaining = flags.FLAGS(argv)
        if _CONFIG.value is not None and (not _SWEEP.value or config_overrides(argv)):
            # Config files load lazily; fail here, not later (with --sweep, an
            # override of a field the config lacks would fail in every trial).
            _CONFIG.value.get("experiment")
        return remaining
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError, OSError) as error:
        _fail(_one_line(error))


def config_overrides(argv) -> dict[str, str]:
    """The `--config.FIELD=VALUE` (or `--config.FIELD VALUE`) flags of `argv`, field -> value."""
    overrides, args = {}, list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--config."):
            continue
        field, has_value, value = arg[len("--config.") :].partition("=")
        if not has_value and args and not args[0].startswith("--"):
            value = args.pop(0)
        overrides[field] = value if has_value or value else "True"
    return overrides


def _why_unread(field: str, unread: dict[str, str]) -> str | None:
    """Why `field` goes unread, if it or a section holding it is in `unread`."""
    return next(
        (why for name, why in unread.items() if field == name or field.startswith(name + ".")),
        None,
    )


def check_overrides_are_read(config, overrides: dict[str, str]) -> None:
    """A `--config.FIELD` that this run's model or task would never read is refused."""
    unread = experiments.unread_fields(config)
    for field, value in overrides.items():
        why = _why_unread(field, unread)
        if why:
            _fail(f"--config.{field}={value} would be ignored: {why}")


def check_sweep_overrides_are_read(config_path: str, trials, overrides: dict[str, str]) -> None:
    """A `--config.FIELD` given to a sweep that none of its trials would read is refused."""
    if not overrides or not trials:
        return
    unread = [experiments.unread_fields(c) for c in sweeps.trial_configs(config_path, trials)]
    for field, value in overrides.items():
        reasons = [_why_unread(field, fields) for fields in unread]
        if all(reasons):
            _fail(
                f"--config.{field}={value} would be ignored by every trial of --sweep="
                f"{_SWEEP.value}: {reasons[0]}"
            )


def _stop_if_a_peer_was_lost(error: Exception) -> None:
    """One line and exit 1 when the failure was a lost process, before JAX's shutdown
    barrier waits for the dead peer and aborts; returns when every process is alive."""
    import jax

    if not isinstance(error, jax.errors.JaxRuntimeError):
        return  # a lost peer surfaces as a failed collective in the runtime
    lost = peers.lost_processes(wait_seconds=min(10, _PEER_TIMEOUT.value))
    if not lost:
        return
    message = peers.describe_loss(lost, error)
    survivors = sorted(set(range(jax.process_count())) - set(lost))
    if jax.process_index() == survivors[0]:  # process 0 keeps the record while it lives
        runner.write_status(_WORKDIR.value, "failed", error=message, lost_processes=lost)
    sys.stdout.flush()
    print(f"\nerror: {message}", file=sys.stderr)  # after the progress bar's unfinished line
    sys.stderr.flush()
    os._exit(1)  # skips jax.distributed.shutdown, which would wait for the lost peer


def _run_sweep():
    config_path = config_flags.get_config_filename(flags.FLAGS["config"])
    trials = sweeps.expand(_SWEEP.value, sweeps.load_sweeps(config_path))
    overrides = config_overrides(sys.argv[1:])
    trials = sweeps.with_overrides(trials, overrides, _SWEEP.value)
    check_sweep_overrides_are_read(config_path, trials, overrides)
    if _EXECUTOR.value != "local":
        import submitit

        executor = submitit.AutoExecutor(
            folder=f"{_WORKDIR.value}/submitit", cluster=submit.CLUSTERS[_EXECUTOR.value]
        )
        executor.update_parameters(
            slurm_partition=_SLURM_PARTITION.value,
            timeout_min=_SLURM_TIMEOUT.value,
            gpus_per_node=_SLURM_GPUS.value,
        )
        jobs = runner.submit_sweep(
            trials,
            config_path=config_path,
            sweep_dir=_WORKDIR.value,
            executor=executor,
            command_line_overrides=overrides,
        )
        print(f"submitted {len(jobs)} jobs: {', '.join(job.job_id for job in jobs)}")
        return
    runner.run_sweep(
        trials,
        config_path=config_path,
        sweep_dir=_WORKDIR.value,
        parallel=_PARALLEL.value,
        dry_run=_DRY_RUN.value,
        retry_failed=_RETRY_FAILED.value,
        command_line_overrides=overrides,
    )


SWEEP_ONLY = ("parallel", "dry_run", "retry_failed")
SUBMIT_ONLY = ("slurm_partition", "slurm_timeout_min", "slurm_gpus_per_node")
RUN_SUBMIT_ONLY = ("slurm_nodes", "slurm_tasks_per_node")
USE_ONLY = ("step", "beam_size", "out", "format", "layer", "head", "rollout", "pixels")
USE_ONLY += ("max_new_tokens",)


def _using_a_run() -> bool:
    """Whether the flags ask to use a trained run rather than train or report."""
    asked = (_TRANSLATE.value, _GENERATE.value, _CLASSIFY.value, _INPUT_FILE.value)
    return bool(any(asked) or _EVALUATE.value is not None)


def check_flag_combinations() -> None:
    """One line, exit 2, for a flag the chosen mode would otherwise ignore."""
    given = lambda name: flags.FLAGS[name].present
    use_run = _using_a_run()
    if _EXECUTOR.value != "local" and (_REPORT.value or use_run):
        _fail(
            f"--executor={_EXECUTOR.value} submits training runs and sweeps, not --report "
            "or the use of a trained run; leave it out"
        )
    multi_host = ("coordinator_address", "num_processes", "process_id", "distributed")
    multi_host += ("peer_timeout_seconds",)
    if use_run:
        # A trained run is used as its workdir's config.json says.
        training = [f"--{n}" for n in ("config", "sweep", "report") if given(n)]
        if training:
            _fail(
                f"{training[0]} applies to training, sweeps or reports; a trained run is used "
                "with its own config (its workdir's config.json), so leave it out"
            )
    if _REPORT.value:
        for name in ("workdir", "config", "sweep") + multi_host:
            if given(name):
                _fail(
                    f"--{name} does not apply to --report, which reads the sweep directory "
                    "it names; leave it out"
                )
    for name in multi_host if use_run else ():
        if given(name):
            _fail(f"--{name} applies to training; using a trained run is one process, leave it out")
    for name in multi_host if _SWEEP.value else ():
        if given(name):
            _fail(
                f"--{name} applies to one run started in each of its processes; a sweep runs "
                "each trial as one process, so leave it out with --sweep"
            )
    joins = any(given(name) for name in multi_host[:-1]) or _EXECUTOR.value != "local"
    if given("peer_timeout_seconds") and not joins:
        _fail(
            "--peer_timeout_seconds applies to multi-host runs (--coordinator_address, "
            "--num_processes, --process_id, --distributed or --executor); leave it out"
        )
    for name in USE_ONLY:
        if given(name) and not use_run:
            _fail(
                f"--{name} applies to using a trained run (--translate, --generate, --classify, "
                "--input_file or --evaluate); leave it out"
            )
    for name in SWEEP_ONLY:
        if given(name) and not _SWEEP.value:
            _fail(f"--{name} applies to sweeps; give --sweep=NAME or leave it out")
    for name in SUBMIT_ONLY + RUN_SUBMIT_ONLY:
        if given(name) and _EXECUTOR.value == "local":
            _fail(
                f"--{name} applies to submitted jobs; give --executor=slurm (or "
                "submitit_local) or leave it out"
            )
    for name in RUN_SUBMIT_ONLY:
        if given(name) and _SWEEP.value:
            _fail(
                f"--{name} sizes one submitted run; a sweep submits each trial as a "
                "one-process job, so leave it out with --sweep"
            )


def _submit_run():
    """The run as one submitit job whose tasks are its processes (experiments/common/submit.py)."""
    given = submit.process_flags(sys.argv[1:])
    if given:
        _fail(
            f"{', '.join(given)} cannot be given with --executor={_EXECUTOR.value}: each task "
            "of the job sets its own coordinator, process count and index"
        )
    for flag in (_SLURM_NODES, _SLURM_TASKS):
        if flag.value < 1:
            _fail(f"--{flag.name}={flag.value}; valid: 1 or more")
    if _EXECUTOR.value == "submitit_local" and _SLURM_NODES.value != 1:
        _fail(f"--slurm_nodes={_SLURM_NODES.value} with --executor=submitit_local; valid: 1")
    job = submit.submit_run(
        sys.argv[1:],
        executor_name=_EXECUTOR.value,
        workdir=_WORKDIR.value,
        nodes=_SLURM_NODES.value,
        tasks_per_node=_SLURM_TASKS.value,
        partition=_SLURM_PARTITION.value,
        timeout_min=_SLURM_TIMEOUT.value,
        gpus_per_node=_SLURM_GPUS.value,
    )
    tasks = _SLURM_NODES.value * _SLURM_TASKS.value
    print(f"submitted job {job.job_id}: {tasks} processes, logs in {_WORKDIR.value}/submitit")
    if _EXECUTOR.value == "submitit_local":
        try:
            job.results()
        except Exception as error:  # submitit re-raises a task's failure with its log
            _fail(f"job {job.job_id} failed: {_one_line(error)}", code=1)
        print(f"job {job.job_id} done")


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not any(arg.startswith(("--verbosity", "-v")) for arg in sys.argv[1:]):
        logging.set_verbosity(logging.WARNING)  # checkpointing logs every file at INFO
    check_flag_combinations()
    try:
        if _REPORT.value:
            check_report_dir(_REPORT.value)
            experiment = report.sweep_experiment(_REPORT.value)
            paths = report.write_report(
                _REPORT.value, sections=experiments.report_sections(experiment)
            )
            with open(paths[0]) as f:
                print(f.read().split("\n## Curves")[0])
            print("Report: " + ", ".join(paths))
            return
        if _using_a_run():
            from experiments import use_run

            use_run.main(
                _WORKDIR.value,
                translate=_TRANSLATE.value,
                generate=_GENERATE.value,
                classify=_CLASSIFY.value,
                input_file=_INPUT_FILE.value,
                step=_STEP.value,
                beam_size=_BEAM_SIZE.value,
                out=_OUT.value,
                output_format=_FORMAT.value,
                layer=_LAYER.value,
                head=_HEAD.value,
                rollout=_ROLLOUT.value,
                pixels=_PIXELS.value,
                max_new_tokens=_MAX_NEW_TOKENS.value,
                evaluate=_EVALUATE.value,
            )
            return
        if not _CONFIG.present or not _WORKDIR.value:
            _fail("--config and --workdir are required (or --report=SWEEP_DIR)")
        check_workdir(_WORKDIR.value)
        if _SWEEP.value:
            _run_sweep()
            return
        if not _SWEEP_TRIAL.value:
            check_overrides_are_read(_CONFIG.value, config_overrides(sys.argv[1:]))
        if _EXECUTOR.value != "local":
            _submit_run()
            return
        multi_host = bool(_DISTRIBUTED.value or _COORDINATOR.value or _NUM_PROCESSES.value)
        if multi_host:
            peers.initialize(
                _COORDINATOR.value,
                _NUM_PROCESSES.value,
                _PROCESS_ID.value,
                peer_timeout_seconds=_PEER_TIMEOUT.value,
            )
        try:
            experiments.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
        except Exception as error:
            if multi_host:
                _stop_if_a_peer_was_lost(error)
            raise
    except (ConfigError, CheckpointError) as error:
        _fail(str(error))
    except ValueError as error:
        if _SWEEP.value or _REPORT.value:  # a bad sweep spec or sweep directory
            _fail(str(error))
        raise
    except Interrupted as error:
        print(str(error), file=sys.stderr)
    except Diverged as error:
        _fail(str(error), code=3)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
