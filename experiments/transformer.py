"""Alias of experiments/configs/translation_transformer.py, so commands written with this path keep working."""

from experiments.configs.translation_transformer import get_config, get_sweeps  # noqa: F401
