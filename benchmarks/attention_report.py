"""The report of `benchmarks/attention.py`: markdown table, auto table, plot, files."""

from __future__ import annotations

from benchmarks.common import machine_line, mib, num, write_results

BASELINES = ("jax.nn", "flax")  # the peers every implementation is timed against


def markdown(records: list[dict], info: dict) -> str:
    lines = [
        f"Machine: {machine_line(info)}.",
        "",
        "Times: best of the repeats, ms. Speed: baseline time / this time (above 1 is "
        "faster; CPU-time speed: the same from the process's CPU time, less disturbed by "
        "other load); the baseline is jax.nn.dot_product_attention for scaled_dot and the "
        "materialising form (xla) for additive. Peak memory: XLA's compiled plan for "
        "forward+backward (arguments + outputs + temporaries), MiB; mem vs baseline = "
        "this / baseline's. Peak RSS rise (with --rss): a fresh process's peak RSS during "
        "one fwd+bwd call (VmHWM, reset after compiling) over its RSS before the call.",
        "",
        "| variant | N | B x H | D | dtype | causal | impl | fwd ms | fwd+bwd ms | "
        "fwd TFLOP/s | fwd+bwd TFLOP/s | fwd+bwd peak MiB | speed vs jax.nn | "
        "speed vs flax | CPU-time speed vs jax.nn | mem vs baseline | peak RSS rise MiB |",
        "|" + "---|" * 17,
    ]
    for r in records:
        base = "xla" if r["variant"] == "additive" else "jax.nn"
        cells = [
            r["variant"] + (f" F={r['features']}" if r["variant"] == "additive" else ""),
            str(r["length"]),
            f"{r['batch']} x {r['heads']}",
            str(r["head_dim"]),
            r["dtype"],
            "yes" if r["causal"] else "no",
            r["impl"],
        ]
        if "error" in r:
            cells += [r["error"]] + ["-"] * 9
        else:
            cells += [
                num(r.get("fwd_ms"), "{:,.1f}"),
                num(r.get("fwdbwd_ms"), "{:,.1f}"),
                num(r.get("fwd_tflops"), "{:.4f}"),
                num(r.get("fwdbwd_tflops"), "{:.4f}"),
                mib(r.get("fwdbwd_peak_bytes")),
                num(r.get(f"speed_vs_{base}")) + ("" if base == "jax.nn" else " (vs xla)"),
                num(r.get("speed_vs_flax")),
                num(r.get(f"cpu_speed_vs_{base}")),
                num(r.get(f"memory_vs_{base}"), "{:.3f}"),
                mib(r.get("rss_rise_bytes")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def suggest_auto_table(records: list[dict]) -> dict:
    """Per score family and head size, the fastest fwd+bwd implementation by length.

    Votes over dtypes and causal or not (auto's data: the kinds' auto tables (attn.dot_product_forms.DOT_PRODUCT_AUTO)).
    """
    fastest: dict[str, dict[int, dict[int, dict[str, int]]]] = {}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if "fwdbwd_ms" in r and r["impl"] not in (*BASELINES, "auto"):
            key = (r["variant"], r["head_dim"], r["length"], r["dtype"], r["causal"])
            groups.setdefault(key, []).append(r)
    for (variant, head_dim, length, *_), group in groups.items():
        best = min(group, key=lambda r: r["fwdbwd_ms"])["impl"]
        family = "additive" if variant == "additive" else "dot_product"
        by_dim = fastest.setdefault(family, {}).setdefault(head_dim, {})
        votes = by_dim.setdefault(length, {})
        votes[best] = votes.get(best, 0) + 1
    return {
        family: {
            dim: {n: max(votes, key=votes.get) for n, votes in sorted(by_len.items())}
            for dim, by_len in sorted(by_dim.items())
        }
        for family, by_dim in fastest.items()
    }


def plot(records: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    series: dict[tuple, list] = {}
    for r in records:
        if "fwdbwd_ms" in r:
            label = f"{r['variant']} {r['impl']}" + (" causal" if r["causal"] else "")
            key = (label, r["head_dim"], r["dtype"])
            series.setdefault(key, []).append(r)
    headline = next((r for r in records if r["variant"] == "scaled_dot"), None)
    for (label, head_dim, dtype), rows in sorted(series.items()):
        if (
            rows[0]["variant"] == "scaled_dot"
            and headline
            and (head_dim != headline["head_dim"] or dtype != headline["dtype"])
        ):
            continue
        rows = sorted(rows, key=lambda r: r["length"])
        n = [r["length"] for r in rows]
        ax = 2 if rows[0]["variant"] == "additive" else 0
        axes[ax].loglog(n, [r["fwdbwd_ms"] for r in rows], marker="o", label=label)
        if rows[0]["variant"] == "scaled_dot":
            axes[1].loglog(
                n, [r["fwdbwd_peak_bytes"] / 2**20 for r in rows], marker="o", label=label
            )
    titles = (
        f"scaled dot, fwd+bwd ms (D={headline and headline['head_dim']}, {headline and headline['dtype']})",
        "scaled dot, fwd+bwd peak MiB (XLA plan)",
        "additive, fwd+bwd ms",
    )
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("sequence length")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main -------------------------------------------------------------------


def config_of(record: dict) -> dict:
    keys = ("variant", "length", "batch", "heads", "head_dim", "dtype", "causal", "features")
    return {k: record[k] for k in keys if k in record}


def write(out: str, records: list[dict], info: dict):
    table, suggestion = markdown(records, info), suggest_auto_table(records)
    payload = dict(machine=info, records=records, auto_suggestion=suggestion)
    write_results(out, "attention", payload, table)
    return table, suggestion
