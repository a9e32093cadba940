"""English-to-French translation: RNN encoder-decoder with an attention unit.

    python launch.py --config=experiments/configs/translation.py:additive --workdir=runs/additive

The part after the colon is `VARIANT[,PRESET]`:

- VARIANT: the attention unit of the RNN encoder-decoder, `additive`
  (Bahdanau), `dot`, `general` (Luong), `scaled_dot`, `cosine`, `multihead`,
  or `none` (a plain encoder-decoder, the control); or `transformer` (any
  registered kind in every layer via `--config.model.attention=...`; see also
  experiments/configs/translation_transformer.py).
- PRESET: `seed` (default: the classic sizes, embedding 300, encoder 500,
  decoder 500 then 300, 10k words, sentences up to 100 tokens), `demo` (sizes
  that train in about three minutes on 2 CPU cores), `real` (a real corpus:
  the ding German-English sentences unless data.name says otherwise,
  sentencepiece pieces, sizes for 2 CPU cores; the `ding` sweep below) or
  `tiny` (for tests).

Any field can be overridden, e.g. `--config.train.steps=2000
--config.model.cell=lstm --config.data.name=tsv --config.data.path=fra.txt`.

What to expect, measured on 2 CPU cores (`make demo` runs the demo preset of
additive, dot and none): see README.md, section "Translation".
"""

from __future__ import annotations

import ml_collections

from experiments.common import attention_config, sections
from experiments.models.rnn import attention_variants
from experiments.models.transformer import TRANSFORMER_PRESETS

PRESETS = ("seed", "demo", "real", "tiny")


def get_config(arg: str = "additive") -> ml_collections.ConfigDict:
    variant, _, preset = arg.partition(",")
    preset = preset or "seed"
    architecture = "transformer" if variant == "transformer" else "rnn"
    if preset not in PRESETS:
        raise ValueError(
            f"unknown preset {preset!r} in --config=...:{arg}; valid presets: {', '.join(PRESETS)}"
        )
    config = ml_collections.ConfigDict()
    config.experiment = "translation"
    config.preset = preset
    config.seed = 0

    config.data = ml_collections.ConfigDict(
        dict(
            name="toy_translation",  # toy_translation | tsv | ding | tfds
            path="",  # tsv / ding file
            tfds_name="wmt14_translate/fr-en",
            source_key="en",  # tfds feature names of the two languages
            target_key="fr",
            data_dir="data",  # where prepared corpora are kept
            seed=0,
            train_size=20000,
            validation_size=1000,
            test_size=1000,
            test_long_size=500,
            train_max_words=20,
            long_max_words=40,
            tokenizer="word",  # word | sentencepiece
            source_vocab_size=10000,
            target_vocab_size=10000,
            max_length=100,
        )
    )

    config.model = ml_collections.ConfigDict(
        dict(
            architecture=architecture,  # rnn | transformer
            embedding_size=300,
            encoder_size=500,
            decoder_sizes=(500, 300),
            cell="gru",  # gru | lstm
            bidirectional=False,
            # The RNN attention unit's scoring network size, for kinds that have
            # one (the `features` option); 0: the query size.
            attention_features=0,
            num_heads=4,  # multihead only
            input_feeding=True,
            dropout_rate=0.1,
            source_embeddings="",  # GloVe / word2vec text file, optional
            target_embeddings="",
        )
    )

    # attention (any registered kind; the RNN also takes multihead and none),
    # attention_options, implementation and num_kv_heads (the Transformer's).
    config.model.update(attention_config.fields(variant if architecture == "rnn" else "scaled_dot"))

    config.train = sections.train_section(
        steps=20000,
        batch_size=64,
        learning_rate=1e-3,
        warmup_steps=200,
        log_every_steps=100,
        length_multiple=8,
        bucket_window_batches=8,  # batch sentences of similar length
    )

    config.eval = ml_collections.ConfigDict(
        dict(
            every_steps=2000,
            batch_size=128,
            beam_size=1,  # 1: greedy
            length_penalty=0.6,
            max_examples=0,  # per split during training; 0: all
            splits=("validation", "test", "test_long"),
            length_buckets=(1, 6, 11, 16, 21, 26, 31, 36),
            # The sentences whose attention is drawn at every evaluation. Empty:
            # attention_sentence_count of the corpus's own, the classic English
            # ones for the toy corpus ("i love you", ...), otherwise sentences of
            # the test split that the source vocabulary holds, short to long.
            attention_sentences=(),
            attention_sentence_count=4,  # 0: no pictures
            # Transformer only: also draw the attention rollout of those sentences.
            attention_rollout=False,
        )
    )

    config.checkpoint = sections.checkpoint_section(every_steps=1000, keep=3)

    # The Transformer's own sizes; its attention kind is model.attention.
    config.model.transformer = ml_collections.ConfigDict(
        TRANSFORMER_PRESETS["base" if preset == "seed" else "tiny"]
    )
    if architecture == "transformer":
        config.train.update(schedule="rsqrt", label_smoothing=0.1)

    if preset == "demo":
        config.data.train_size = 30000
        config.data.train_max_words = 15
        config.data.long_max_words = 30
        config.data.source_vocab_size = config.data.target_vocab_size = 2000
        config.model.update(
            embedding_size=64,
            encoder_size=128,
            decoder_sizes=(128, 128),
            bidirectional=True,
            attention_features=64,
            dropout_rate=0.0,
        )
        config.train.update(
            steps=3000, batch_size=64, learning_rate=3e-3, warmup_steps=100, log_every_steps=50
        )
        config.eval.update(every_steps=1500, max_examples=500)
        config.checkpoint.every_steps = 500
    elif preset == "real":
        # A real corpus on 2 CPU cores: the ding sentences unless data.name
        # says otherwise (tsv for a user's own file), subword pieces trained on
        # the training split so that rare words are spelled rather than <unk>.
        config.data.update(
            name="ding",
            tokenizer="sentencepiece",
            train_size=0,  # every pair left after validation and test
            source_vocab_size=2000,
            target_vocab_size=2000,
            max_length=64,
        )
        config.model.update(
            embedding_size=128,
            encoder_size=256,
            decoder_sizes=(256, 256),
            bidirectional=True,
            attention_features=128,
            dropout_rate=0.2,
        )
        config.model.transformer.update(d_model=128, num_heads=4, d_ff=512, dropout_rate=0.1)
        config.train.update(
            steps=12000,
            batch_size=64,
            learning_rate=3e-3 if architecture == "transformer" else 2e-3,
            warmup_steps=200,
            log_every_steps=100,
            length_multiple=16,  # fewer padded shapes, fewer compilations
        )
        config.eval.update(every_steps=2000, max_examples=500, splits=("validation", "test"))
        config.checkpoint.every_steps = 1000
    elif preset == "tiny":
        config.data.update(
            train_size=200,
            validation_size=20,
            test_size=20,
            test_long_size=10,
            train_max_words=8,
            long_max_words=12,
            source_vocab_size=500,
            target_vocab_size=500,
        )
        config.model.update(
            embedding_size=8,
            encoder_size=16,
            decoder_sizes=(16, 12),
            attention_features=8,
            dropout_rate=0.0,
        )
        config.model.transformer.update(
            d_model=16,
            num_heads=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            d_ff=32,
            dropout_rate=0.0,
        )
        # length_multiple 16: every tiny sentence fits one padded shape, one compilation.
        config.train.update(
            steps=4, batch_size=8, warmup_steps=1, log_every_steps=2, length_multiple=16
        )
        config.eval.update(every_steps=2, batch_size=16)
        config.checkpoint.every_steps = 2
    return config


