"""What the translation experiment checks before it reads data or compiles.

`validate_config` (every field, with one-line errors naming the valid values)
and `check_checkpoint_layers` (a resumed Transformer asks for the layers its
checkpoint holds).
"""

from __future__ import annotations

import os

import ml_collections

import attn
from attn import implementations
from experiments.common import attention_config, sections, validation
from experiments.common.checkpoints import Checkpointer
from experiments.common.errors import ConfigError
from experiments.models.rnn import MULTI_HEAD, NO_ATTENTION
from experiments.models.transformer import BIASED, count_layers
from experiments.text import tokenizers as tokenizers_lib
from experiments.translation import input_pipeline

CELLS = ("gru", "lstm")


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without data or compilation."""
    validation.check_ranges(config)
    sections.check_train(config)
    architectures = ("rnn", "transformer")
    if config.model.architecture not in architectures:
        raise ConfigError(
            f"unknown model.architecture {config.model.architecture!r}; valid: "
            f"{', '.join(architectures)}"
        )
    transformer = config.model.architecture == "transformer"
    if transformer:
        attention_config.check(
            config.model,
            needs=("causal", "cross", "padding", "decode")
            + (("bias",) if config.model.transformer.positions in BIASED else ()),
            what="the Transformer (padded source, causal cached decoder, cross-attention)",
            num_heads=config.model.transformer.num_heads,
        )
    else:
        attention_config.check(
            config.model,
            needs=("cross", "padding", "weights"),
            what="the RNN's attention unit (padded source, its weights read every step)",
            extra_kinds=(MULTI_HEAD, NO_ATTENTION),
        )
        if config.model.attention == MULTI_HEAD:
            _check_multi_head_unit(config.model)
    if transformer and (config.model.source_embeddings or config.model.target_embeddings):
        raise ConfigError("pretrained embeddings are supported by the rnn architecture only")
    if transformer and config.model.transformer.max_length < config.data.max_length + 1:
        raise ConfigError(
            f"model.transformer.max_length={config.model.transformer.max_length} must be at "
            f"least data.max_length + 1 = {config.data.max_length + 1} (decoding runs that long)"
        )
    checks = [
        (
            config.data.name in input_pipeline.DATASET_NAMES,
            f"unknown dataset {config.data.name!r}; valid: {', '.join(input_pipeline.DATASET_NAMES)}",
        ),
        (
            config.data.tokenizer in tokenizers_lib.TOKENIZER_KINDS,
            f"unknown tokenizer {config.data.tokenizer!r}; valid: "
            f"{', '.join(tokenizers_lib.TOKENIZER_KINDS)}",
        ),
        (
            config.model.cell in CELLS,
            f"unknown cell {config.model.cell!r}; valid: {', '.join(CELLS)}",
        ),
        (config.eval.beam_size >= 1, f"eval.beam_size must be >= 1, got {config.eval.beam_size}"),
        (
            config.data.max_length >= 1,
            f"data.max_length must be >= 1, got {config.data.max_length}",
        ),
        (
            len(config.model.decoder_sizes) >= 1,
            f"model.decoder_sizes needs at least one layer, got {config.model.decoder_sizes}",
        ),
    ]
    for side in ("source", "target"):
        size = config.data[f"{side}_vocab_size"]
        checks.append(
            (
                size > len(tokenizers_lib.SPECIAL_TOKENS),
                f"data.{side}_vocab_size={size} leaves no room for words: the "
                f"{len(tokenizers_lib.SPECIAL_TOKENS)} special tokens "
                f"{list(tokenizers_lib.SPECIAL_TOKENS)} take that many; use at least "
                f"{len(tokenizers_lib.SPECIAL_TOKENS) + 1}",
            )
        )
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    _check_eval(config.eval)
    _check_heads(config)
    if config.data.name in ("tsv",) and not os.path.isfile(config.data.path):
        raise ConfigError(f"corpus file not found: data.path={config.data.path!r}")
    for side in ("source", "target"):
        path = config.model[f"{side}_embeddings"]
        if path and not os.path.isfile(path):
            raise ConfigError(f"embeddings file not found: model.{side}_embeddings={path!r}")


# The RNN's own model fields; the Transformer reads model.transformer.* instead.
RNN_FIELDS = (
    "cell",
    "embedding_size",
    "encoder_size",
    "decoder_sizes",
    "bidirectional",
    "input_feeding",
    "dropout_rate",
    "num_heads",
    "attention_features",
)
TOY_ONLY = ("test_long_size", "train_max_words", "long_max_words")
TFDS_ONLY = ("tfds_name", "source_key", "target_key")


def unread_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
    """Fields this config's model and corpus never read -> why (see experiments.unread_fields)."""
    unread = {}
    model, data = config.model, config.data
    if model.architecture == "rnn":
        unread["model.transformer"] = "model.architecture='rnn' (it sizes the Transformer)"
        if model.attention != MULTI_HEAD:
            unread["model.num_heads"] = f"model.attention={model.attention!r} (multihead only)"
        unread["model.num_kv_heads"] = "the RNN's attention unit has one key/value head per head"
        if model.attention == NO_ATTENTION:
            unread["model.implementation"] = "model.attention='none' has no attention to run"
        takes_features = model.attention in attn.available() and (
            "features" in attn.lookup(model.attention).options
        )
        if not takes_features:
            unread["model.attention_features"] = (
                f"model.attention={model.attention!r} has no `features` option"
            )
    else:
        for name in RNN_FIELDS:
            unread[f"model.{name}"] = (
                "model.architecture='transformer' reads model.transformer.* (an RNN field)"
            )
    if data.name != "toy_translation":
        unread.update(
            {f"data.{name}": f"data.name={data.name!r} (toy corpus only)" for name in TOY_ONLY}
        )
    if data.name != "tfds":
        unread.update(
            {f"data.{name}": f"data.name={data.name!r} (tfds only)" for name in TFDS_ONLY}
        )
    if data.name not in ("tsv", "ding"):
        unread["data.path"] = f"data.name={data.name!r} (tsv and ding only)"
    return unread


