"""Alias of experiments/configs/vision.py, so commands written with this path keep working."""

from experiments.configs.vision import get_config, get_sweeps  # noqa: F401
