"""Using a trained translation run: launch.py --workdir=RUN --translate=... end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image as mpimg

from experiments import translate, use_run
from experiments.common.trained import UseError
from experiments.text.toy_corpus import SHOWCASE_SENTENCES
from experiments.translation import input_pipeline, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def train_tiny(tmp_path_factory, variant, **overrides):
    config = translate.get_config(f"{variant},tiny")
    config.data.data_dir = str(tmp_path_factory.getbasetemp() / "data")
    config.eval.every_steps = 100  # only the final evaluation
    config.eval.splits = ("test",)
    config.update_from_flattened_dict(overrides)
    workdir = tmp_path_factory.mktemp(variant) / "run"
    train.train_and_evaluate(config, str(workdir))
    return workdir, config


@pytest.fixture(scope="module")
def additive(tmp_path_factory):
    return train_tiny(tmp_path_factory, "additive")


def snapshot(directory):
    """Every file under `directory` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            found[path] = (os.path.getsize(path), os.path.getmtime(path))
    return found


def use(workdir, *sentences, **options):
    return use_run.main(str(workdir), translate=list(sentences), **options)


def matrix_lines(text):
    """The printed matrix: (column labels, [(row label, weights, marked column)])."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[1].split()
    rows = []
    for line in lines[2:]:
        label, *cells = line.split()
        rows.append((label, [float(c.rstrip("*")) for c in cells], cells))
    return header, rows


def test_matrix_is_target_words_by_source_words_and_rows_sum_to_one(additive, capsys):
    workdir, _ = additive
    (result,) = use(workdir, "i love you")
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"i love you -> {result.translation}"
    header, rows = matrix_lines(text)
    # one column per source word ("love" may be <unk> in a tiny vocabulary), then the end token
    assert header == result.source_tokens and len(header) == 4 and header[-1] == "</s>"
    words = result.translation.split()
    labels = [label for label, _, _ in rows]
    assert labels[: len(words)] == words
    # one row per target word, plus the end token when decoding stopped
    assert labels == result.target_tokens and len(labels) in (len(words), len(words) + 1)
    for _, weights, cells in rows:
        assert len(weights) == len(header)
        assert sum(weights) == pytest.approx(1.0, abs=0.03)  # two decimals each
        marked = [i for i, cell in enumerate(cells) if cell.endswith("*")]
        assert marked == [int(np.argmax(weights))] or len(marked) == 1
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)


def test_output_equals_the_runs_own_eval_decoding(additive, tmp_path):
    workdir, config = additive
    # The test split's decodings the run wrote into eval.json.
    samples = json.loads((workdir / "eval.json").read_text())["splits"]["test"]["samples"]
    pairs = input_pipeline.load_splits(config.data)[0]["test"]
    for sample in samples:
        sources = [p.source for p in pairs if p.target == sample["reference"]]
        translations = [r.translation for r in use(workdir, *sources)]
        assert sample["hypothesis"] in translations
    # The heatmaps, one per sentence, outside the workdir.
    use(workdir, *SHOWCASE_SENTENCES[:2], out=str(tmp_path / "pictures"))
    assert sorted(os.listdir(tmp_path / "pictures")) == [
        "i_love_you.png",
        "the_red_car_is_small.png",
    ]


def test_json_lines_and_tsv_for_several_sentences(additive, tmp_path, capsys):
    workdir, _ = additive
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("i love you\nthe red car is small\n")
    use_run.main(str(workdir), input_file=str(sentences), output_format="jsonl", beam_size=2)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sentence"] for r in records] == ["i love you", "the red car is small"]
    for record in records:
        assert record["decoding"] == "beam 2"
        weights = np.asarray(record["weights"])
        assert weights.shape == (len(record["target_tokens"]), len(record["source_tokens"]))
        assert [a["target"] for a in record["alignment"]] == record["target_tokens"]
        for link, row in zip(record["alignment"], weights):
            assert link["source"] == record["source_tokens"][int(np.argmax(row))]
    use_run.main(str(workdir), input_file=str(sentences), output_format="tsv")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["sentence", "translation", "alignment", "weights"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["i love you", "the red car is small"]


def test_unknown_words_and_long_sentences_are_warned_about(additive, capsys):
    workdir, config = additive
    (result,) = use(workdir, "i zorglub you")
    captured = capsys.readouterr()
    assert "<unk>" in result.source_tokens and "<unk>" in captured.out.splitlines()[2]
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: sentence 1: 1 word not in the run's source vocabulary: 'zorglub', shown as <unk>"
    ]
    long = " ".join(["i"] * (config.data.max_length + 5))
    (result,) = use(workdir, long)
    assert len(result.source_tokens) == config.data.max_length + 1
    assert f"more than the model's data.max_length={config.data.max_length}" in (
        capsys.readouterr().err
    )


def test_bad_input_is_one_line_naming_the_value(additive, tmp_path):
    workdir, _ = additive
    before = snapshot(workdir)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "config.json").write_text((workdir / "config.json").read_text())
    vision = tmp_path / "vision"
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"experiment": "vision"}))
    cases = [
        (dict(workdir=tmp_path / "missing"), "does not exist"),
        (dict(workdir=tmp_path), "has no config.json"),
        (dict(workdir=empty), "has no checkpoint"),
        (dict(step=3), "--step=3: no such checkpoint"),
        (dict(workdir=vision), "--translate needs a translation run"),
        (dict(sentence="  "), "sentence 1 is empty"),
        (dict(layer="1"), "--layer/--head pick a Transformer's layer"),
        (dict(out=str(workdir / "pictures")), "lies inside --workdir"),
    ]
    for options, message in cases:
        options = {"workdir": workdir, "sentence": "i love you", **options}
        with pytest.raises(UseError) as raised:
            use(options.pop("workdir"), options.pop("sentence"), **options)
        assert message in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(UseError, match="valid: 2, 4$"):
        use(workdir, "i love you", step=3)
    assert snapshot(workdir) == before


@pytest.mark.slow  # a subprocess; the in-process tests here cover the same paths
def test_launch_translates_and_rejects_bad_input_with_exit_code_2(additive, tmp_path):
    workdir, _ = additive
    before = snapshot(workdir)

    def launch(*args):
        return subprocess.run(
            [sys.executable, os.path.join(ROOT, "launch.py"), f"--workdir={workdir}", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    result = launch("--translate=i love you", f"--out={tmp_path / 'heat.png'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("i love you -> ")
    assert (tmp_path / "heat.png").is_file()
    # Bad input through launch.py for the exit code and the single line; the other
    # messages are checked in-process above.
    for args, message in [
        (["--translate="], "error: sentence 1 is empty (''); give at least one word to translate"),
        (["--generate=le petit chat"], "error: --generate needs a language_model run, but"),
    ]:
        result = launch(*args)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(message), result.stderr[-2000:]
    assert snapshot(workdir) == before


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    # One sentence to draw: every layer and head of it is what the test compares.
    return train_tiny(
        tmp_path_factory,
        "transformer",
        **{"eval.attention_rollout": True, "eval.attention_sentences": ("i love you",)},
    )


@pytest.mark.slow  # test_transformer_run.py draws the same grids inside the run
def test_transformer_layers_heads_grid_and_rollout(transformer, tmp_path, capsys):
    workdir, config = transformer
    (result,) = use(workdir, "i love you", layer="1", head=2, rollout=True)
    text = capsys.readouterr().out
    assert "cross-attention, layer 1, head 2" in text and "attention rollout" in text
    sentences = list(config.eval.attention_sentences)  # one batch, as the run drew them
    use(workdir, *sentences, layer="all", rollout=True, out=str(tmp_path / "pictures"))
    text = capsys.readouterr().out
    heads = config.model.transformer.num_heads
    assert all(f"cross-attention, layer 1, head {h}" in text for h in range(1, heads + 1))
    pictures = tmp_path / "pictures"
    for name in ("i_love_you.png", "layers/i_love_you.cross.png", "rollout/i_love_you.png"):
        assert (pictures / name).is_file(), name
    for name in ("layers/i_love_you.cross.png", "rollout/i_love_you.png"):  # as the run drew them
        np.testing.assert_array_equal(
            mpimg.imread(pictures / name), mpimg.imread(workdir / "attention" / "final" / name)
        )
    with pytest.raises(UseError, match=r"--layer=5: the decoder has 1; valid: 1..1 or all"):
        use(workdir, "i love you", layer="5")
    with pytest.raises(UseError, match=rf"--head=9: each layer has {heads}"):
        use(workdir, "i love you", layer="1", head=9)


@pytest.mark.slow
def test_a_run_without_attention_prints_the_translation_only(tmp_path_factory, capsys):
    workdir, _ = train_tiny(tmp_path_factory, "none")
    (result,) = use(workdir, "i love you")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"i love you -> {result.translation}",
        "(attention none: this run has no attention to show)",
    ]


@pytest.mark.slow  # trains its own run
@pytest.mark.parametrize("corpus", ["tsv", "ding"])
def test_a_run_on_a_users_corpus_translates_with_its_own_vocabulary(
    corpus, tmp_path_factory, capsys
):
    """A user's TSV file (Tatoeba's layout: source, target, attribution) or a file in ding's
    dictionary format (sentences as sub-entries after a headword), through the command."""
    path = tmp_path_factory.mktemp("corpus") / "pairs.txt"
    pairs = [("haus", "maison"), ("katze", "chat"), ("hund", "chien"), ("rot", "rouge")]
    rng = np.random.default_rng(0)
    lines = []
    for i in range(80):
        picked = rng.choice(len(pairs), 3)
        source = " ".join(pairs[j][0] for j in picked)
        target = " ".join(pairs[j][1] for j in picked)
        if corpus == "tsv":
            lines.append(f"{source}\t{target}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}\n")
        else:  # ding: the headword, then the example sentence; each side a full sentence
            lines.append(f"Wort {{n}} | {source.capitalize()}. :: word | {target.capitalize()}.\n")
    path.write_text("".join(lines), encoding="utf-8")
    workdir, _ = train_tiny(
        tmp_path_factory,
        "additive",
        **{
            "data.name": corpus,
            "data.path": str(path),
            "data.validation_size": 5,
            "data.test_size": 5,
            "eval.attention_sentences": ("katze hund rot",),
        },
    )
    (result,) = use(workdir, "katze hund zebra")
    captured = capsys.readouterr()
    # The run's own vocabulary: the corpus's words are known, the new one is <unk>.
    assert result.source_tokens == ["katze", "hund", "<unk>", "</s>"]
    assert "warning: sentence 1: 1 word not in the run's source vocabulary: 'zebra'" in (
        captured.err
    )
    known = {"maison", "chat", "chien", "rouge", ".", "<unk>"}
    assert set(result.translation.split()) <= known, result.translation
    header, rows = matrix_lines(captured.out)
    assert header == result.source_tokens and len(rows) == len(result.target_tokens)
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)


def test_evaluate_scores_a_split_again_as_training_did_and_changes_nothing(
    additive, tmp_path, capsys
):
    workdir, _ = additive
    before = snapshot(workdir)
    with open(workdir / "eval.json") as f:
        trained = json.load(f)["splits"]["test"]
    out = tmp_path / "scores.json"
    results = use_run.main(str(workdir), evaluate="test", out=str(out))
    got = results["test"]
    # Greedy, the last checkpoint: the final evaluation's own numbers.
    assert "aer" in trained  # the toy corpus has true alignments
    for metric in ("bleu", "exact_match", "token_accuracy", "loss", "aer"):
        assert got[metric] == pytest.approx(trained[metric], rel=1e-6), metric
    assert got["by_length"] == trained["by_length"]
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"test: BLEU {trained['bleu']:.2f}, exact match ")
    assert line.endswith(f"({trained['examples']} sentences, greedy, step {got['step']})")
    with open(out) as f:
        assert json.load(f)["splits"]["test"]["bleu"] == pytest.approx(got["bleu"])
    assert snapshot(workdir) == before

    beam = use_run.main(str(workdir), evaluate="test", beam_size=3, output_format="jsonl")
    record = json.loads(capsys.readouterr().out)
    assert record["beam_size"] == 3 and record["bleu"] == pytest.approx(beam["test"]["bleu"])
    assert record["split"] == "test" and record["examples"] == trained["examples"]


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(evaluate="dev"),
            r"no split 'dev' in this run's corpus; valid: train, validation, test",
        ),
        (dict(evaluate=" , "), r"give split names, e.g. --evaluate=test"),
        (dict(evaluate="test", beam_size=0), r"--beam_size=0; valid: 1 \(greedy\) or more"),
        (dict(evaluate="test", head=2), r"--head does not apply to --evaluate"),
        (dict(evaluate="test", translate=["i love you"]), r"--translate does not apply"),
    ],
)
def test_evaluate_refuses_bad_input_in_one_line(additive, options, message):
    workdir, _ = additive
    with pytest.raises(UseError, match=message) as error:
        use_run.main(str(workdir), **options)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(pixels="0.5,0.5"), "--pixels does not apply to a translation run; it is for "
         "--classify (vision) runs"),
        (dict(max_new_tokens=3), "--max_new_tokens does not apply to a translation run; it is "
         "for --generate (language_model) runs"),
    ],
)  # fmt: skip
def test_options_of_other_experiments_are_refused_not_ignored(additive, options, message):
    workdir, _ = additive
    with pytest.raises(UseError) as error:
        use(workdir, "i love you", **options)
    assert str(error.value) == message
