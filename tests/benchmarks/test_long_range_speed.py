"""benchmarks/long_range_speed.py: its rows, ratio and table arithmetic, and one smoke run."""

import json

import numpy as np
import pytest

import attn
from benchmarks import long_range_speed as lrs


def test_rows_put_softmax_first_and_add_its_blockwise_form():
    rows = lrs.rows_for(["linear", "scaled_dot"])
    assert rows == [("scaled_dot", "xla"), ("linear", "xla"), ("scaled_dot", "blockwise")]
    # By default every mechanism the classifier can take, each once.
    every = lrs.rows_for(None)
    assert sorted({kind for kind, _ in every}) == sorted(attn.available("padding"))
    assert len(every) == len(set(every)) == len(attn.available("padding")) + 1
    # Without softmax asked for, it is still the baseline the ratios divide by.
    assert lrs.rows_for(["linear"]) == [("scaled_dot", "xla"), ("linear", "xla")]
    with pytest.raises(ValueError, match="--kinds: nope cannot run the classifier; valid: "):
        lrs.rows_for(["linear", "nope"])


def test_bad_flags_exit_2_naming_the_value(capsys):
    for argv, expected in [
        (["--kinds", "nope"], "--kinds: nope"),
        (["--lengths", "1024,x"], "--lengths='1024,x'"),
        (["--size", "huge"], "--size='huge'"),
        (["--steps", "0"], "--steps=0"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            lrs.parse_args(argv)
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err


def test_random_batch_pads_after_each_sequence():
    batch = lrs.random_batch(np.random.default_rng(0), 64, 16, 257)
    tokens = batch["inputs"]
    lengths = (tokens != 0).sum(axis=1)
    assert tokens.shape == (64, 16) and lengths.min() >= 8 and lengths.max() == 16
    # Nonzero tokens are exactly a prefix of each row.
    assert np.array_equal(tokens != 0, np.arange(16)[None, :] < lengths[:, None])
    assert set(np.unique(batch["labels"])) == {0, 1}


def _record(kind, impl, length, steps_per_s=None, plan=None, **extra):
    record = dict(kind=kind, impl=impl, length=length, batch=4, **extra)
    if steps_per_s is not None:
        record["steps_per_s"] = steps_per_s
    if plan is not None:
        record["plan_bytes"] = plan
    return record


def test_ratios_and_table_against_softmax_at_the_same_length():
    at_256 = [
        _record("scaled_dot", "xla", 256, steps_per_s=4.0, plan=8 * 2**20),
        _record("linear", "xla", 256, steps_per_s=10.0, plan=2 * 2**20),
    ]
    at_512 = [
        _record("scaled_dot", "xla", 512, steps_per_s=2.0, plan=32 * 2**20),
        _record("linear", "xla", 512, plan=2**40, skipped="plans 1024.00 GiB > 8"),
    ]
    lrs.add_ratios(at_256)
    lrs.add_ratios(at_512)
    assert at_256[1]["speed_vs_softmax"] == 2.5 and at_256[1]["memory_vs_softmax"] == 0.25
    assert at_256[0]["speed_vs_softmax"] == 1.0
    assert "speed_vs_softmax" not in at_512[1]  # never ran
    assert at_512[1]["memory_vs_softmax"] == 2**40 / (32 * 2**20)
    lines = lrs.table(at_256 + at_512).splitlines()
    assert lines[0] == (
        "| mechanism | impl | speed N=256 | speed N=512 | memory N=256 | memory N=512 |"
    )
    assert lines[2] == "| scaled_dot | xla | 1.00 | 1.00 | 1.00 | 1.00 |"
    assert lines[3] == "| linear | xla | 2.50 | skipped | 0.25 | 32768.00 |"
    assert lines[5] == (
        "Softmax (`scaled_dot`, `xla`) itself: N=256: 4.00 steps/s, 8.0 MiB; "
        "N=512: 2.00 steps/s, 32.0 MiB."
    )
    # A row that failed to build says so instead of a number.
    failed = [_record("scaled_dot", "xla", 64, 1.0, 1), _record("linear", "xla", 64, error="E")]
    lrs.add_ratios(failed)
    assert lrs.table(failed).splitlines()[3] == "| linear | xla | error | error |"


@pytest.mark.slow
def test_long_range_speed_smoke(tmp_path):
    result = lrs.main(["--smoke", "--kinds", "scaled_dot,linear", "--out", str(tmp_path)])
    records = result["records"]
    assert [(r["kind"], r["impl"], r["length"]) for r in records] == [
        (kind, impl, n)
        for n in (64, 128)
        for kind, impl in [("scaled_dot", "xla"), ("linear", "xla"), ("scaled_dot", "blockwise")]
    ]
    for r in records:
        assert "error" not in r and "skipped" not in r, r
        assert r["step_ms"] > 0 and r["plan_bytes"] > 0
        assert r["speed_vs_softmax"] == pytest.approx(
            r["steps_per_s"] / records[0 if r["length"] == 64 else 3]["steps_per_s"]
        )
    # The length reaches the model: softmax's dense logits grow with it.
    assert records[3]["plan_bytes"] > records[0]["plan_bytes"]
    saved = json.loads((tmp_path / "long_range_speed.json").read_text())
    assert saved["records"] == records and saved["settings"]["d_model"] == 64
    assert "| linear | xla |" in (tmp_path / "long_range_speed.md").read_text()
