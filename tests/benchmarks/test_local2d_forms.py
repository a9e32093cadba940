"""The local 2-D forms benchmark: its ratios, its table, and a smoke run."""

import json

import pytest

from attn import local2d
from benchmarks import local2d_forms


def test_markdown_shows_each_form_and_the_ratios_given():
    layers = [
        dict(
            batch=4,
            size=7,
            channels=8,
            heads=2,
            kernel=7,
            ms={"lean": 30.0, "lean_batch_minor": 20.0, "blocked": 6.0},
            auto="blocked",
            auto_vs_lean=5.0,
        )
    ]
    columns = ("model", "batch", "step_ms", "time_vs_conv", "flops_vs_conv", "vs_flop_share")
    steps = [
        dict(zip(columns, ("conv", 4, 10.0, 1.0, 1.0, 1.0))),
        dict(zip(columns, ("conv_stem_attention auto", 4, 64.0, 6.4, 3.2, 2.0))),
    ]
    text = local2d_forms.markdown(layers, steps, "a machine")
    assert "| 4 x 7 x 7 x 8, 2 | 30.0 | 20.0 | 6.0 | blocked | 5.00x |" in text
    assert "| conv_stem_attention auto | 4 | 64.0 | 6.40x | 3.20x | 2.00x |" in text


@pytest.mark.slow
def test_smoke_run_writes_rows_whose_ratios_follow_from_their_times(tmp_path):
    payload = local2d_forms.main(["--smoke", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "local2d_forms.json").read_text()) == json.loads(
        json.dumps(payload)
    )
    for row in payload["layers"]:
        d = row["channels"] // row["heads"]
        assert row["auto"] == local2d.choose_form(row["size"], row["size"], row["kernel"], d)
        assert row["auto_vs_lean"] == pytest.approx(row["ms"]["lean"] / row["ms"][row["auto"]])
    by_model = {r["model"]: r for r in payload["train_steps"]}
    assert set(by_model) == {"conv", "conv_stem_attention lean", "conv_stem_attention auto"}
    conv = by_model["conv"]
    for row in by_model.values():
        assert row["time_vs_conv"] == pytest.approx(row["step_ms"] / conv["step_ms"])
        assert row["flops_vs_conv"] == pytest.approx(
            row["flops_per_image"] / conv["flops_per_image"]
        )
        assert row["vs_flop_share"] == pytest.approx(row["time_vs_conv"] / row["flops_vs_conv"])
    # The attention model does more arithmetic than the convolution it replaces.
    assert by_model["conv_stem_attention auto"]["flops_vs_conv"] > 1.0


def test_bad_rounds_exit_2_before_timing(capsys):
    with pytest.raises(SystemExit) as exit_info:
        local2d_forms.main(["--rounds", "0"])
    assert exit_info.value.code == 2
    assert "--rounds must be at least 1, got 0" in capsys.readouterr().err
