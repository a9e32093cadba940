"""Bad input to launch.py: one line `error: ...` naming the value and what is valid, exit code 2."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

import experiments
from experiments import classify, translate
from experiments.common import sweeps, validation
from experiments.common.errors import ConfigError
from experiments.configs import language_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIGS = {
    "translate": f"{ROOT}/experiments/translate.py:additive,tiny",
    "language_model": f"{ROOT}/experiments/configs/language_model.py:tiny",
    "classify": f"{ROOT}/experiments/classify.py:conv_stem_attention,tiny",
    "long_range": f"{ROOT}/experiments/configs/long_range.py:tiny",
}


def launch(*args, cwd):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_error_line(result) -> str:
    """The single stderr line of a run that must fail with exit code 2."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


def test_workdir_under_a_regular_file(tmp_path):
    (tmp_path / "notes").write_text("a file")
    line = one_error_line(
        launch(f"--config={CONFIGS['translate']}", "--workdir=notes/run", cwd=tmp_path)
    )
    assert line == (
        f"error: --workdir=notes/run: {tmp_path / 'notes'} is a file, not a directory; "
        f"give a path whose parents are directories"
    )
    assert not (tmp_path / "data").exists()  # before any corpus is generated


def test_multi_host_flags_that_cannot_make_a_run(tmp_path):
    # No cluster environment to read the rest from: SLURM's variables are cleared.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JAX_"))}
    common = (f"--config={CONFIGS['translate']}", "--workdir=run")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch.py"), *common, "--distributed"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = one_error_line(result)
    assert line.startswith("error: cannot join a multi-host run: coordinator_address should be")
    assert line.endswith("or run inside a SLURM or Cloud TPU job)")
    line = one_error_line(
        launch(*common, "--num_processes=2", "--peer_timeout_seconds=0", cwd=tmp_path)
    )
    assert line == "error: --peer_timeout_seconds=0; valid: 1 or more"
    assert not (tmp_path / "run").exists()


def test_report_on_a_missing_directory_and_on_one_without_trials(tmp_path):
    line = one_error_line(launch("--report=nowhere", cwd=tmp_path))
    assert line == "error: --report=nowhere does not exist; give the --workdir of a sweep"
    (tmp_path / "empty").mkdir()
    line = one_error_line(launch("--report=empty", cwd=tmp_path))
    assert line.startswith("error: empty holds no trials") and "--workdir of a sweep" in line


@pytest.mark.parametrize("experiment", sorted(CONFIGS))
def test_negative_learning_rate_in_every_experiment(tmp_path, experiment):
    result = launch(
        f"--config={CONFIGS[experiment]}",
        "--workdir=run",
        "--config.train.learning_rate=-1",
        cwd=tmp_path,
    )
    line = one_error_line(result)
    assert line == "error: train.learning_rate must be positive and finite, got -1.0"
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_rnn_multihead_heads_that_do_not_divide_the_decoder_size(tmp_path):
    result = launch(
        f"--config={ROOT}/experiments/translate.py:multihead,tiny",
        "--workdir=run",
        "--config.model.num_heads=5",
        f"--config.data.data_dir={tmp_path / 'data'}",
        cwd=tmp_path,
    )
    assert one_error_line(result) == (
        "error: model.decoder_sizes[-1]=12 is not divisible by num_heads=5; "
        "valid model.num_heads: 1, 2, 3, 4, 6, 12"
    )
    assert not (tmp_path / "data").exists()  # checked before the corpus is generated


def test_an_attention_option_the_mechanism_refuses(tmp_path):
    """The option's own check (raised while the model is traced) is one line, exit 2."""
    result = launch(
        f"--config={CONFIGS['language_model']}",
        "--workdir=run",
        "--config.model.attention=performer",
        "--config.model.attention_options.causal_backward=fast",
        cwd=tmp_path,
    )
    assert one_error_line(result) == (
        "error: the model cannot be built from this config: causal_backward must be one of "
        "written, autodiff; got 'fast'."
    )
    assert not list((tmp_path / "run").glob("checkpoints/*"))


def _configs():
    return {
        "translate": translate.get_config("additive,tiny"),
        "translate_transformer": translate.get_config("transformer,tiny"),
        "language_model": language_model.get_config("tiny"),
        "classify": classify.get_config(),
    }


