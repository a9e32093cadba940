"""The long-range experiment: each task trains a few steps; bad input is one line before compiling."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.common import trained
from experiments.common.errors import ConfigError
from experiments.common.optimizers import make_optimizer
from experiments.common.writers import read_metrics
from experiments.configs import long_range
from experiments.long_range import data as data_lib
from experiments.long_range import train
from tests.experiments.images.test_idx import write_idx_folder
from tests.experiments.long_range.test_data import write_aan, write_imdb


def tiny(task="listops", **model):
    config = long_range.get_config("tiny")
    config.data.task = task
    config.model.update(model)
    return config


@pytest.mark.parametrize(
    "task, attention, options",
    [
        # The classifier's path, which retrieval's dual encoder below takes in make test.
        pytest.param("listops", "scaled_dot", {}, marks=pytest.mark.slow),
        # Blocks of 4 over 24 tokens: windows, a global block and random blocks, not dense.
        pytest.param(
            "listops",
            "block_sparse",
            dict(block_size=4, global_blocks=1, random_blocks=1),
            marks=pytest.mark.slow,  # the same path as scaled_dot, with another registry entry
        ),
        ("mqar", "linear", {}),
        # Pixel tasks take listops' classifier path (their data: test_pathfinder, test_data).
        pytest.param("pathfinder", "linear", {}, marks=pytest.mark.slow),
        pytest.param("image", "scaled_dot", {}, marks=pytest.mark.slow),
        pytest.param("text", "scaled_dot", {}, marks=pytest.mark.slow),
        ("retrieval", "linear", {}),  # pairs: the dual encoder
    ],
)
def test_each_task_trains_writes_its_workdir_and_scores_what_it_should(
    tmp_path, task, attention, options
):
    config = tiny(task, attention=attention)
    config.model.attention_options.update(options)
    if task == "image":
        write_idx_folder(tmp_path / "images", train=80, test=16)
        config.data.image.path = str(tmp_path / "images")
    text_rng = np.random.default_rng(0)
    words = lambda: " ".join(text_rng.choice(["good", "bad", "film", "plot"], 12))
    if task == "text":
        reviews = [(words(), i % 2) for i in range(80)]
        write_imdb(tmp_path / "imdb", {"train": reviews, "test": reviews[:16]})
        config.data.text.source = str(tmp_path / "imdb")
    if task == "retrieval":
        pairs = [(i % 2, words(), words()) for i in range(80)]
        write_aan(tmp_path / "aan", {"train": pairs, "validation": pairs[:16], "test": pairs[:16]})
        config.data.retrieval.path = str(tmp_path / "aan")
    config.eval.batch_size = 10  # the last evaluation batch is padded: padding must not count
    workdir = tmp_path / "run"
    final = train.train_and_evaluate(config, str(workdir))
    assert final["task"] == task and final["attention"] == attention and final["steps"] == 4
    for split in ("validation", "test"):
        assert final["splits"][split]["examples"] == 16
    assert json.loads((workdir / "eval.json").read_text())["splits"] == final["splits"]
    assert [m["step"] for m in read_metrics(workdir) if "train/loss" in m] == [2, 4]
    # The evaluation's accuracy is the model's, recomputed here from its checkpoint.
    task_object = train.LongRangeTask(config, str(tmp_path / "again"))
    params, step = trained.restore_params(
        str(workdir),
        lambda: task_object.init_params(jax.random.key(config.seed)),
        make_optimizer(config.train),
        None,
    )
    assert step == 4
    test = task_object.splits["test"]
    inputs = [jnp.asarray(test[name]) for name in ("inputs", "second") if name in test]
    assert len(inputs) == (2 if task == "retrieval" else 1)
    logits = np.asarray(task_object.model.apply(params, *inputs))
    if task == "mqar":
        hits = (np.argmax(logits, -1) == test["targets"])[test["queries"]]
    else:
        hits = np.argmax(logits, -1) == test["labels"]
    assert final["splits"]["test"]["accuracy"] == pytest.approx(hits.mean())


def test_recall_scores_only_the_queries():
    """A model that predicts every target right except at the queries scores zero."""
    inputs, targets, queries = (
        jnp.asarray(a) for a in data_lib.mqar.generate(0, 4, vocab_size=16, num_pairs=2, length=12)
    )
    logits = jax.nn.one_hot(jnp.where(queries, 0, targets), 16) * 10
    loss_sum, correct, count = train._stats(
        "recall", logits, {"targets": targets, "queries": queries}
    )
    assert int(correct) == 0 and int(count) == 8
    logits = jax.nn.one_hot(jnp.where(queries, targets, 0), 16) * 10
    _, correct, _ = train._stats("recall", logits, {"targets": targets, "queries": queries})
    assert int(correct) == 8


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(task="sudoku"),
            "unknown data.task 'sudoku'; valid: listops, mqar, pathfinder, image",
        ),
        (dict(task="pathfinder", size=20), "pathfinder size=20; valid: 16, 32, 64, 128"),
        (dict(task="pathfinder", max_length=100), "shorter than data.task='pathfinder'.s seq"),
        (dict(task="image", path="/nowhere"), "Fashion-MNIST folder not found"),
        (dict(task="mqar", attention="linformer"), "attention kind 'linformer' cannot do causal"),
        (dict(task="mqar", attention="nystrom"), "data.task='mqar'"),
        (dict(max_length=16), "model.max_length=16 is shorter than data.task='listops'"),
        (dict(attention="flash"), "unknown model.attention .flash.; valid: additive"),
        (dict(depth=0), "listops max_depth=0"),
        (dict(task="mqar", pairs=5), "mqar num_pairs=5 do not fit length=12"),
        (
            dict(architecture="rnn"),
            "unknown model.architecture 'rnn'; valid: transformer, conv, local2d",
        ),
        (
            dict(architecture="local2d"),
            "model.architecture='local2d' reads square images, not data.task='listops'",
        ),
        (
            dict(task="pathfinder", architecture="local2d", kernel_size=4),
            "model.kernel_size=4 must be odd and positive",
        ),
        (
            dict(task="pathfinder", architecture="local2d", num_heads=3),
            "model.num_heads=3 must split model.d_model=16 into heads of even size",
        ),
        (
            dict(task="pathfinder", architecture="local2d", pooling="first"),
            "model.pooling='first' with model.architecture='local2d'; valid: mean, max",
        ),
        (
            dict(architecture="conv"),
            "model.architecture='conv' reads square images, not data.task='listops'; "
            "valid tasks: pathfinder, image",
        ),
    ],
)
def test_bad_input_is_one_line_before_anything_compiles(change, message):
    config = tiny(change.pop("task", "listops"))
    if "depth" in change:
        config.data.listops.max_depth = change.pop("depth")
    if "pairs" in change:
        config.data.mqar.num_pairs = change.pop("pairs")
    if "size" in change:
        config.data.pathfinder.size = change.pop("size")
    if "path" in change:
        config.data.image.path = change.pop("path")
    config.model.update(change)
    with pytest.raises(ConfigError, match=message) as error:
        train.validate_config(config)
    assert "\n" not in str(error.value)


def test_config_argument_and_sweeps():
    assert long_range.get_config("mqar,cpu").data.task == "mqar"
    assert long_range.get_config("cpu").data.task == "listops"
    with pytest.raises(ValueError, match="unknown config 'mqar,huge'; valid: TASK,SIZE"):
        long_range.get_config("mqar,huge")
    from experiments.common import sweeps

    specs = long_range.get_sweeps()
    quick = sweeps.expand("quick", specs)
    pairs = {(t.overrides["data.task"], t.overrides["model.attention"]) for t in quick}
    # Every mechanism that can run a task is in the sweep, and only those.
    assert ("mqar", "linear") in pairs and ("listops", "block_sparse") in pairs
    assert ("mqar", "linformer") not in pairs and ("mqar", "block_sparse") not in pairs
    for task, kind in pairs:
        config = long_range.get_config("tiny")
        config.data.task, config.model.attention = task, kind
        train.validate_config(config)
    assert {task for task, _ in pairs} == {"listops", "mqar", "pathfinder"}  # generated ones
    # `all`: every able mechanism on every task, each with its own task's cpu config.
    every = sweeps.expand("all", specs)
    assert {(t.config_arg, t.overrides["data.task"]) for t in every} == {
        (f"{task},cpu", task) for task in long_range.OFFLINE
    }
    assert len(every) == sum(len(long_range._able(task)) for task in long_range.OFFLINE)
    assert len({t.name for t in every}) == len(every)


def test_mqar_pairs_sweep_gives_softmax_rotary_positions_and_every_trial_validates():
    from experiments.common import sweeps

    trials = sweeps.expand("mqar_pairs", long_range.get_sweeps())
    assert len(trials) == 3 * 2 * 3 * 2  # mechanisms x widths x pairs x learning rates
    positions = {}
    for trial in trials:
        config = long_range.get_config(trial.config_arg)
        for field, value in trial.overrides.items():
            section, _, name = field.rpartition(".")
            target = config
            for part in section.split("."):
                target = target[part]
            target[name] = value
        train.validate_config(config)  # each trial's positions suit its mechanism
        positions[config.model.attention] = config.model.positions
        assert config.data.mqar.length == 32 and config.data.mqar.num_pairs in (2, 4, 8)
    assert positions == {"scaled_dot": "rope", "linear": "sinusoidal", "performer": "sinusoidal"}


@pytest.mark.slow  # its layers are tested in make test (tests/experiments/models)
def test_local_2d_attention_trains_on_pathfinder_and_reports_as_local2d(tmp_path):
    config = tiny("pathfinder", architecture="local2d", kernel_size=3, pooling="max", num_layers=2)
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["attention"] == "local2d" and final["steps"] == 4
    assert final["splits"]["test"]["examples"] == 16
    params = train.LongRangeTask(config, str(tmp_path / "x")).init_params(jax.random.key(0))
    assert sorted(params) == ["classes", "embed", "final_norm", "hidden", "layer_0", "layer_1"]
    # The window's side reaches the layer: a learned bias per head and window position.
    assert params["layer_0"]["attention"]["relative_bias"].shape == (2, 3 * 3)


@pytest.mark.slow  # the pathfinder classifier path trains in make test-slow as well
def test_the_conv_reference_trains_on_pathfinder_and_reports_as_conv(tmp_path):
    config = tiny("pathfinder", architecture="conv", num_layers=2)
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["attention"] == "conv" and final["steps"] == 4
    assert final["splits"]["test"]["examples"] == 16
    params = trained.restore_params(
        str(tmp_path / "run"),
        lambda: train.LongRangeTask(config, str(tmp_path / "x")).init_params(jax.random.key(0)),
        make_optimizer(config.train),
        None,
    )[0]
    assert sorted(params["params"]) == ["classes", "conv_0", "conv_1", "embed", "hidden"]
