"""Long Range Arena's Table 2 here: training steps per second and peak memory of the
long-range classifier with every mechanism, relative to softmax attention, by length.

    python -m benchmarks.long_range_speed [--lengths 1024,2048,4096] [--kinds linear,...] \\
        [--batch 4] [--steps 2] [--rounds 3] [--out benchmarks/results/long_range]

The model is the byte-level Text task's (`experiments/configs/long_range.py:text,SIZE`,
`cpu` by default: d_model 64, 4 heads, 2 layers) with its positions table raised to
each length N, built by the experiment's own `build_model` and trained by the
shared `trainer.train_step` with the config's optimizer, the state donated as in
training. Each batch holds `--batch` random byte sequences of N/2 to N tokens
(padded to N), seeded. Every mechanism runs its default (`xla`) form; softmax
attention (`scaled_dot`) also runs blockwise, the linear-memory form a long
sequence needs. Rows are timed in interleaved rounds (best round of `--steps`
steps each), so load on the machine affects them alike; memory is XLA's
compiled plan of one step (arguments + outputs + temporaries). A row whose plan
exceeds `--max-gib` is not run and says so.

Writes `long_range_speed.json` and `long_range_speed.md` into `--out`; the
long-range sweep's report (`python launch.py --report=DIR`) reads
`DIR/long_range_speed.json` for its Table 2 when it is there.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import jax
import numpy as np
from flax.training import train_state

import attn
from benchmarks.common import machine, machine_line, plan_bytes, write_results
from experiments.common import trainer
from experiments.common.optimizers import make_optimizer
from experiments.configs import long_range as long_range_config
from experiments.long_range import data as data_lib
from experiments.long_range import report as long_range_report
from experiments.long_range import train as long_range_train

BASELINE = long_range_report.BASELINE
EXTRA_ROWS = (("scaled_dot", "blockwise"),)  # softmax in linear memory


def rows_for(kinds) -> list[tuple[str, str]]:
    """(kind, implementation) rows, the baseline first; `kinds` default to every mechanism
    the classifier can take (`attn.available("padding")`)."""
    able = attn.available(*long_range_train.NEEDS["classify"])
    kinds = able if kinds is None else kinds
    unknown = [k for k in kinds if k not in able]
    if unknown:
        raise ValueError(
            f"--kinds: {', '.join(unknown)} cannot run the classifier; valid: {', '.join(able)}"
        )
    rows = [(kind, "xla") for kind in kinds] + [r for r in EXTRA_ROWS if r[0] in kinds]
    return [BASELINE] + [r for r in rows if r != BASELINE]


def random_batch(rng: np.random.Generator, batch: int, length: int, vocab: int) -> dict:
    """Byte sequences of length/2 to length tokens (0 = padding after them), binary labels."""
    lengths = rng.integers(length // 2, length + 1, size=batch)
    tokens = rng.integers(1, vocab, size=(batch, length)).astype(np.int32)
    tokens[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return {"inputs": tokens, "labels": rng.integers(0, 2, size=batch).astype(np.int32)}


def make_case(config, kind: str, impl: str, length: int, batch: int, seed: int = 0) -> dict:
    """A compiled train step for one row at one length, with its state and batch."""
    config = config.copy_and_resolve_references()
    config.data.text.max_length = length
    config.model.update(attention=kind, implementation=impl, max_length=length)
    info = data_lib.info(config.data)
    model = long_range_train.build_model(config.model, info)
    inputs = random_batch(np.random.default_rng(seed), batch, length, info.vocab_size)
    params = jax.jit(model.init)(jax.random.key(seed), inputs["inputs"][:1])["params"]
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=make_optimizer(config.train)
    )
    loss = functools.partial(long_range_train.loss, model, info.kind)
    step = jax.jit(functools.partial(trainer.train_step, loss_fn=loss), donate_argnums=0)
    key = jax.random.key(seed + 1)
    compiled = step.lower(state, inputs, key).compile()
    return dict(step=compiled, state=state, args=(inputs, key), plan=plan_bytes(compiled))


def time_cases(cases: dict, steps: int, rounds: int) -> dict:
    """Best seconds per step of each case over interleaved rounds."""
    best = {}
    for _ in range(rounds):
        for row, case in cases.items():
            case["state"], _ = case["step"](case["state"], *case["args"])  # warm
            jax.block_until_ready(case["state"])
            start = time.perf_counter()
            for _ in range(steps):
                case["state"], metrics = case["step"](case["state"], *case["args"])
            jax.block_until_ready(metrics)
            seconds = (time.perf_counter() - start) / steps
            best[row] = min(best.get(row, seconds), seconds)
    return best


def measure(config, rows, lengths, batch, steps, rounds, max_bytes) -> list[dict]:
    """One record per row and length; ratios against the baseline at the same length."""
    records = []
    for length in lengths:
        cases, at_length = {}, []
        for kind, impl in rows:
            record = dict(kind=kind, impl=impl, length=length, batch=batch)
            at_length.append(record)
            try:
                case = make_case(config, kind, impl, length, batch)
            except Exception as error:  # cannot run here: keep the reason in the table
                record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
                continue
            record["plan_bytes"] = case["plan"]
            if case["plan"] > max_bytes:
                record["skipped"] = f"plans {case['plan'] / 2**30:.2f} GiB > {max_bytes / 2**30:g}"
                continue
            cases[kind, impl] = case
        seconds = time_cases(cases, steps, rounds)
        for record in at_length:
            row = (record["kind"], record["impl"])
            if row in seconds:
                record["step_ms"] = seconds[row] * 1e3
                record["steps_per_s"] = 1.0 / seconds[row]
        add_ratios(at_length)
        records += at_length
        del cases
    return records


def add_ratios(at_length: list[dict]) -> None:
    """speed: steps/s over the baseline's; memory: plan over the baseline's (same length)."""
    base = next((r for r in at_length if (r["kind"], r["impl"]) == BASELINE), {})
    for r in at_length:
        if "steps_per_s" in r and "steps_per_s" in base:
            r["speed_vs_softmax"] = r["steps_per_s"] / base["steps_per_s"]
        if "plan_bytes" in r and "plan_bytes" in base:
            r["memory_vs_softmax"] = r["plan_bytes"] / base["plan_bytes"]


def table(records: list[dict]) -> str:
    """LRA's Table 2 layout (the long-range report's own): ratios to softmax by length."""
    return "\n".join(long_range_report.speed_table(records))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="N = 64, 128; one step, one round")
    parser.add_argument("--lengths", default="1024,2048,4096")
    parser.add_argument("--kinds", default="", help="comma-separated (default: every one)")
    parser.add_argument("--size", default="cpu", help="the long-range config's SIZE")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-gib", type=float, default=8.0)
    parser.add_argument("--out", default="benchmarks/results/long_range")
    args = parser.parse_args(argv)
    try:
        args.lengths = [int(n) for n in args.lengths.split(",")]
        if min(args.lengths) < 2:
            raise ValueError
    except ValueError:
        parser.error(f"--lengths={args.lengths!r}; valid: comma-separated integers >= 2")
    if args.size not in long_range_config.SIZES:
        parser.error(f"--size={args.size!r}; valid: {', '.join(long_range_config.SIZES)}")
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)}; valid: 1 or more")
    args.kinds = [k for k in args.kinds.split(",") if k] or None
    try:
        args.rows = rows_for(args.kinds)
    except ValueError as error:
        parser.error(str(error))
    if args.smoke:
        args.lengths, args.steps, args.rounds, args.batch = [64, 128], 1, 1, 2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = long_range_config.get_config(f"text,{args.size}")
    info = machine()
    records = measure(
        config, args.rows, args.lengths, args.batch, args.steps, args.rounds, args.max_gib * 2**30
    )
    model = config.model
    settings = dict(
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        rounds=args.rounds,
        d_model=model.d_model,
        num_heads=model.num_heads,
        num_layers=model.num_layers,
    )
    markdown = (
        f"Machine: {machine_line(info)}. Text task's classifier ({args.size}: d_model "
        f"{model.d_model}, {model.num_heads} heads, {model.num_layers} layers), batch "
        f"{args.batch}; best of {args.rounds} interleaved rounds of {args.steps} steps. "
        "Training steps per second and memory (XLA's plan of one step) relative to softmax "
        "(`scaled_dot`, `xla`) at the same length.\n\n" + table(records) + "\n"
    )
    result = dict(machine=info, settings=settings, records=records)
    write_results(args.out, "long_range_speed", result, markdown)
    print(markdown)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