BAD_VALUES = [
    ("train.learning_rate", 0.0, "train.learning_rate must be positive and finite, got 0.0"),
    ("train.learning_rate", float("nan"), "train.learning_rate must be positive and finite"),
    ("train.batch_size", 0, "train.batch_size must be positive, got 0"),
    ("train.batch_size", -8, "train.batch_size must be positive, got -8"),
    ("eval.batch_size", 0, "eval.batch_size must be positive, got 0"),
    ("train.steps", -1, "train.steps must be positive, got -1"),
    ("train.log_every_steps", 0, "train.log_every_steps must be positive, got 0"),
    ("eval.every_steps", -2, "eval.every_steps must be positive, got -2"),
    ("checkpoint.every_steps", 0, "checkpoint.every_steps must be positive, got 0"),
    ("checkpoint.keep", 0, "checkpoint.keep must be positive, got 0"),
    ("train.warmup_steps", -1, "train.warmup_steps must be >= 0"),
    ("train.weight_decay", -0.1, "train.weight_decay must be >= 0, got -0.1"),
    ("train.grad_clip_norm", -1.0, "train.grad_clip_norm must be >= 0"),
    ("train.max_seconds", -5.0, "train.max_seconds must be >= 0"),
    ("model.dropout_rate", 1.0, r"model.dropout_rate must be in \[0, 1\), got 1.0"),
    ("model.dropout_rate", -0.1, r"model.dropout_rate must be in \[0, 1\), got -0.1"),
    ("train.label_smoothing", 1.5, r"train.label_smoothing must be in \[0, 1\)"),
]


@pytest.mark.parametrize("experiment", ["translate", "language_model", "classify"])
@pytest.mark.parametrize("field, value, message", BAD_VALUES)
def test_nonsense_sizes_and_rates_are_refused(experiment, field, value, message):
    config = _configs()[experiment]
    section, name = field.split(".")
    if name not in config[section]:
        pytest.skip(f"{experiment} has no {field}")
    config[section][name] = value
    with pytest.raises(ConfigError, match=message):
        validation.check_ranges(config)


def test_transformer_sizes_are_checked_too():
    config = _configs()["translate_transformer"]
    config.model.transformer.dropout_rate = 2.0
    with pytest.raises(ConfigError, match=r"model.transformer.dropout_rate must be in \[0, 1\)"):
        validation.check_ranges(config)
    config.model.transformer.dropout_rate = 0.1
    config.model.decoder_sizes = (16, 0)
    with pytest.raises(ConfigError, match="every entry of model.decoder_sizes"):
        validation.check_ranges(config)


def test_sensible_configs_and_a_warmup_longer_than_the_run_pass():
    for config in _configs().values():
        config.train.warmup_steps = config.train.steps * 10
        validation.check_ranges(config)


def test_sweep_overrides_replace_fixed_values_and_refuse_swept_fields():
    spec = {"grid": {"model.attention": ["additive", "dot"]}, "fixed": {"train.steps": 2000}}
    trials = sweeps.expand("s", {"s": spec})
    changed = sweeps.with_overrides(trials, {"train.steps": "300", "seed": "2"}, "s")
    assert [t.name for t in changed] == [t.name for t in trials]
    for trial in changed:
        assert "--config.train.steps=300" in trial.flag_args()
        assert "--config.seed=2" in trial.flag_args()
        assert "--config.train.steps=2000" not in trial.flag_args()
    with pytest.raises(ValueError, match="--config.model.attention is swept by --sweep=s"):
        sweeps.with_overrides(trials, {"model.attention": "none"}, "s")


SWEEP_CONFIG = """
from experiments import translate

def get_config(arg="additive,tiny"):
    config = translate.get_config(arg)
    config.data.data_dir = {data_dir!r}
    config.eval.every_steps = 1000
    config.eval.splits = ("test",)
    config.eval.attention_sentence_count = 0
    return config

def get_sweeps():
    return {{"one": {{"config": "additive,tiny", "grid": {{"seed": [0]}}}}}}
"""


