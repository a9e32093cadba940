"""Sweep expansion, the trial runner and the report."""

import json
import os
import sys

import numpy as np
import pytest
import submitit

from experiments.common import report, runner, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_grid_random_fixed_and_explicit_trials():
    spec = {
        "config": "additive,tiny",
        "trials": [{"data.name": "toy_translation"}, {"data.name": "tsv"}],
        "grid": {"model.attention": ["additive", "dot"], "seed": [0, 1]},
        "random": {
            "count": 3,
            "seed": 4,
            "fields": {
                "train.learning_rate": ["log_uniform", 1e-4, 1e-2],
                "model.encoder_size": ["choice", 32, 64],
                "train.warmup_steps": ["int_uniform", 0, 10],
            },
        },
        "fixed": {"train.steps": 7},
    }
    trials = sweeps.expand("s", {"s": spec})
    assert len(trials) == 2 * 2 * 2 * 3
    assert len({t.name for t in trials}) == len(trials)
    for trial in trials:
        assert trial.config_arg == "additive,tiny" and trial.overrides["train.steps"] == 7
        assert 1e-4 <= trial.overrides["train.learning_rate"] <= 1e-2
        assert trial.overrides["model.encoder_size"] in (32, 64)
        assert 0 <= trial.overrides["train.warmup_steps"] <= 10
    assert trials == sweeps.expand("s", {"s": spec})  # draws are reproducible
    assert "--config.model.attention=dot" in trials[-1].flag_args()
    assert sweeps.format_value((64, 32)) == "(64, 32)" and sweeps.format_value((5,)) == "(5,)"
    # Strings in a tuple are parsed back as literals, so they travel quoted.
    assert sweeps.format_value(("validation",)) == "('validation',)"
    assert sweeps.format_value("additive") == "additive"


def test_a_trial_may_name_its_own_config_argument():
    spec = {
        "config": "listops,cpu",
        "trials": [{"data.task": "listops"}, {"config": "mqar,cpu", "data.task": "mqar"}],
        "grid": {"model.attention": ["linear"]},
    }
    listops, mqar = sweeps.expand("s", {"s": spec})
    assert (listops.config_arg, mqar.config_arg) == ("listops,cpu", "mqar,cpu")
    assert mqar.overrides == {"data.task": "mqar", "model.attention": "linear"}
    assert mqar.swept == ("data.task", "model.attention")
    assert mqar.name == "task-mqar__attention-linear"
    assert not any(arg.startswith("--config.config") for arg in mqar.flag_args())


def draws(fields, count=400, seed=0):
    return sweeps._random_draws("s", {"count": count, "seed": seed, "fields": fields})


def test_each_distribution_covers_its_range_and_no_more():
    drawn = draws(
        {
            "i": ["int_uniform", 3, 5],
            "u": ["uniform", 2.0, 5.0],
            "l": ["log_uniform", 1e-4, 1e-2],
            "c": ["choice", "a", "b", "c"],
        }
    )
    column = {f: np.array([d[f] for d in drawn]) for f in ("i", "u", "l")}
    # int_uniform includes both ends, like random.randint.
    assert set(column["i"].tolist()) == {3, 4, 5}
    assert min(np.mean(column["i"] == n) for n in (3, 4, 5)) > 0.25
    u = column["u"]
    assert 2.0 <= u.min() < 2.2 and 4.8 < u.max() <= 5.0
    assert abs(np.mean(u < 3.5) - 0.5) < 0.1  # uniform, not skewed
    log = column["l"]
    assert 1e-4 <= log.min() and log.max() <= 1e-2
    # Uniform in log: as many draws below the geometric middle 1e-3 as above.
    assert abs(np.mean(log < 1e-3) - 0.5) < 0.1
    assert abs(np.mean(log < 1e-4 * 10**0.5) - 0.25) < 0.07
    assert {d["c"] for d in drawn} == {"a", "b", "c"}
    # Three significant digits, so the names stay short.
    assert all(float(f"{x:.3g}") == x for x in np.concatenate([u, log]))
    assert draws({"u": ["uniform", 0, 1]}, count=5, seed=1) != draws(
        {"u": ["uniform", 0, 1]}, count=5, seed=2
    )
    assert len(draws({"u": ["uniform", 0, 1]}, count=7)) == 7
    # Defaults: one draw, seed 0.
    unseeded = sweeps._random_draws("s", {"fields": {"u": ["uniform", 0, 1]}})
    assert unseeded == draws({"u": ["uniform", 0, 1]}, count=1, seed=0)
    assert (
        sweeps._random_draws("s", None) == [] and len(draws({"i": ["int_uniform", 0, 9]}, 1)) == 1
    )


