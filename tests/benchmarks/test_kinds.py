"""benchmarks/kinds.py in smoke mode: every kind (one registered here too), every
implementation, ratios from the recorded timings, the markdown, resuming."""

import json

import pytest

import attn
from benchmarks import kinds

SMOKE = ["--smoke", "--lengths", "32", "--causal", "yes"]


@pytest.fixture
def negative_distance():
    @attn.register("negative_distance", same_features=True)
    def negative_distance(query, key):
        """Minus the squared distance between query and key."""
        return -((query[..., :, None, :] - key[..., None, :, :]) ** 2).sum(-1)

    try:
        yield "negative_distance"
    finally:
        attn.unregister("negative_distance")


def table_rows(markdown: str) -> list[list[str]]:
    """The rows of the first table (the relative tables follow it)."""
    first = markdown.split("\n\nRelative to softmax")[0]
    rows = [line.strip("|").split("|") for line in first.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the header


# About 36 compilations (6 kinds x 3 implementations, forward and forward+backward):
# some 100 s of CPU time on 2 cores, over the ~30 s a default test may take.
@pytest.mark.slow
def test_every_kind_and_implementation_with_ratios_and_resume(
    tmp_path, negative_distance, monkeypatch
):
    records = kinds.main([*SMOKE, "--out", str(tmp_path)])

    assert negative_distance in attn.available()
    assert {r["kind"] for r in records} == set(attn.available("causal"))
    for kind in attn.available("causal"):  # the smoke run is causal only
        impls = [r["impl"] for r in records if r["kind"] == kind]
        assert impls == attn.available_implementations(kind), kind
    for r in records:
        assert "error" not in r and "skipped" not in r, r
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 and r["fwdbwd_peak_bytes"] > 0, r
        assert r["length"] == 32 and r["causal"] is True
    assert {r["runs"] for r in records if r["impl"] == "auto"} <= {"xla", "blockwise"}

    saved = json.loads((tmp_path / "kinds.json").read_text())
    assert saved["records"] == records and saved["machine"]["cores"] >= 1
    (base,) = [r for r in saved["records"] if (r["kind"], r["impl"]) == kinds.BASELINE]
    assert base["fwd_speed"] == base["fwdbwd_speed"] == base["fwdbwd_memory"] == 1.0
    for r in saved["records"]:
        assert r["fwd_speed"] == base["fwd_ms"] / r["fwd_ms"]
        assert r["fwdbwd_speed"] == base["fwdbwd_ms"] / r["fwdbwd_ms"]
        assert r["fwd_memory"] == r["fwd_peak_bytes"] / base["fwd_peak_bytes"]
        assert r["fwdbwd_memory"] == r["fwdbwd_peak_bytes"] / base["fwdbwd_peak_bytes"]

    markdown = (tmp_path / "kinds.md").read_text()
    assert markdown.startswith("Machine:")
    assert "Relative to softmax (causal)" in markdown and "| linear | xla | " in markdown
    rows = table_rows(markdown)
    assert len(rows) == len(records)
    columns = list(kinds.COLUMNS)
    for row, r in zip(rows, records):
        cell = dict(zip(columns, row))
        impl = r["impl"] + (f" ({r['runs']})" if "runs" in r else "")
        assert (cell["N"], cell["causal"], cell["kind"], cell["impl"]) == (
            "32",
            "yes",
            r["kind"],
            impl,
        )
        assert cell["fwd+bwd speed"] == f"{r['fwdbwd_speed']:.2f}"
        assert cell["fwd+bwd memory"] == f"{r['fwdbwd_memory']:.3f}"

    def measure_again(*args, **kwargs):
        raise AssertionError("a configuration already in the out dir was measured again")

    monkeypatch.setattr(kinds, "measure_configuration", measure_again)
    assert kinds.main([*SMOKE, "--out", str(tmp_path)]) == records
    assert (tmp_path / "kinds.md").read_text() == markdown


def test_over_the_memory_budget_is_recorded_as_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(kinds, "planned_rows", lambda config, kinds_wanted=None: [kinds.BASELINE])
    (record,) = kinds.main([*SMOKE, "--max_bytes", "1024", "--out", str(tmp_path)])
    assert record["skipped"].startswith("planned ") and "budget" in record["skipped"]
    assert "fwd_ms" not in record and record["fwdbwd_peak_bytes"] > 1024
    assert "| skipped: planned " in (tmp_path / "kinds.md").read_text()


def test_auto_rows_say_what_auto_runs():
    config = kinds.configurations([32], 1, 2, 32, "float32")[0]
    assert kinds.auto_choice("sigmoid", config) == "xla"  # no faster form
    assert kinds.auto_choice("cosine", config) == "blockwise"  # 32 x 32 pairs: one block
    assert kinds.auto_choice("scaled_dot", config) in attn.available_implementations()


def test_relative_tables_and_goals_from_hand_made_records():
    from benchmarks import kinds_report

    def record(kind, impl, ms, peak, length=4096):
        return dict(
            causal=False, length=length, kind=kind, impl=impl, fwdbwd_ms=ms, fwdbwd_peak_bytes=peak
        )

    records = [
        record("scaled_dot", "xla", 100.0, 1000),
        record("scaled_dot", "blockwise", 50.0, 100),
        record("linear", "xla", 10.0, 50),
        record("performer", "xla", 25.0, 200),
    ]
    assert kinds_report.ratio(records, False, 4096, "linear", "xla", "xla", "fwdbwd_ms") == 10.0
    assert (
        kinds_report.ratio(records, False, 4096, "linear", "xla", "blockwise", "fwdbwd_ms") == 5.0
    )
    tables = kinds_report.relative_tables(records)
    assert "| linear | xla | 10.00 / 5.00 | 0.050 |" in tables
    goals = kinds_report.goal_lines(records)
    assert (
        "N=4096 bidirectional linear vs scaled_dot xla: speed 10.00, memory 0.050 "
        "(speed >= 5, memory <= 0.1): met" in goals
    )
    assert any(
        line.startswith("N=4096 bidirectional performer") and line.endswith("NOT met")
        for line in goals
    )  # speed 4.00 < 5
