"""Alias of experiments/configs/translation.py, so commands written with this path keep working."""

from experiments.configs.translation import get_config, get_sweeps  # noqa: F401
