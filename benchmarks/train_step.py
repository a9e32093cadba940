"""Whole train-step throughput of every experiment's model.

    python -m benchmarks.train_step [--smoke] [--only=translation,vision,language_model] \\
        [--out benchmarks/results]

One optimizer step on a fixed random batch, with each experiment's own model
builder, optimizer and train-step function, jitted with the donated state as
training does:

- translation (`experiments/configs/translation.py`, `experiments.translation.train`):
  the RNN encoder-decoder of `VARIANT,demo` for every attention variant
  (`--variants`), and the Transformer of `experiments/configs/translation_transformer.py:tiny`
  (`transformer,demo`) with each kind of `--transformer-variants` in every
  layer; batch 64, source and target padded to `--length` 16 tokens with
  random sentence lengths. Target tokens per second (non-padding labels) and
  sentence pairs per second.
- vision (`experiments/configs/vision.py`, `experiments.vision.train`): every model
  variant (`--vision-variants`) of the `fashion_mnist` preset on random uint8
  images of its shapes (batch 128 of 28 x 28 x 1). Images per second.
- language_model (`experiments/configs/language_model.py:demo`,
  `experiments.language_model.train`): batch 64 of random sentences padded to
  `data.max_length` 32. Tokens per second (non-padding targets) and sequences
  per second.

`--smoke` uses every config's `tiny` preset and times two steps. Models are
timed in interleaved rounds, so load on the machine affects them alike; the
best round counts. Writes `train_step.json` and `train_step.md` into `--out`
and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax.training import train_state

from benchmarks.common import machine, machine_line, write_results
from experiments import EXPERIMENTS
from experiments.common import trainer
from experiments.common.optimizers import make_optimizer
from experiments.configs import language_model, translation, vision
from experiments.language_model import data as lm_data
from experiments.language_model import train as lm_train
from experiments.models import causal_lm as lm_model
from experiments.models import vision as vision_models
from experiments.models.rnn import attention_variants
from experiments.text.token_ids import BOS_ID as BOS
from experiments.text.token_ids import EOS_ID as EOS
from experiments.text.token_ids import PAD_ID as PAD
from experiments.translation import train as translation_train
from experiments.vision import data as vision_data
from experiments.vision import train as vision_train

# experiment -> (batch shape header, throughput unit, per-example unit or None)
COLUMNS = {
    "translation": ("batch x src x tgt", "target tokens/s", "pairs/s"),
    "vision": ("batch x H x W x C", "images/s", None),
    "language_model": ("batch x length", "tokens/s", "sequences/s"),
}
# The images of the datasets the vision presets read.
IMAGE_SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1)}


@dataclasses.dataclass
class Case:
    """One model's jitted step, its state and the batch it is timed on."""

    experiment: str
    model: str
    preset: str
    step: Callable
    state: Any
    args: tuple  # what `step` takes after the state
    shape: tuple[int, ...]
    units: int  # tokens or images that count towards the throughput, per step
    examples: int  # sentence pairs, images or sequences per step
    times: list[float] = dataclasses.field(default_factory=list)
    metrics: Any = None


