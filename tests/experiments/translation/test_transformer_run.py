"""A tiny Transformer run: its attention pictures per layer and head, and
resuming it with other layer counts."""

import os
import subprocess
import sys

import matplotlib.image
import pytest

from experiments.common.writers import read_metrics
from experiments.configs import translation
from experiments.models.rnn import Seq2Seq
from experiments.translation import evaluation, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENCODER_LAYERS, DECODER_LAYERS, HEADS = 2, 3, 4


def tiny_transformer(tmp_path, **transformer):
    config = translation.get_config("transformer,tiny")
    config.data.data_dir = str(tmp_path / "data")
    # Decoding an untrained model runs to its limit: keep that short.
    config.data.max_length = 10
    config.model.transformer.update(transformer)
    config.train.steps = 2
    config.eval.splits = ("test",)
    return config


def grid_pixels(panel_rows, panel_cols, rows, cols):
    """attn.viz.attention_grid's size at 100 dpi: panels of 0.3 inch cells plus
    0.5 inch, and margins of 2 inches across and 1.5 down."""
    width = panel_cols * (0.3 * cols + 0.5) + 2.0
    height = panel_rows * (0.3 * rows + 0.5) + 1.5
    return round(height * 100), round(width * 100)


def read_png(path):
    image = matplotlib.image.imread(path)[..., :3]
    assert image.std() > 0.1, f"{path} is blank"
    assert (image.min(-1) < 0.9).mean() > 0.1, f"{path} is mostly white"
    return image


# About 25 s; make test checks the maps and the rollout on the model
# (tests/experiments/models/test_transformer.py::test_attention_maps_and_rollout).
@pytest.mark.slow
def test_grids_of_every_layer_and_head_at_each_eval_and_the_rollout(tmp_path):
    config = tiny_transformer(
        tmp_path,
        num_encoder_layers=ENCODER_LAYERS,
        num_decoder_layers=DECODER_LAYERS,
        num_heads=HEADS,
    )
    config.eval.every_steps = 1
    config.eval.attention_sentences = ("i love you",)
    config.eval.attention_rollout = True
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    # Recorded from this run (2 steps, 2 + 3 layers of 4 heads): a bug in the
    # data, the model, the loss or the metrics moves them. Losses are held to
    # float noise; counted metrics to about one token or two alignment links.
    logged = [m["train/loss"] for m in read_metrics(tmp_path / "run") if "train/loss" in m]
    assert logged == pytest.approx([7.024395], rel=1e-4)
    test = final["splits"]["test"]
    assert test["loss"] == pytest.approx(7.225360, rel=1e-4)
    assert test["token_accuracy"] == pytest.approx(0.007634, abs=0.01)
    assert test["bleu"] == pytest.approx(0.2228, abs=0.05)
    assert test["aer"] == pytest.approx(0.8, abs=0.02)

    source_words = 4  # i love you </s>
    for folder in ("step_000001", "final"):
        pictures = tmp_path / "run" / "attention" / folder
        assert (pictures / "i_love_you.png").exists()
        encoder = read_png(pictures / "layers" / "i_love_you.encoder_self.png")
        assert encoder.shape[:2] == grid_pixels(ENCODER_LAYERS, HEADS, source_words, source_words)
        # The translation's length is the model's choice: read it off the
        # square decoder self-attention grid, then check the cross-attention.
        decoder = read_png(pictures / "layers" / "i_love_you.decoder_self.png")
        target_words = round((decoder.shape[1] / 100 - 2.0) / HEADS / 0.3 - 0.5 / 0.3)
        assert 1 <= target_words <= config.data.max_length + 1
        assert decoder.shape[:2] == grid_pixels(DECODER_LAYERS, HEADS, target_words, target_words)
        cross = read_png(pictures / "layers" / "i_love_you.cross.png")
        assert cross.shape[:2] == grid_pixels(DECODER_LAYERS, HEADS, target_words, source_words)
        read_png(pictures / "rollout" / "i_love_you.png")


@pytest.mark.slow  # trains a run, then resumes it (about 17 s); CI runs the slow tier
def test_resuming_with_other_layer_counts_is_one_line_before_compiling(tmp_path):
    config = tiny_transformer(tmp_path, num_encoder_layers=1, num_decoder_layers=2)
    config.train.steps = 1
    config.eval.splits, config.eval.attention_sentence_count = (), 0
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
            f"--config={ROOT}/experiments/configs/translation.py:transformer,tiny",
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


def test_layer_grids_and_rollout_need_a_transformer(tmp_path):
    rnn = Seq2Seq(source_vocab_size=8, target_vocab_size=8)
    with pytest.raises(ValueError, match="need a Transformer"):
        evaluation.attention_maps(
            rnn, {}, ["i"], None, None, max_length=4, directory=str(tmp_path), layers=True
        )
