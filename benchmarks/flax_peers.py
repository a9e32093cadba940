"""Train steps of our Transformer and language model against Flax's own examples.

    python -m benchmarks.flax_peers --flax-examples=PATH [--only=translation,language_model] \\
        [--steps 20] [--rounds 7] [--out benchmarks/results]

PATH is a Flax checkout (or its `examples` folder). The peers' models are
imported from there, `examples/wmt/models.py` (`Transformer`) and
`examples/lm1b/models.py` (`TransformerLM`), at the sizes of our configs:

- translation: `experiments/configs/translation.py:transformer,demo` (d_model
  64, 4 heads, 2 + 2 layers, d_ff 256, dropout 0.1, separate embeddings,
  vocabulary 2,000, batch 64 x 16 x 16) against wmt's `Transformer` with the
  same sizes;
- language_model: `experiments/configs/language_model.py:demo` (d_model 64,
  4 heads, 2 layers, d_ff 256, dropout 0.1, tied embeddings, vocabulary
  4,000, batch 64 x 32) against lm1b's `TransformerLM`.

Both sides of a row share everything but the model: the batch (random
sentences, padded), the loss (token cross-entropy over non-padding targets,
with the config's label smoothing), the optimizer (`make_optimizer` of the
config) and the jitted step (`trainer.train_step`, state donated). The peers
shift their targets right themselves, so they get the targets where ours get
the BOS-shifted inputs. Rounds interleave ours and the peer's steps; the
table gives the best round of each and the range of the per-round ratios.
Writes `flax_peers.json` and `flax_peers.md` into `--out`.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys

import jax
import numpy as np

from benchmarks.common import machine, machine_line, write_results
from benchmarks.train_step import Case, _state, language_model_case, time_cases, translation_case
from experiments.common import trainer
from experiments.common.optimizers import make_optimizer
from experiments.configs import language_model, translation
from experiments.translation.train import cross_entropy

EXPERIMENTS = ("translation", "language_model")
PEER_FILES = {"translation": "wmt/models.py", "language_model": "lm1b/models.py"}


def examples_folder(path: str) -> str:
    """The folder holding `wmt/` and `lm1b/`: PATH itself or PATH/examples."""
    for folder in (os.path.join(path, "examples"), path):
        if all(os.path.isfile(os.path.join(folder, f)) for f in PEER_FILES.values()):
            return folder
    raise FileNotFoundError(
        f"--flax-examples={path!r} holds neither wmt/models.py and lm1b/models.py nor "
        "examples/wmt/models.py and examples/lm1b/models.py; give a Flax checkout"
    )


def import_peer(examples: str, experiment: str):
    """The peer's models.py as a module of its own name (both files are `models.py`)."""
    path = os.path.join(examples, PEER_FILES[experiment])
    name = f"flax_peer_{experiment}_models"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _peer_config(models, model_config, num_layers: int, vocab: int, max_len: int, tied: bool):
    return models.TransformerConfig(
        vocab_size=vocab,
        output_vocab_size=vocab,
        share_embeddings=False,
        logits_via_embedding=tied,
        emb_dim=model_config.d_model,
        num_heads=model_config.num_heads,
        num_layers=num_layers,
        qkv_dim=model_config.d_model,
        mlp_dim=model_config.d_ff,
        max_len=max_len,
        dropout_rate=model_config.dropout_rate,
        attention_dropout_rate=model_config.attention_dropout_rate,
        deterministic=False,
    )


def _peer_loss(model, params, batch, dropout_key, *, inputs, labels, label_smoothing):
    """Our token cross-entropy on the peer's logits."""
    logits = model.apply(
        {"params": params}, *(batch[name] for name in inputs), rngs={"dropout": dropout_key}
    )
    loss_sum, tokens = cross_entropy(logits.astype(np.float32), batch[labels], label_smoothing)
    return loss_sum / tokens, {}


def _peer_case(ours: Case, model, config, inputs, labels, label_smoothing) -> Case:
    batch = ours.args[0]
    params = model.init(jax.random.key(0), *(batch[name] for name in inputs))["params"]
    loss = functools.partial(
        _peer_loss, model, inputs=inputs, labels=labels, label_smoothing=label_smoothing
    )
    return Case(
        experiment=ours.experiment,
        model="flax example",
        preset=ours.preset,
        step=jax.jit(functools.partial(trainer.train_step, loss_fn=loss), donate_argnums=0),
        state=_state(model, params, make_optimizer(config.train)),
        args=ours.args,
        shape=ours.shape,
        units=ours.units,
        examples=ours.examples,
    )


