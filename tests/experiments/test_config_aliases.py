"""The old config paths are aliases of experiments/configs/: same configs, same sweeps."""

import importlib.util
import pathlib

import pytest

from experiments.common import sweeps

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALIASES = [
    ("translate.py", "configs/translation.py", "additive,tiny"),
    ("transformer.py", "configs/translation_transformer.py", "tiny"),
    ("classify.py", "configs/vision.py", "conv_stem_attention,tiny"),
]


def _load(path):
    """The config file at `path`, loaded by path as launch.py does."""
    spec = importlib.util.spec_from_file_location("config_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("alias, target, arg", ALIASES)
def test_an_alias_gives_the_same_config_and_sweeps(alias, target, arg):
    alias, target = ROOT / "experiments" / alias, ROOT / "experiments" / target
    assert _load(alias).get_config(arg).to_dict() == _load(target).get_config(arg).to_dict()
    assert sweeps.load_sweeps(str(alias)) == sweeps.load_sweeps(str(target))
