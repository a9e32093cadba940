"""Training loop of the translation experiment: `train_and_evaluate(config, workdir)`.

A workdir ends up holding:
  config.json        the full config
  metrics.jsonl      one JSON line per logged step (train and eval metrics)
  tensorboard/       the same, plus attention maps and sample translations
  tokenizers/        the vocabularies the model was trained with
  checkpoints/<step> orbax checkpoints (the last few); a restarted run resumes
  attention/         attention heatmaps per eval step and final/; for the
                     Transformer also layers/ (every layer and head) and, with
                     eval.attention_rollout, rollout/
  eval.json          the final evaluation of every split
"""

from __future__ import annotations

import functools
import json
import os
import resource
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow_datasets as tfds
from flax.training import train_state

import attn
from experiments.common import attention_config, parallel, validation
from experiments.common.checkpoints import Checkpointer, CheckpointError
from experiments.common.errors import ConfigError
from experiments.common.loop import loop_schedule, train_loop
from experiments.common.optimizers import SCHEDULES, make_optimizer
from experiments.common.preemption import file_lock
from experiments.common.writers import MetricWriter
from experiments.models.rnn import (
    MULTI_HEAD,
    NO_ATTENTION,
    Seq2Seq,
    load_pretrained_embeddings,
)
from experiments.models.transformer import build_transformer, count_layers
from experiments.text import tokenizers as tokenizers_lib
from experiments.text.token_ids import PAD_ID as PAD
from experiments.translation import evaluation, input_pipeline

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
CELLS = ("gru", "lstm")


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without data or compilation."""
    validation.check_ranges(config)
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
            needs=("causal", "cross", "padding", "decode"),
            what="the Transformer (padded source, causal cached decoder, cross-attention)",
            num_heads=config.model.transformer.num_heads,
        )
    else:
        attention_config.check(
            config.model,
            needs=("cross", "padding"),
            what="the RNN's attention unit (padded source)",
            extra_kinds=(MULTI_HEAD, NO_ATTENTION),
        )
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
        (
            config.train.schedule in SCHEDULES,
            f"unknown schedule {config.train.schedule!r}; valid: {', '.join(SCHEDULES)}",
        ),
        (config.train.steps > 0, f"train.steps must be positive, got {config.train.steps}"),
        (
            config.train.batch_size > 0,
            f"train.batch_size must be positive, got {config.train.batch_size}",
        ),
        (config.eval.beam_size >= 1, f"eval.beam_size must be >= 1, got {config.eval.beam_size}"),
        (
            config.data.max_length >= 1,
            f"data.max_length must be >= 1, got {config.data.max_length}",
        ),
        (
            config.train.param_sharding in parallel.PARAM_RULES,
            f"unknown train.param_sharding {config.train.param_sharding!r}; valid: "
            f"{', '.join(parallel.PARAM_RULES)}",
        ),
        (
            config.train.compute_dtype in COMPUTE_DTYPES,
            f"unknown train.compute_dtype {config.train.compute_dtype!r}; valid: "
            f"{', '.join(COMPUTE_DTYPES)}",
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
    _check_heads(config)
    try:
        parallel.check_batch_size(config.train.batch_size, parallel.make_mesh())
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if config.data.name in ("tsv",) and not os.path.isfile(config.data.path):
        raise ConfigError(f"corpus file not found: data.path={config.data.path!r}")
    for side in ("source", "target"):
        path = config.model[f"{side}_embeddings"]
        if path and not os.path.isfile(path):
            raise ConfigError(f"embeddings file not found: model.{side}_embeddings={path!r}")


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


def build_model(config, source_vocab_size: int, target_vocab_size: int):
    """The RNN encoder-decoder or the Transformer, as `model.architecture` says."""
    dtype = COMPUTE_DTYPES[config.train.compute_dtype]
    if config.model.architecture == "transformer":
        sizes = dict(
            config.model.transformer.to_dict(), **attention_config.module_options(config.model)
        )
        return build_transformer(sizes, source_vocab_size, target_vocab_size, dtype)
    options = attention_config.options(config.model)
    takes_features = config.model.attention in attn.available() and (
        "features" in attn.lookup(config.model.attention).options
    )
    if takes_features and config.model.attention_features:
        options.setdefault("features", config.model.attention_features)
    return Seq2Seq(
        source_vocab_size=source_vocab_size,
        target_vocab_size=target_vocab_size,
        embedding_size=config.model.embedding_size,
        encoder_size=config.model.encoder_size,
        decoder_sizes=tuple(config.model.decoder_sizes),
        cell=config.model.cell,
        bidirectional=config.model.bidirectional,
        attention=config.model.attention,
        attention_options=tuple(sorted(options.items())),
        implementation=config.model.get("implementation", "xla"),  # runs saved before it existed
        num_heads=config.model.num_heads,
        input_feeding=config.model.input_feeding,
        dropout_rate=config.model.dropout_rate,
        dtype=dtype,
    )


def cross_entropy(logits, labels, label_smoothing: float):
    """Summed token cross-entropy with optional label smoothing, and the token count."""
    vocab = logits.shape[-1]
    targets = jax.nn.one_hot(labels, vocab)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / vocab
    mask = labels != PAD
    losses = optax.softmax_cross_entropy(logits, targets)
    return jnp.sum(losses * mask), jnp.sum(mask)


def train_step(state: train_state.TrainState, batch, dropout_key, *, label_smoothing: float):
    """One optimizer step with teacher forcing; returns (state, metrics)."""
    key = jax.random.fold_in(dropout_key, state.step)

    def loss_fn(params):
        logits, _ = state.apply_fn(
            {"params": params},
            batch["source"],
            batch["target_input"],
            deterministic=False,
            rngs={"dropout": key},
        )
        logits = logits.astype(jnp.float32)  # the loss is always taken in float32
        loss_sum, tokens = cross_entropy(logits, batch["target_output"], label_smoothing)
        correct = jnp.sum(
            (jnp.argmax(logits, -1) == batch["target_output"]) & (batch["target_output"] != PAD)
        )
        return loss_sum / tokens, (tokens, correct)

    (loss, (tokens, correct)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {
        "loss": loss,
        "token_accuracy": correct / tokens,
        "grad_norm": optax.global_norm(grads),
    }


def _prepare(config, workdir):
    """Data, tokenizers and model: every bad-input error surfaces here."""
    validate_config(config)
    try:
        # Trials of a sweep may start together: one prepares the corpus, the others wait.
        tfds.disable_progress_bar()  # the training progress bar is the one to watch
        with file_lock(os.path.join(config.data.data_dir or ".", ".prepare.lock")):
            splits, data_stats = input_pipeline.load_splits(config.data)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from error
    if not splits.get("train"):
        raise ConfigError(f"the training split of {config.data.name!r} is empty")
    tokenizer_dir = os.path.join(workdir, "tokenizers")
    if os.path.isdir(tokenizer_dir):  # resuming: keep the vocabulary the checkpoint used
        source_tok = tokenizers_lib.load_tokenizer(os.path.join(tokenizer_dir, "source"))
        target_tok = tokenizers_lib.load_tokenizer(os.path.join(tokenizer_dir, "target"))
    else:
        try:
            source_tok, target_tok = input_pipeline.build_tokenizers(splits["train"], config.data)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        if parallel.is_writer():
            os.makedirs(tokenizer_dir, exist_ok=True)
            source_tok.save(os.path.join(tokenizer_dir, "source"))
            target_tok.save(os.path.join(tokenizer_dir, "target"))
    try:
        model = build_model(config, source_tok.vocab_size, target_tok.vocab_size)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return splits, data_stats, source_tok, target_tok, model


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir`; returns eval.json's dict."""
    os.makedirs(workdir, exist_ok=True)
    splits, data_stats, source_tok, target_tok, model = _prepare(config, workdir)
    checkpointer = Checkpointer(workdir, keep=config.checkpoint.keep)
    try:
        check_checkpoint_layers(config, checkpointer)
    except (ConfigError, CheckpointError):
        checkpointer.close()
        raise
    writes = parallel.is_writer()  # multi-host: process 0 writes files, all save checkpoints
    if writes:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))

    rng = jax.random.key(config.seed)
    init_key, dropout_key = jax.random.split(rng)
    sample = {k: np.zeros((2, 8), np.int32) for k in ("source", "target_input")}
    params = model.init(init_key, sample["source"], sample["target_input"])
    for side, tokenizer in (("source", source_tok), ("target", target_tok)):
        path = config.model[f"{side}_embeddings"]
        if path:
            params, found = load_pretrained_embeddings(params, path, tokenizer, side=side)
            print(f"{side} embeddings: {found} of {tokenizer.vocab_size} words found in {path}")
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params["params"], tx=make_optimizer(config.train)
    )
    parameter_count = sum(x.size for x in jax.tree.leaves(state.params))
    mesh = parallel.make_mesh()
    shardings = parallel.state_shardings(
        state, mesh, config.train.param_sharding, config.train.min_shard_size
    )
    state = jax.device_put(state, shardings)

    train_iter, train_truncation = input_pipeline.train_iterator(
        splits["train"],
        source_tok,
        target_tok,
        batch_size=config.train.batch_size,
        max_length=config.data.max_length,
        seed=config.data.seed + config.seed,
        length_multiple=config.train.length_multiple,
        bucket_window_batches=config.train.bucket_window_batches,
    )

    elapsed_before = 0.0
    if checkpointer.latest_step() is not None:
        state, extra = checkpointer.restore(state, config.checkpoint.restore_step)
        train_iter.set_state(extra["iterator"])
        elapsed_before = extra.get("train_seconds", 0.0)
        print(f"Resumed from {checkpointer.directory}/{int(state.step)}")

    writer = MetricWriter(workdir, enabled=writes)
    step_fn = jax.jit(
        lambda s, b, k: train_step(s, b, k, label_smoothing=config.train.label_smoothing),
        in_shardings=(shardings, parallel.batch_sharding(mesh), parallel.replicated(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )
    eval_sets = {
        name: input_pipeline.eval_batches(
            splits[name][: config.eval.max_examples or None],
            source_tok,
            target_tok,
            batch_size=config.eval.batch_size,
            max_length=config.data.max_length,
            length_multiple=config.train.length_multiple,
        )[0]
        for name in ("validation",)
        if name in splits
    }
    # Maps, AER and pictures need the weights, which only the plain form makes.
    has_attention = config.model.attention != NO_ATTENTION and (
        config.model.implementation == "xla"
        and (
            config.model.attention == MULTI_HEAD
            or attn.lookup(config.model.attention).supports("weights")
        )
    )

    periodic_eval = functools.partial(
        _periodic_eval,
        config,
        workdir,
        writer,
        model,
        eval_sets,
        splits,
        source_tok,
        target_tok,
        has_attention,
    )

    result = train_loop(
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
    state = result.state

    final = final_evaluation(
        config, workdir, writer, model, state, splits, source_tok, target_tok, has_attention
    )
    final.update(
        headline=[
            "test/bleu",
            "test/exact_match",
            "test/aer",
            "test_long/bleu",
            "test_long/exact_match",
        ],
        selection="validation/bleu",
        attention=config.model.attention,
        steps=int(state.step),
        parameters=int(parameter_count),
        train_seconds=result.train_seconds,
        seconds_per_step=result.seconds_per_step,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        data=data_stats,
        truncation={"train": vars(train_truncation)},
    )
    if writes:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(final, f, indent=2, default=float)
    writer.close()
    return final


def _periodic_eval(
    config,
    workdir,
    writer,
    model,
    eval_sets,
    splits,
    source_tok,
    target_tok,
    has_attention,
    step,
    state,
):
    params = {"params": state.params}
    scalars = {}
    for name, batches in eval_sets.items():
        result = evaluation.evaluate_split(
            model,
            params,
            splits[name],
            batches,
            target_tok,
            source_tok,
            config.eval,
            max_length=config.data.max_length,
            has_attention=has_attention,
        )
        scalars.update(
            {
                f"{name}/{k}": result[k]
                for k in ("loss", "token_accuracy", "bleu", "exact_match", "aer")
                if k in result
            }
        )
    writer.write_scalars(step, scalars)
    if has_attention:
        _draw_attention_maps(
            config,
            workdir,
            writer,
            model,
            params,
            source_tok,
            target_tok,
            step,
            folder=f"step_{step:06d}",
            title_prefix=f"step {step}: ",
        )


def _draw_attention_maps(
    config, workdir, writer, model, params, source_tok, target_tok, step, *, folder, title_prefix
):
    """Pictures of config.eval.attention_sentences: PNGs under attention/<folder>, TensorBoard.

    The Transformer adds every layer and head (attention/<folder>/layers/) and,
    with eval.attention_rollout, the rollout (attention/<folder>/rollout/).
    """
    if not writer.enabled or not config.eval.attention_sentences:
        return  # in multi-host runs process 0 draws them
    transformer = config.model.architecture == "transformer"
    images = evaluation.attention_maps(
        model,
        params,
        list(config.eval.attention_sentences),
        source_tok,
        target_tok,
        max_length=config.data.max_length,
        directory=os.path.join(workdir, "attention", folder),
        title_prefix=title_prefix,
        layers=transformer,
        rollout=transformer and config.eval.attention_rollout,
    )
    writer.write_images(step, {f"attention/{folder}/{k}": v for k, v in images.items()})


def final_evaluation(
    config, workdir, writer, model, state, splits, source_tok, target_tok, has_attention
) -> dict[str, Any]:
    """Evaluates every configured split in full and draws the final attention maps."""
    params = {"params": state.params}
    results, truncation = {}, {}
    for name in config.eval.splits:
        if name not in splits:
            continue
        batches, truncated = input_pipeline.eval_batches(
            splits[name],
            source_tok,
            target_tok,
            batch_size=config.eval.batch_size,
            max_length=config.data.max_length,
            length_multiple=config.train.length_multiple,
        )
        truncation[name] = vars(truncated)
        results[name] = evaluation.evaluate_split(
            model,
            params,
            splits[name],
            batches,
            target_tok,
            source_tok,
            config.eval,
            max_length=config.data.max_length,
            has_attention=has_attention,
        )
    step = int(state.step)
    writer.write_scalars(
        step,
        {
            f"final/{split}/{k}": v
            for split, r in results.items()
            for k, v in r.items()
            if isinstance(v, (int, float))
        },
    )
    samples = "\n".join(
        f"    {s['reference']}  ->  {s['hypothesis']}"
        for r in results.values()
        for s in r["samples"]
    )
    writer.write_text(step, {"samples": samples})
    if has_attention:
        _draw_attention_maps(
            config,
            workdir,
            writer,
            model,
            params,
            source_tok,
            target_tok,
            step,
            folder="final",
            title_prefix=f"{config.model.attention}: ",
        )
    return {"splits": results, "eval_truncation": truncation}


__all__ = ["train_and_evaluate", "validate_config"]