def sentences(rng, batch: int, length: int, vocab: int) -> np.ndarray:
    """Random words with random lengths, then EOS, then PAD: int32 `[batch, length]`."""
    lengths = rng.integers(length // 3, length, size=batch)  # words before EOS
    words = rng.integers(EOS + 1, vocab, size=(batch, length))
    positions = np.arange(length)[None, :]
    ids = np.where(positions < lengths[:, None], words, PAD)
    return np.where(positions == lengths[:, None], EOS, ids).astype(np.int32)


def random_batch(rng, batch: int, length: int, vocab: int) -> dict:
    """A translation batch as the input pipeline lays it out."""
    source = sentences(rng, batch, length, vocab)
    target = sentences(rng, batch, length, vocab)
    target_input = np.concatenate(
        [np.full((batch, 1), BOS, np.int32), np.where(target == EOS, PAD, target)[:, :-1]], 1
    )
    return {"source": source, "target_input": target_input, "target_output": target}


def _state(model, params, tx) -> train_state.TrainState:
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def translation_case(config, name: str, length: int, seed: int = 0) -> Case:
    vocab = min(config.data.source_vocab_size, config.data.target_vocab_size)
    model = translation_train.build_model(config, vocab, vocab)
    batch = random_batch(np.random.default_rng(seed), config.train.batch_size, length, vocab)
    params = model.init(jax.random.key(seed), batch["source"], batch["target_input"])["params"]
    loss = functools.partial(
        translation_train.loss, model, label_smoothing=config.train.label_smoothing
    )
    step = jax.jit(functools.partial(trainer.train_step, loss_fn=loss), donate_argnums=0)
    return Case(
        experiment="translation",
        model=name,
        preset=config.preset,
        step=step,
        state=_state(model, params, make_optimizer(config.train)),
        args=(batch, jax.random.key(seed + 1)),
        shape=(*batch["source"].shape, batch["target_output"].shape[1]),
        units=int((batch["target_output"] != PAD).sum()),
        examples=int(batch["source"].shape[0]),
    )


def translation_cases(args, preset: str, length: int) -> list[Case]:
    cases = [
        translation_case(translation.get_config(f"{v},{preset}"), f"rnn {v}", length)
        for v in _names(args.variants)
    ]
    for attention in _names(args.transformer_variants):
        config = translation.get_config(f"transformer,{preset}")
        config.model.attention = attention
        cases.append(translation_case(config, f"transformer {attention}", length))
    return cases


def vision_case(variant: str, preset: str, seed: int = 0, model_overrides=None) -> Case:
    config = vision.get_config(f"{variant},{preset}")
    config.model.update(model_overrides or {})
    shape = IMAGE_SHAPES[config.data.name]
    info = vision_data.DatasetInfo(
        name=config.data.name,
        image_shape=shape,
        class_names=tuple(map(str, range(10))),
        mean=(0.5,) * shape[-1],
        std=(0.25,) * shape[-1],
    )
    model = vision_models.build(config.model, info.num_classes)
    rng = np.random.default_rng(seed)
    size = config.train.batch_size
    batch = {
        "images": rng.integers(0, 256, size=(size, *shape), dtype=np.uint8),
        "labels": rng.integers(0, info.num_classes, size=size).astype(np.int32),
    }
    params = model.init(jax.random.key(seed), np.zeros((1, *shape), np.float32))["params"]
    loss = functools.partial(
        vision_train.loss, model, info=info, label_smoothing=config.train.label_smoothing
    )
    # The trainer's step; the classifiers ignore its dropout key.
    step = jax.jit(
        functools.partial(trainer.train_step, loss_fn=lambda p, b, k: loss(p, b)),
        donate_argnums=0,
    )
    return Case(
        experiment="vision",
        model=variant,
        preset=preset,
        step=step,
        state=_state(model, params, make_optimizer(config.train)),
        args=(batch, jax.random.key(seed + 1)),
        shape=batch["images"].shape,
        units=size,
        examples=size,
    )


def vision_cases(args, smoke: bool) -> list[Case]:
    preset = "tiny" if smoke else "fashion_mnist"
    return [vision_case(v, preset) for v in _names(args.vision_variants)]


def language_model_case(preset: str, seed: int = 0) -> Case:
    config = language_model.get_config(preset)
    vocab, length = config.data.vocab_size, config.data.max_length
    model = lm_model.build_model(
        config.model, vocab, trainer.COMPUTE_DTYPES[config.train.compute_dtype]
    )
    size = config.train.batch_size
    words = sentences(np.random.default_rng(seed), size, length, vocab)
    batch = lm_data.make_batch(np.concatenate([np.full((size, 1), BOS, np.int32), words], 1))
    params = model.init(jax.random.key(seed), batch["inputs"])["params"]
    return Case(
        experiment="language_model",
        model=f"causal {config.model.attention}",
        preset=preset,
        step=jax.jit(
            functools.partial(
                trainer.train_step,
                loss_fn=functools.partial(
                    lm_train.loss, model, label_smoothing=config.train.label_smoothing
                ),
            ),
            donate_argnums=0,
        ),
        state=_state(model, params, make_optimizer(config.train)),
        args=(batch, jax.random.key(seed + 1)),
        shape=batch["inputs"].shape,
        units=int(batch["mask"].sum()),
        examples=size,
    )


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def time_cases(cases: list[Case], steps: int, rounds: int) -> None:
    """Compiles every step, then times `steps` steps of each case per round."""
    for case in cases:
        case.state, case.metrics = case.step(case.state, *case.args)
        jax.block_until_ready(case.metrics)
    for _ in range(rounds):
        for case in cases:
            start = time.perf_counter()
            for _ in range(steps):
                case.state, case.metrics = case.step(case.state, *case.args)
            jax.block_until_ready(case.metrics)
            case.times.append((time.perf_counter() - start) / steps)


def record(case: Case) -> dict:
    seconds = min(case.times)
    _, unit, example_unit = COLUMNS[case.experiment]
    return dict(
        experiment=case.experiment,
        model=case.model,
        preset=case.preset,
        shape=list(case.shape),
        parameters=int(sum(np.size(x) for x in jax.tree.leaves(case.state.params))),
        step_ms=seconds * 1e3,
        throughput=case.units / seconds,
        unit=unit,
        examples_per_s=case.examples / seconds,
        example_unit=example_unit or unit,
        loss=float(case.metrics["loss"]),
    )


def tables(records: list[dict]) -> str:
    lines = []
    for experiment, (shape, unit, example_unit) in COLUMNS.items():
        rows = [r for r in records if r["experiment"] == experiment]
        if not rows:
            continue
        extra = [example_unit] if example_unit else []
        lines += [
            f"### {experiment}",
            "",
            "| " + " | ".join(["model", shape, "parameters", "step ms", unit, *extra]) + " |",
            "|---" * (5 + len(extra)) + "|",
        ]
        for r in rows:
            cells = [
                r["model"],
                " x ".join(map(str, r["shape"])),
                f"{r['parameters']:,}",
                f"{r['step_ms']:.1f}",
                f"{r['throughput']:,.0f}",
            ] + ([f"{r['examples_per_s']:,.0f}"] if example_unit else [])
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny presets, two steps")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only", default=",".join(EXPERIMENTS), help="experiments to time")
    parser.add_argument(
        "--variants", default=",".join(attention_variants()), help="translation RNN attention"
    )
    parser.add_argument(
        "--transformer-variants", default="scaled_dot,additive", help="translation Transformer"
    )
    parser.add_argument("--vision-variants", default=",".join(vision.VARIANTS))
    parser.add_argument("--length", type=int, default=16, help="translation tokens")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    only = _names(args.only)
    unknown = sorted(set(only) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiments {unknown}; valid: {', '.join(EXPERIMENTS)}")
    steps, rounds = (2, 1) if args.smoke else (args.steps, args.rounds)
    info = machine()
    print(f"# {machine_line(info)}", flush=True)

    cases = []
    if "translation" in only:
        preset, length = ("tiny", 8) if args.smoke else ("demo", args.length)
        cases += translation_cases(args, preset, length)
    if "vision" in only:
        cases += vision_cases(args, args.smoke)
    if "language_model" in only:
        cases.append(language_model_case("tiny" if args.smoke else "demo"))
    time_cases(cases, steps, rounds)

    records = [record(case) for case in cases]
    presets = ", ".join(sorted({f"{r['experiment']} {r['preset']}" for r in records}))
    table = (
        f"Machine: {machine_line(info)}. Presets: {presets}. Best of {rounds} rounds of "
        f"{steps} steps.\n\n" + tables(records)
    )
    write_results(
        args.out,
        "train_step",
        dict(machine=info, steps=steps, rounds=rounds, records=records),
        table,
    )
    print(table)
    return records


if __name__ == "__main__":
    main()
