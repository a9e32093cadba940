"""Evaluation of a translation model: decoding metrics, AER, attention maps.

Per split: teacher-forced loss and token accuracy; greedy or beam decoding
scored with BLEU and exact match, overall and by source-sentence length; and,
where the corpus carries true word alignments, the alignment error rate of the
teacher-forced attention (each target word linked to the source word it
attends to most).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attn import viz
from experiments.translation import decode, metrics
from experiments.translation.model import EOS, PAD, Seq2Seq


@functools.partial(jax.jit, static_argnames=("model",))
def eval_step(model: Seq2Seq, params, batch):
    """Teacher-forced sums over a batch: (loss, correct, tokens, weights)."""
    logits, weights = model.apply(params, batch["source"], batch["target_input"])
    logits = logits.astype(jnp.float32)
    labels = batch["target_output"]
    mask = labels != PAD
    losses = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], -1)[..., 0]
    correct = (jnp.argmax(logits, -1) == labels) & mask
    return (jnp.sum(losses * mask), jnp.sum(correct), jnp.sum(mask), weights)


def decode_batch(model, params, source, *, max_length: int, beam_size: int, length_penalty: float):
    steps = decode.max_decode_steps(source.shape[1], max_length)
    if beam_size <= 1:
        return decode.greedy_decode(model, params, source, max_steps=steps)
    tokens, weights, _ = decode.beam_search(
        model, params, source, max_steps=steps, beam_size=beam_size, length_penalty=length_penalty
    )
    return tokens, weights


def evaluate_split(
    model,
    params,
    pairs,
    batches,
    target_tokenizer,
    source_tokenizer,
    eval_config,
    *,
    max_length: int,
    has_attention: bool,
) -> dict[str, Any]:
    """Every metric of one split; `batches` come from input_pipeline.eval_batches."""
    loss = correct = tokens = 0.0
    hypotheses, references, source_lengths = [], [], []
    predicted_links, true_links = [], []
    for batch in batches:
        rows = np.flatnonzero(batch["index"] >= 0)
        batch_loss, batch_correct, batch_tokens, tf_weights = eval_step(model, params, batch)
        loss, correct, tokens = loss + batch_loss, correct + batch_correct, tokens + batch_tokens
        decoded, _ = decode_batch(
            model,
            params,
            batch["source"],
            max_length=max_length,
            beam_size=eval_config.beam_size,
            length_penalty=eval_config.length_penalty,
        )
        decoded_ids = decode.strip(np.asarray(decoded))
        tf_weights = np.asarray(tf_weights)
        for row in rows:
            pair = pairs[int(batch["index"][row])]
            hypotheses.append(target_tokenizer.decode(decoded_ids[row]))
            references.append(pair.target)
            source_lengths.append(len(pair.source.split()))
            if has_attention and pair.alignment:
                word_weights = _word_level_weights(
                    tf_weights[row], batch, row, source_tokenizer, target_tokenizer
                )
                if word_weights is not None:
                    predicted_links.append(metrics.attention_to_links(word_weights))
                    true_links.append(set(map(tuple, pair.alignment)))

    result = {
        "examples": len(hypotheses),
        "loss": float(loss / max(tokens, 1)),
        "token_accuracy": float(correct / max(tokens, 1)),
        "bleu": metrics.bleu(hypotheses, references),
        "exact_match": metrics.exact_match(hypotheses, references),
        "by_length": metrics.by_length(
            source_lengths, hypotheses, references, bucket_edges=list(eval_config.length_buckets)
        ),
        "samples": [
            {"hypothesis": h, "reference": r} for h, r in list(zip(hypotheses, references))[:5]
        ],
    }
    if true_links:
        result["aer"] = metrics.alignment_error_rate(predicted_links, true_links)
        result["aer_examples"] = len(true_links)
    return result


def _word_level_weights(weights, batch, row, source_tokenizer, target_tokenizer):
    """Teacher-forced weights `[T, S]` of one example, cut to words, no EOS.

    Returns None when the example was truncated (its words no longer line up).
    """
    source_ids = [int(t) for t in batch["source"][row] if t not in (PAD, EOS)]
    target_ids = [int(t) for t in batch["target_output"][row] if t not in (PAD, EOS)]
    matrix = weights[: len(target_ids), : len(source_ids)]
    source_words = source_tokenizer.word_of_token(source_ids)
    target_words = target_tokenizer.word_of_token(target_ids)
    if source_words == list(range(len(source_ids))) and target_words == list(
        range(len(target_ids))
    ):
        return matrix
    return metrics.pieces_to_words(matrix, source_words, target_words)


def attention_maps(
    model,
    params,
    sentences: Sequence[str],
    source_tokenizer,
    target_tokenizer,
    *,
    max_length: int,
    directory: str,
    title_prefix: str = "",
) -> dict[str, np.ndarray]:
    """Translates `sentences` greedily and saves one heatmap PNG per sentence.

    Returns {slug: uint8 image [H, W, 3]} for TensorBoard.
    """
    encoded = [source_tokenizer.encode(s, max_length=max_length)[0] for s in sentences]
    width = max(len(ids) for ids in encoded) + 1
    source = np.zeros((len(encoded), width), np.int32)
    for i, ids in enumerate(encoded):
        source[i, : len(ids)] = ids
        source[i, len(ids)] = EOS
    tokens, weights = decode.greedy_decode(
        model, params, source, max_steps=decode.max_decode_steps(width, max_length)
    )
    tokens, weights = np.asarray(tokens), np.asarray(weights)
    images = {}
    for i, (sentence, ids) in enumerate(zip(sentences, encoded)):
        out_ids = decode.strip(tokens[i : i + 1])[0]
        row_labels = target_tokenizer.tokens(out_ids)
        if len(out_ids) < tokens.shape[1]:  # it stopped: show the EOS decision too
            row_labels.append("</s>")
        rows = len(row_labels)
        columns = source_tokenizer.tokens(ids) + ["</s>"]
        figure = viz.attention_heatmap(
            weights[i, :rows, : len(columns)],
            column_labels=columns,
            row_labels=row_labels,
            title=f"{title_prefix}{sentence} -> {target_tokenizer.decode(out_ids)}",
        )
        slug = re.sub(r"[^a-z0-9]+", "_", sentence.lower()).strip("_")[:60]
        viz.save_figure(figure, os.path.join(directory, f"{slug}.png"))
        images[slug] = viz.figure_to_array(figure)
    return images
