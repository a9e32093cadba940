"""Long Range Arena-style tables of `benchmarks/kinds.py`: every kind relative to softmax.

For each causality, one row per kind and implementation and one column per
sequence length N: forward+backward speed against softmax attention
(`scaled_dot`) in its plain XLA form and in its blockwise form, both measured
in the same run, and peak memory against the plain form; then the goals of
the efficient mechanisms, checked on those ratios.
"""

from __future__ import annotations

SOFTMAX = "scaled_dot"
# Goals for the linear-time mechanisms: (N, reference implementation, minimum
# forward+backward speed against it, maximum memory against it or None).
LINEAR_TIME = ("linear", "performer", "linformer", "sliding_window")
GOALS = ((4096, "xla", 5.0, 0.1), (16384, "blockwise", 10.0, None))


def _index(records):
    return {(r["causal"], r["length"], r["kind"], r["impl"]): r for r in records}


def ratio(records, causal, length, kind, impl, reference, field):
    """`reference`'s field / this one's for times (speed), this / reference's for memory."""
    rows = _index(records)
    mine, base = (
        rows.get((causal, length, kind, impl)),
        rows.get((causal, length, SOFTMAX, reference)),
    )
    if mine is None or base is None or field not in mine or field not in base:
        return None
    if field.endswith("_ms"):
        return base[field] / mine[field]
    return mine[field] / base[field]


def _cell(value, fmt="{:.2f}"):
    return "-" if value is None else fmt.format(value)


def relative_tables(records: list[dict]) -> str:
    lengths = sorted({r["length"] for r in records})
    lines = []
    for causal in sorted({r["causal"] for r in records}):
        rows = sorted(
            {
                (r["kind"], r["impl"])
                for r in records
                if r["causal"] == causal and r["impl"] != "auto"
            }
        )
        lines += [
            f"Relative to softmax ({'causal' if causal else 'bidirectional'}): forward+backward "
            "speed vs scaled_dot xla / vs scaled_dot blockwise; memory (fwd+bwd plan) vs "
            "scaled_dot xla. `-`: not measured (planned memory over the budget, or no such form).",
            "",
            "| kind | impl | "
            + " | ".join(f"N={n} speed" for n in lengths)
            + " | "
            + " | ".join(f"N={n} memory" for n in lengths)
            + " |",
            "|" + "---|" * (2 + 2 * len(lengths)),
        ]
        for kind, impl in rows:
            speeds = [
                f"{_cell(ratio(records, causal, n, kind, impl, 'xla', 'fwdbwd_ms'))} / "
                f"{_cell(ratio(records, causal, n, kind, impl, 'blockwise', 'fwdbwd_ms'))}"
                for n in lengths
            ]
            memory = [
                _cell(ratio(records, causal, n, kind, impl, "xla", "fwdbwd_peak_bytes"), "{:.3f}")
                for n in lengths
            ]
            lines.append(f"| {kind} | {impl} | " + " | ".join(speeds + memory) + " |")
        lines.append("")
    lines += ["Goals (linear-time mechanisms, plain form):", ""]
    lines += [f"- {line}" for line in goal_lines(records)]
    return "\n".join(lines) + "\n"


def goal_lines(records: list[dict]) -> list[str]:
    out = []
    measured_lengths = {r["length"] for r in records}
    for causal in sorted({r["causal"] for r in records}):
        for length, reference, min_speed, max_memory in GOALS:
            if length not in measured_lengths:
                continue
            for kind in LINEAR_TIME:
                speed = ratio(records, causal, length, kind, "xla", reference, "fwdbwd_ms")
                memory = ratio(records, causal, length, kind, "xla", reference, "fwdbwd_peak_bytes")
                if speed is None:
                    if any(r["kind"] == kind and r["causal"] == causal for r in records):
                        out.append(
                            f"N={length} {'causal' if causal else 'bidirectional'} {kind}: not "
                            f"measured against {SOFTMAX} {reference}"
                        )
                    continue
                ok = speed >= min_speed and (max_memory is None or memory <= max_memory)
                goal = f"speed >= {min_speed:g}" + (
                    f", memory <= {max_memory:g}" if max_memory is not None else ""
                )
                out.append(
                    f"N={length} {'causal' if causal else 'bidirectional'} {kind} vs {SOFTMAX} "
                    f"{reference}: speed {speed:.2f}, memory {memory:.3f} ({goal}): "
                    f"{'met' if ok else 'NOT met'}"
                )
    return out
