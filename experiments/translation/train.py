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

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow_datasets as tfds

import attn
from experiments.common import attention_config, parallel, trainer
from experiments.common.errors import ConfigError
from experiments.common.preemption import file_lock
from experiments.models.rnn import (
    MULTI_HEAD,
    NO_ATTENTION,
    Seq2Seq,
    load_pretrained_embeddings,
)
from experiments.models.transformer import build_transformer
from experiments.text import tokenizers as tokenizers_lib
from experiments.text.token_ids import PAD_ID as PAD
from experiments.translation import batching, evaluation, input_pipeline
from experiments.translation.checks import check_checkpoint_layers, unread_fields, validate_config

COMPUTE_DTYPES = trainer.COMPUTE_DTYPES


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


def loss(model, params, batch, dropout_key, *, label_smoothing: float):
    """Teacher-forced token cross-entropy of `batch` ("source", "target_input",
    "target_output", each `[batch, length]`): (mean loss, {"token_accuracy"})."""
    logits, _ = model.apply(
        {"params": params},
        batch["source"],
        batch["target_input"],
        deterministic=False,
        rngs={"dropout": dropout_key},
    )
    logits = logits.astype(jnp.float32)  # the loss is always taken in float32
    loss_sum, tokens = cross_entropy(logits, batch["target_output"], label_smoothing)
    correct = jnp.sum(
        (jnp.argmax(logits, -1) == batch["target_output"]) & (batch["target_output"] != PAD)
    )
    return loss_sum / tokens, {"token_accuracy": correct / tokens}


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


def forms_attention_weights(config) -> bool:
    """Whether the model forms attention weights: maps, AER and pictures need
    them, and only the plain ("xla") form of a kind that has weights makes them."""
    return config.model.attention != NO_ATTENTION and (
        config.model.get("implementation", "xla") == "xla"  # runs saved before it existed
        and (
            config.model.attention == MULTI_HEAD
            or attn.lookup(config.model.attention).supports("weights")
        )
    )