def get_sweeps() -> dict[str, dict]:
    """Named sweeps (see experiments/common/sweeps.py for the format).

    python launch.py --config=experiments/configs/translation.py --sweep=demo --workdir=runs/demo
    python launch.py --report=runs/demo
    """
    every_kind = attention_variants()  # every kind with weights, multihead and none
    return {
        # make demo: Bahdanau, Luong and no attention, about 3 minutes each on 2 cores.
        "demo": {
            "config": "additive,demo",
            "grid": {"model.attention": ["additive", "dot", "none"]},
        },
        "variants": {
            "config": "additive,demo",
            "grid": {"model.attention": every_kind, "seed": [0, 1, 2]},
        },
        # The ding corpus (apt-get install trans-de-en), German to English, each
        # model for the same 10 minutes of training on 2 CPU cores. Measured
        # test BLEU: additive 4.1, dot 2.7, none 2.6, Transformer 5.8.
        "ding": {
            "config": "additive,real",
            "fixed": {"train.max_seconds": 600.0},
            "trials": [
                {"model.attention": "additive"},
                {"model.attention": "dot"},
                {"model.attention": "none"},
                {
                    "model.architecture": "transformer",
                    "model.attention": "scaled_dot",
                    "train.schedule": "rsqrt",
                    "train.label_smoothing": 0.1,
                    "train.learning_rate": 3e-3,
                },
            ],
        },
        # Regularisation of the ding Transformer, chosen on validation BLEU at
        # 4000 steps (about 17 minutes alone on 2 cores): the preset's dropout
        # 0.1 against dropout 0.3 with attention dropout 0.1, and that with
        # word dropout 0.1 and tied output embeddings (Sennrich & Zhang 2019's
        # low-resource recipe). Measured validation / test BLEU (greedy, 1000
        # sentences each): 6.1 / 6.0, 5.0 / 5.2, 3.6 / 3.5: the preset stays.
        "ding_regularisation": {
            "config": "transformer,real",
            "fixed": {"train.steps": 4000, "eval.every_steps": 1000},
            "trials": [
                {"model.transformer.dropout_rate": 0.1},
                {
                    "model.transformer.dropout_rate": 0.3,
                    "model.transformer.attention_dropout_rate": 0.1,
                },
                {
                    "model.transformer.dropout_rate": 0.3,
                    "model.transformer.attention_dropout_rate": 0.1,
                    "model.transformer.word_dropout_rate": 0.1,
                    "model.transformer.tie_output_embedding": True,
                },
            ],
        },
        "learning_rate": {
            "config": "additive,demo",
            "grid": {"model.attention": ["additive", "dot"]},
            "random": {
                "count": 4,
                "seed": 0,
                "fields": {"train.learning_rate": ["log_uniform", 3e-4, 1e-2]},
            },
        },
        "encoders": {
            "config": "additive,demo",
            "grid": {"model.cell": ["gru", "lstm"], "model.bidirectional": [False, True]},
        },
    }
