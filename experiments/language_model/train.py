"""Training loop of the language model: `train_and_evaluate(config, workdir)`.

A workdir ends up holding:
  config.json        the full config
  tokenizer.json     the vocabulary the model was trained with
  metrics.jsonl      one JSON line per logged step (train and validation metrics)
  tensorboard/       the same, plus the sample continuations
  checkpoints/<step> orbax checkpoints (the last few); a restarted run resumes
  eval.json          loss, perplexity and token accuracy of the held-out
                     splits, and greedy continuations of `eval.prompts`

Loss and perplexity are per token (the EOS that ends each sentence counts, the
BOS does not). eval.json's "selection" is validation token accuracy, because
the sweep report picks the largest value of it.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.common import attention_config, parallel, sections, trainer, validation
from experiments.common.errors import ConfigError
from experiments.language_model import data as data_lib
from experiments.language_model.generate import Continuer
from experiments.models.causal_lm import build_model, check_sizes
from experiments.models.transformer import BIASED
from experiments.text import corpora
from experiments.text import tokenizers as tokenizers_lib

COMPUTE_DTYPES = trainer.COMPUTE_DTYPES


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without reading the data or compiling."""
    validation.check_ranges(config)
    sections.check_train(config)
    data, model = config.data, config.model
    if data.name not in data_lib.DATASET_NAMES:
        raise ConfigError(
            f"unknown data.name {data.name!r}; valid: {', '.join(data_lib.DATASET_NAMES)}"
        )
    if data.name == "toy_french" and data.path:
        raise ConfigError(
            f"data.path={data.path!r} is set but data.name is 'toy_french'; "
            f"use --config.data.name=text to train on the file"
        )
    attention_config.check(
        model,
        needs=("causal", "padding", "decode") + (("bias",) if model.positions in BIASED else ()),
        what="the language model (causal, padded, cached decoding)",
        num_heads=model.num_heads,
    )
    try:
        if data.name == "text":
            data_lib.check_text_file(data.path)
        check_sizes(model)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    specials = len(tokenizers_lib.SPECIAL_TOKENS)
    checks = [
        (
            data.language in corpora.SUPPORTED_LANGUAGES,
            f"unknown data.language {data.language!r}; valid: "
            f"{', '.join(corpora.SUPPORTED_LANGUAGES)}",
        ),
        (
            data.tokenizer in tokenizers_lib.TOKENIZER_KINDS,
            f"unknown data.tokenizer {data.tokenizer!r}; valid: "
            f"{', '.join(tokenizers_lib.TOKENIZER_KINDS)}",
        ),
        (
            data.vocab_size > specials,
            f"data.vocab_size={data.vocab_size} leaves no room for words next to the "
            f"{specials} special tokens; use at least {specials + 1}",
        ),
        (data.max_length >= 2, f"data.max_length must be >= 2, got {data.max_length}"),
        (
            model.positions not in ("learned", "sinusoidal") or model.max_length >= data.max_length,
            f"model.max_length={model.max_length} must be at least "
            f"data.max_length={data.max_length}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _prepare(config, workdir):
    """Data, tokenizer and model: every bad-input error surfaces here, before compiling."""
    validate_config(config)
    try:
        splits, stats = data_lib.load_splits(config.data)
        if not splits["train"]:
            raise data_lib.DataError(
                f"the training split of data.name={config.data.name!r} is empty"
            )
        path = os.path.join(workdir, "tokenizer.json")
        if os.path.isfile(path):  # resuming: keep the vocabulary the checkpoint used
            tokenizer = tokenizers_lib.load_tokenizer(path)
        else:
            tokenizer = data_lib.build_tokenizer(splits["train"], config.data)
            if parallel.is_writer():
                tokenizer.save(path)
        encoded = {
            name: data_lib.encode(sentences, tokenizer, config.data.max_length)
            for name, sentences in splits.items()
        }
        train_iter = data_lib.TrainIterator(
            encoded["train"], config.train.batch_size, config.data.seed + config.seed
        )
        model = build_model(
            config.model, tokenizer.vocab_size, COMPUTE_DTYPES[config.train.compute_dtype]
        )
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return stats, tokenizer, encoded, train_iter, model


def _token_stats(logits, targets, mask, label_smoothing: float = 0.0):
    """Summed cross-entropy, correct predictions and tokens over the unmasked targets."""
    logits = logits.astype(jnp.float32)  # the loss is always taken in float32
    if label_smoothing:
        smoothed = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1]), label_smoothing)
        losses = optax.softmax_cross_entropy(logits, smoothed)
    else:
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets) & mask
    return jnp.sum(jnp.where(mask, losses, 0.0)), jnp.sum(correct), jnp.sum(mask)


