"""Local 2-D attention's forms, timed per layer and in the vision train step.

    python -m benchmarks.local2d_forms [--smoke] [--rounds 5] [--out benchmarks/results]

Two tables, every row's peer timed in the same interleaved rounds:

1. Layers: forward+backward of `attn.local_self_attention` at the attention
   layers of the Fashion-MNIST models (batch 128, k = 7) for every form but
   "unfold" (benchmarks/local2d_memory.py has it), and the form `auto`
   picks. This is the table `attn.local2d.choose_form` follows.
2. Train steps: the convolutional ResNet and `conv_stem_attention` with
   each form, at the `fashion_mnist` preset. The goal row: the attention
   model's step time over the conv model's, against its share of forward
   FLOPs (XLA's count of the unrolled lean form); "vs FLOP share" is
   (time ratio) / (FLOPs ratio), 1.0 meaning the attention runs at the
   convolution's time per FLOP.

Writes local2d_forms.json and local2d_forms.md under --out.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from attn import local2d
from benchmarks import common
from benchmarks import train_step as steps
from experiments.configs import vision as vision_config
from experiments.models import vision as vision_models

# (batch, size, channels, heads): the fashion_mnist preset's three attention
# layers (widths 32, 64, 128 mixed at 3/4; the middle one pools after) and a
# wider 14 x 14 layer with 8 heads.
LAYERS = ((128, 14, 24, 4), (128, 14, 48, 4), (128, 7, 96, 4), (128, 14, 96, 8))
SMOKE_LAYERS = ((2, 6, 8, 2), (2, 3, 8, 2))
LAYER_FORMS = ("lean", "lean_batch_minor", "blocked")
STEP_FORMS = ("lean", "auto")


def _interleaved(functions: dict, rounds: int, calls: int) -> dict:
    """Best seconds per call of each function over `rounds` interleaved rounds."""
    for fn in functions.values():
        jax.block_until_ready(fn())
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                out = fn()
            jax.block_until_ready(out)
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best


def _layer_program(form: str, args):
    """A no-argument call of the layer's jitted forward+backward on `args`."""
    loss = lambda q, k, v, rows, cols: jnp.sum(
        local2d.local_self_attention(q, k, v, rows, cols, form=form)[0] ** 2
    )
    fn = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4)))
    return lambda: fn(*args)


def layer_rows(layers, kernel_size: int, rounds: int, calls: int) -> list[dict]:
    rows = []
    for batch, size, channels, heads in layers:
        d = channels // heads
        keys = jax.random.split(jax.random.key(size * channels + heads), 5)
        shape = (batch, size, size, heads, d)
        q, k, v = (jax.random.normal(key, shape) for key in keys[:3])
        emb = [jax.random.normal(key, (kernel_size, heads, d // 2)) for key in keys[3:]]

        args = (q, k, v, *emb)
        seconds = _interleaved({f: _layer_program(f, args) for f in LAYER_FORMS}, rounds, calls)
        auto = local2d.choose_form(size, size, kernel_size, d)
        rows.append(
            dict(
                batch=batch,
                size=size,
                channels=channels,
                heads=heads,
                kernel=kernel_size,
                ms={f: s * 1e3 for f, s in seconds.items()},
                auto=auto,
                auto_vs_lean=seconds["lean"] / seconds[auto],
            )
        )
    return rows


def _vision_case(variant: str, preset: str, form: str):
    return steps.vision_case(variant, preset, model_overrides={"attention_form": form})


def flops_per_image(variant: str, preset: str) -> float:
    """Forward FLOPs per image, the local attention loops unrolled so XLA counts each step."""
    config = vision_config.get_config(f"{variant},{preset}")
    config.model.attention_form = "lean"
    model = vision_models.build(config.model, 10, unroll=True)
    shape = steps.IMAGE_SHAPES[config.data.name]
    params = model.init(jax.random.key(0), np.zeros((1, *shape), np.float32))
    return vision_models.flops_per_image(model, params, shape)


def step_rows(preset: str, rounds: int, calls: int) -> list[dict]:
    cases = {"conv": _vision_case("conv", preset, "lean")}
    for form in STEP_FORMS:
        cases[f"conv_stem_attention {form}"] = _vision_case("conv_stem_attention", preset, form)

    def run(case):
        def call():
            case.state, case.metrics = case.step(case.state, *case.args)
            return case.metrics

        return call

    seconds = _interleaved({name: run(case) for name, case in cases.items()}, rounds, calls)
    flops = {
        "conv": flops_per_image("conv", preset),
        "attention": flops_per_image("conv_stem_attention", preset),
    }
    rows = []
    for name, s in seconds.items():
        model_flops = flops["conv"] if name == "conv" else flops["attention"]
        time_ratio = s / seconds["conv"]
        flops_ratio = model_flops / flops["conv"]
        rows.append(
            dict(
                model=name,
                preset=preset,
                batch=int(cases[name].shape[0]),
                step_ms=s * 1e3,
                flops_per_image=model_flops,
                time_vs_conv=time_ratio,
                flops_vs_conv=flops_ratio,
                vs_flop_share=time_ratio / flops_ratio,
            )
        )
    return rows


def markdown(layers: list[dict], step: list[dict], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| batch x H x W x C, heads | "
        + " | ".join(f"{f} ms" for f in LAYER_FORMS)
        + " | auto picks | auto vs lean |",
        "|---|" + "---|" * (len(LAYER_FORMS) + 2),
    ]
    for r in layers:
        cells = [f"{r['batch']} x {r['size']} x {r['size']} x {r['channels']}, {r['heads']}"]
        cells += [f"{r['ms'][f]:.1f}" for f in LAYER_FORMS]
        cells += [r["auto"], f"{r['auto_vs_lean']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| model | batch | step ms | step vs conv | forward FLOPs vs conv | vs FLOP share |",
        "|---|---|---|---|---|---|",
    ]
    for r in step:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['step_ms']:.1f} | {r['time_vs_conv']:.2f}x | "
            f"{r['flops_vs_conv']:.2f}x | {r['vs_flop_share']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    rounds, calls = (1, 1) if args.smoke else (args.rounds, 3)
    layers = layer_rows(
        SMOKE_LAYERS if args.smoke else LAYERS, 3 if args.smoke else 7, rounds, calls
    )
    step = step_rows("tiny" if args.smoke else "fashion_mnist", rounds, calls)
    machine = common.machine()
    text = markdown(layers, step, common.machine_line(machine))
    print(text)
    payload = {"machine": machine, "layers": layers, "train_steps": step}
    common.write_results(args.out, "local2d_forms", payload, text)
    return payload


if __name__ == "__main__":
    main()
