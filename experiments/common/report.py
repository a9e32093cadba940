"""Comparison report of a sweep: report.md and report.html beside the trials.

Trials are grouped by their swept values other than `seed`; each group shows
the mean and spread over seeds of the final metrics (an experiment lists its
headline metrics in eval.json), parameter count, step time and peak memory.
The report also gives the best hyperparameters per variant (by the
experiment's selection metric), learning curves, metrics by sentence length
where the experiment reports them, the attention maps of every group side by
side (and, where trials drew them, per-layer grids and rollouts), and every
trial that failed or diverged, with the reason.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from attn import viz
from experiments.common.runner import read_status
from experiments.common.writers import read_metrics

SEED_FIELDS = ("seed",)
# (heading, folder under a trial's attention/final/, file suffix): the pictures
# shown side by side, one row per sentence. The Transformer's per-layer grids
# and rollout live in their own folders, so the first table keeps one picture
# per sentence for every architecture.
ATTENTION_PICTURES = (
    ("Attention maps (final), side by side", "", ".png"),
    ("Cross-attention of every layer (rows) and head (columns), final", "layers", ".cross.png"),
    ("Attention rollout (final)", "rollout", ".png"),
)


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_trials(sweep_dir: str) -> tuple[list[dict], list[str]]:
    """Every trial of a sweep directory, and the swept fields."""
    sweep = _load(os.path.join(sweep_dir, "sweep.json"))
    if sweep:
        names = [t["name"] for t in sweep["trials"]]
        swept = sweep["trials"][0]["swept"] if sweep["trials"] else []
        overrides = {t["name"]: t["overrides"] for t in sweep["trials"]}
    else:
        names = sorted(
            d
            for d in os.listdir(sweep_dir)
            if os.path.exists(os.path.join(sweep_dir, d, "status.json"))
        )
        swept, overrides = [], {}
    if not names:
        raise ValueError(
            f"{sweep_dir} holds no trials (no sweep.json and no */status.json); give the "
            f"--workdir of a sweep"
        )
    trials = []
    for name in names:
        workdir = os.path.join(sweep_dir, name)
        trials.append(
            dict(
                name=name,
                workdir=workdir,
                overrides=overrides.get(name, {}),
                status=read_status(workdir) or {"status": "not started"},
                result=_load(os.path.join(workdir, "eval.json")),
                metrics=read_metrics(workdir) if os.path.isdir(workdir) else [],
            )
        )
    return trials, swept


def final_metrics(result: dict) -> dict[str, float]:
    """eval.json's per-split numbers flattened to {"split/metric": value}."""
    flat = {}
    for split, metrics in result.get("splits", {}).items():
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and name not in ("examples", "aer_examples"):
                flat[f"{split}/{name}"] = float(value)
    return flat


def _group_key(trial, swept):
    return tuple((f, trial["overrides"].get(f)) for f in swept if f not in SEED_FIELDS)


def _label(key) -> str:
    return ", ".join(f"{f.rsplit('.', 1)[-1]}={v}" for f, v in key if v is not None) or "all"


def summarize(trials, swept):
    """Groups -> rows of mean/std metrics over the finished trials."""
    groups = defaultdict(list)
    for trial in trials:
        groups[_group_key(trial, swept)].append(trial)
    rows = []
    for key, members in groups.items():
        done = [t for t in members if t["status"]["status"] == "done" and t["result"]]
        values = defaultdict(list)
        for t in done:
            for name, value in final_metrics(t["result"]).items():
                values[name].append(value)
            for name in ("parameters", "flops", "seconds_per_step", "peak_rss_mb", "train_seconds"):
                if t["result"].get(name) is not None:
                    values[name].append(float(t["result"][name]))
        rows.append(
            dict(
                key=key,
                label=_label(key),
                trials=members,
                done=len(done),
                mean={k: float(np.mean(v)) for k, v in values.items()},
                std={k: float(np.std(v)) for k, v in values.items()},
            )
        )
    return rows


def _headline(trials) -> tuple[list[str], str | None]:
    for t in trials:
        if t["result"]:
            return t["result"].get("headline", sorted(final_metrics(t["result"]))), t["result"].get(
                "selection"
            )
    return [], None