def loss(model, params, batch, dropout_key, *, label_smoothing: float = 0.0):
    """Next-token cross-entropy of `batch` ("inputs", "targets", "mask", each
    `[batch, length]`): (mean loss per token, {"perplexity", "token_accuracy"})."""
    logits = model.apply(
        {"params": params}, batch["inputs"], deterministic=False, rngs={"dropout": dropout_key}
    )
    loss_sum, correct, tokens = _token_stats(
        logits, batch["targets"], batch["mask"], label_smoothing
    )
    mean = loss_sum / tokens
    return mean, {"perplexity": jnp.exp(mean), "token_accuracy": correct / tokens}


def evaluate(eval_fn, params, batches) -> dict[str, float]:
    """Per-token loss, perplexity and accuracy of `batches`."""
    totals = np.zeros(3)
    for batch in batches:
        totals += np.asarray(jax.device_get(eval_fn(params, batch)), np.float64)
    loss_sum, correct, tokens = totals
    loss = loss_sum / max(tokens, 1)
    return {
        "loss": float(loss),
        "perplexity": float(np.exp(loss)),
        "token_accuracy": float(correct / max(tokens, 1)),
        "tokens": int(tokens),
    }


class LanguageModelTask(trainer.Task):
    """The language model for the shared trainer (common/trainer.py)."""

    def __init__(self, config, workdir):
        self.config = config
        self.stats, self.tokenizer, self.encoded, self.train_iterator, self.model = _prepare(
            config, workdir
        )
        model = self.model
        self.eval_fn = jax.jit(
            lambda p, b: _token_stats(
                model.apply({"params": p}, b["inputs"]), b["targets"], b["mask"]
            )
        )
        self.eval_sets = {
            name: data_lib.eval_batches(self.encoded[name], config.eval.batch_size)
            for name in ("validation", "test")
            if len(self.encoded[name])
        }
        self.periodic_batches = self.eval_sets.get("validation", [])
        if config.eval.max_examples:  # a cheaper look during training; the final one is full
            self.periodic_batches = self.periodic_batches[
                : math.ceil(config.eval.max_examples / config.eval.batch_size)
            ]
        self.continuer = Continuer(
            model, self.tokenizer, _prompts(config), config.eval.max_new_tokens
        )

    def init_params(self, seed_key):
        init_key = jax.random.split(seed_key)[0]  # the second half is the dropout key
        sample = np.full((1, self.config.data.max_length), tokenizers_lib.BOS_ID, np.int32)
        return self.model.init(init_key, sample)["params"]

    def loss(self, params, batch, dropout_key):
        return loss(
            self.model,
            params,
            batch,
            dropout_key,
            label_smoothing=self.config.train.label_smoothing,
        )

    def evaluate(self, step, params, writer):
        if self.periodic_batches:
            result = evaluate(self.eval_fn, params, self.periodic_batches)
            writer.write_scalars(
                step, {f"validation/{k}": v for k, v in result.items() if k != "tokens"}
            )
        writer.write_text(step, {"samples": _format(self.continuer({"params": params}))})

    def final_evaluation(self, step, params, writer):
        results = {name: evaluate(self.eval_fn, params, b) for name, b in self.eval_sets.items()}
        for name, sentences in self.encoded.items():
            if name in results:
                results[name].update(examples=len(sentences), truncated=sentences.truncated)
        samples = self.continuer({"params": params})
        writer.write_scalars(
            step,
            {
                f"final/{s}/{k}": v
                for s, r in results.items()
                for k, v in r.items()
                if k != "tokens"
            },
        )
        writer.write_text(step, {"samples": _format(samples)})
        summary = ", ".join(
            f"{s} loss {r['loss']:.3f} perplexity {r['perplexity']:.2f}" for s, r in results.items()
        )
        print(f"step {step}: {summary}\n{_format(samples)}")
        return {
            "splits": results,
            "samples": samples,
            "headline": ["test/perplexity", "test/loss", "test/token_accuracy"],
            "selection": "validation/token_accuracy",
            "attention": self.config.model.attention,
            "data": self.stats,
            "truncated_train": self.encoded["train"].truncated,
        }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir` (the layout of the
    module docstring); returns eval.json's dict."""
    return trainer.train_and_evaluate(LanguageModelTask, config, workdir)


def _prompts(config) -> list[str]:
    """eval.prompts split into words the way the training text was."""
    return [corpora.tokenize_words(p, language=config.data.language) for p in config.eval.prompts]


def _format(samples) -> str:
    return "\n".join(f"    {s['prompt']} | {s['continuation']}" for s in samples)


__all__ = ["LanguageModelTask", "evaluate", "loss", "train_and_evaluate", "validate_config"]