def translation_pair(examples: str, preset: str, length: int) -> tuple[Case, Case]:
    config = translation.get_config(f"transformer,{preset}")
    ours = translation_case(config, "attn transformer", length)
    models = import_peer(examples, "translation")
    t = config.model.transformer
    vocab = min(config.data.source_vocab_size, config.data.target_vocab_size)
    if t.share_embeddings or t.num_encoder_layers != t.num_decoder_layers:
        raise ValueError("the wmt peer has one layer count and separate embeddings here")
    peer_config = _peer_config(models, t, t.num_encoder_layers, vocab, t.max_length, tied=False)
    peer = _peer_case(
        ours,
        models.Transformer(peer_config),
        config,
        inputs=("source", "target_output"),  # the peer shifts the targets right itself
        labels="target_output",
        label_smoothing=config.train.label_smoothing,
    )
    return ours, peer


def language_model_pair(examples: str, preset: str) -> tuple[Case, Case]:
    config = language_model.get_config(preset)
    ours = language_model_case(preset)
    models = import_peer(examples, "language_model")
    m = config.model
    peer_config = _peer_config(
        models, m, m.num_layers, config.data.vocab_size, m.max_length, tied=m.tie_embeddings
    )
    peer = _peer_case(
        ours,
        models.TransformerLM(peer_config),
        config,
        inputs=("targets",),  # the peer shifts right itself: it sees BOS's place as 0
        labels="targets",
        label_smoothing=config.train.label_smoothing,
    )
    return ours, peer


def ratio_row(ours: Case, peer: Case) -> dict:
    """Our speed relative to the peer's: best rounds, and the per-round range."""
    rounds = [p / o for o, p in zip(ours.times, peer.times)]
    count = lambda case: int(sum(np.size(x) for x in jax.tree.leaves(case.state.params)))
    return dict(
        experiment=ours.experiment,
        preset=ours.preset,
        shape=list(ours.shape),
        ours_ms=min(ours.times) * 1e3,
        peer_ms=min(peer.times) * 1e3,
        speedup=min(peer.times) / min(ours.times),
        round_speedups=rounds,
        ours_parameters=count(ours),
        peer_parameters=count(peer),
        ours_loss=float(ours.metrics["loss"]),
        peer_loss=float(peer.metrics["loss"]),
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| experiment | batch shape | ours ms | flax example ms | ours vs flax (best rounds) "
        "| per-round range | parameters ours / flax | loss after the timed steps ours / flax |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['experiment']} ({r['preset']}) | {' x '.join(map(str, r['shape']))} "
            f"| {r['ours_ms']:.1f} | {r['peer_ms']:.1f} | {r['speedup']:.2f}x "
            f"| {min(r['round_speedups']):.2f}x to {max(r['round_speedups']):.2f}x "
            f"| {r['ours_parameters']:,} / {r['peer_parameters']:,} "
            f"| {r['ours_loss']:.3f} / {r['peer_loss']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flax-examples", required=True, help="a Flax checkout or its examples")
    parser.add_argument("--only", default=",".join(EXPERIMENTS))
    parser.add_argument("--smoke", action="store_true", help="tiny presets, one round of 2 steps")
    parser.add_argument("--length", type=int, default=16, help="translation tokens")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(EXPERIMENTS))
    if unknown or not only:
        parser.error(f"--only={args.only!r}; valid: a comma list of {', '.join(EXPERIMENTS)}")
    if args.steps < 1 or args.rounds < 1 or args.length < 4:
        parser.error(
            f"--steps={args.steps}, --rounds={args.rounds}, --length={args.length}; valid: "
            "steps and rounds >= 1, length >= 4"
        )
    try:
        examples = examples_folder(args.flax_examples)
    except FileNotFoundError as error:
        parser.error(str(error))
    preset = "tiny" if args.smoke else "demo"
    steps, rounds = (2, 1) if args.smoke else (args.steps, args.rounds)
    info = machine()
    print(f"# {machine_line(info)}", flush=True)

    pairs = []
    if "translation" in only:
        pairs.append(translation_pair(examples, preset, 8 if args.smoke else args.length))
    if "language_model" in only:
        pairs.append(language_model_pair(examples, preset))
    time_cases([case for pair in pairs for case in pair], steps, rounds)
    rows = [ratio_row(ours, peer) for ours, peer in pairs]
    text = (
        f"Machine: {machine_line(info)}. Flax examples: {os.path.abspath(examples)}. "
        f"Best of {rounds} interleaved rounds of {steps} steps.\n\n" + table(rows)
    )
    write_results(
        args.out, "flax_peers", dict(machine=info, steps=steps, rounds=rounds, rows=rows), text
    )
    print(text)
    return rows


if __name__ == "__main__":
    main()
