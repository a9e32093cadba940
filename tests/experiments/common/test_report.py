"""The sweep report's attention sections, from trial directories made by hand."""

import json

from matplotlib.figure import Figure

from attn import viz
from experiments.common import report


def picture(path):
    viz.save_figure(Figure(figsize=(1, 1)), path)


def trial(sweep, name, attention, pictures):
    workdir = sweep / name
    workdir.mkdir(parents=True)
    (workdir / "status.json").write_text(json.dumps({"status": "done"}))
    (workdir / "eval.json").write_text(json.dumps({"splits": {"test": {"bleu": 1.0}}}))
    for relative in pictures:
        picture(workdir / "attention" / "final" / relative)
    return {"name": name, "overrides": {"model.attention": attention}, "swept": []}


def test_per_layer_grids_and_rollouts_get_their_own_tables(tmp_path):
    sweep = tmp_path / "sweep"
    trials = [
        trial(sweep, "rnn", "additive", ["i_love_you.png"]),
        trial(
            sweep,
            "transformer",
            "scaled_dot",
            [
                "i_love_you.png",
                "layers/i_love_you.cross.png",
                "layers/i_love_you.encoder_self.png",
                "layers/i_love_you.decoder_self.png",
                "rollout/i_love_you.png",
            ],
        ),
    ]
    for entry in trials:
        entry["swept"] = ["model.attention"]
    (sweep / "sweep.json").write_text(json.dumps({"trials": trials}))

    md_path, html_path = report.write_report(str(sweep))
    markdown = open(md_path).read()
    sections = markdown.split("\n## ")
    side_by_side = next(s for s in sections if s.startswith("Attention maps (final)"))
    assert "| i love you | ![](rnn/attention/final/i_love_you.png) | " in side_by_side
    assert "self" not in side_by_side and "cross" not in side_by_side
    grids = next(s for s in sections if s.startswith("Cross-attention of every layer"))
    # Only the groups that drew grids get a column.
    assert "| sentence | attention=scaled_dot |" in grids
    assert "| i love you | ![](transformer/attention/final/layers/i_love_you.cross.png) |" in grids
    assert "encoder_self" not in grids
    rollout = next(s for s in sections if s.startswith("Attention rollout"))
    assert "![](transformer/attention/final/rollout/i_love_you.png)" in rollout
    assert open(html_path).read().count("data:image/png;base64") >= 4