def test_grid_trial_and_drawn_values_override_fixed_ones():
    spec = {
        "fixed": {"train.steps": 7, "seed": 9, "model.size": 1, "lr": 0.5},
        "grid": {"seed": [0, 1]},
        "trials": [{"model.size": 2}, {}],
        "random": {"count": 1, "fields": {"lr": ["choice", 0.25]}},
    }
    trials = sweeps.expand("s", {"s": spec})
    assert [t.overrides for t in trials] == [
        {"train.steps": 7, "seed": 0, "model.size": 2, "lr": 0.25},
        {"train.steps": 7, "seed": 1, "model.size": 2, "lr": 0.25},
        {"train.steps": 7, "seed": 0, "model.size": 1, "lr": 0.25},
        {"train.steps": 7, "seed": 1, "model.size": 1, "lr": 0.25},
    ]
    assert [t.name for t in trials] == [
        "size-2__seed-0__lr-0.25",
        "size-2__seed-1__lr-0.25",
        "size-1__seed-0__lr-0.25",
        "size-1__seed-1__lr-0.25",
    ]
    assert trials[0].swept == ("model.size", "seed", "lr")
    with pytest.raises(AttributeError):  # frozen: a trial keeps its name and overrides
        trials[0].name = "other"
    assert trials[0].flag_args() == [
        "--config.train.steps=7",
        "--config.seed=0",
        "--config.model.size=2",
        "--config.lr=0.25",
    ]
    only_fixed = sweeps.expand("s", {"s": {"fixed": {"a": 1}}})
    assert [(t.name, t.overrides, t.config_arg) for t in only_fixed] == [("trial", {"a": 1}, "")]
    with pytest.raises(ValueError, match="duplicate trials"):
        sweeps.expand("s", {"s": {"trials": [{"a": 1}, {"a": 1}]}})


def test_load_sweeps_reads_get_sweeps_and_names_what_is_missing(tmp_path):
    path = tmp_path / "config.py"
    path.write_text("def get_sweeps():\n    return {'a': {'grid': {'seed': [0, 1]}}}\n")
    assert sweeps.load_sweeps(f"{path}:some,arg") == {"a": {"grid": {"seed": [0, 1]}}}
    plain = tmp_path / "plain.py"
    plain.write_text("def get_config():\n    return None\n")
    with pytest.raises(ValueError, match=f"{plain} declares no sweeps"):
        sweeps.load_sweeps(str(plain))
    with pytest.raises(ValueError, match="config file not found: /no/such.py"):
        sweeps.load_sweeps("/no/such.py:arg")


def test_trial_names_and_values():
    assert sweeps._trial_name({"model.attention": "dot", "data.split": ("a b", 1)}) == (
        "attention-dot__split-_ab_1_"
    )
    assert sweeps.format_value(0.1) == "0.1" and sweeps.format_value([1]) == "(1,)"
    assert sweeps.format_value(True) == "True" and sweeps.format_value(()) == "()"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"grid": {"seed": []}}, "non-empty list"),
        ({"gird": {}}, "unknown keys.*gird"),
        ({"random": {"fields": {"x": ["gaussian", 0, 1]}}}, "unknown distribution 'gaussian'"),
    ],
)
def test_bad_sweeps(spec, message):
    with pytest.raises(ValueError, match=message):
        sweeps.expand("s", {"s": spec})
    with pytest.raises(ValueError, match="unknown sweep 'nope'; valid sweeps: s"):
        sweeps.expand("nope", {"s": spec})


