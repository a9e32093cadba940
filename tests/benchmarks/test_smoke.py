"""The benchmark scripts in smoke mode: tiny sizes, every output written."""

import json

import numpy as np
import pytest

from benchmarks import attention, attention_report, train_step


@pytest.mark.slow  # 7 s: the benchmark's own smoke run (make test-slow, CI)
def test_attention_benchmark_smoke(tmp_path):
    records = attention.main(["--smoke", "--out", str(tmp_path)])
    by_impl = {(r["variant"], r["impl"]): r for r in records}
    for impl in ("jax.nn", "flax", "xla", "blockwise", "auto"):
        record = by_impl[("scaled_dot", impl)]
        assert "error" not in record, record
        assert record["fwd_ms"] > 0 and record["fwdbwd_ms"] > 0 and record["fwd_tflops"] > 0
        assert record["fwdbwd_peak_bytes"] > 0
        assert record["speed_vs_jax.nn"] > 0 and record["speed_vs_flax"] > 0

    # The ratios are those of the recorded times, within each measured shape.
    def shape(r):
        return tuple(
            r.get(k) for k in ("variant", "length", "batch", "heads", "head_dim", "causal")
        )

    for record in records:
        if record["variant"] != "scaled_dot" or "error" in record:
            continue
        for base in ("jax.nn", "flax"):
            ref = next(r for r in records if r["impl"] == base and shape(r) == shape(record))
            want = ref["fwdbwd_ms"] / record["fwdbwd_ms"]
            assert record[f"speed_vs_{base}"] == pytest.approx(want, rel=1e-12)
    assert by_impl[("scaled_dot", "jax.nn")]["speed_vs_jax.nn"] == 1.0
    assert by_impl[("additive", "blockwise")]["memory_vs_xla"] > 0

    saved = json.loads((tmp_path / "attention.json").read_text())
    assert saved["machine"]["cores"] >= 1 and len(saved["records"]) == len(records)
    table = (tmp_path / "attention.md").read_text()
    assert "| scaled_dot | 24 |" in table and "Machine:" in table
    assert (tmp_path / "attention.png").read_bytes()[:4] == b"\x89PNG"


def test_ratios_and_table_cells_come_from_the_timings():
    def record(variant, impl, fwd, both, cpu, peak):
        return dict(
            variant=variant, impl=impl, length=64, batch=2, heads=4, head_dim=8, features=8,
            dtype="float32", causal=False, fwd_ms=fwd, fwdbwd_ms=both, fwdbwd_cpu_ms=cpu,
            fwdbwd_peak_bytes=peak,
        )  # fmt: skip

    records = [
        record("scaled_dot", "jax.nn", 2.0, 6.0, 12.0, 4 * 2**20),
        record("scaled_dot", "flax", 4.0, 9.0, 18.0, 8 * 2**20),
        record("scaled_dot", "blockwise", 1.0, 3.0, 4.0, 2**20),
    ]
    attention.add_ratios(records)
    fast = records[2]
    assert fast["speed_vs_jax.nn"] == 6.0 / 3.0 and fast["speed_vs_flax"] == 9.0 / 3.0
    assert fast["fwd_speed_vs_jax.nn"] == 2.0 and fast["cpu_speed_vs_jax.nn"] == 3.0
    assert fast["memory_vs_jax.nn"] == 0.25 and fast["memory_vs_flax"] == 0.125
    assert records[0]["speed_vs_jax.nn"] == 1.0 and records[1]["speed_vs_jax.nn"] == 6.0 / 9.0
    info = dict(cpu="cpu", cores=2, backend="cpu", device="TFRT_CPU_0", jax="0", date="today")
    rows = [
        line for line in attention_report.markdown(records, info).splitlines() if line[:3] == "| s"
    ]
    assert rows[2] == (
        "| scaled_dot | 64 | 2 x 4 | 8 | float32 | no | blockwise | 1.0 | 3.0 | - | - | 1.0 "
        "| 2.00 | 3.00 | 3.00 | 0.250 | - |"
    )
    assert "| 0.67 | 1.00 | 0.67 | 2.000 |" in rows[1]


def test_random_batches_follow_the_pipeline_layout():
    batch = train_step.random_batch(np.random.default_rng(0), batch=5, length=8, vocab=50)
    assert {k: v.shape for k, v in batch.items()} == {
        "source": (5, 8),
        "target_input": (5, 8),
        "target_output": (5, 8),
    }
    for row_in, row_out in zip(batch["target_input"], batch["target_output"]):
        assert row_in[0] == train_step.BOS and (row_out == train_step.EOS).sum() == 1
        np.testing.assert_array_equal(
            row_in[1:][row_out[:-1] > train_step.EOS], row_out[:-1][row_out[:-1] > train_step.EOS]
        )
    assert ((batch["source"] == train_step.EOS).sum(1) == 1).all()


@pytest.mark.slow
def test_train_step_benchmark_smoke(tmp_path):
    records = train_step.main(
        ["--smoke", "--variants", "additive", "--transformer-variants", "scaled_dot"]
        + ["--vision-variants", "full_attention", "--out", str(tmp_path)]
    )
    assert [(r["experiment"], r["model"]) for r in records] == [
        ("translation", "rnn additive"),
        ("translation", "transformer scaled_dot"),
        ("vision", "full_attention"),
        ("language_model", "causal scaled_dot"),
    ]
    units = {r["experiment"]: r["unit"] for r in records}
    assert units == {
        "translation": "target tokens/s",
        "vision": "images/s",
        "language_model": "tokens/s",
    }
    for r in records:
        assert r["throughput"] > 0 and r["examples_per_s"] > 0 and r["step_ms"] > 0, r
        assert r["parameters"] > 0 and np.isfinite(r["loss"]), r
    saved = json.loads((tmp_path / "train_step.json").read_text())
    assert saved["machine"]["cores"] >= 1 and len(saved["records"]) == len(records)
    table = (tmp_path / "train_step.md").read_text()
    for heading in ("### translation", "### vision", "### language_model", "Machine:"):
        assert heading in table
    assert "| rnn additive | 8 x 8 x 8 |" in table and "| images/s |" in table


@pytest.mark.slow
def test_train_step_benchmark_only_picks_experiments(tmp_path):
    records = train_step.main(["--smoke", "--only=language_model", "--out", str(tmp_path)])
    assert [r["experiment"] for r in records] == ["language_model"]
    assert "### translation" not in (tmp_path / "train_step.md").read_text()
    with pytest.raises(SystemExit):
        train_step.main(["--smoke", "--only", "speech", "--out", str(tmp_path)])