class TranslationTask(trainer.Task):
    """The translation experiment for the shared trainer (common/trainer.py)."""

    def __init__(self, config, workdir):
        self.config, self.workdir = config, workdir
        splits, data_stats, source_tok, target_tok, model = _prepare(config, workdir)
        self.splits, self.data_stats, self.model = splits, data_stats, model
        self.source_tok, self.target_tok = source_tok, target_tok
        self.train_iterator, self.train_truncation = batching.train_iterator(
            splits["train"],
            source_tok,
            target_tok,
            batch_size=config.train.batch_size,
            max_length=config.data.max_length,
            seed=config.data.seed + config.seed,
            length_multiple=config.train.length_multiple,
            bucket_window_batches=config.train.bucket_window_batches,
        )
        self.eval_sets = {
            name: batching.eval_batches(
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
        self.has_attention = forms_attention_weights(config)
        # Choosing them encodes the test split: only where there are pictures to draw.
        self.attention_sentences = (
            evaluation.attention_sentences(config.eval, config.data.name, splits, source_tok)
            if self.has_attention
            else []
        )

    def init_params(self, seed_key):
        init_key = jax.random.split(seed_key)[0]  # the second half is the dropout key
        sample = np.zeros((2, 8), np.int32)
        return self.model.init(init_key, sample, sample)["params"]

    def after_init(self, params):
        variables = {"params": params}
        for side, tokenizer in (("source", self.source_tok), ("target", self.target_tok)):
            path = self.config.model[f"{side}_embeddings"]
            if path:
                variables, found = load_pretrained_embeddings(variables, path, tokenizer, side=side)
                print(f"{side} embeddings: {found} of {tokenizer.vocab_size} words found in {path}")
        return variables["params"]

    def check_checkpoint(self, checkpointer):
        check_checkpoint_layers(self.config, checkpointer)

    def loss(self, params, batch, dropout_key):
        return loss(
            self.model,
            params,
            batch,
            dropout_key,
            label_smoothing=self.config.train.label_smoothing,
        )

    def evaluate(self, step, params, writer):
        _periodic_eval(self, writer, step, params)

    def final_evaluation(self, step, params, writer):
        final = final_evaluation(self, writer, step, params)
        final.update(
            headline=[
                "test/bleu",
                "test/exact_match",
                "test/aer",
                "test_long/bleu",
                "test_long/exact_match",
            ],
            selection="validation/bleu",
            attention=self.config.model.attention,
            attention_sentences=self.attention_sentences,
            data=self.data_stats,
            truncation={"train": vars(self.train_truncation)},
        )
        return final


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir` (the layout of the
    module docstring); returns eval.json's dict."""
    return trainer.train_and_evaluate(TranslationTask, config, workdir)


def _periodic_eval(task: TranslationTask, writer, step, params):
    config, params = task.config, {"params": params}
    scalars = {}
    for name, batches in task.eval_sets.items():
        result = evaluation.evaluate_split(
            task.model,
            params,
            task.splits[name],
            batches,
            task.target_tok,
            task.source_tok,
            config.eval,
            max_length=config.data.max_length,
            has_attention=task.has_attention,
        )
        scalars.update(
            {
                f"{name}/{k}": result[k]
                for k in ("loss", "token_accuracy", "bleu", "exact_match", "aer")
                if k in result
            }
        )
    writer.write_scalars(step, scalars)
    if task.has_attention:
        _draw_attention_maps(
            task, writer, params, step, folder=f"step_{step:06d}", title_prefix=f"step {step}: "
        )


def _draw_attention_maps(task: TranslationTask, writer, params, step, *, folder, title_prefix):
    """Pictures of config.eval.attention_sentences: PNGs under attention/<folder>, TensorBoard.

    The Transformer adds every layer and head (attention/<folder>/layers/) and,
    with eval.attention_rollout, the rollout (attention/<folder>/rollout/).
    """
    config = task.config
    if not writer.enabled or not task.attention_sentences:
        return  # in multi-host runs process 0 draws them
    transformer = config.model.architecture == "transformer"
    images = evaluation.attention_maps(
        task.model,
        params,
        task.attention_sentences,
        task.source_tok,
        task.target_tok,
        max_length=config.data.max_length,
        directory=os.path.join(task.workdir, "attention", folder),
        title_prefix=title_prefix,
        layers=transformer,
        rollout=transformer and config.eval.attention_rollout,
    )
    writer.write_images(step, {f"attention/{folder}/{k}": v for k, v in images.items()})


def score_split(
    config, eval_config, model, params, pairs, source_tok, target_tok, *, has_attention
):
    """Every metric of one whole split, batched as training batches it: (metrics, truncation)."""
    batches, truncated = batching.eval_batches(
        pairs,
        source_tok,
        target_tok,
        batch_size=config.eval.batch_size,
        max_length=config.data.max_length,
        length_multiple=config.train.length_multiple,
    )
    result = evaluation.evaluate_split(
        model,
        params,
        pairs,
        batches,
        target_tok,
        source_tok,
        eval_config,
        max_length=config.data.max_length,
        has_attention=has_attention,
    )
    return result, truncated


def final_evaluation(task: TranslationTask, writer, step, params) -> dict[str, Any]:
    """Evaluates every configured split in full and draws the final attention maps."""
    config, params = task.config, {"params": params}
    results, truncation = {}, {}
    for name in config.eval.splits:
        if name not in task.splits:
            continue
        results[name], truncated = score_split(
            config,
            config.eval,
            task.model,
            params,
            task.splits[name],
            task.source_tok,
            task.target_tok,
            has_attention=task.has_attention,
        )
        truncation[name] = vars(truncated)
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
    if task.has_attention:
        _draw_attention_maps(
            task, writer, params, step, folder="final", title_prefix=f"{config.model.attention}: "
        )
    return {"splits": results, "eval_truncation": truncation}


__all__ = [
    "TranslationTask",
    "loss",
    "train_and_evaluate",
    "unread_fields",
    "validate_config",
]