CONFIG = """
from experiments.configs import translation

def get_config(arg="additive,tiny"):
    config = translation.get_config(arg)
    config.data.data_dir = {data_dir!r}
    config.train.steps = 2
    config.eval.every_steps = 1000
    config.eval.splits = ("test",)
    config.eval.attention_sentences = ("i love you",)
    return config

def get_sweeps():
    return {{"mixed": {{"config": "additive,tiny", "trials": [
        {{"model.attention": "dot"}},
        {{"model.attention": "general", "data.name": "tsv", "data.path": "/no/such.tsv"}},
        {{"model.attention": "scaled_dot", "train.learning_rate": 1e39}},
    ]}}}}
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "sweep_config.py"
    path.write_text(CONFIG.format(data_dir=str(tmp_path / "data")))
    return str(path)


@pytest.mark.slow  # three trials in subprocesses (about 30 s); CI runs the slow tier
def test_a_sweep_survives_failures_reruns_nothing_and_reports_everything(tmp_path, config_file):
    trials = sweeps.expand("mixed", sweeps.load_sweeps(config_file))
    sweep_dir = str(tmp_path / "sweep")
    dry = runner.run_sweep(trials, config_path=config_file, sweep_dir=sweep_dir, dry_run=True)
    assert [action for _, action in dry] == ["new"] * 3 and not os.path.exists(sweep_dir)

    ended = dict(runner.run_sweep(trials, config_path=config_file, sweep_dir=sweep_dir, parallel=2))
    names = [t.name for t in trials]
    assert [ended[n] for n in names] == ["done", "failed", "diverged"]
    failed = runner.read_status(os.path.join(sweep_dir, names[1]))
    assert "corpus file not found" in failed["error"]
    diverged = runner.read_status(os.path.join(sweep_dir, names[2]))
    assert diverged["step"] >= 1 and "diverged" in diverged["error"]
    with open(os.path.join(sweep_dir, names[0], "eval.json")) as f:
        final = json.load(f)
    # The trial ran its own override (the config's default is additive), for the config's 2 steps.
    assert final["attention"] == "dot" and final["steps"] == 2
    assert runner.read_status(os.path.join(sweep_dir, names[0]))["status"] == "done"
    assert 0 < final["splits"]["test"]["loss"] < 20 and final["splits"]["test"]["examples"] > 0

    modified = {n: os.path.getmtime(os.path.join(sweep_dir, n, "status.json")) for n in names}
    again = runner.run_sweep(trials, config_path=config_file, sweep_dir=sweep_dir, parallel=2)
    assert dict(again) == ended
    assert modified == {
        n: os.path.getmtime(os.path.join(sweep_dir, n, "status.json")) for n in names
    }

    md_path, html_path = report.write_report(sweep_dir)
    markdown = open(md_path).read()
    page = open(html_path).read()
    for text in (
        "attention=dot",
        "failed",
        "diverged",
        "corpus file not found",
        "test/bleu",
    ):
        assert text in markdown, text
    assert "data:image/png;base64" in page and "diverged" in page
    assert os.path.exists(os.path.join(sweep_dir, "report_figures", "train_loss.png"))


def test_submitit_jobs_carry_each_trial_command(tmp_path, config_file):
    trials = sweeps.expand("mixed", sweeps.load_sweeps(config_file))
    executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="debug")
    jobs = runner.submit_sweep(
        trials,
        config_path=config_file,
        sweep_dir=str(tmp_path / "sweep"),
        executor=executor,
        command_line_overrides={"train.steps": "3"},
    )
    assert len(jobs) == 3
    # The sweep's record, which --report reads to tell the trials apart, is written too.
    record = json.load(open(tmp_path / "sweep" / "sweep.json"))
    assert record["config"] == config_file
    assert record["command_line_overrides"] == {"train.steps": "3"}
    assert [t["name"] for t in record["trials"]] == [t.name for t in trials]
    assert [t["swept"] for t in record["trials"]] == [list(t.swept) for t in trials]
    for job, trial in zip(jobs, trials):
        command = job.submission().function.command
        assert command[:5] == [
            sys.executable,
            os.path.join(ROOT, "launch.py"),
            f"--config={config_file}:additive,tiny",
            f"--workdir={tmp_path / 'sweep' / trial.name}",
            "--sweep_trial",
        ]
        assert command[5:] == [f"--config.{f}={v}" for f, v in trial.overrides.items()]
    assert [job.submission().function.command[5:] for job in jobs][1:] == [
        [
            "--config.model.attention=general",
            "--config.data.name=tsv",
            "--config.data.path=/no/such.tsv",
        ],
        ["--config.model.attention=scaled_dot", "--config.train.learning_rate=1e+39"],
    ]


def test_report_needs_trials(tmp_path):
    with pytest.raises(ValueError, match="holds no trials"):
        report.write_report(str(tmp_path))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "status.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    md_path, _ = report.write_report(str(tmp_path))
    assert "boom" in open(md_path).read()


def test_trial_flags_parse_back_to_the_swept_values(monkeypatch):
    # Through absl and config_flags, as launch.py parses them: tuples of strings
    # and of numbers, strings, floats and booleans come back as declared.
    from absl import flags
    from ml_collections import config_flags

    spec = {
        "config": "conv,tiny",
        "fixed": {"eval.splits": ("validation",), "model.widths": (8, 16)},
        "trials": [{"model.variant": "conv_stem_attention", "train.learning_rate": 0.01}],
        "grid": {"model.relative_bias": [True]},
    }
    (trial,) = sweeps.expand("s", {"s": spec})
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=flag_values)
    argv = ["launch.py", f"--config=experiments/configs/vision.py:{trial.config_arg}"]
    argv += trial.flag_args()
    monkeypatch.setattr(sys, "argv", argv)  # config_flags reads the overrides from sys.argv
    flag_values(argv)
    config = flag_values.config
    assert config.eval.splits == ("validation",) and tuple(config.model.widths) == (8, 16)
    assert config.model.variant == "conv_stem_attention" and config.train.learning_rate == 0.01
    assert config.model.relative_bias is True
