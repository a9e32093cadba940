"""Speed and memory of every registered attention kind, in every implementation.

    python -m benchmarks.kinds [--smoke] [--out benchmarks/results]
        [--lengths 256,1024,4096] [--batch 1] [--heads 4] [--d_model 256]
        [--repeats 3] [--max_bytes 4294967296] [--fresh]

For each sequence length N, causal and not (causal only for the kinds that
support it), every kind in `attn.available()` (read when it runs, so a kind
registered later is benchmarked with no edit here) runs as
`attn.MultiHeadAttention(heads, kind, implementation=...)` self-attention on a
`[batch, N, d_model]` input, in every implementation
`attn.available_implementations(kind)` lists on this backend (`xla`, the
kind's registered faster forms, and `auto`; the row says what `auto` chose).

Measured per kind and implementation:

- forward time, and forward+backward time (gradient of the sum of the output
  with respect to the input and every parameter), in ms: the median of
  `--repeats` rounds; every executable is compiled once, and in each round
  every executable of the configuration runs once untimed and then once
  timed (`jax.block_until_ready`), interleaved, so load on a shared machine
  hits all of them alike;
- peak memory, forward and forward+backward: XLA's compiled memory plan
  (arguments + outputs + temporaries - aliased), which needs no run;
- ratios to `scaled_dot` with `xla` at the same N and causality, measured in
  the same run: speed = its time / this time (above 1 is faster than it),
  memory = this plan / its plan.

A configuration whose planned memory exceeds `--max_bytes` is compiled but not
run, and recorded as skipped with the reason. `kinds.json` and `kinds.md` are
written into `--out` after every configuration (one N and causality, all its
kinds and implementations); rerun with the same `--out`, configurations
already there are kept and not measured again (`--fresh` starts over), unless
kinds or implementations were added since, when that configuration is
measured again whole.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import attn
from attn import implementations
from benchmarks import kinds_report
from benchmarks.common import (
    machine,
    machine_line,
    mib,
    num,
    plan_bytes,
    with_gradients,
    write_results,
)

BASELINE = ("scaled_dot", "xla")
SOFTMAX_BLOCKWISE = ("scaled_dot", "blockwise")  # softmax attention in linear memory
SETTINGS = ("length", "causal", "batch", "heads", "d_model", "dtype")
MAX_BYTES = 4 * 2**30


def configurations(lengths, batch, heads, d_model, dtype, causal=(False, True)) -> list[dict]:
    return [
        dict(length=n, causal=c, batch=batch, heads=heads, d_model=d_model, dtype=dtype)
        for n in lengths
        for c in causal
    ]


def planned_rows(config: dict, kinds=None) -> list[tuple[str, str]]:
    """(kind, implementation) pairs measured for one configuration, baseline first.

    `kinds`: the kinds to measure (default every registered one); the baseline
    and softmax's blockwise form are always measured, as the ratios need them.
    """
    wanted = None if kinds is None else {*kinds, BASELINE[0], SOFTMAX_BLOCKWISE[0]}
    rows = [
        (kind, impl)
        for kind in attn.available(*(["causal"] if config["causal"] else []))
        if wanted is None or kind in wanted
        for impl in attn.available_implementations(kind)
    ]
    return sorted(rows, key=lambda row: row != BASELINE)


def auto_choice(kind: str, config: dict) -> str:
    head_dim = config["d_model"] // config["heads"]
    return implementations.choose(
        kind,
        batch_heads=config["batch"] * config["heads"],
        q_len=config["length"],
        k_len=config["length"],
        head_dim=head_dim,
        value_dim=head_dim,
        dtype=jnp.dtype(config["dtype"]),
        is_causal=config["causal"],
    )


def executables(config: dict, kind: str, impl: str, params_cache: dict):
    """(forward, forward+backward) compiled, and their arguments (params, inputs).

    Every implementation of a kind shares its parameters, so each kind is
    initialised once per length (jitted; some parameters, Linformer's, are
    sized by the length) into `params_cache`.
    """
    module = attn.MultiHeadAttention(config["heads"], kind, implementation=impl)
    shape = (config["batch"], config["length"], config["d_model"])
    inputs = jax.random.normal(jax.random.key(0), shape, jnp.dtype(config["dtype"]))
    cache_key = (kind, *(config[k] for k in ("length", "batch", "heads", "d_model", "dtype")))
    if cache_key not in params_cache:
        plain = attn.MultiHeadAttention(config["heads"], kind)
        params_cache[cache_key] = jax.jit(plain.init)(jax.random.key(1), inputs)
    params = params_cache[cache_key]

    def forward(params, inputs):
        return module.apply(params, inputs, is_causal=config["causal"])[0]

    args = (params, inputs)
    compiled = tuple(
        jax.jit(fn).lower(*args).compile() for fn in (forward, with_gradients(forward, (0, 1)))
    )
    return compiled, args


def measure_configuration(
    config: dict, repeats: int, max_bytes: float, params_cache: dict | None = None, kinds=None
) -> list[dict]:
    """Every kind (or those of `kinds`) and implementation at one configuration,
    timed interleaved."""
    records, runnable = [], {}
    params_cache = {} if params_cache is None else params_cache
    for kind, impl in planned_rows(config, kinds):
        record = dict(config, kind=kind, impl=impl)
        if impl == "auto":
            record["runs"] = auto_choice(kind, config)
        records.append(record)
        try:
            pair, args = executables(config, kind, impl, params_cache)
        except Exception as error:  # cannot run here: keep the reason in the table
            record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
            continue
        record["fwd_peak_bytes"] = plan_bytes(pair[0])
        record["fwdbwd_peak_bytes"] = plan_bytes(pair[1])
        planned = max(record["fwd_peak_bytes"], record["fwdbwd_peak_bytes"])
        if planned > max_bytes:
            record["skipped"] = (
                f"planned {planned / 2**30:.2f} GiB > budget {max_bytes / 2**30:.2f} GiB"
            )
            continue
        runnable[kind, impl] = (pair, args)
    samples = {row: ([], []) for row in runnable}
    for _ in range(repeats):
        for row, (pair, args) in runnable.items():
            for executable, times in zip(pair, samples[row]):
                jax.block_until_ready(executable(*args))
                start = time.perf_counter()
                jax.block_until_ready(executable(*args))
                times.append(time.perf_counter() - start)
    for record in records:
        row = (record["kind"], record["impl"])
        if row in samples:
            fwd, both = (statistics.median(times) * 1e3 for times in samples[row])
            record.update(fwd_ms=fwd, fwdbwd_ms=both)
    add_ratios(records)
    return records


def add_ratios(records: list[dict]) -> None:
    """Speed (baseline time / time) and memory (plan / baseline plan) against
    `scaled_dot` `xla` of the same configuration."""
    base = next((r for r in records if (r["kind"], r["impl"]) == BASELINE), None)
    if base is None or "fwdbwd_ms" not in base:
        return
    for record in records:
        if "fwdbwd_ms" in record:
            record["fwd_speed"] = base["fwd_ms"] / record["fwd_ms"]
            record["fwdbwd_speed"] = base["fwdbwd_ms"] / record["fwdbwd_ms"]
        if "fwdbwd_peak_bytes" in record:
            record["fwd_memory"] = record["fwd_peak_bytes"] / base["fwd_peak_bytes"]
            record["fwdbwd_memory"] = record["fwdbwd_peak_bytes"] / base["fwdbwd_peak_bytes"]


# --- reports ----------------------------------------------------------------

COLUMNS = (
    "N",
    "causal",
    "kind",
    "impl",
    "fwd ms",
    "fwd+bwd ms",
    "fwd peak MiB",
    "fwd+bwd peak MiB",
    "fwd speed",
    "fwd+bwd speed",
    "fwd memory",
    "fwd+bwd memory",
)


def table_row(r: dict) -> list[str]:
    impl = r["impl"] + (f" ({r['runs']})" if "runs" in r else "")
    cells = [str(r["length"]), "yes" if r["causal"] else "no", r["kind"], impl]
    if "error" in r:
        return cells + [r["error"]] + ["-"] * 7
    if "skipped" in r:
        cells += [f"skipped: {r['skipped']}", "-"]
    else:
        cells += [num(r.get("fwd_ms"), "{:,.2f}"), num(r.get("fwdbwd_ms"), "{:,.2f}")]
    return cells + [
        mib(r.get("fwd_peak_bytes")),
        mib(r.get("fwdbwd_peak_bytes")),
        num(r.get("fwd_speed")),
        num(r.get("fwdbwd_speed")),
        num(r.get("fwd_memory"), "{:.3f}"),
        num(r.get("fwdbwd_memory"), "{:.3f}"),
    ]


def markdown(records: list[dict], info: dict, repeats: int | None = None) -> str:
    first = records[0] if records else {}
    sizes = (
        f"batch {first['batch']}, {first['heads']} heads, d_model {first['d_model']}, "
        f"{first['dtype']}; "
        if first
        else ""
    )
    lines = [
        f"Machine: {machine_line(info)}.",
        "",
        f"`attn.MultiHeadAttention` self-attention, {sizes}times: median of "
        f"{repeats or 'the'} interleaved rounds, ms; forward+backward is the gradient of "
        "the output's sum with respect to the input and the parameters. Peak memory: "
        "XLA's compiled plan (arguments + outputs + temporaries), MiB. Speed: the time "
        "of scaled_dot xla at the same N and causality, measured in the same run, / "
        "this time (above 1 is faster); memory: this plan / its plan. `auto (x)`: auto "
        "ran x.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(table_row(r)) + " |" for r in records]
    return "\n".join(lines) + "\n\n" + kinds_report.relative_tables(records)


def write(out: str, records: list[dict], info: dict, repeats: int) -> str:
    table = markdown(records, info, repeats)
    write_results(out, "kinds", dict(machine=info, repeats=repeats, records=records), table)
    return table


def _key(record: dict) -> str:
    return json.dumps({k: record[k] for k in SETTINGS}, sort_keys=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (tests)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--lengths", default=None, help="comma-separated (default 256,1024,4096)")
    parser.add_argument("--batch", type=int, default=None, help="default 1")
    parser.add_argument("--heads", type=int, default=None, help="default 4")
    parser.add_argument("--d_model", type=int, default=None, help="default 256")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--causal", default="no,yes", help="no, yes or no,yes")
    parser.add_argument("--repeats", type=int, default=None, help="default 3")
    parser.add_argument(
        "--max_bytes", type=float, default=MAX_BYTES, help="skip larger planned memory"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    parser.add_argument(
        "--kinds", default=None, help="comma-separated kinds (default: every registered one)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    smoke = dict(lengths="32,64", batch=1, heads=2, d_model=32, repeats=1)
    default = dict(lengths="256,1024,4096", batch=1, heads=4, d_model=256, repeats=3)
    for name, value in (smoke if args.smoke else default).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    lengths = [int(n) for n in args.lengths.split(",") if n]
    causal = [c == "yes" for c in args.causal.split(",")]
    configs = configurations(lengths, args.batch, args.heads, args.d_model, args.dtype, causal)
    params_cache: dict = {}
    kinds = None
    if args.kinds:
        kinds = [k for k in args.kinds.split(",") if k]
        for kind in kinds:
            try:
                attn.lookup(kind)
            except ValueError as error:  # one line naming the valid kinds, exit code 2
                print(f"--kinds: {error}", file=sys.stderr)
                raise SystemExit(2) from None

    info = machine()
    print(f"# {machine_line(info)}", flush=True)
    records: list[dict] = []
    saved = os.path.join(args.out, "kinds.json")
    if not args.fresh and os.path.exists(saved):
        with open(saved) as f:
            records = json.load(f)["records"]
    for config in configs:
        rows = [r for r in records if _key(r) == _key(config)]
        if {(r["kind"], r["impl"]) for r in rows} >= set(planned_rows(config, kinds)):
            continue  # measured before, every kind and implementation
        measured = measure_configuration(config, args.repeats, args.max_bytes, params_cache, kinds)
        records = [r for r in records if _key(r) != _key(config)] + measured
        for r in measured:
            shown = (
                r.get("error")
                or (r.get("skipped") and f"skipped: {r['skipped']}")
                or (
                    f"fwd {r['fwd_ms']:9.2f} ms  fwd+bwd {r['fwdbwd_ms']:9.2f} ms  "
                    f"peak {mib(r['fwdbwd_peak_bytes']):>9} MiB  "
                    f"speed {num(r.get('fwdbwd_speed'))}"
                )
            )
            print(
                f"N={r['length']:<6} causal={int(r['causal'])} {r['kind']:12} "
                f"{r['impl'] + (' (' + r['runs'] + ')' if 'runs' in r else ''):20} {shown}",
                flush=True,
            )
        write(args.out, records, info, args.repeats)  # after every configuration

    print(write(args.out, records, info, args.repeats))
    return records


if __name__ == "__main__":
    main()