EVAL_SPLITS = ("validation", "test", "test_long")


def _check_eval(eval_config) -> None:
    """Splits, length buckets and attention sentences that would be skipped or drawn empty."""
    for name in eval_config.splits:
        if name not in EVAL_SPLITS:
            raise ConfigError(
                f"eval.splits holds {name!r}; valid: {', '.join(EVAL_SPLITS)} (test_long: the "
                f"toy corpus only)"
            )
    buckets = tuple(eval_config.length_buckets)
    increasing = all(a < b for a, b in zip(buckets, buckets[1:]))
    if not buckets or not increasing or buckets[0] < 1:
        raise ConfigError(
            f"eval.length_buckets={buckets!r}; valid: the first length of each bucket, positive "
            f"and increasing, e.g. (1, 6, 11, 16)"
        )
    for sentence in eval_config.attention_sentences:
        if not sentence.strip():
            raise ConfigError(
                f"eval.attention_sentences holds an empty sentence: "
                f"{tuple(eval_config.attention_sentences)!r}; give words, or () for the corpus's own"
            )


def _check_multi_head_unit(model) -> None:
    """The RNN's `multihead` unit is scaled-dot attention over `model.num_heads` heads: its
    implementation is checked like a registered kind's, and it has no grouped key/value
    heads, so `model.num_kv_heads` would be ignored there."""
    try:
        implementations.check(model.get("implementation", "xla"), "scaled_dot")
    except ValueError as error:
        raise ConfigError(f"model.attention={MULTI_HEAD!r}: {error}") from None
    if model.get("num_kv_heads", 0):
        raise ConfigError(
            f"model.num_kv_heads={model.num_kv_heads!r}: the RNN's {MULTI_HEAD!r} unit has one "
            f"key/value head per query head; valid: 0"
        )


def _check_heads(config) -> None:
    """The heads must divide the size they split, checked before any data is made."""
    if config.model.architecture == "transformer":
        heads_field, size_field = "model.transformer.num_heads", "model.transformer.d_model"
        heads, size = config.model.transformer.num_heads, config.model.transformer.d_model
    elif config.model.attention == MULTI_HEAD:
        heads_field, size_field = "model.num_heads", "model.decoder_sizes[-1]"
        heads, size = config.model.num_heads, config.model.decoder_sizes[-1]
    else:
        return
    if size % heads:
        divisors = [h for h in range(1, size + 1) if size % h == 0]
        raise ConfigError(
            f"{size_field}={size} is not divisible by num_heads={heads}; valid "
            f"{heads_field}: {', '.join(map(str, divisors))}"
        )


def check_checkpoint_layers(config, checkpointer: Checkpointer) -> None:
    """A resumed Transformer must ask for the layers its checkpoint holds.

    Restoring would fail too, but only after the model is built, and with array
    paths rather than the config field to change; this reads the checkpoint's
    metadata only and runs before anything is traced.
    """
    step = checkpointer.latest_step()
    if step is None or config.model.architecture != "transformer":
        return
    saved = count_layers(checkpointer.saved_shapes(step).get("params", {}))
    if not any(saved.values()):
        return  # not a Transformer's checkpoint: restoring names what differs
    problems, fixes = [], []
    for side, held in saved.items():
        field = f"model.transformer.num_{side}_layers"
        asked = config.model.transformer[f"num_{side}_layers"]
        if asked != held:
            problems.append(
                f"{field}={asked} asks for {'more' if asked > held else 'fewer'} {side} layers "
                f"than checkpoint {checkpointer.path(step)} holds ({held})"
            )
            fixes.append(f"--config.{field}={held}")
    if problems:
        raise ConfigError(
            f"{'; '.join(problems)}; resume with {' '.join(fixes)} or use another --workdir"
        )


__all__ = ["CELLS", "check_checkpoint_layers", "validate_config"]
