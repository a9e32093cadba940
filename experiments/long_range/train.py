"""Trains and evaluates one mechanism on one long-range task (experiments/configs/long_range.py).

- classification tasks (ListOps, Pathfinder, Image, Text):
  `SequenceClassifier`, the shared encoder layers, mean-pooled; cross-entropy
  on the label; accuracy per split.
- matching tasks (Retrieval): the same classifier given both documents of a
  pair (a dual encoder, weights shared).
- recall tasks (MQAR): `CausalLM`, the shared decoder layers; cross-entropy
  and accuracy at the query positions only.

The workdir is the shared trainer's (experiments/common/trainer.py):
config.json, metrics.jsonl, checkpoints, eval.json with "splits"
{"validation", "test"} -> {"accuracy", "loss", "examples"}.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from attn import local2d
from experiments.common import attention_config, sections, trainer, validation
from experiments.common.errors import ConfigError
from experiments.long_range import data as data_lib
from experiments.models import causal_lm, pixel_conv, pixel_local_attention, sequence_classifier
from experiments.models.from_config import construct
from experiments.models.transformer import BIASED, TABLES

NEEDS = {
    "classify": ("padding",),  # an encoder over padded sequences
    "match": ("padding",),  # the same encoder over each of a pair
    "recall": ("causal", "padding"),  # a causal decoder read left to right
}


ARCHITECTURES = ("transformer", "conv", "local2d")
# What the pixel models (conv, local2d) leave unread of the model section.
ATTENTION_ENCODER_FIELDS = (
    "num_heads",
    "d_ff",
    "attention_dropout_rate",
    "attention",
    "attention_options",
    "implementation",
    "num_kv_heads",
    "pre_layer_norm",
    "positions",
    "max_length",
    "max_relative_distance",
    "pooling",
)
# ... of which local 2-D attention reads these (its attention is always softmax over windows).
LOCAL2D_FIELDS = ("num_heads", "d_ff", "pooling")


def architecture(model_config) -> str:
    return model_config.get("architecture", "transformer")  # runs saved before it existed


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without generating data or compiling."""
    validation.check_ranges(config)
    sections.check_train(config)
    try:
        data_lib.check(config.data)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    info = data_lib.info(config.data)
    model = config.model
    if architecture(model) not in ARCHITECTURES:
        raise ConfigError(
            f"unknown model.architecture {architecture(model)!r}; valid: {', '.join(ARCHITECTURES)}"
        )
    if architecture(model) in ("conv", "local2d"):
        if config.data.task not in pixel_conv.PIXEL_TASKS:
            raise ConfigError(
                f"model.architecture={architecture(model)!r} reads square images, not data.task="
                f"{config.data.task!r}; valid tasks: {', '.join(pixel_conv.PIXEL_TASKS)}"
            )
        if architecture(model) == "local2d":
            _check_local2d(model)
        return
    attention_config.check(
        model,
        needs=NEEDS[info.kind] + (("bias",) if model.positions in BIASED else ()),
        what=f"data.task={config.data.task!r}",
        num_heads=model.num_heads,
    )
    try:
        sequence_classifier.check_sizes(model)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if model.positions in TABLES and model.max_length < info.length:
        raise ConfigError(
            f"model.max_length={model.max_length} is shorter than data.task={config.data.task!r}'s "
            f"sequences ({info.length} tokens) with model.positions={model.positions!r}; raise "
            f"model.max_length to at least {info.length}"
        )


def _check_local2d(model) -> None:
    """The local 2-D attention classifier's sizes, each bad value in one line (the
    conditions are the layer's own, attn.local2d; the words name the config fields)."""
    kernel_size = model.get("kernel_size", 7)  # runs saved before the field existed: 7
    try:
        local2d.check_kernel_size(kernel_size)
    except ValueError:
        raise ConfigError(
            f"model.kernel_size={kernel_size} must be odd and positive "
            "(the window is centred on its pixel), e.g. 3, 5 or 7"
        ) from None
    try:
        local2d.check_heads(model.d_model, model.num_heads)
    except ValueError:
        raise ConfigError(
            f"model.num_heads={model.num_heads} must split model.d_model={model.d_model} into "
            "heads of even size (row and column position embeddings take half of each head each)"
        ) from None
    if model.pooling not in pixel_local_attention.POOLINGS:
        raise ConfigError(
            f"model.pooling={model.pooling!r} with model.architecture='local2d'; valid: "
            f"{', '.join(pixel_local_attention.POOLINGS)}"
        )


