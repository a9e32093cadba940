import pytest

from experiments import language_model


@pytest.fixture(scope="session")
def config_module():
    return language_model


@pytest.fixture
def tiny_config(config_module):
    return config_module.get_config("tiny")
