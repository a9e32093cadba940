"""Peak memory of local 2-D self-attention: the lean form against unfold-then-attend.

    python benchmarks/local2d_memory.py [--output=local2d_memory.json] [--time]

For each shape, compiles one `LocalSelfAttention2D` layer in both
forms, forward only and forward plus gradients (with respect to the
parameters and the input, as in training), and reads XLA's memory analysis of
the compiled program: the temporary buffers and the peak estimate
`arguments + outputs + temporaries - aliased`. Nothing is run unless `--time`
asks for the seconds per call as well. Prints a markdown table and writes the
rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from attn.local2d import LocalSelfAttention2D  # noqa: E402

# (batch, size, channels, heads, kernel): the paper's k = 7 on Fashion-MNIST-,
# CIFAR- and ImageNet-stage-sized maps, and one with wide heads.
SHAPES = (
    (32, 28, 32, 4, 7),
    (32, 32, 64, 8, 7),
    (8, 56, 64, 8, 7),
    (8, 28, 128, 4, 7),
)
MODES = ("forward", "gradient")
FORMS = ("lean", "unfold")  # the memory comparison: windows looped against copied out
MIB = 2**20


def _program(form: str, mode: str, heads: int, kernel: int):
    layer = LocalSelfAttention2D(num_heads=heads, kernel_size=kernel, form=form)

    def forward(params, images):
        output, _ = layer.apply(params, images)
        return jnp.sum(output**2)

    return layer, (forward if mode == "forward" else jax.grad(forward, argnums=(0, 1)))


def measure(
    batch: int,
    size: int,
    channels: int,
    heads: int,
    kernel: int,
    form: str,
    mode: str,
    *,
    timed: bool = False,
) -> dict:
    """Memory analysis (MiB) of one compiled layer; seconds per call when `timed`."""
    images = jax.random.normal(jax.random.key(0), (batch, size, size, channels))
    layer, fn = _program(form, mode, heads, kernel)
    params = layer.init(jax.random.key(1), images[:1])
    compiled = jax.jit(fn).lower(params, images).compile()
    stats = compiled.memory_analysis()
    row = dict(
        batch=batch,
        size=size,
        channels=channels,
        heads=heads,
        kernel=kernel,
        form=form,
        mode=mode,
        temp_mib=stats.temp_size_in_bytes / MIB,
        peak_mib=(
            stats.argument_size_in_bytes
            + stats.output_size_in_bytes
            + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes
        )
        / MIB,
        # One copy of the keys' neighbourhoods, for scale.
        unfolded_copy_mib=batch * size * size * channels * kernel * kernel * 4 / MIB,
    )
    if timed:
        jax.block_until_ready(compiled(params, images))
        start, calls = time.perf_counter(), 3
        for _ in range(calls):
            jax.block_until_ready(compiled(params, images))
        row["seconds"] = (time.perf_counter() - start) / calls
    return row


def table(rows: list[dict]) -> str:
    """Rows as a markdown table, lean and unfold side by side."""
    timed = any("seconds" in r for r in rows)
    head = "| B x H x W x C, heads, k | mode | lean peak MiB | unfold peak MiB | ratio |"
    head += " lean s | unfold s |" if timed else ""
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    by_key = {}
    for r in rows:
        key = (r["batch"], r["size"], r["channels"], r["heads"], r["kernel"], r["mode"])
        by_key.setdefault(key, {})[r["form"]] = r
    for (b, s, c, h, k, mode), pair in by_key.items():
        lean, unfold = pair.get("lean"), pair.get("unfold")
        cells = [
            f"{b} x {s} x {s} x {c}, {h}, {k}",
            mode,
            f"{lean['peak_mib']:.1f}" if lean else "-",
            f"{unfold['peak_mib']:.1f}" if unfold else "-",
            f"{unfold['peak_mib'] / lean['peak_mib']:.1f}x" if lean and unfold else "-",
        ]
        if timed:
            cells += [
                f"{p['seconds']:.3f}" if p and "seconds" in p else "-" for p in (lean, unfold)
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(shapes=SHAPES, *, timed: bool = False) -> list[dict]:
    return [
        measure(*shape, form, mode, timed=timed)
        for shape in shapes
        for mode in MODES
        for form in FORMS
    ]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="local2d_memory.json", help="JSON file for the rows")
    parser.add_argument("--time", action="store_true", help="also run and time each program")
    args = parser.parse_args(argv)
    rows = run(timed=args.time)
    print(f"device: {jax.devices()[0].platform}; MiB from XLA's compiled memory analysis")
    print(table(rows))
    with open(args.output, "w") as f:
        json.dump({"device": jax.devices()[0].platform, "rows": rows}, f, indent=2)
    print(f"wrote {args.output}")
    return rows


if __name__ == "__main__":
    main()
