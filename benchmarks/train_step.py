"""Train-step throughput of the translation model, per attention variant.

    python -m benchmarks.train_step [--smoke] [--out benchmarks/results]

Builds the model of `experiments/translate.py:VARIANT,demo` for every
attention variant with `experiments.translation.train`'s own `build_model`,
`make_optimizer` and `train_step`, feeds it random batches of the demo
shapes (batch 64, source and target padded to 16 tokens, random lengths),
and reports target tokens per second (non-padding labels) and sentence pairs
per second. Variants are timed in interleaved rounds; the best round counts.

Writes `train_step.json` and `train_step.md` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np
from flax.training import train_state

from benchmarks.attention import machine, machine_line
from experiments import translate
from experiments.translation import train
from experiments.translation.model import attention_variants

PAD, BOS, EOS = 0, 1, 2


def random_batch(rng, batch: int, length: int, vocab: int) -> dict:
    """Source and target of random words with random lengths, PAD after EOS."""
    out = {}
    for name in ("source", "target"):
        lengths = rng.integers(length // 3, length, size=batch)  # words before EOS
        words = rng.integers(EOS + 1, vocab, size=(batch, length))
        positions = np.arange(length)[None, :]
        ids = np.where(positions < lengths[:, None], words, PAD)
        ids = np.where(positions == lengths[:, None], EOS, ids)
        out[name] = ids.astype(np.int32)
    target = out.pop("target")
    out["target_output"] = target
    out["target_input"] = np.concatenate(
        [np.full((batch, 1), BOS, np.int32), np.where(target == EOS, PAD, target)[:, :-1]], 1
    )
    return out


def setup(variant: str, preset: str, length: int, seed: int = 0):
    config = translate.get_config(f"{variant},{preset}")
    vocab = min(config.data.source_vocab_size, config.data.target_vocab_size)
    model = train.build_model(config, vocab, vocab)
    batch = random_batch(np.random.default_rng(seed), config.train.batch_size, length, vocab)
    params = model.init(jax.random.key(seed), batch["source"], batch["target_input"])["params"]
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=train.make_optimizer(config.train)
    )
    smoothing = config.train.label_smoothing
    step = jax.jit(
        lambda s, b, k: train.train_step(s, b, k, label_smoothing=smoothing), donate_argnums=0
    )
    return config, state, step, batch


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny preset, two steps")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--variants", default=",".join(attention_variants()))
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    preset, steps, rounds = ("tiny", 2, 1) if args.smoke else ("demo", args.steps, args.rounds)
    length = 8 if args.smoke else args.length
    info = machine()
    print(f"# {machine_line(info)}", flush=True)

    runs = {}
    for variant in args.variants.split(","):
        config, state, step, batch = setup(variant, preset, length)
        key = jax.random.key(1)
        state, metrics = step(state, batch, key)  # compiles
        jax.block_until_ready(metrics)
        runs[variant] = dict(config=config, state=state, step=step, batch=batch, times=[])
    for _ in range(rounds):
        for run in runs.values():
            start = time.perf_counter()
            for _ in range(steps):
                run["state"], metrics = run["step"](run["state"], run["batch"], key)
            jax.block_until_ready(metrics)
            run["times"].append((time.perf_counter() - start) / steps)

    records = []
    for variant, run in runs.items():
        seconds = min(run["times"])
        batch = run["batch"]
        tokens = int((batch["target_output"] != PAD).sum())
        records.append(
            dict(
                variant=variant,
                preset=preset,
                batch=int(batch["source"].shape[0]),
                source_len=int(batch["source"].shape[1]),
                target_len=int(batch["target_output"].shape[1]),
                step_ms=seconds * 1e3,
                target_tokens_per_s=tokens / seconds,
                pairs_per_s=batch["source"].shape[0] / seconds,
                loss=float(metrics["loss"]) if variant == list(runs)[-1] else None,
            )
        )
    lines = [
        f"Machine: {machine_line(info)}. Preset {preset}, best of {rounds} rounds of "
        f"{steps} steps.",
        "",
        "| attention | batch x src x tgt | step ms | target tokens/s | pairs/s |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['variant']} | {r['batch']} x {r['source_len']} x {r['target_len']} | "
            f"{r['step_ms']:.1f} | {r['target_tokens_per_s']:,.0f} | {r['pairs_per_s']:,.0f} |"
        )
    table = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train_step.json"), "w") as f:
        json.dump(dict(machine=info, records=records), f, indent=1)
    with open(os.path.join(args.out, "train_step.md"), "w") as f:
        f.write(table)
    print(table)
    return records


if __name__ == "__main__":
    main()
