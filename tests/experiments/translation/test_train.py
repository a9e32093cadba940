"""launch.py end to end on a tiny generated corpus, resume, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from experiments.common.writers import read_metrics
from experiments.configs import translation
from experiments.translation import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def tiny_config(tmp_path, variant="additive"):
    config = translation.get_config(f"{variant},tiny")
    config.data.data_dir = str(tmp_path / "data")
    return config


def launch(*args, cwd):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # a subprocess run (about 25 s); make test trains in-process in test_use.py
def test_launch_main_writes_the_whole_workdir(tmp_path):
    workdir = tmp_path / "run"
    result = launch(
        f"--config={ROOT}/experiments/configs/translation.py:additive,tiny",
        f"--workdir={workdir}",
        f"--config.data.data_dir={tmp_path / 'data'}",
        "--config.eval.beam_size=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "config.json",
        "metrics.jsonl",
        "eval.json",
        "tokenizers/source",
        "tokenizers/target",
        "checkpoints/4",
        "attention/final/i_love_you.png",
        "attention/step_000002/i_love_you.png",
    ):
        assert (workdir / name).exists(), name
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["attention"] == "additive" and config["eval"]["beam_size"] == 2
    final = json.loads((workdir / "eval.json").read_text())
    assert final["steps"] == 4 and final["parameters"] > 0
    for split in ("validation", "test", "test_long"):
        metrics = final["splits"][split]
        assert metrics["examples"] == config["data"][f"{split}_size"]
        assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["exact_match"] <= 1
        assert 0 <= metrics["aer"] <= 1 and metrics["aer_examples"] == metrics["examples"]
        assert sum(b["count"] for b in metrics["by_length"]) == metrics["examples"]
    logged = read_metrics(workdir)
    assert [m["step"] for m in logged if "train/loss" in m] == [2, 4]
    assert any("validation/bleu" in m for m in logged)
    # Recorded from this run (4 steps, additive, beam 2): a bug in the data,
    # the model, the loss or the metrics moves them. Losses are held to float
    # noise; counted metrics to about one token or two alignment links.
    train_losses = [m["train/loss"] for m in logged if "train/loss" in m]
    assert train_losses == pytest.approx([6.063357, 6.059496], rel=1e-4)
    for split, (loss, accuracy, bleu, aer) in RECORDED.items():
        metrics = final["splits"][split]
        assert metrics["loss"] == pytest.approx(loss, rel=1e-4), split
        assert metrics["token_accuracy"] == pytest.approx(accuracy, abs=0.01), split
        assert metrics["bleu"] == pytest.approx(bleu, abs=0.05), split
        assert metrics["aer"] == pytest.approx(aer, abs=0.02), split


# split: (loss, token accuracy, BLEU, AER) of test_launch_main_writes_the_whole_workdir.
RECORDED = {
    "validation": (6.070337, 0.007634, 0.06265, 0.79646),
    "test": (6.062322, 0.030534, 0.06869, 0.81739),
    "test_long": (6.072148, 0.009009, 0.12091, 0.88785),
}


@pytest.mark.slow  # test_resume.py resumes a killed run; this one resumes in-process
def test_restart_resumes_from_the_checkpoint(tmp_path):
    config = tiny_config(tmp_path, "dot")
    config.eval.every_steps = 100
    train.train_and_evaluate(config, str(tmp_path / "run"))
    config.train.steps = 6
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["steps"] == 6
    steps = [m["step"] for m in read_metrics(tmp_path / "run") if "train/loss" in m]
    assert steps == [2, 4, 6]  # steps 1-4 were not run again
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["2", "4", "6"]


# About 10 s; make test decodes the attention-free RNN in tests/experiments/models/test_rnn.py.
@pytest.mark.slow
def test_none_variant_has_no_attention_outputs(tmp_path):
    config = tiny_config(tmp_path, "none")
    config.train.steps = 2
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert "aer" not in final["splits"]["test"]
    assert not (tmp_path / "run" / "attention").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"model.attention": "bahdanau"}, "unknown model.attention 'bahdanau'"),
        ({"data.name": "europarl"}, "unknown dataset 'europarl'"),
        ({"data.tokenizer": "bpe"}, "unknown tokenizer 'bpe'"),
        ({"data.source_vocab_size": 3}, "source_vocab_size=3 leaves no room"),
        ({"train.steps": 0}, "train.steps must be positive, got 0"),
        ({"train.steps": -5}, "train.steps must be positive, got -5"),
        ({"data.name": "tsv", "data.path": "/nonexistent/fra.txt"}, "corpus file not found"),
        ({"model.source_embeddings": "/nonexistent/glove.txt"}, "embeddings file not found"),
        ({"eval.splits": ("test", "dev")}, r"eval.splits holds 'dev'; valid: validation, test, "),
        ({"eval.length_buckets": (1, 11, 6)}, r"eval.length_buckets=\(1, 11, 6\); valid: the"),
        ({"eval.length_buckets": (0, 5)}, r"eval.length_buckets=\(0, 5\); valid"),
        ({"eval.attention_sentences": ("i love you", " ")}, "holds an empty sentence"),
        (
            {"model.attention": "multihead", "model.implementation": "fast"},
            r"model.attention='multihead': Unknown attention implementation 'fast'; valid on cpu",
        ),
        (
            {"model.attention": "multihead", "model.num_kv_heads": 2},
            r"model.num_kv_heads=2: the RNN's 'multihead' unit has one key/value head per query "
            r"head; valid: 0",
        ),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, override, message):
    config = tiny_config(tmp_path)
    for field, value in override.items():
        section, name = field.split(".")
        config[section][name] = value
    with pytest.raises(train.ConfigError, match=message):
        train.train_and_evaluate(config, str(tmp_path / "run"))


def test_empty_corpus_is_a_clear_error(tmp_path):
    corpus = tmp_path / "empty.tsv"
    corpus.write_text("only one column\n\n")
    config = tiny_config(tmp_path)
    config.data.name, config.data.path = "tsv", str(corpus)
    with pytest.raises(train.ConfigError, match="empty.tsv"):
        train.train_and_evaluate(config, str(tmp_path / "run"))


def test_launch_exits_2_with_one_line(tmp_path):
    result = launch(
        f"--config={ROOT}/experiments/configs/translation.py:bahdanau,tiny",
        f"--workdir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: unknown model.attention 'bahdanau'; valid: "
        "additive, cosine, dot, general, scaled_dot, multihead, none"
    ]


@pytest.mark.slow  # a third translation run; make test trains and evaluates it in the other tests here
def test_wall_clock_budget_stops_training_and_still_evaluates(tmp_path):
    config = tiny_config(tmp_path, "dot")
    config.train.steps, config.train.max_seconds = 1000, 1e-9
    config.eval.splits, config.eval.attention_sentence_count = ("test",), 0
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["steps"] == 1
    assert final["splits"]["test"]["examples"] == config.data.test_size
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["1"]


# About 25 s; make test runs the Transformer through train_and_evaluate in
# test_transformer_run.py and trains and decodes it in test_attention_config.py.
@pytest.mark.slow
def test_transformer_trains_decodes_and_draws_through_the_same_loop(tmp_path):
    config = translation.get_config("transformer,tiny")
    config.data.data_dir = str(tmp_path / "data")
    config.model.attention = "additive"
    config.train.steps = 2
    config.eval.splits = ("test",)
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["attention"] == "additive" and final["steps"] == 2
    assert 0 <= final["splits"]["test"]["aer"] <= 1
    assert (tmp_path / "run" / "attention" / "final" / "i_love_you.png").exists()
    config.model.transformer.num_heads = 3
    with pytest.raises(train.ConfigError, match="d_model=16 is not divisible by num_heads=3"):
        train.train_and_evaluate(config, str(tmp_path / "run3"))