def test_config_flags_given_with_sweep_are_in_every_trial_command(tmp_path):
    config_file = tmp_path / "sweep_config.py"
    config_file.write_text(SWEEP_CONFIG.format(data_dir=str(tmp_path / "data")))
    result = launch(
        f"--config={config_file}",
        "--sweep=one",
        "--workdir=sweep",
        "--config.train.steps=3",
        "--dry_run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--config.seed=0 --config.train.steps=3" in result.stdout


@pytest.mark.slow  # trains a trial: about a minute on 2 busy cores
def test_config_flags_given_with_sweep_reach_every_trial(tmp_path):
    config_file = tmp_path / "sweep_config.py"
    config_file.write_text(SWEEP_CONFIG.format(data_dir=str(tmp_path / "data")))
    result = launch(
        f"--config={config_file}",
        "--sweep=one",
        "--workdir=sweep",
        "--config.train.steps=3",
        "--config.model.encoder_size",
        "12",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "sweep" / "sweep.json") as f:
        recorded = json.load(f)
    assert recorded["command_line_overrides"] == {"train.steps": "3", "model.encoder_size": "12"}
    with open(tmp_path / "sweep" / "seed-0" / "config.json") as f:
        config = json.load(f)
    assert config["train"]["steps"] == 3 and config["model"]["encoder_size"] == 12

    refused = launch(
        f"--config={config_file}", "--sweep=one", "--workdir=s2", "--config.seed=1", cwd=tmp_path
    )
    assert one_error_line(refused) == (
        "error: --config.seed is swept by --sweep=one; remove it from the command line or "
        "use a sweep that does not vary it"
    )
    unknown = launch(
        f"--config={config_file}",
        "--sweep=one",
        "--workdir=s3",
        "--config.train.nope=1",
        cwd=tmp_path,
    )
    assert one_error_line(unknown).startswith("error: no such config field")
    assert not (tmp_path / "s2").exists() and not (tmp_path / "s3").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--parallel=2",), "--parallel applies to sweeps; give --sweep=NAME"),
        # The same checks as --parallel's and --slurm_nodes's: make test-slow runs these two.
        pytest.param(
            ("--retry_failed",), "--retry_failed applies to sweeps", marks=pytest.mark.slow
        ),
        (("--slurm_nodes=2",), "--slurm_nodes applies to submitted jobs; give --executor=slurm"),
        pytest.param(
            ("--slurm_partition=gpu",),
            "--slurm_partition applies to submitted jobs",
            marks=pytest.mark.slow,
        ),
        (("--beam_size=4",), "--beam_size applies to using a trained run"),
        (
            ("--executor=slurm", "--sweep=compare", "--slurm_tasks_per_node=2"),
            "--slurm_tasks_per_node sizes one submitted run",
        ),
    ],
)
def test_flags_the_chosen_mode_would_ignore_are_refused(tmp_path, args, message):
    line = one_error_line(
        launch(f"--config={CONFIGS['language_model']}", "--workdir=run", *args, cwd=tmp_path)
    )
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "use, args, flag",
    [
        ("--translate=hallo", (f"--config={CONFIGS['language_model']}",), "--config"),
        pytest.param("--evaluate=test", ("--sweep=demo",), "--sweep", marks=pytest.mark.slow),
        pytest.param("--generate=le", ("--report=runs",), "--report", marks=pytest.mark.slow),
    ],
)
def test_training_flags_with_the_use_of_a_trained_run_are_refused(tmp_path, use, args, flag):
    line = one_error_line(launch("--workdir=run", use, *args, cwd=tmp_path))
    assert line == (
        f"error: {flag} applies to training, sweeps or reports; a trained run is used with its "
        "own config (its workdir's config.json), so leave it out"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("--report=runs", "--workdir=x"), "--workdir does not apply to --report, which reads"),
        pytest.param(
            ("--report=runs", "--num_processes=2"),
            "--num_processes does not apply to --report",
            marks=pytest.mark.slow,  # one launch per check in make test
        ),
        (
            ("--workdir=run", "--evaluate=test", "--distributed"),
            "--distributed applies to training; using a trained run is one process",
        ),
    ],
)
def test_flags_a_report_or_a_use_would_ignore_are_refused(tmp_path, args, message):
    assert one_error_line(launch(*args, cwd=tmp_path)).startswith(f"error: {message}")


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(
            ("--sweep=compare", "--num_processes=2"),
            "--num_processes applies to one run started",
            marks=pytest.mark.slow,
        ),
        (("--peer_timeout_seconds=5",), "--peer_timeout_seconds applies to multi-host runs"),
    ],
)
def test_multi_host_flags_that_would_be_ignored_are_refused(tmp_path, args, message):
    config = f"--config={CONFIGS['language_model']}"
    assert one_error_line(launch(config, "--workdir=run", *args, cwd=tmp_path)).startswith(
        f"error: {message}"
    )
    assert not (tmp_path / "run").exists()


def test_executor_with_a_report_is_refused(tmp_path):
    line = one_error_line(launch("--report=runs", "--executor=slurm", cwd=tmp_path))
    assert line.startswith("error: --executor=slurm submits training runs and sweeps")


def _config(spec: str, **overrides):
    path, _, arg = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("config_under_test", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg)
    for field, value in overrides.items():
        *sections, name = field.split(".")
        node = config
        for section in sections:
            node = node[section]
        node[name] = value
    return config


