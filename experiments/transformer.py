"""The Transformer (Vaswani et al. 2017) on the translation data, any attention kind.

    python launch.py --config=experiments/transformer.py:tiny --workdir=runs/transformer
    python launch.py --config=experiments/transformer.py:base --workdir=runs/base \\
        --config.model.attention=additive

`base` is the paper's base model (d_model 512, 8 heads, 6+6 layers,
feed-forward 2048, dropout 0.1, warmup then inverse square root, label
smoothing 0.1) on the seed's data sizes; `tiny` (d_model 64, 4 heads, 2+2
layers) fits a 2-core CPU, on the `demo` data of experiments/translate.py. Every
layer's self- and cross-attention uses `model.attention` (scaled_dot by
default; any kind in attn.available()).

The sweep `rnn_vs_transformer` trains the RNN with additive attention and the
tiny Transformer for the same wall-clock budget on the same data.
"""

from __future__ import annotations

import ml_collections

from experiments import translate

SIZES = {"base": "seed", "tiny": "demo"}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in SIZES:
        raise ValueError(f"unknown Transformer size {arg!r}; valid: {', '.join(SIZES)}")
    return translate.get_config(f"transformer,{SIZES[arg]}")


def get_sweeps() -> dict[str, dict]:
    budget = {"train.max_seconds": 240.0, "train.steps": 100000, "eval.every_steps": 100000}
    return {
        "rnn_vs_transformer": {
            "config": "tiny",
            "fixed": budget,
            "trials": [
                {
                    "model.architecture": "rnn",
                    "model.attention": "additive",
                    "train.schedule": "constant",
                    "train.label_smoothing": 0.0,
                },
                {"model.architecture": "transformer", "model.attention": "scaled_dot"},
                {"model.architecture": "transformer", "model.attention": "additive"},
            ],
        },
    }
