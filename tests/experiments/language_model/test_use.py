"""Using a trained language model run: --generate continues prompts and shows attention."""

import json
import os

import numpy as np
import pytest

from experiments import use_run
from experiments.common.trained import UseError
from experiments.configs import language_model
from experiments.language_model import train

# Each test here trains a run first; --generate loads the run as
# --translate does (experiments/common/trained.py, tested in make test): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = language_model.get_config("tiny")
    config.eval.every_steps = 100  # only the final evaluation
    workdir = tmp_path_factory.mktemp("lm") / "run"
    train.train_and_evaluate(config, str(workdir))
    return workdir, config


def files(directory):
    return {
        os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    }


def test_continuations_equal_the_runs_own_and_rows_are_attention(run, capsys):
    workdir, config = run
    results = use_run.main(str(workdir), generate=list(config.eval.prompts))
    samples = json.loads((workdir / "eval.json").read_text())["samples"]
    assert [(r.prompt, r.continuation) for r in results] == [
        (s["prompt"], s["continuation"]) for s in samples
    ]
    text = capsys.readouterr().out
    assert text.startswith(f"{results[0].prompt} -> {results[0].continuation}")
    for result in results:
        assert len(result.weights) == config.model.num_layers
        for weights in result.weights:
            assert weights.shape == (len(result.rows), len(result.columns))
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
            # causal: the word at row i was produced looking at the prefix only
            prompt_length = len(result.columns) - max(len(result.rows) - 1, 0)
            for i, row in enumerate(weights):
                assert np.all(row[prompt_length + i :] < 1e-6)
        assert result.columns[0] == "<s>"
    # Prompts are continued and read in one padded batch: alone, a prompt gets the same.
    alone = use_run.main(str(workdir), generate=[config.eval.prompts[2]])[0]
    assert alone.rows == results[2].rows and alone.columns == results[2].columns
    for got, want in zip(alone.weights, results[2].weights):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_json_lines_unknown_words_and_bad_input(run, tmp_path, capsys):
    workdir, _ = run
    before = files(workdir)
    use_run.main(str(workdir), generate=["le petit zorglub", "je ne"], output_format="jsonl")
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["prompt"] for r in records] == ["le petit zorglub", "je ne"]
    assert all(len(r["attended"]) == len(r["tokens"]) for r in records)
    assert "prompt 1: 1 word not in the run's vocabulary: 'zorglub', shown as <unk>" in (
        captured.err
    )
    use_run.main(str(workdir), generate=["je ne"], out=str(tmp_path / "pictures"))
    assert (tmp_path / "pictures" / "je_ne.layer1.png").is_file()
    for options, message in [
        (dict(generate=[""]), "prompt 1 is empty"),
        (dict(generate=["je"], layer="3"), "--layer=3: the model has 1; valid: 1..1 or all"),
        (dict(translate=["i love you"]), "--translate needs a translation run"),
        (dict(classify=["x.png"]), "--classify needs a vision run"),
        (dict(generate=["je"], step=99), "--step=99: no such checkpoint"),
    ]:
        with pytest.raises(UseError, match=message):
            use_run.main(str(workdir), **options)
    assert files(workdir) == before
