"""Speed and memory of every attention implementation, against jax.nn and Flax.

    python -m benchmarks.attention [--smoke] [--out benchmarks/results]

Times the forward pass and forward+backward (gradients of all inputs) of
scaled dot-product attention for each implementation over sequence lengths,
head sizes, dtypes and causal or not, and of additive attention (the
materialising form against the chunked one). Every configuration measures
`jax.nn.dot_product_attention` and `flax.linen.dot_product_attention` in the
same run, interleaved with the others, so ratios compare like with like on a
busy machine.

Reported per implementation: milliseconds (best of `--repeats` rounds; in
each round every executable runs once untimed, then once timed), TFLOP/s (forward 4 B H N^2 D, halved for causal; backward 2.5x
the forward), and peak memory from XLA's compiled memory plan (arguments +
outputs + temporaries - aliased; no run needed, so it is exact about what
XLA allocates, not a sampled RSS). With `--rss`, long configurations are also
run in a fresh subprocess per implementation and the rise of its peak RSS
(VmHWM, reset after compiling) over its RSS just before the call is reported.

Writes `attention.json`, `attention.md` and `attention.png` into `--out`, and
prints the markdown table and a suggested `the kinds' auto tables (attn.dot_product_forms.DOT_PRODUCT_AUTO)`.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

import attn
from attn import additive_chunked, implementations, masking
from attn.modules import Score
from benchmarks.attention_report import BASELINES, config_of, plot, write
from benchmarks.common import machine, machine_line, mib, plan_bytes, with_gradients

# The materialising forms' peak RSS reached 2.7x their compiled plan (jax.nn,
# N = 8192 and 16384, causal or not); runs that would not fit in free memory
# are skipped.
RSS_OVER_PLAN = 2.7
TOKENS = 16384  # batch x length held constant, so every length does similar work
HEADS = 2


# --- the functions measured -------------------------------------------------


def dot_product_fn(impl: str, causal: bool):
    """`f(q, k, v) -> out` in the jax.nn layout for one implementation name."""
    if impl == "jax.nn":
        return functools.partial(jax.nn.dot_product_attention, is_causal=causal)
    if impl == "flax":

        def flax_attention(q, k, v):
            mask = nn.make_causal_mask(jnp.ones(q.shape[:2], bool)) if causal else None
            return nn.dot_product_attention(q, k, v, mask=mask, deterministic=True)

        return flax_attention
    return functools.partial(attn.dot_product_attention, is_causal=causal, implementation=impl)


def additive_fn(impl: str, causal: bool):
    """`f(q, k, v, kernels) -> out`, layout `[batch, heads, length, features]`."""
    if impl == "xla":  # what attn.MultiHeadAttention(kind="additive") computes today

        def materialising(q, k, v, kernels):
            params = {
                "query_proj": {"kernel": kernels["query_kernel"]},
                "key_proj": {"kernel": kernels["key_kernel"]},
                "energy": {"kernel": kernels["energy_kernel"]},
            }
            features = {"features": kernels["energy_kernel"].shape[-1]}
            logits = Score("additive", features).apply({"params": params}, q, k)
            mask = masking.causal_mask(q.shape[2], k.shape[2]) if causal else None
            weights = masking.masked_softmax(logits, mask)
            return jnp.einsum("bhqk,bhkd->bhqd", weights.astype(v.dtype), v)

        return materialising
    return lambda q, k, v, kernels: additive_chunked.additive_attention(
        q, k, v, **kernels, is_causal=causal
    )


def inputs(config: dict):
    rng = jax.random.split(jax.random.key(0), 4)
    dtype = jnp.dtype(config["dtype"])
    b, h, n, d = config["batch"], config["heads"], config["length"], config["head_dim"]
    if config["variant"] == "scaled_dot":
        return tuple(jax.random.normal(r, (b, n, h, d), dtype) for r in rng[:3])
    f = config["features"]
    q, k, v = (jax.random.normal(r, (b, h, n, d), dtype) for r in rng[:3])
    keys = jax.random.split(rng[3], 3)
    kernels = dict(
        query_kernel=jax.random.normal(keys[0], (h, d, f)) / math.sqrt(d),
        key_kernel=jax.random.normal(keys[1], (h, d, f)) / math.sqrt(d),
        energy_kernel=jax.random.normal(keys[2], (h, f)) / math.sqrt(f),
    )
    return q, k, v, kernels


def compiled_pair(config: dict, impl: str, args):
    """(forward, forward+backward) compiled executables for one implementation."""
    if config["variant"] == "scaled_dot":
        fn, argnums = dot_product_fn(impl, config["causal"]), (0, 1, 2)
    else:
        fn, argnums = additive_fn(impl, config["causal"]), (0, 1, 2, 3)
    return tuple(jax.jit(f).lower(*args).compile() for f in (fn, with_gradients(fn, argnums)))


def forward_flops(config: dict) -> float:
    b, h, n, d = config["batch"], config["heads"], config["length"], config["head_dim"]
    flops = 4.0 * b * h * n * n * d
    return flops / 2 if config["causal"] else flops


def available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError):
        return 1 << 62


def measure(config: dict, impls, repeats: int) -> list[dict]:
    """One configuration: every implementation, runs interleaved."""
    args = inputs(config)
    records, runnable = [], {}
    for impl in impls:
        record = dict(config, impl=impl)
        records.append(record)
        try:
            forward, both = compiled_pair(config, impl, args)
        except Exception as error:  # unsupported here: keep the reason in the table
            record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
            continue
        record["fwd_peak_bytes"] = plan_bytes(forward)
        record["fwdbwd_peak_bytes"] = plan_bytes(both)
        needs = RSS_OVER_PLAN * record["fwdbwd_peak_bytes"]
        # Memory this process freed but kept is reused by the next run.
        if needs > 0.9 * (available_bytes() + _rss_bytes()):
            record["error"] = f"not run: would need about {needs / 2**30:.0f} GiB"
            continue
        runnable[impl] = (forward, both)
    # Wall time, and the process's CPU time (all threads), which other load on
    # a shared machine disturbs less. Each timed call follows an untimed call
    # of the same executable, so that no implementation pays for the memory
    # another one just freed (page faults of fresh allocations).
    times = {impl: ([], [], []) for impl in runnable}
    for _ in range(repeats):
        for impl, executables in runnable.items():
            for executable, samples in zip(executables, times[impl]):
                jax.block_until_ready(executable(*args))
                start, start_cpu = time.perf_counter(), time.process_time()
                jax.block_until_ready(executable(*args))
                samples.append(time.perf_counter() - start)
                if executable is executables[1]:
                    times[impl][2].append(time.process_time() - start_cpu)
    flops = forward_flops(config) if config["variant"] == "scaled_dot" else None
    for record in records:
        if record["impl"] not in times:
            continue
        fwd, both, both_cpu = (min(samples) for samples in times[record["impl"]])
        record.update(fwd_ms=fwd * 1e3, fwdbwd_ms=both * 1e3, fwdbwd_cpu_ms=both_cpu * 1e3)
        if flops:
            record.update(fwd_tflops=flops / fwd / 1e12, fwdbwd_tflops=3.5 * flops / both / 1e12)
    add_ratios(records)
    return records


def add_ratios(records: list[dict]) -> None:
    """Speed (baseline time / time) and memory (peak / baseline peak) ratios."""
    by_impl = {r["impl"]: r for r in records}
    for record in records:
        for base in BASELINES if record["variant"] == "scaled_dot" else ("xla",):
            ref = by_impl.get(base)
            if not ref or "fwdbwd_ms" not in ref or "fwdbwd_ms" not in record:
                continue
            record[f"speed_vs_{base}"] = ref["fwdbwd_ms"] / record["fwdbwd_ms"]
            record[f"cpu_speed_vs_{base}"] = ref["fwdbwd_cpu_ms"] / record["fwdbwd_cpu_ms"]
            record[f"fwd_speed_vs_{base}"] = ref["fwd_ms"] / record["fwd_ms"]
            record[f"memory_vs_{base}"] = record["fwdbwd_peak_bytes"] / ref["fwdbwd_peak_bytes"]


# --- peak RSS in a fresh process --------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's peak RSS since exec or the last reset (VmHWM).

    Not ru_maxrss: after fork and exec that keeps the parent's RSS.
    """
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def child_rss(config: dict, impl: str) -> int:
    """Run in a subprocess: rise of peak RSS over the RSS before one fwd+bwd call."""
    args = inputs(config)
    _, both = compiled_pair(config, impl, args)
    jax.block_until_ready(args)
    before = _rss_bytes()
    try:  # reset the peak to the current RSS, so compilation does not count
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    jax.block_until_ready(both(*args))
    return max(0, _peak_rss_bytes() - before)