@pytest.mark.parametrize(
    "spec, overrides, unread, read",
    [
        (
            CONFIGS["translate"],  # the RNN with additive attention, on the toy corpus
            {},
            ["model.transformer", "model.num_heads", "data.tfds_name", "data.path"],
            ["model.attention_features", "model.implementation", "data.train_max_words"],
        ),
        (
            CONFIGS["translate"],
            {"model.attention": "none", "data.name": "ding"},
            ["model.implementation", "model.attention_features", "data.train_max_words"],
            ["data.path", "model.cell"],
        ),
        (
            CONFIGS["translate"],
            {"model.architecture": "transformer"},
            ["model.cell", "model.decoder_sizes", "model.dropout_rate", "model.num_heads"],
            ["model.transformer", "model.attention", "model.implementation", "model.num_kv_heads"],
        ),
        (
            f"{ROOT}/experiments/classify.py:vit,tiny",
            {},
            ["model.kernel_size", "model.widths", "model.attention_form", "model.attention_stem"],
            ["model.vit_heads", "model.patch_size", "model.attention", "model.num_kv_heads"],
        ),
        (
            CONFIGS["classify"],  # conv stem, local attention blocks
            {},
            ["model.vit_width", "model.patch_size", "model.attention", "model.attention_stem"],
            ["model.kernel_size", "model.num_heads", "model.attention_form", "model.widths"],
        ),
        (
            f"{ROOT}/experiments/classify.py:conv,tiny",
            {},
            ["model.num_heads", "model.attention_form", "model.logit_scale", "model.vit_depth"],
            ["model.kernel_size", "model.widths", "model.stem_width"],
        ),
        (
            f"{ROOT}/experiments/configs/long_range.py:mqar,tiny",
            {},
            ["data.listops", "data.pathfinder", "data.image", "data.text", "data.retrieval"],
            ["data.mqar", "data.cache_dir", "model.d_model"],
        ),
        (
            f"{ROOT}/experiments/configs/long_range.py:pathfinder,tiny",
            {"model.architecture": "conv"},
            ["model.attention", "model.positions", "model.num_heads", "data.listops"],
            ["model.d_model", "model.num_layers", "model.dropout_rate", "data.pathfinder"],
        ),
        (
            f"{ROOT}/experiments/configs/long_range.py:pathfinder,tiny",
            {"model.architecture": "local2d"},
            ["model.attention", "model.positions", "model.implementation", "model.max_length"],
            ["model.kernel_size", "model.num_heads", "model.d_ff", "model.pooling"],
        ),
        (
            f"{ROOT}/experiments/configs/long_range.py:pathfinder,tiny",
            {},
            ["model.kernel_size", "data.listops"],
            ["model.attention", "model.positions", "model.num_heads", "model.pooling"],
        ),
    ],
)
def test_fields_a_run_never_reads(spec, overrides, unread, read):
    fields = experiments.unread_fields(_config(spec, **overrides))
    assert [name for name in unread if name not in fields] == []
    assert [name for name in read if name in fields] == []


def test_a_config_flag_the_run_would_not_read_is_refused(tmp_path):
    line = one_error_line(
        launch(
            f"--config={CONFIGS['translate']}",
            "--workdir=run",
            "--config.model.transformer.num_heads=8",
            cwd=tmp_path,
        )
    )
    assert line == (
        "error: --config.model.transformer.num_heads=8 would be ignored: "
        "model.architecture='rnn' (it sizes the Transformer)"
    )
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


@pytest.mark.slow  # two launches; the single run's refusal above is in make test
def test_a_config_flag_no_trial_of_a_sweep_would_read_is_refused(tmp_path):
    config = f"--config={ROOT}/experiments/configs/long_range.py"
    common = ("--workdir=sweep", "--dry_run", "--config.data.listops.max_length=300")
    # mqar_pairs trains only recall: no trial reads the ListOps settings.
    line = one_error_line(launch(config, "--sweep=mqar_pairs", *common, cwd=tmp_path))
    assert line == (
        "error: --config.data.listops.max_length=300 would be ignored by every trial of "
        "--sweep=mqar_pairs: data.task='mqar' (the listops task's settings)"
    )
    # `all` has ListOps trials: the flag goes to every trial, and those read it.
    result = launch(config, "--sweep=all", *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    listops = [line for line in result.stdout.splitlines() if "task-listops__" in line]
    assert listops and all("--config.data.listops.max_length=300" in line for line in listops)
