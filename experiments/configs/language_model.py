"""Decoder-only causal Transformer language model on any text, any attention kind.

    python launch.py --config=experiments/configs/language_model.py:demo --workdir=runs/lm
    python launch.py --config=experiments/configs/language_model.py:tiny --workdir=runs/lm_tiny \\
        --config.data.name=text --config.data.path=my_text.txt --config.model.attention=cosine

The part after the colon is the preset: `demo` (d_model 64, 4 heads, 2 layers
on 20k French sentences of the toy corpus; a few minutes on 2 CPU cores) or
`tiny` (seconds; for tests).

Data (`data.name`): `toy_french`, the French side of the toy translation
corpus (experiments/text/toy_corpus), or `text`, a UTF-8 file at
`data.path` with one sentence per line, split into words like the translation
corpora (`data.language`). Every layer's causal self-attention uses
`model.attention` (scaled_dot by default; any kind in attn.available()).

The run writes eval.json with the held-out loss, perplexity and token
accuracy and the greedy continuations of `eval.prompts`; see
experiments/language_model/train.py.

Sweeps: `attention` (every registered kind) and `positions`:

    python launch.py --config=experiments/configs/language_model.py --sweep=attention \\
        --workdir=runs/lm_attention --parallel=2
    python launch.py --report=runs/lm_attention
"""

from __future__ import annotations

import ml_collections

import attn
from experiments.common import attention_config, sections

PRESETS = ("demo", "tiny")


def get_config(arg: str = "demo") -> ml_collections.ConfigDict:
    if arg not in PRESETS:
        raise ValueError(f"unknown preset {arg!r}; valid presets: {', '.join(PRESETS)}")
    config = ml_collections.ConfigDict()
    config.experiment = "language_model"
    config.preset = arg
    config.seed = 0

    config.data = ml_collections.ConfigDict(
        dict(
            name="toy_french",  # toy_french | text
            path="",  # text: one sentence per line
            language="fr",  # text: word-splitting rules (de | en | fr)
            seed=0,  # toy corpus generator, or text split shuffling
            train_size=20000,  # toy_french only
            validation_size=500,  # text: at most a tenth of the lines each
            test_size=500,
            max_words=15,  # toy_french: longest English source sentence
            tokenizer="word",  # word | sentencepiece
            vocab_size=4000,
            max_length=32,  # tokens per example with BOS or EOS; longer ones are cut
        )
    )

    config.model = ml_collections.ConfigDict(
        dict(
            d_model=64,
            num_heads=4,
            num_layers=2,
            d_ff=256,
            dropout_rate=0.1,
            attention_dropout_rate=0.0,
            pre_layer_norm=True,
            positions="sinusoidal",  # sinusoidal | learned | relative
            tie_embeddings=True,
            max_length=64,  # positions; generation stops there
            max_relative_distance=16,  # positions=relative: distances clipped to this
        )
    )

    # attention (any registered kind that runs causally and decodes),
    # attention_options, implementation and num_kv_heads.
    config.model.update(attention_config.fields("scaled_dot"))

    config.train = sections.train_section(
        steps=1500, batch_size=64, learning_rate=3e-3, warmup_steps=100, log_every_steps=50
    )

    config.eval = ml_collections.ConfigDict(
        dict(
            every_steps=500,
            batch_size=128,
            max_examples=0,  # of validation during training; 0: all (the final eval: all)
            prompts=("le petit chat", "je ne", "la voiture rouge de mon", "nous avons"),
            max_new_tokens=16,
        )
    )

    config.checkpoint = sections.checkpoint_section(every_steps=500, keep=3)

    if arg == "tiny":
        config.data.update(
            train_size=200, validation_size=20, test_size=20, max_words=8, vocab_size=500
        )
        config.data.max_length = 24
        config.model.update(
            d_model=16, num_heads=2, num_layers=1, d_ff=32, dropout_rate=0.0, max_length=32
        )
        config.train.update(
            steps=30, batch_size=8, learning_rate=1e-2, warmup_steps=1, log_every_steps=5
        )
        config.eval.update(every_steps=10, batch_size=16, max_new_tokens=6)
        config.checkpoint.every_steps = 10
    return config


def get_sweeps() -> dict[str, dict]:
    """Named sweeps (see experiments/common/sweeps.py for the format)."""
    return {
        "attention": {
            "config": "demo",
            "grid": {"model.attention": attn.available("causal", "decode")},
        },
        "positions": {
            "config": "demo",
            "grid": {"model.positions": ["sinusoidal", "learned", "relative"]},
        },
    }