def rss_in_subprocess(config: dict, impl: str) -> int | None:
    payload = json.dumps(dict(config=config, impl=impl))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.attention", "--child", payload],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    return int(lines[-1]) if result.returncode == 0 and lines else None


# --- the grid ---------------------------------------------------------------


def dot_product_configs(lengths, head_dims, dtypes, causal_options, long_from, tokens, heads):
    configs = []
    for dtype in dtypes:
        for head_dim in head_dims:
            for causal in causal_options:
                for n in lengths:
                    # Beyond `long_from` only the headline column (first dtype and head size).
                    headline = dtype == dtypes[0] and head_dim == head_dims[0]
                    if n > long_from and not headline:
                        continue
                    configs.append(
                        dict(
                            variant="scaled_dot",
                            length=n,
                            batch=max(1, tokens // n),
                            heads=heads,
                            head_dim=head_dim,
                            dtype=dtype,
                            causal=causal,
                        )
                    )
    return configs


def additive_configs(lengths, features, head_dim=64):
    return [
        dict(
            variant="additive",
            length=n,
            batch=1,
            heads=1,
            head_dim=head_dim,
            features=features,
            dtype="float32",
            causal=False,
        )
        for n in lengths
    ]


def dot_product_impls() -> list[str]:
    ours = [i for i in implementations.available_implementations() if i != "xla"]
    return [*BASELINES, "xla", *ours]


# --- reports ----------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (tests)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--lengths", default=None, help="comma-separated; default by backend")
    parser.add_argument("--head-dims", default="64,128")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--causal", default="no,yes", help="no, yes or no,yes")
    parser.add_argument(
        "--long-from",
        type=int,
        default=4096,
        help="lengths above this run only for the first dtype and head size",
    )
    parser.add_argument("--additive-lengths", default="128,256,512,1024")
    parser.add_argument("--additive-features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="also peak RSS, in subprocesses")
    parser.add_argument("--rss-from", type=int, default=4096, help="--rss for N >= this")
    parser.add_argument("--only", default="", help="scaled_dot or additive: run one variant")
    parser.add_argument(
        "--resume", action="store_true", help="keep the configurations already in --out"
    )
    parser.add_argument(
        "--remeasure-rss", action="store_true", help="with --resume: redo --rss of kept rows"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.child:
        payload = json.loads(args.child)
        print(child_rss(payload["config"], payload["impl"]))
        return []
    ints = lambda text: [int(x) for x in text.split(",") if x]
    causal_options = [c == "yes" for c in args.causal.split(",")]
    if args.smoke:
        dot = dot_product_configs([24], [16], ["float32"], [True], 64, 48, 2)
        additive = additive_configs([24], 8, head_dim=8)
        repeats = 1
    else:
        default = "128,256,512,1024,2048,4096,8192,16384"
        if jax.default_backend() == "gpu":
            default += ",32768,65536"
        dot = dot_product_configs(
            ints(args.lengths or default),
            ints(args.head_dims),
            args.dtypes.split(","),
            causal_options,
            args.long_from,
            TOKENS,
            HEADS,
        )
        additive = additive_configs(ints(args.additive_lengths), args.additive_features)
        repeats = args.repeats
    if args.only == "scaled_dot":
        additive = []
    elif args.only == "additive":
        dot = []

    info = machine()
    print(f"# {machine_line(info)}", flush=True)
    records = []
    saved = os.path.join(args.out, "attention.json")
    if args.resume and os.path.exists(saved):
        with open(saved) as f:
            records = json.load(f)["records"]
    done = {json.dumps(config_of(r), sort_keys=True) for r in records}
    if args.remeasure_rss:
        for row in records:
            if "error" not in row and row["length"] >= args.rss_from:
                row["rss_rise_bytes"] = rss_in_subprocess(config_of(row), row["impl"])
                print(row["impl"], row["length"], row["causal"], row["rss_rise_bytes"], flush=True)
        write(args.out, records, info)
    work = [(c, dot_product_impls()) for c in dot] + [(c, ["xla", "blockwise"]) for c in additive]
    for config, impls in work:
        if json.dumps(config, sort_keys=True) in done:
            continue
        rows = measure(config, impls, repeats)
        if args.rss and config["length"] >= args.rss_from:
            for row in rows:
                if "error" not in row:
                    row["rss_rise_bytes"] = rss_in_subprocess(config, row["impl"])
        records.extend(rows)
        for r in rows:
            shown = r.get("error") or (
                f"fwd {r['fwd_ms']:9.1f} ms  fwd+bwd {r['fwdbwd_ms']:9.1f} ms  "
                f"peak {mib(r['fwdbwd_peak_bytes']):>9} MiB"
            )
            print(
                f"{r['variant']:10} N={r['length']:<6} D={r['head_dim']:<4} {r['dtype']:9} "
                f"causal={int(r['causal'])} {r['impl']:10} {shown}",
                flush=True,
            )
        write(args.out, records, info)  # after every configuration: a crash keeps the rest

    table, suggestion = write(args.out, records, info)
    plot(records, os.path.join(args.out, "attention.png"))
    print(table)
    print(
        "Fastest fwd+bwd by head size and length (data for the kinds' auto tables (attn.dot_product_forms.DOT_PRODUCT_AUTO)):"
    )
    print(json.dumps(suggestion, indent=1))
    return records


if __name__ == "__main__":
    main()
