"""The long-range sweep's report sections, in Long Range Arena's and Zoology's layouts.

`python launch.py --report=SWEEP_DIR` on a long-range sweep adds, after the
common per-trial table (experiments/common/report.py):

- Table 1: test accuracy (%) of every mechanism on every task the sweep ran,
  mean ± std over seeds, with the average over the LRA tasks where a mechanism
  ran them all, and the published vanilla Transformer row of Tay et al. (2021)
  for reference (their data sizes, not these).
- Table 2: training speed and memory relative to softmax attention by length,
  from `SWEEP_DIR/long_range_speed.json` (`python -m benchmarks.long_range_speed
  --out=SWEEP_DIR` writes it); without it, the command that makes it.
- Figure 3: average accuracy against speed at the longest length measured,
  marker area by memory, where both tables have the mechanism.
- MQAR: recall accuracy by number of key-value pairs, per mechanism and width
  (the `mqar_pairs` sweep), table and figure; each point at the learning rate
  with the best validation accuracy where several were tried.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from attn import viz

# Tay et al. (2021), Table 1: the vanilla Transformer's test accuracy (%).
PUBLISHED_TRANSFORMER = {
    "listops": 36.37,
    "text": 64.27,
    "retrieval": 57.46,
    "image": 42.44,
    "pathfinder": 71.40,
}
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder")
BASELINE = ("scaled_dot", "xla")
SPEED_FILE = "long_range_speed.json"


def _config(trial: dict) -> dict:
    try:
        with open(os.path.join(trial["workdir"], "config.json")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _finished(trials):
    """(trial, eval.json) of every finished long-range trial."""
    for trial in trials:
        result = trial.get("result") or {}
        if trial["status"]["status"] == "done" and "task" in result and "attention" in result:
            yield trial, result


def accuracies(trials) -> dict[tuple[str, str], list[float]]:
    """{(mechanism, task): [test accuracy of each finished trial]} for the LRA tasks."""
    cells = defaultdict(list)
    for _, result in _finished(trials):
        if result["task"] in LRA_TASKS:
            cells[result["attention"], result["task"]].append(
                float(result["splits"]["test"]["accuracy"])
            )
    return dict(cells)


def averages(cells) -> dict[str, float]:
    """Mean over tasks of each mechanism's mean accuracy, where it ran every task shown."""
    tasks = {task for _, task in cells}
    kinds = {kind for kind, _ in cells}
    return {
        kind: float(np.mean([np.mean(cells[kind, task]) for task in sorted(tasks)]))
        for kind in kinds
        if all((kind, task) in cells for task in tasks)
    }


def _percent(values) -> str:
    if not values:
        return "-"
    text = f"{100 * np.mean(values):.1f}"
    return text + (f" ± {100 * np.std(values):.1f}" if len(values) > 1 else "")


