"""Does the input pipeline slow training? Each experiment's loop on its data, and on one batch.

    python -m benchmarks.input_pipeline [--smoke] [--only=NAME,...] [--steps 120] \\
        [--rounds 2] [--out benchmarks/results]

Each case is an experiment's own config run through the shared trainer
(`experiments/common/trainer.py`) twice per round: once as configured, its
batches coming from its input pipeline, and once with that pipeline replaced
by its first batch repeated (no reading, batching or shuffling left). The
loop is the same code both times, so the ratio of their `seconds_per_step`
(eval.json's median between logs; intervals that compiled are left out) is
what the pipeline costs in the steady state; `data_seconds_per_step` is the
loop's own measure of its wait for batches (eval.json; per log in
metrics.jsonl as `train/data_wait_seconds`), and `compile_seconds` the
compiling each run did: a pipeline whose batches take many shapes compiles
the step once per shape, a cost the fixed batch never pays.
Rounds alternate the two, so load on the machine affects them alike; the best
round of each counts. Cases whose data is not installed (Debian's
`dataset-fashion-mnist`, `trans-de-en`) are reported as skipped.

Writes `input_pipeline.json` and `input_pipeline.md` into `--out`.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

from benchmarks.common import machine, machine_line, write_results
from experiments.common import trainer
from experiments.common.errors import ConfigError
from experiments.configs import language_model, long_range, translation, vision
from experiments.language_model.train import LanguageModelTask
from experiments.long_range.train import LongRangeTask
from experiments.translation.train import TranslationTask
from experiments.vision.train import VisionTask


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    task: type  # the experiment's trainer.Task
    config_arg: str
    get_config: object
    overrides: dict = dataclasses.field(default_factory=dict)


CASES = (
    Case("translation rnn additive (toy corpus)", TranslationTask, "additive,demo", translation),
    Case(
        "translation rnn additive (ding de-en)",
        TranslationTask,
        "additive,demo",
        translation,
        {"data.name": "ding"},
    ),
    Case("translation transformer (toy corpus)", TranslationTask, "transformer,demo", translation),
    Case("language model (toy corpus)", LanguageModelTask, "demo", language_model),
    Case("vision conv (Fashion-MNIST)", VisionTask, "conv,fashion_mnist", vision),
    Case("long_range listops (generated)", LongRangeTask, "listops,cpu", long_range),
    Case("long_range image (Fashion-MNIST)", LongRangeTask, "image,cpu", long_range),
)


class RepeatedBatch:
    """One batch forever, checkpointable as the loop expects."""

    def __init__(self, batch):
        self.batch = batch

    def __next__(self):
        return self.batch

    def get_state(self):
        return {}

    def set_state(self, state):
        del state


def fixed_batch(task_class):
    """`task_class` with its train iterator replaced by its first batch, repeated."""

    def make(config, workdir):
        task = task_class(config, workdir)
        task.train_iterator = RepeatedBatch(next(task.train_iterator))
        return task

    return make


def _set(config, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        config = config[name]
    config[leaf] = value


def case_config(case: Case, steps: int, smoke: bool):
    config = case.get_config.get_config(case.config_arg)
    for dotted, value in case.overrides.items():
        _set(config, dotted, value)
    config.train.steps = steps
    # Twelve intervals: those with a new batch shape (a compilation) are left out.
    config.train.log_every_steps = max(1, steps // 12)
    config.train.max_seconds = 0.0
    config.eval.every_steps = 10**9  # the final evaluation only
    config.checkpoint.every_steps = 10**9
    if smoke:
        config.train.batch_size = min(config.train.batch_size, 8)
    return config


def run_once(case: Case, config, fixed: bool, folder: str) -> dict:
    workdir = tempfile.mkdtemp(dir=folder)
    make = fixed_batch(case.task) if fixed else case.task
    result = trainer.train_and_evaluate(make, config, workdir)
    return {k: result[k] for k in ("seconds_per_step", "data_seconds_per_step", "compile_seconds")}


def measure(case: Case, args, folder: str) -> dict:
    config = case_config(case, args.steps, args.smoke)
    try:
        case.task(config, tempfile.mkdtemp(dir=folder))  # the data is there, the config valid
    except (ConfigError, FileNotFoundError, ValueError) as error:
        return {"case": case.name, "skipped": str(error).splitlines()[0]}
    rounds = {"pipeline": [], "fixed": []}
    for _ in range(args.rounds):
        for label in ("pipeline", "fixed"):
            rounds[label].append(run_once(case, config, label == "fixed", folder))
    return summarise(case, config.train.batch_size, args.steps, rounds)


def summarise(case: Case, batch_size: int, steps: int, rounds: dict) -> dict:
    """One table row from the runs' timings: the best round of each, and their ratio."""
    best = {}
    for label, runs in rounds.items():
        timed = [r["seconds_per_step"] for r in runs if r["seconds_per_step"]]
        if not timed:
            return {"case": case.name, "skipped": f"no clean interval between logs ({label})"}
        best[label] = min(timed)
    return {
        "case": case.name,
        "config": case.config_arg,
        "overrides": case.overrides,
        "batch_size": batch_size,
        "steps": steps,
        "seconds_per_step": best["pipeline"],
        "fixed_seconds_per_step": best["fixed"],
        "slowdown": best["pipeline"] / best["fixed"],
        "data_seconds_per_step": min(r["data_seconds_per_step"] for r in rounds["pipeline"]),
        "fixed_data_seconds_per_step": min(r["data_seconds_per_step"] for r in rounds["fixed"]),
        "compile_seconds": min(r.get("compile_seconds", 0.0) for r in rounds["pipeline"]),
        "fixed_compile_seconds": min(r.get("compile_seconds", 0.0) for r in rounds["fixed"]),
        "rounds": rounds,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| case | config | batch | ms/step (pipeline) | ms/step (fixed batch) | pipeline / fixed "
        "| data wait ms/step | compile s (pipeline / fixed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['case']} | skipped: {r['skipped']} | | | | | | |")
            continue
        lines.append(
            f"| {r['case']} | {r['config']} | {r['batch_size']} | "
            f"{1e3 * r['seconds_per_step']:.1f} | {1e3 * r['fixed_seconds_per_step']:.1f} | "
            f"{r['slowdown']:.3f} | {1e3 * r['data_seconds_per_step']:.2f} | "
            f"{r['compile_seconds']:.1f} / {r['fixed_compile_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="6 steps, batches of 8")
    parser.add_argument("--only", default="", help="comma-separated words a case's name holds")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.rounds = 6, 1
    if args.steps < 12 and not args.smoke:
        parser.error(f"--steps={args.steps}; valid: 12 or more (two clean intervals between logs)")
    words = [w for w in args.only.split(",") if w]
    cases = [c for c in CASES if not words or any(w in c.name for w in words)]
    if not cases:
        parser.error(f"--only={args.only!r} matches no case; cases: {[c.name for c in CASES]}")
    info = machine()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(case, args, folder) for case in cases]
    text = f"{machine_line(info)}\n\n{table(rows)}\n"
    print(text)
    payload = {"machine": info, "args": vars(args), "rows": rows}
    write_results(args.out, "input_pipeline", payload, text, indent=2)
    return {"machine": info, "rows": rows}


if __name__ == "__main__":
    main()
