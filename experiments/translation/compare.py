"""Side-by-side comparison of finished translation runs.

Reads each run's eval.json and writes, into an output directory:
  comparison.md        metrics per variant, BLEU by source length, attention maps
  comparison.json      the same numbers, machine-readable
  bleu_by_length.png   BLEU against source-sentence length, one line per variant
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from attn import viz

SPLITS = ("test", "test_long")


def load_runs(workdirs: Sequence[str]) -> dict[str, dict]:
    """{variant: eval.json contents} for every workdir that finished."""
    runs = {}
    for workdir in workdirs:
        path = os.path.join(workdir, "eval.json")
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
            result["workdir"] = workdir
            runs[result.get("variant", os.path.basename(workdir))] = result
    return runs


def _by_length_rows(runs: dict[str, dict]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Buckets in length order and {variant: {bucket: BLEU}} over test + test_long."""
    buckets, table = [], {}
    for variant, result in runs.items():
        table[variant] = {}
        for split in SPLITS:
            for row in result["splits"].get(split, {}).get("by_length", []):
                if row["bucket"] not in buckets:
                    buckets.append(row["bucket"])
                # A bucket present in both splits: weight by count.
                previous = table[variant].get(row["bucket"])
                if previous is None:
                    table[variant][row["bucket"]] = (row["bleu"], row["count"])
                else:
                    total = previous[1] + row["count"]
                    table[variant][row["bucket"]] = (
                        (previous[0] * previous[1] + row["bleu"] * row["count"]) / total,
                        total,
                    )
    buckets.sort(key=lambda b: int(b.split("-")[0].rstrip("+")))
    return buckets, {v: {b: bleu for b, (bleu, _) in rows.items()} for v, rows in table.items()}


def _plot_by_length(buckets, table, path: str) -> None:
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for variant, rows in table.items():
        axes.plot(
            range(len(buckets)), [rows.get(b, np.nan) for b in buckets], marker="o", label=variant
        )
    axes.set_xticks(range(len(buckets)), buckets)
    axes.set_xlabel("source sentence length (words)")
    axes.set_ylabel("BLEU")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title("BLEU by sentence length (test and longer-than-training test)")
    figure.tight_layout()
    viz.save_figure(figure, path)


def _fmt(value, spec=".1f", scale=1.0):
    return "-" if value is None else format(value * scale, spec)


def write_comparison(
    workdirs: Sequence[str], output_dir: str, train_max_words: int | None = None
) -> str:
    """Writes the comparison files; returns the markdown text."""
    runs = load_runs(workdirs)
    missing = [w for w in workdirs if not os.path.exists(os.path.join(w, "eval.json"))]
    os.makedirs(output_dir, exist_ok=True)
    lines = ["# Translation: attention variants compared", ""]
    lines += [
        "| variant | parameters | train s | s/step | test BLEU | test exact | test AER "
        "| long BLEU | long exact | long AER |",
        "|" + "---|" * 10,
    ]
    for variant, r in runs.items():
        test, long = r["splits"].get("test", {}), r["splits"].get("test_long", {})
        lines.append(
            f"| {variant} | {r['parameters']:,} | {r['train_seconds']:.0f} | "
            f"{_fmt(r.get('seconds_per_step'), '.3f')} | {_fmt(test.get('bleu'))} | "
            f"{_fmt(test.get('exact_match'), '.1%')} | {_fmt(test.get('aer'), '.3f')} | "
            f"{_fmt(long.get('bleu'))} | {_fmt(long.get('exact_match'), '.1%')} | "
            f"{_fmt(long.get('aer'), '.3f')} |"
        )
    lines += [
        "",
        "'long' is the test split of sentences longer than any seen in training"
        + (f" (more than {train_max_words} words)." if train_max_words else "."),
        "AER: alignment error rate of the teacher-forced attention against the "
        "corpus's true word alignments (lower is better; none has no attention).",
    ]
    if missing:
        lines += [
            "",
            "Runs without results (failed or unfinished): " + ", ".join(f"`{m}`" for m in missing),
        ]

    buckets, table = _by_length_rows(runs)
    if buckets:
        lines += [
            "",
            "## BLEU by source-sentence length",
            "",
            "| length | " + " | ".join(table) + " |",
            "|---|" + "---|" * len(table),
        ]
        for bucket in buckets:
            lines.append(
                f"| {bucket} | " + " | ".join(_fmt(table[v].get(bucket)) for v in table) + " |"
            )
        _plot_by_length(buckets, table, os.path.join(output_dir, "bleu_by_length.png"))
        lines += ["", "![BLEU by length](bleu_by_length.png)"]

    lines += ["", "## Attention maps (after training)", ""]
    for variant, r in runs.items():
        final_dir = os.path.join(r["workdir"], "attention", "final")
        if os.path.isdir(final_dir):
            lines.append(f"### {variant}")
            for name in sorted(os.listdir(final_dir)):
                lines.append(
                    f"![{variant} {name}]({os.path.relpath(os.path.join(final_dir, name), output_dir)})"
                )
            lines.append("")
    markdown = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "comparison.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(output_dir, "comparison.json"), "w") as f:
        json.dump(
            {
                v: {
                    "splits": {
                        s: {
                            k: r["splits"][s].get(k)
                            for k in ("bleu", "exact_match", "aer", "token_accuracy")
                        }
                        for s in r["splits"]
                    },
                    "parameters": r["parameters"],
                    "train_seconds": r["train_seconds"],
                }
                for v, r in runs.items()
            }
            | {"missing": missing},
            f,
            indent=2,
        )
    return markdown
