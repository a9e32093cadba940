"""Range checks on config fields shared by every experiment, by field name.

`check_ranges(config)` walks the whole config and checks each field whose
name is in `RULES` (wherever it sits: `train.batch_size` and
`eval.batch_size` alike), so a learning rate of -1, a batch of 0 or a
dropout of 1.5 stops with one line naming the field, its value and what is
valid, before any data is read. A warmup longer than the run stays allowed.
"""

from __future__ import annotations

import math
import numbers

from experiments.common.errors import ConfigError


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive(value) -> bool:
    return _number(value) and math.isfinite(value) and value > 0


def _at_least_one(value) -> bool:
    return _number(value) and value >= 1


def _non_negative(value) -> bool:
    return _number(value) and math.isfinite(value) and value >= 0


def _fraction(value) -> bool:
    return _number(value) and 0 <= value < 1


# field name -> (check, what is valid)
RULES = {
    "learning_rate": (_positive, "positive and finite"),
    "batch_size": (_at_least_one, "positive"),
    "steps": (_at_least_one, "positive"),
    "every_steps": (_at_least_one, "positive"),
    "log_every_steps": (_at_least_one, "positive"),
    "keep": (_at_least_one, "positive"),
    "restore_step": (_non_negative, ">= 0 (0: the latest checkpoint)"),
    "warmup_steps": (_non_negative, ">= 0 (longer than train.steps is allowed)"),
    "dropout_rate": (_fraction, "in [0, 1)"),
    "attention_dropout_rate": (_fraction, "in [0, 1)"),
    "word_dropout_rate": (_fraction, "in [0, 1)"),
    "label_smoothing": (_fraction, "in [0, 1)"),
    "weight_decay": (_non_negative, ">= 0"),
    "grad_clip_norm": (_non_negative, ">= 0 (0: no clipping)"),
    "max_seconds": (_non_negative, ">= 0 (0: no limit)"),
    "max_examples": (_non_negative, ">= 0 (0: all)"),
    "attention_sentence_count": (_non_negative, ">= 0 (0: no attention pictures)"),
    "train_size": (_non_negative, ">= 0"),
    "validation_size": (_non_negative, ">= 0"),
    "test_size": (_non_negative, ">= 0"),
    "test_long_size": (_non_negative, ">= 0"),
    "min_shard_size": (_at_least_one, "positive"),
    "length_multiple": (_at_least_one, "positive"),
    "bucket_window_batches": (_non_negative, ">= 0 (0 or 1: no bucketing)"),
    "length_penalty": (_non_negative, ">= 0"),
    "max_new_tokens": (_at_least_one, "positive"),
    "num_heads": (_at_least_one, "positive"),
    "num_layers": (_at_least_one, "positive"),
    "num_encoder_layers": (_at_least_one, "positive"),
    "num_decoder_layers": (_at_least_one, "positive"),
    "d_model": (_at_least_one, "positive"),
    "d_ff": (_at_least_one, "positive"),
    "embedding_size": (_at_least_one, "positive"),
    "encoder_size": (_at_least_one, "positive"),
    "max_relative_distance": (_at_least_one, "positive"),
    "vit_depth": (_at_least_one, "positive"),
    "vit_heads": (_at_least_one, "positive"),
    "vit_width": (_at_least_one, "positive"),
    "vit_mlp_dim": (_at_least_one, "positive"),
    "stem_width": (_at_least_one, "positive"),
    "stem_strides": (_at_least_one, "positive"),
    "patch_size": (_at_least_one, "positive"),
    "kernel_size": (_at_least_one, "positive"),
    "attention_features": (_non_negative, ">= 0 (0: the query size)"),
}
# Sequences whose every entry must be a positive integer.
POSITIVE_SEQUENCES = ("decoder_sizes", "widths", "depths")


def _leaves(config, prefix=""):
    for name, value in config.items():
        if hasattr(value, "items"):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", name, value


def check_ranges(config) -> None:
    """ConfigError naming the first field whose value makes no sense (see `RULES`)."""
    for path, name, value in _leaves(config):
        if name in RULES:
            ok, valid = RULES[name]
            if not ok(value):
                raise ConfigError(f"{path} must be {valid}, got {value!r}")
        elif name in POSITIVE_SEQUENCES:
            if not all(_at_least_one(v) for v in value):
                raise ConfigError(
                    f"every entry of {path} must be a positive integer, got {tuple(value)!r}"
                )