def accuracy_table(cells) -> list[str]:
    tasks = [t for t in LRA_TASKS if any(task == t for _, task in cells)]
    kinds = sorted({kind for kind, _ in cells})
    average = averages(cells)
    lines = [
        "| mechanism | " + " | ".join(tasks) + " | average |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for kind in kinds:
        row = [_percent(cells.get((kind, task), [])) for task in tasks]
        mean = f"{100 * average[kind]:.1f}" if kind in average else "-"
        lines.append(f"| {kind} | " + " | ".join(row) + f" | {mean} |")
    published = [f"{PUBLISHED_TRANSFORMER[t]:.2f}" for t in tasks]
    published_mean = np.mean([PUBLISHED_TRANSFORMER[t] for t in tasks])
    lines.append(
        "| Transformer, published (Tay et al. 2021) | "
        + " | ".join(published)
        + f" | {published_mean:.2f} |"
    )
    return lines


def speed_table(records: list[dict]) -> list[str]:
    """Table 2's layout: speed and memory of each row relative to softmax at each length
    (records as benchmarks/long_range_speed.py writes them)."""
    lengths = sorted({r["length"] for r in records})
    rows = list(dict.fromkeys((r["kind"], r["impl"]) for r in records))
    cell = {(r["kind"], r["impl"], r["length"]): r for r in records}
    head = ["mechanism", "impl"] + [f"speed N={n}" for n in lengths]
    head += [f"memory N={n}" for n in lengths]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, impl in rows:
        got = [cell.get((kind, impl, n), {}) for n in lengths]
        cells = [kind, impl] + [_ratio(r, "speed_vs_softmax") for r in got]
        cells += [_ratio(r, "memory_vs_softmax") for r in got]
        lines.append("| " + " | ".join(cells) + " |")
    base = [cell.get((*BASELINE, n), {}) for n in lengths]
    itself = "; ".join(
        f"N={n}: {_number(r.get('steps_per_s'))} steps/s, {_number(r.get('plan_bytes'), 2**20, '.1f')} MiB"
        for n, r in zip(lengths, base)
    )
    return lines + ["", f"Softmax (`scaled_dot`, `xla`) itself: {itself}."]


def _ratio(record: dict, name: str) -> str:
    if name in record:
        return f"{record[name]:.2f}"
    return "skipped" if "skipped" in record else ("error" if "error" in record else "-")


def _number(value, unit=1, spec=".2f") -> str:
    return "-" if value is None else format(value / unit, spec)


def _plot_tradeoff(average, records, path) -> bool:
    """LRA's Figure 3: average accuracy against speed at the longest length, area by memory."""
    longest = max(r["length"] for r in records)
    points = [
        (r["kind"], r["speed_vs_softmax"], r["memory_vs_softmax"], 100 * average[r["kind"]])
        for r in records
        if r["length"] == longest
        and r["impl"] == "xla"
        and r["kind"] in average
        and "speed_vs_softmax" in r
        and "memory_vs_softmax" in r
    ]
    if not points:
        return False
    figure = Figure(figsize=(6, 4.5))
    axes = figure.add_subplot()
    for i, (kind, speed, memory, accuracy) in enumerate(points):
        axes.scatter(speed, accuracy, s=300 * memory, alpha=0.5, color=f"C{i % 10}")
        axes.annotate(kind, (speed, accuracy), fontsize=8, ha="center")
    axes.set_xlabel(f"training steps per second relative to softmax (N={longest})")
    axes.set_ylabel("average test accuracy (%)")
    axes.set_title("Accuracy, speed and memory\n(marker area: memory relative to softmax)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    viz.save_figure(figure, path)
    return True


def _without_learning_rate(config: dict) -> str:
    """The config as a key that ignores train.learning_rate."""
    train = {k: v for k, v in config.get("train", {}).items() if k != "learning_rate"}
    return json.dumps(config | {"train": train}, sort_keys=True, default=str)


def recall_by_pairs(trials) -> dict[tuple[str, int], dict[int, list[float]]]:
    """{(mechanism, d_model): {num_pairs: [test accuracy]}} of the finished MQAR trials.

    As Zoology reports each point at its best learning rate, trials whose
    configs differ only in `train.learning_rate` count once: the one with the
    best validation accuracy gives the cell its test accuracy (so seeds, which
    differ in `seed`, stay separate values of a cell)."""
    best = {}
    for trial, result in _finished(trials):
        config = _config(trial)
        if result["task"] != "mqar" or not config:
            continue
        point = _without_learning_rate(config)
        validation = float(result["splits"]["validation"]["accuracy"])
        if point not in best or validation > best[point][0]:
            best[point] = (validation, result, config)
    table = defaultdict(lambda: defaultdict(list))
    for _, result, config in best.values():
        key = (result["attention"], int(config["model"]["d_model"]))
        pairs = int(config["data"]["mqar"]["num_pairs"])
        table[key][pairs].append(float(result["splits"]["test"]["accuracy"]))
    return {key: dict(values) for key, values in table.items()}


def _plot_recall(table, path) -> None:
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for (kind, width), values in sorted(table.items()):
        pairs = sorted(values)
        axes.plot(
            pairs, [100 * np.mean(values[p]) for p in pairs], marker="o", label=f"{kind}, d={width}"
        )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("key-value pairs")
    axes.set_ylabel("recall accuracy (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title("Multi-query associative recall")
    figure.tight_layout()
    viz.save_figure(figure, path)


def report_sections(trials: list[dict], sweep_dir: str, figures_dir: str) -> list[str]:
    """Markdown lines of the long-range tables and figures (paths relative to sweep_dir)."""
    md = []
    cells = accuracies(trials)
    if cells:
        md += ["", "## Long Range Arena, Table 1 layout: test accuracy (%)", ""]
        md += accuracy_table(cells)
        md += [
            "",
            "Average: over the tasks shown, for mechanisms that finished all of them. The "
            "published row trained on LRA's data at its sizes (`lra` here); the rows above ran "
            "the sizes their configs name.",
        ]
    speed_path = os.path.join(sweep_dir, SPEED_FILE)
    md += ["", "## Long Range Arena, Table 2 layout: speed and memory relative to softmax", ""]
    records = []
    if os.path.exists(speed_path):
        with open(speed_path) as f:
            speed = json.load(f)
        records = speed["records"]
        settings = speed.get("settings", {})
        md.append(
            f"From `{SPEED_FILE}`: the Text task's classifier (d_model {settings.get('d_model')}, "
            f"{settings.get('num_layers')} layers), batch {settings.get('batch')}, training "
            "steps per second and XLA's memory plan of one step."
        )
        md += [""] + speed_table(records)
    else:
        md.append(
            f"Not measured yet: `python -m benchmarks.long_range_speed --out={sweep_dir}` "
            "writes it here."
        )
    average = averages(cells)
    figure_path = os.path.join(figures_dir, "accuracy_speed_memory.png")
    if records and average and _plot_tradeoff(average, records, figure_path):
        md += ["", "## Accuracy, speed and memory (LRA's Figure 3)", ""]
        md.append(f"![accuracy, speed and memory]({os.path.relpath(figure_path, sweep_dir)})")
    recall = recall_by_pairs(trials)
    if recall:
        pairs = sorted({p for values in recall.values() for p in values})
        md += ["", "## Associative recall (MQAR): test accuracy (%) by key-value pairs", ""]
        md += [
            "Where the sweep tried several learning rates, each cell is the test accuracy "
            "of the one with the best validation accuracy (as Zoology reports); ± over seeds.",
            "",
        ]
        md += [
            "| mechanism | d_model | " + " | ".join(f"{p} pairs" for p in pairs) + " |",
            "|---|---|" + "---|" * len(pairs),
        ]
        for (kind, width), values in sorted(recall.items()):
            cells_row = [_percent(values.get(p, [])) for p in pairs]
            md.append(f"| {kind} | {width} | " + " | ".join(cells_row) + " |")
        recall_path = os.path.join(figures_dir, "mqar_by_pairs.png")
        _plot_recall(recall, recall_path)
        md += ["", f"![MQAR by pairs]({os.path.relpath(recall_path, sweep_dir)})"]
    return md


__all__ = ["accuracies", "averages", "recall_by_pairs", "report_sections", "speed_table"]
