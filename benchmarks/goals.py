"""The speed and memory goals, checked on a benchmark run's JSON.

    python -m benchmarks.goals [--results benchmarks/results/attention.json]

Reads what `benchmarks/attention.py` wrote and prints, for each goal, the
measured ratios it rests on and whether they meet it. Every ratio compares two
implementations measured in the same run (interleaved rounds), so load on the
machine affects both sides alike. Nothing is re-measured here.

CPU goals:
  1. Forward+backward of scaled dot-product at least 1.0x the speed of
     `jax.nn.dot_product_attention`, every configuration up to N = 4096
     (checked for `auto` and for `blockwise`).
  2. At N = 16384, blockwise's peak memory at most 1/8 of the XLA forms' while
     at least 0.8x their speed.
  3. Chunked additive attention's peak memory at most 1/10 of the
     materialising form's at q_len = k_len = 1024.
"""

from __future__ import annotations

import argparse
import json


def _rows(records, **where):
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def speed_goal(records, impl: str, max_length: int = 4096) -> dict:
    rows = [
        r
        for r in _rows(records, variant="scaled_dot", impl=impl)
        if r["length"] <= max_length and "speed_vs_jax.nn" in r
    ]
    if not rows:
        return dict(goal=f"{impl} fwd+bwd >= 1.0x jax.nn up to N={max_length}", rows=0)
    worst = min(rows, key=lambda r: r["speed_vs_jax.nn"])
    below = [r for r in rows if r["speed_vs_jax.nn"] < 1.0]
    return dict(
        goal=f"{impl} fwd+bwd >= 1.0x jax.nn up to N={max_length}",
        rows=len(rows),
        below=len(below),
        worst=round(worst["speed_vs_jax.nn"], 3),
        worst_cpu_time=round(worst.get("cpu_speed_vs_jax.nn", float("nan")), 3),
        worst_config=_describe(worst),
        median=round(sorted(r["speed_vs_jax.nn"] for r in rows)[len(rows) // 2], 3),
        met=not below,
    )


def long_goal(records, length: int = 16384) -> list[dict]:
    out = []
    for row in _rows(records, variant="scaled_dot", impl="blockwise", length=length):
        same = dict(
            variant="scaled_dot",
            length=length,
            head_dim=row["head_dim"],
            dtype=row["dtype"],
            causal=row["causal"],
        )
        for base in ("jax.nn", "flax", "xla"):
            ref = _rows(records, impl=base, **same)
            if not ref or "fwdbwd_ms" not in ref[0] or "fwdbwd_ms" not in row:
                continue
            ref = ref[0]
            memory = row["fwdbwd_peak_bytes"] / ref["fwdbwd_peak_bytes"]
            speed = ref["fwdbwd_ms"] / row["fwdbwd_ms"]
            out.append(
                dict(
                    goal=f"N={length} blockwise vs {base}: memory <= 1/8, speed >= 0.8x",
                    config=_describe(row),
                    memory_ratio=round(memory, 4),
                    speed=round(speed, 2),
                    met=memory <= 1 / 8 and speed >= 0.8,
                )
            )
    return out


def additive_goal(records, length: int = 1024) -> list[dict]:
    out = []
    for row in _rows(records, variant="additive", impl="blockwise", length=length):
        ref = _rows(records, variant="additive", impl="xla", length=length)
        if not ref or "fwdbwd_peak_bytes" not in row or "fwdbwd_peak_bytes" not in ref[0]:
            continue
        memory = row["fwdbwd_peak_bytes"] / ref[0]["fwdbwd_peak_bytes"]
        out.append(
            dict(
                goal=f"additive N={length}: chunked memory <= 1/10 of materialising",
                config=_describe(row),
                memory_ratio=round(memory, 4),
                speed=round(ref[0]["fwdbwd_ms"] / row["fwdbwd_ms"], 2),
                met=memory <= 0.1,
            )
        )
    return out


def _describe(r: dict) -> str:
    text = (
        f"N={r['length']} BxH={r['batch']}x{r['heads']} D={r['head_dim']} {r['dtype']}"
        f"{' causal' if r['causal'] else ''}"
    )
    return text + (f" features={r['features']}" if "features" in r else "")


def check(records: list[dict]) -> list[dict]:
    return [
        speed_goal(records, "auto"),
        speed_goal(records, "blockwise"),
        *long_goal(records),
        *additive_goal(records),
    ]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="benchmarks/results/attention.json")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        results = json.load(f)
    goals = check(results["records"])
    for goal in goals:
        print(json.dumps(goal))
    return goals


if __name__ == "__main__":
    main()
