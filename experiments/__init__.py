"""Experiments: one config file per setup (experiments/*.py) and their code.

`train_and_evaluate(config, workdir)` runs the experiment that
`config.experiment` names and records how it ended in `<workdir>/status.json`.
"""

import importlib
import os
import traceback

import jax

from experiments.common.errors import ConfigError, Diverged, Interrupted
from experiments.common.runner import write_status

# name -> module holding that experiment's train_and_evaluate(config, workdir)
EXPERIMENTS = {
    "language_model": "experiments.language_model.train",
    "long_range": "experiments.long_range.train",
    "translation": "experiments.translation.train",
    "vision": "experiments.vision.train",
}

# name -> module whose report_sections(trials, sweep_dir, figures_dir) adds the
# experiment's own tables to a sweep's report
REPORTS = {"long_range": "experiments.long_range.report"}


def report_sections(name: str | None):
    """The experiment's report_sections function, or None where it has none."""
    if name not in REPORTS:
        return None
    return importlib.import_module(REPORTS[name]).report_sections


def unread_fields(config) -> dict[str, str]:
    """Fields (or sections) `config` leaves unread -> why, from the experiment's own
    `unread_fields`: a value given there on the command line would be ignored."""
    name = config.get("experiment")
    if name not in EXPERIMENTS:
        return {}
    module = importlib.import_module(EXPERIMENTS[name])
    return module.unread_fields(config) if hasattr(module, "unread_fields") else {}


def train_and_evaluate(config, workdir: str):
    """Runs `config.experiment` in `workdir` and returns its final metrics."""
    name = config.get("experiment")
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(sorted(EXPERIMENTS))}")
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() != 0:  # in multi-host runs process 0 keeps the record
        return importlib.import_module(EXPERIMENTS[name]).train_and_evaluate(config, workdir)
    write_status(workdir, "running", pid=os.getpid())
    try:
        result = importlib.import_module(EXPERIMENTS[name]).train_and_evaluate(config, workdir)
    except Interrupted as error:
        write_status(workdir, "interrupted", step=error.step)
        raise
    except Diverged as error:
        write_status(workdir, "diverged", step=error.step, error=str(error))
        raise
    except BaseException as error:
        write_status(
            workdir,
            "failed",
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc()[-4000:],
        )
        raise
    write_status(workdir, "done")
    return result
