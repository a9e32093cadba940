"""Experiments: one config file per setup (experiments/*.py) and their code.

`train_and_evaluate(config, workdir)` runs the experiment that
`config.experiment` names.
"""

import importlib

# name -> module holding that experiment's train_and_evaluate(config, workdir)
EXPERIMENTS = {
    "translation": "experiments.translation.train",
}


def train_and_evaluate(config, workdir: str):
    """Runs `config.experiment` in `workdir` and returns its final metrics."""
    name = config.get("experiment")
    if name not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {name!r}; valid: {', '.join(sorted(EXPERIMENTS))}.")
    return importlib.import_module(EXPERIMENTS[name]).train_and_evaluate(config, workdir)