def _plot_curves(rows, metric, path, title) -> bool:
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    plotted = False
    for row in rows:
        for i, trial in enumerate(row["trials"]):
            points = [(m["step"], m[metric]) for m in trial["metrics"] if m.get(metric) is not None]
            if points:
                steps, values = zip(*points)
                axes.plot(
                    steps,
                    values,
                    color=f"C{rows.index(row) % 10}",
                    alpha=0.8,
                    label=row["label"] if i == 0 else None,
                )
                plotted = True
    if not plotted:
        return False
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    viz.save_figure(figure, path)
    return True


def _by_length(rows):
    """{label: {bucket: mean BLEU}} from the trials' by-length tables (test splits)."""
    table, buckets = {}, []
    for row in rows:
        sums = defaultdict(lambda: [0.0, 0])
        for trial in row["trials"]:
            if trial["status"]["status"] != "done" or not trial["result"]:
                continue
            for split in ("test", "test_long"):
                for entry in trial["result"]["splits"].get(split, {}).get("by_length", []):
                    sums[entry["bucket"]][0] += entry["bleu"] * entry["count"]
                    sums[entry["bucket"]][1] += entry["count"]
                    if entry["bucket"] not in buckets:
                        buckets.append(entry["bucket"])
        if sums:
            table[row["label"]] = {b: s / n for b, (s, n) in sums.items() if n}
    buckets.sort(key=lambda b: int(b.split("-")[0].rstrip("+")))
    return buckets, table


def _plot_by_length(buckets, table, path):
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for label, values in table.items():
        axes.plot(
            range(len(buckets)), [values.get(b, np.nan) for b in buckets], marker="o", label=label
        )
    axes.set_xticks(range(len(buckets)), buckets)
    axes.set_xlabel("source sentence length (words)")
    axes.set_ylabel("BLEU")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title("BLEU by sentence length (test and longer-than-training test)")
    figure.tight_layout()
    viz.save_figure(figure, path)


def _fmt(mean, std=None, name=""):
    if mean is None:
        return "-"
    percent = name.endswith("exact_match") or name.endswith("accuracy")
    scale, spec = (100, ".1f") if percent else (1, ".3f" if abs(mean) < 1 else ".1f")
    text = format(mean * scale, spec)
    if std:
        text += " ± " + format(std * scale, spec)
    return text + ("%" if percent else "")


def sweep_experiment(sweep_dir: str) -> str | None:
    """The experiment the sweep's trials ran (their config.json), or None before any ran."""
    trials, _ = load_trials(sweep_dir)
    for trial in trials:
        config = _load(os.path.join(trial["workdir"], "config.json"))
        if config and config.get("experiment"):
            return config["experiment"]
    return None


