import pytest

from experiments.configs import language_model


@pytest.fixture
def tiny_config():
    return language_model.get_config("tiny")
