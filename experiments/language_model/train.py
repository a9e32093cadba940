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

import json
import math
import os
import resource
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from experiments.common import attention_config, parallel, validation
from experiments.common.checkpoints import Checkpointer
from experiments.common.errors import ConfigError
from experiments.common.loop import loop_schedule, train_loop
from experiments.common.optimizers import SCHEDULES, make_optimizer
from experiments.common.writers import MetricWriter
from experiments.language_model import data as data_lib
from experiments.language_model.generate import Continuer
from experiments.models.causal_lm import build_model, check_sizes
from experiments.text import corpora
from experiments.text import tokenizers as tokenizers_lib

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without reading the data or compiling."""
    validation.check_ranges(config)
    data, model, train = config.data, config.model, config.train
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
        needs=("causal", "padding", "decode"),
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
            model.positions == "relative" or model.max_length >= data.max_length,
            f"model.max_length={model.max_length} must be at least "
            f"data.max_length={data.max_length}",
        ),
        (
            train.schedule in SCHEDULES,
            f"unknown train.schedule {train.schedule!r}; valid: {', '.join(SCHEDULES)}",
        ),
        (train.steps > 0, f"train.steps must be positive, got {train.steps}"),
        (train.batch_size > 0, f"train.batch_size must be positive, got {train.batch_size}"),
        (
            config.eval.batch_size > 0,
            f"eval.batch_size must be positive, got {config.eval.batch_size}",
        ),
        (
            train.compute_dtype in COMPUTE_DTYPES,
            f"unknown train.compute_dtype {train.compute_dtype!r}; valid: "
            f"{', '.join(COMPUTE_DTYPES)}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    try:
        parallel.check_batch_size(train.batch_size, parallel.make_mesh())
    except ValueError as error:
        raise ConfigError(str(error)) from error


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


def _token_stats(logits, targets, mask):
    """Summed cross-entropy, correct predictions and tokens over the unmasked targets."""
    logits = logits.astype(jnp.float32)  # the loss is always taken in float32
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets) & mask
    return jnp.sum(jnp.where(mask, losses, 0.0)), jnp.sum(correct), jnp.sum(mask)


def train_step(state: train_state.TrainState, batch, dropout_key):
    """One optimizer step on `batch` ("inputs", "targets", "mask", each `[batch,
    length]`); returns (state, metrics)."""
    key = jax.random.fold_in(dropout_key, state.step)

    def loss_fn(params):
        logits = state.apply_fn(
            {"params": params}, batch["inputs"], deterministic=False, rngs={"dropout": key}
        )
        loss_sum, correct, tokens = _token_stats(logits, batch["targets"], batch["mask"])
        return loss_sum / tokens, (correct, tokens)

    (loss, (correct, tokens)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {
        "loss": loss,
        "perplexity": jnp.exp(loss),
        "token_accuracy": correct / tokens,
        "grad_norm": optax.global_norm(grads),
    }


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir`; returns eval.json's dict."""
    os.makedirs(workdir, exist_ok=True)
    stats, tokenizer, encoded, train_iter, model = _prepare(config, workdir)
    writes = parallel.is_writer()  # multi-host: process 0 writes files, all save checkpoints
    if writes:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))

    init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
    sample = np.full((1, config.data.max_length), tokenizers_lib.BOS_ID, np.int32)
    params = model.init(init_key, sample)["params"]
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=make_optimizer(config.train)
    )
    parameter_count = sum(x.size for x in jax.tree.leaves(state.params))
    mesh = parallel.make_mesh()
    shardings = parallel.state_shardings(state, mesh)
    state = jax.device_put(state, shardings)

    checkpointer = Checkpointer(workdir, keep=config.checkpoint.keep)
    elapsed_before = 0.0
    if checkpointer.latest_step() is not None:
        state, extra = checkpointer.restore(state, config.checkpoint.restore_step)
        train_iter.set_state(extra["iterator"])
        elapsed_before = extra.get("train_seconds", 0.0)
        print(f"Resumed from {checkpointer.directory}/{int(state.step)}")

    writer = MetricWriter(workdir, enabled=writes)
    step_fn = jax.jit(
        train_step,
        in_shardings=(shardings, parallel.batch_sharding(mesh), parallel.replicated(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )
    eval_fn = jax.jit(
        lambda p, b: _token_stats(model.apply({"params": p}, b["inputs"]), b["targets"], b["mask"])
    )
    eval_sets = {
        name: data_lib.eval_batches(encoded[name], config.eval.batch_size)
        for name in ("validation", "test")
        if len(encoded[name])
    }
    periodic_batches = eval_sets.get("validation", [])
    if config.eval.max_examples:  # a cheaper look during training; the final one is full
        periodic_batches = periodic_batches[
            : math.ceil(config.eval.max_examples / config.eval.batch_size)
        ]
    continuer = Continuer(model, tokenizer, _prompts(config), config.eval.max_new_tokens)

    def periodic_eval(step, state):
        if periodic_batches:
            result = evaluate(eval_fn, state.params, periodic_batches)
            writer.write_scalars(
                step, {f"validation/{k}": v for k, v in result.items() if k != "tokens"}
            )
        writer.write_text(step, {"samples": _format(continuer({"params": state.params}))})

    run = train_loop(
        state,
        lambda state, batch: step_fn(state, batch, dropout_key),
        train_iter,
        mesh,
        **loop_schedule(config),
        writer=writer,
        checkpointer=checkpointer,
        elapsed_before=elapsed_before,
        evaluate=periodic_eval,
        description=os.path.basename(os.path.abspath(workdir)),
    )
    state = run.state

    step = int(state.step)
    results = {name: evaluate(eval_fn, state.params, b) for name, b in eval_sets.items()}
    for name, sentences in encoded.items():
        if name in results:
            results[name].update(examples=len(sentences), truncated=sentences.truncated)
    samples = continuer({"params": state.params})
    writer.write_scalars(
        step,
        {f"final/{s}/{k}": v for s, r in results.items() for k, v in r.items() if k != "tokens"},
    )
    writer.write_text(step, {"samples": _format(samples)})
    final = {
        "splits": results,
        "samples": samples,
        "headline": ["test/perplexity", "test/loss", "test/token_accuracy"],
        "selection": "validation/token_accuracy",
        "attention": config.model.attention,
        "steps": step,
        "parameters": int(parameter_count),
        "train_seconds": run.train_seconds,
        "seconds_per_step": run.seconds_per_step,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "data": stats,
        "truncated_train": encoded["train"].truncated,
    }
    if writes:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(final, f, indent=2, default=float)
    writer.close()
    summary = ", ".join(
        f"{s} loss {r['loss']:.3f} perplexity {r['perplexity']:.2f}" for s, r in results.items()
    )
    print(f"step {step}: {summary}\n{_format(samples)}")
    return final


def _prompts(config) -> list[str]:
    """eval.prompts split into words the way the training text was."""
    return [corpora.tokenize_words(p, language=config.data.language) for p in config.eval.prompts]


def _format(samples) -> str:
    return "\n".join(f"    {s['prompt']} | {s['continuation']}" for s in samples)


__all__ = ["evaluate", "train_and_evaluate", "train_step", "validate_config"]
