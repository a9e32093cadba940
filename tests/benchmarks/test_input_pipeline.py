"""benchmarks/input_pipeline.py: its row arithmetic, the fixed batch, and one smoke run."""

import json

import pytest

from benchmarks import input_pipeline

CASE = input_pipeline.Case("a case", object, "demo", None)


def test_rows_take_the_best_round_of_each_and_their_ratio():
    rounds = {
        "pipeline": [
            {"seconds_per_step": 0.30, "data_seconds_per_step": 0.004, "compile_seconds": 9.0},
            {"seconds_per_step": 0.25, "data_seconds_per_step": 0.006, "compile_seconds": 8.5},
        ],
        "fixed": [
            {"seconds_per_step": 0.20, "data_seconds_per_step": 0.0001, "compile_seconds": 2.0},
            {"seconds_per_step": 0.24, "data_seconds_per_step": 0.0002, "compile_seconds": 2.5},
        ],
    }
    row = input_pipeline.summarise(CASE, 16, 60, rounds)
    assert row["seconds_per_step"] == 0.25 and row["fixed_seconds_per_step"] == 0.20
    assert row["slowdown"] == pytest.approx(1.25, rel=1e-12)
    assert row["data_seconds_per_step"] == 0.004
    assert row["fixed_data_seconds_per_step"] == 0.0001
    line = input_pipeline.table([row]).splitlines()[2]
    assert row["compile_seconds"] == 8.5 and row["fixed_compile_seconds"] == 2.0
    assert line == "| a case | demo | 16 | 250.0 | 200.0 | 1.250 | 4.00 | 8.5 / 2.0 |"
    # A label whose runs never had a clean interval is reported, not divided by.
    rounds["fixed"] = [{"seconds_per_step": None, "data_seconds_per_step": 0.0}]
    assert "skipped" in input_pipeline.summarise(CASE, 16, 60, rounds)


def test_the_fixed_batch_repeats_the_first_batch():
    class Task:
        def __init__(self, config, workdir):
            self.train_iterator = iter([{"x": 1}, {"x": 2}])

    task = input_pipeline.fixed_batch(Task)(None, None)
    assert [next(task.train_iterator) for _ in range(3)] == [{"x": 1}] * 3
    assert task.train_iterator.get_state() == {}


@pytest.mark.slow
def test_input_pipeline_benchmark_smoke(tmp_path):
    result = input_pipeline.main(["--smoke", "--only", "language model", "--out", str(tmp_path)])
    (row,) = result["rows"]
    assert row["case"] == "language model (toy corpus)", row
    assert row["slowdown"] == pytest.approx(
        row["seconds_per_step"] / row["fixed_seconds_per_step"], rel=1e-12
    )
    # Both waits are measured; which is longer is timing, left to the benchmark's table.
    assert row["data_seconds_per_step"] >= 0 and row["fixed_data_seconds_per_step"] >= 0
    saved = json.loads((tmp_path / "input_pipeline.json").read_text())
    assert saved["rows"] == result["rows"]
    assert "| language model (toy corpus) | demo |" in (tmp_path / "input_pipeline.md").read_text()