def write_report(sweep_dir: str, sections=None) -> list[str]:
    """Writes report.md, report.html and the plots into `sweep_dir`; returns their paths.

    `sections(trials, sweep_dir, figures_dir)`, where given, returns the
    experiment's own markdown lines, placed after the comparison table.
    """
    trials, swept = load_trials(sweep_dir)
    rows = summarize(trials, swept)
    headline, selection = _headline(trials)
    figures_dir = os.path.join(sweep_dir, "report_figures")
    os.makedirs(figures_dir, exist_ok=True)
    md = [f"# Sweep report: {os.path.basename(os.path.abspath(sweep_dir))}", ""]
    md.append(
        f"{len(trials)} trials; swept: {', '.join(swept) or '-'}. Mean ± std over seeds of "
        f"finished trials."
    )
    md.append("")
    # Forward FLOPs per example, where the experiment counts them (vision).
    has_flops = any("flops" in row["mean"] for row in rows)
    columns = ["variant", "done"] + headline + ["parameters"]
    columns += ["forward MFLOPs/example"] * has_flops + ["s/step", "peak RSS MB"]
    md += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["label"], f"{row['done']}/{len(row['trials'])}"]
        cells += [_fmt(row["mean"].get(m), row["std"].get(m), m) for m in headline]
        cells += [f"{row['mean']['parameters']:,.0f}" if "parameters" in row["mean"] else "-"]
        if has_flops:
            flops = row["mean"].get("flops")
            cells += [f"{flops / 1e6:,.1f}" if flops is not None else "-"]
        cells += [
            _fmt(row["mean"].get("seconds_per_step")),
            f"{row['mean']['peak_rss_mb']:.0f}" if "peak_rss_mb" in row["mean"] else "-",
        ]
        md.append("| " + " | ".join(cells) + " |")

    if selection and swept:
        variant_field = "model.attention" if "model.attention" in swept else swept[0]
        best = {}
        for row in rows:
            variant = dict(row["key"]).get(variant_field, row["label"])
            score = row["mean"].get(selection)
            if score is not None and (variant not in best or score > best[variant][0]):
                best[variant] = (score, row["label"])
        md += ["", f"## Best hyperparameters per {variant_field} (by {selection})", ""]
        md += [
            f"- {variant}: {label} ({selection} {_fmt(score, name=selection)})"
            for variant, (score, label) in best.items()
        ]

    if sections is not None:
        md += sections(trials, sweep_dir, figures_dir)

    images = []
    for metric, title in (
        ("train/loss", "training loss"),
        ("validation/bleu", "validation BLEU"),
        ("validation/accuracy", "validation accuracy"),
    ):
        path = os.path.join(figures_dir, metric.replace("/", "_") + ".png")
        if _plot_curves(rows, metric, path, title):
            images.append((title, path))
    buckets, table = _by_length(rows)
    if buckets:
        path = os.path.join(figures_dir, "bleu_by_length.png")
        _plot_by_length(buckets, table, path)
        images.append(("BLEU by sentence length", path))
        md += [
            "",
            "## BLEU by source-sentence length",
            "",
            "| length | " + " | ".join(table) + " |",
            "|---|" + "---|" * len(table),
        ]
        md += [
            f"| {b} | " + " | ".join(_fmt(table[v].get(b)) for v in table) + " |" for b in buckets
        ]
    md += ["", "## Curves", ""] + [f"![{t}]({os.path.relpath(p, sweep_dir)})" for t, p in images]

    for heading, subfolder, suffix in ATTENTION_PICTURES:
        maps = _attention_maps(rows, subfolder, suffix)
        if not maps:
            continue
        md += ["", f"## {heading}", ""]
        sentences = sorted({s for files in maps.values() for s in files})
        # Vision runs draw test images ("image 0"), translation runs sentences.
        example = "image" if all(s.startswith("image") for s in sentences) else "sentence"
        md += [
            f"| {example} | " + " | ".join(label for label in maps) + " |",
            "|---|" + "---|" * len(maps),
        ]
        for sentence in sentences:
            cells = [
                f"![]({os.path.relpath(maps[label][sentence], sweep_dir)})"
                if sentence in maps[label]
                else "-"
                for label in maps
            ]
            md.append(f"| {sentence} | " + " | ".join(cells) + " |")

    problems = [t for t in trials if t["status"]["status"] not in ("done",)]
    md += ["", "## Trials that did not finish", ""]
    md += [
        f"- `{t['name']}`: **{t['status']['status']}**"
        + (f" at step {t['status']['step']}" if t["status"].get("step") is not None else "")
        + (f": {t['status']['error'][:300]}" if t["status"].get("error") else "")
        for t in problems
    ] or ["None: every trial finished."]
    markdown = "\n".join(md) + "\n"
    md_path = os.path.join(sweep_dir, "report.md")
    with open(md_path, "w") as f:
        f.write(markdown)
    html_path = os.path.join(sweep_dir, "report.html")
    with open(html_path, "w") as f:
        f.write(_to_html(markdown, sweep_dir))
    return [md_path, html_path]


def _attention_maps(rows, subfolder: str, suffix: str) -> dict[str, dict[str, str]]:
    """{group label: {sentence: picture}} from the first finished trial of each group."""
    maps = {}
    for row in rows:
        for trial in row["trials"]:
            folder = os.path.join(trial["workdir"], "attention", "final", subfolder)
            if trial["status"]["status"] == "done" and os.path.isdir(folder):
                found = {
                    name[: -len(suffix)].replace("_", " "): os.path.join(folder, name)
                    for name in sorted(os.listdir(folder))
                    if name.endswith(suffix)
                }
                if found:
                    maps[row["label"]] = found
                break
    return maps


def _to_html(markdown: str, base_dir: str) -> str:
    """The report's markdown as a self-contained HTML page (images embedded)."""

    def inline(text):
        out, rest = [], text
        while "![" in rest:
            before, _, after = rest.partition("![")
            alt, _, after = after.partition("](")
            src, _, rest = after.partition(")")
            with open(os.path.join(base_dir, src), "rb") as f:
                data = base64.b64encode(f.read()).decode()
            out.append(html.escape(before))
            out.append(
                f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" '
                f'style="max-width:480px">'
            )
        out.append(html.escape(rest))
        return "".join(out).replace("**", "")

    body, in_table = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
