"""A tiny Transformer run resumed with other layer counts."""

import os
import subprocess
import sys

import pytest

from experiments import translate
from experiments.translation import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def tiny_transformer(tmp_path, **transformer):
    config = translate.get_config("transformer,tiny")
    config.data.data_dir = str(tmp_path / "data")
    # Decoding an untrained model runs to its limit: keep that short.
    config.data.max_length = 10
    config.model.transformer.update(transformer)
    config.train.steps = 2
    config.eval.splits = ("test",)
    return config


def test_resuming_with_other_layer_counts_is_one_line_before_compiling(tmp_path):
    config = tiny_transformer(tmp_path, num_encoder_layers=1, num_decoder_layers=2)
    config.train.steps = 1
    config.eval.splits, config.eval.attention_sentences = (), ()
    workdir = tmp_path / "run"
    train.train_and_evaluate(config, str(workdir))
    checkpoint = workdir / "checkpoints" / "1"

    config.train.steps = 2
    config.model.transformer.num_decoder_layers = 3
    with pytest.raises(train.ConfigError) as raised:
        train.train_and_evaluate(config, str(workdir))
    message = str(raised.value)
    assert "\n" not in message
    assert (
        f"model.transformer.num_decoder_layers=3 asks for more decoder layers than checkpoint "
        f"{checkpoint} holds (2)" in message
    )
    assert "encoder" not in message
    assert "--config.model.transformer.num_decoder_layers=2" in message
    assert os.listdir(workdir / "checkpoints") == ["1"]

    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "launch.py"),
            f"--config={ROOT}/experiments/translate.py:transformer,tiny",
            f"--workdir={workdir}",
            f"--config.data.data_dir={config.data.data_dir}",
            "--config.data.max_length=10",
            "--config.model.transformer.num_encoder_layers=1",
            "--config.model.transformer.num_decoder_layers=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    # Loading the corpus logs warnings of its own before the error.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert (
        [line for line in lines if "error" in line.lower()]
        == lines[-1:]
        == [
            f"error: model.transformer.num_decoder_layers=1 asks for fewer decoder layers than "
            f"checkpoint {checkpoint} holds (2); resume with "
            f"--config.model.transformer.num_decoder_layers=2 or use another --workdir"
        ]
    )
