"""Trains and evaluates an experiment.

    python launch.py --config=experiments/translate.py:additive --workdir=runs/additive \
        --config.train.steps=2000

Any config field can be overridden with --config.FIELD=VALUE. Bad input (an
unknown variant, dataset or tokenizer, a missing file, impossible sizes) is
reported in one line with exit code 2, before anything compiles.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

import experiments
from experiments.common.checkpoints import CheckpointError
from experiments.translation.train import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Experiment config file, e.g. experiments/translate.py:additive.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.mark_flags_as_required(["config", "workdir"])


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


def parse_flags(argv):
    """absl's parser, with flag and config mistakes reported in one line (exit code 2)."""
    try:
        remaining = flags.FLAGS(argv)
        _CONFIG.value.get("experiment")  # config files load lazily; fail here, not later
        return remaining
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError, OSError) as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not any(arg.startswith(("--verbosity", "-v")) for arg in sys.argv[1:]):
        logging.set_verbosity(logging.WARNING)  # checkpointing logs every file at INFO
    try:
        experiments.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