def unread_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
    """The other tasks' data sections -> why (see experiments.unread_fields)."""
    task = config.data.task
    unread = {
        f"data.{other}": f"data.task={task!r} (the {other} task's settings)"
        for other in data_lib.TASKS
        if other != task and other in config.data
    }
    if task == "mqar":
        unread["model.pooling"] = "data.task='mqar' (a causal decoder scored at every query)"
    kind = architecture(config.model)
    if kind in ("conv", "local2d"):
        why = f"model.architecture={kind!r} (a field of the sequence encoder)"
        read = LOCAL2D_FIELDS if kind == "local2d" else ()
        unread.update(
            {f"model.{name}": why for name in ATTENTION_ENCODER_FIELDS if name not in read}
        )
    if kind != "local2d" and "kernel_size" in config.model:
        unread["model.kernel_size"] = f"model.architecture={kind!r} (local2d's window side)"
    return unread


def build_model(model_config, info: data_lib.TaskInfo, dtype=jnp.float32):
    """The task's model from `config.model`: a classifier or a causal decoder, or
    the convolutional reference for a pixel task (`model.architecture="conv"`)."""
    if architecture(model_config) == "local2d":
        return pixel_local_attention.PixelLocalAttentionClassifier(
            vocab_size=info.vocab_size,
            num_classes=info.num_classes,
            d_model=model_config.d_model,
            num_heads=model_config.num_heads,
            num_layers=model_config.num_layers,
            d_ff=model_config.d_ff,
            kernel_size=model_config.get("kernel_size", 7),  # 7: runs saved before the field
            pooling=model_config.pooling,
            dropout_rate=model_config.dropout_rate,
            dtype=dtype,
        )
    if architecture(model_config) == "conv":
        return pixel_conv.PixelConvClassifier(
            vocab_size=info.vocab_size,
            num_classes=info.num_classes,
            d_model=model_config.d_model,
            num_layers=model_config.num_layers,
            dropout_rate=model_config.dropout_rate,
            dtype=dtype,
        )
    values = dict(model_config)
    values.pop("architecture", None)
    values.pop("kernel_size", None)
    values["attention_options"] = tuple(sorted(attention_config.options(model_config).items()))
    values["num_kv_heads"] = attention_config.num_kv_heads(model_config)
    if info.kind in ("classify", "match"):
        return construct(
            sequence_classifier.SequenceClassifier,
            values,
            section_name="model",
            optional=("pooling",),
            vocab_size=info.vocab_size,
            num_classes=info.num_classes,
            dtype=dtype,
        )
    values.pop("pooling", None)  # a classifier's field; the decoder scores every position
    return construct(
        causal_lm.CausalLM,
        values,
        section_name="model",
        optional=("tie_embeddings",),
        vocab_size=info.vocab_size,
        dtype=dtype,
    )


def _inputs(batch) -> tuple:
    """The model's positional inputs: the sequence, and the second of a pair if there is one."""
    return (batch["inputs"], batch["second"]) if "second" in batch else (batch["inputs"],)


def _stats(kind: str, logits, batch):
    """Summed loss, correct predictions and scored items of a batch."""
    logits = logits.astype(jnp.float32)
    if kind in ("classify", "match"):
        weight = batch.get("weight", jnp.ones(logits.shape[0]))
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
        correct = jnp.argmax(logits, -1) == batch["labels"]
    else:
        weight = batch["queries"].astype(jnp.float32)
        if "weight" in batch:
            weight = weight * batch["weight"][:, None]
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
        correct = jnp.argmax(logits, -1) == batch["targets"]
    return jnp.sum(losses * weight), jnp.sum(correct * weight), jnp.sum(weight)


