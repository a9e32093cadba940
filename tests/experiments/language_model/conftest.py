"""The language model's config file, loaded by path: experiments/language_model.py
shares its import name with the experiments/language_model package."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIG_FILE = os.path.join(ROOT, "experiments", "language_model.py")


@pytest.fixture(scope="session")
def config_module():
    spec = importlib.util.spec_from_file_location("language_model_config", CONFIG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_config(config_module):
    return config_module.get_config("tiny")
