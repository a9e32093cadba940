"""The long-range report's tables, from a sweep directory written by hand."""

import json
import os
import subprocess
import sys

import pytest

import experiments
from experiments.common import report
from experiments.long_range import report as long_range_report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def trial(
    sweep,
    name,
    task,
    attention,
    accuracy,
    status="done",
    d_model=64,
    pairs=4,
    validation=None,
    learning_rate=1e-3,
    seed=0,
):
    workdir = sweep / name
    workdir.mkdir(parents=True)
    (workdir / "status.json").write_text(json.dumps({"status": status}))
    config = {
        "experiment": "long_range",
        "data": {"task": task, "mqar": {"num_pairs": pairs}},
        "model": {"attention": attention, "d_model": d_model},
        "train": {"learning_rate": learning_rate, "steps": 10},
        "seed": seed,
    }
    (workdir / "config.json").write_text(json.dumps(config))
    if status == "done":
        result = {
            "splits": {
                "test": {"accuracy": accuracy, "loss": 1.0},
                "validation": {"accuracy": accuracy if validation is None else validation},
            },
            "headline": ["test/accuracy", "test/loss"],
            "task": task,
            "attention": attention,
        }
        (workdir / "eval.json").write_text(json.dumps(result))
    return {"name": name, "overrides": {}, "swept": []}


def make_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    entries = [
        trial(sweep, "a", "listops", "scaled_dot", 0.30),
        trial(sweep, "b", "listops", "scaled_dot", 0.40),  # a second seed
        trial(sweep, "c", "image", "scaled_dot", 0.70),
        trial(sweep, "d", "listops", "linear", 0.25),
        trial(sweep, "e", "image", "linear", 0.0, status="failed"),  # not counted
        trial(sweep, "f", "mqar", "scaled_dot", 1.0, pairs=4),
        trial(sweep, "g", "mqar", "scaled_dot", 0.9, pairs=16),
        trial(sweep, "h", "mqar", "linear", 0.5, pairs=16, d_model=128),
    ]
    (sweep / "sweep.json").write_text(json.dumps({"trials": entries}))
    return sweep


def test_table_one_means_seeds_and_averages_only_complete_rows(tmp_path):
    trials, _ = report.load_trials(str(make_sweep(tmp_path)))
    cells = long_range_report.accuracies(trials)
    assert cells == {
        ("scaled_dot", "listops"): [0.30, 0.40],
        ("scaled_dot", "image"): [0.70],
        ("linear", "listops"): [0.25],
    }
    assert long_range_report.averages(cells) == {"scaled_dot": pytest.approx((0.35 + 0.70) / 2)}
    lines = long_range_report.accuracy_table(cells)
    assert lines[0] == "| mechanism | listops | image | average |"
    assert lines[2] == "| linear | 25.0 | - | - |"
    assert lines[3] == "| scaled_dot | 35.0 ± 5.0 | 70.0 | 52.5 |"
    assert lines[4] == "| Transformer, published (Tay et al. 2021) | 36.37 | 42.44 | 39.41 |"


def test_recall_by_pairs_reads_width_and_pairs_from_each_trial(tmp_path):
    trials, _ = report.load_trials(str(make_sweep(tmp_path)))
    assert long_range_report.recall_by_pairs(trials) == {
        ("scaled_dot", 64): {4: [1.0], 16: [0.9]},
        ("linear", 128): {16: [0.5]},
    }


def test_recall_takes_each_point_at_its_best_learning_rate_by_validation(tmp_path):
    sweep = tmp_path / "sweep"
    entries = [
        # One point at two learning rates: the better validation accuracy picks the test value.
        trial(sweep, "a", "mqar", "linear", 0.70, pairs=8, validation=0.9, learning_rate=1e-3),
        trial(sweep, "b", "mqar", "linear", 0.80, pairs=8, validation=0.6, learning_rate=3e-3),
        # A second seed is a second value of the cell, not a rival.
        trial(sweep, "c", "mqar", "linear", 0.40, pairs=8, validation=0.5, seed=1),
        # Another width is another row, whatever its validation accuracy.
        trial(sweep, "d", "mqar", "linear", 0.30, pairs=8, validation=0.1, d_model=32),
    ]
    (sweep / "sweep.json").write_text(json.dumps({"trials": entries}))
    trials, _ = report.load_trials(str(sweep))
    recall = long_range_report.recall_by_pairs(trials)
    assert recall == {("linear", 64): {8: [0.70, 0.40]}, ("linear", 32): {8: [0.30]}}


def speed_records():
    return [
        dict(
            kind="scaled_dot",
            impl="xla",
            length=1024,
            steps_per_s=2.0,
            plan_bytes=2**30,
            speed_vs_softmax=1.0,
            memory_vs_softmax=1.0,
        ),
        dict(
            kind="linear",
            impl="xla",
            length=1024,
            steps_per_s=5.0,
            plan_bytes=2**28,
            speed_vs_softmax=2.5,
            memory_vs_softmax=0.25,
        ),
    ]


def test_report_of_a_long_range_sweep_has_its_sections(tmp_path):
    sweep = make_sweep(tmp_path)
    assert report.sweep_experiment(str(sweep)) == "long_range"
    sections = experiments.report_sections("long_range")
    assert experiments.report_sections("translation") is None
    markdown = open(report.write_report(str(sweep), sections=sections)[0]).read()
    assert "| scaled_dot | 35.0 ± 5.0 | 70.0 | 52.5 |" in markdown
    assert f"`python -m benchmarks.long_range_speed --out={sweep}`" in markdown
    assert "| mechanism | d_model | 4 pairs | 16 pairs |" in markdown
    assert "| linear | 128 | - | 50.0 |" in markdown
    assert "| scaled_dot | 64 | 100.0 | 90.0 |" in markdown
    assert os.path.exists(sweep / "report_figures" / "mqar_by_pairs.png")
    assert "Figure 3" not in markdown  # no speed table yet
    # With the benchmark's file beside the trials: Table 2 and the trade-off figure.
    (sweep / "long_range_speed.json").write_text(
        json.dumps(
            {"settings": {"d_model": 64, "num_layers": 2, "batch": 4}, "records": speed_records()}
        )
    )
    markdown = open(report.write_report(str(sweep), sections=sections)[0]).read()
    assert "| linear | xla | 2.50 | 0.25 |" in markdown
    assert "N=1024: 2.00 steps/s, 1024.0 MiB." in markdown
    # Only scaled_dot finished every task, so it alone is a point.
    assert "accuracy_speed_memory.png" in markdown


@pytest.mark.slow
def test_launch_report_adds_the_long_range_sections(tmp_path):
    sweep = make_sweep(tmp_path)
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch.py"), f"--report={sweep}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## Long Range Arena, Table 1 layout: test accuracy (%)" in done.stdout
    assert "| scaled_dot | 35.0 ± 5.0 | 70.0 | 52.5 |" in done.stdout