def loss(model, kind: str, params, batch, dropout_key):
    """Mean training loss of a batch (dropout on) and its accuracy: `kind` is the task's."""
    logits = model.apply(
        {"params": params}, *_inputs(batch), deterministic=False, rngs={"dropout": dropout_key}
    )
    loss_sum, correct, count = _stats(kind, logits, batch)
    count = jnp.maximum(count, 1)
    return loss_sum / count, {"accuracy": correct / count}


class LongRangeTask(trainer.Task):
    """One long-range task for the shared trainer."""

    def __init__(self, config, workdir):
        validate_config(config)
        self.config = config
        self.info = data_lib.info(config.data)
        try:
            self.splits = data_lib.load(config.data)
            self.train_iterator = data_lib.BatchIterator(
                self.splits["train"], config.train.batch_size, config.data.seed + config.seed
            )
            self.model = build_model(
                config.model, self.info, trainer.COMPUTE_DTYPES[config.train.compute_dtype]
            )
        except ValueError as error:
            raise ConfigError(str(error)) from error
        model, kind = self.model, self.info.kind
        self.eval_fn = jax.jit(
            lambda p, b: _stats(kind, model.apply({"params": p}, *_inputs(b)), b)
        )
        self.eval_batches = {
            split: data_lib.batches(self.splits[split], config.eval.batch_size)
            for split in ("validation", "test")
            if len(self.splits[split]["inputs"])
        }

    def init_params(self, seed_key):
        init_key = jax.random.split(seed_key)[0]  # the second half is the dropout key
        sample = {"inputs": jnp.ones((1, self.info.length), jnp.int32)}
        if self.info.kind == "match":
            sample["second"] = sample["inputs"]
        return self.model.init(init_key, *_inputs(sample))["params"]

    def loss(self, params, batch, dropout_key):
        return loss(self.model, self.info.kind, params, batch, dropout_key)

    def _evaluate(self, params, split) -> dict[str, float]:
        totals = np.zeros(3)
        for batch in self.eval_batches[split]:
            totals += np.asarray(jax.device_get(self.eval_fn(params, batch)), np.float64)
        loss_sum, correct, count = totals
        return {
            "accuracy": float(correct / max(count, 1)),
            "loss": float(loss_sum / max(count, 1)),
            "examples": len(self.splits[split]["inputs"]),
        }

    def evaluate(self, step, params, writer):
        if "validation" in self.eval_batches:
            result = self._evaluate(params, "validation")
            writer.write_scalars(
                step, {f"validation/{k}": v for k, v in result.items() if k != "examples"}
            )

    def final_evaluation(self, step, params, writer):
        results = {split: self._evaluate(params, split) for split in self.eval_batches}
        writer.write_scalars(
            step,
            {
                f"final/{s}/{k}": v
                for s, r in results.items()
                for k, v in r.items()
                if k != "examples"
            },
        )
        summary = ", ".join(f"{s} accuracy {r['accuracy']:.3f}" for s, r in results.items())
        # The pixel references' rows in the report are their architectures ("conv",
        # "local2d"): neither runs the registered mechanism the config names.
        pixel_model = architecture(self.config.model) in ("conv", "local2d")
        mechanism = architecture(self.config.model) if pixel_model else self.config.model.attention
        print(f"step {step}: {self.config.data.task} {mechanism}: {summary}")
        return {
            "splits": results,
            "headline": ["test/accuracy", "test/loss"],
            "selection": "validation/accuracy",
            "task": self.config.data.task,
            "attention": mechanism,
            "chance": 1.0 / self.info.num_classes
            if self.info.kind in ("classify", "match")
            else 1.0 / (self.info.vocab_size - self.info.vocab_size // 2),
        }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir`; returns eval.json's dict."""
    return trainer.train_and_evaluate(LongRangeTask, config, workdir)


__all__ = [
    "LongRangeTask",
    "build_model",
    "loss",
    "train_and_evaluate",
    "unread_fields",
    "validate_config",
]
