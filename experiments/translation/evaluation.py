"""Evaluation of a translation model: decoding metrics, AER, attention maps.

Per split: teacher-forced loss and token accuracy; greedy or beam decoding
scored with BLEU and exact match, overall and by source-sentence length; and,
where the corpus carries true word alignments, the alignment error rate of the
teacher-forced attention (each target word linked to the source word it
attends to most). `attention_maps` draws the attention pictures of chosen
sentences: one heatmap each and, for the Transformer, every layer and head and
optionally the attention rollout.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attn import viz
from experiments.models.rnn import Seq2Seq
from experiments.models.transformer import Transformer
from experiments.text.token_ids import BOS_ID as BOS
from experiments.text.token_ids import EOS_ID as EOS
from experiments.text.token_ids import PAD_ID as PAD
from experiments.text.token_ids import UNK_ID as UNK
from experiments.text.toy_corpus import SHOWCASE_SENTENCES
from experiments.translation import decode, metrics

# Sentences of these lengths in words (or the nearest) are drawn from a real
# corpus's test split: short enough to read in a picture, long enough to show
# reordering.
_PICTURE_LENGTHS = (5, 8, 11, 14, 17, 20)


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
    """Every metric of one split; `batches` come from batching.eval_batches."""
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


def picture_name(sentence: str) -> str:
    """The file name (no extension) of a sentence's pictures: lower-case ASCII
    letters and digits joined by "_", accents dropped ("für" -> "fur", "ß" ->
    "ss"), at most 60 characters."""
    folded = unicodedata.normalize("NFKD", sentence.lower().replace("ß", "ss"))
    ascii_text = folded.encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")[:60] or "sentence"


def attention_sentences(eval_config, data_name: str, splits, source_tokenizer) -> list[str]:
    """The sentences whose attention is drawn: the user's `eval_config.attention_sentences`
    if any, else `attention_sentence_count` of the corpus's own (see
    `pick_attention_sentences`; the classic English ones for the toy corpus)."""
    if eval_config.attention_sentences:
        return list(eval_config.attention_sentences)
    count = int(eval_config.get("attention_sentence_count", len(SHOWCASE_SENTENCES)))
    if data_name == "toy_translation":
        return list(SHOWCASE_SENTENCES[:count])
    for split in ("test", "validation", "train"):
        if splits.get(split):
            return pick_attention_sentences(splits[split], source_tokenizer, count=count)
    return []


def pick_attention_sentences(pairs, source_tokenizer, *, count: int) -> list[str]:
    """Up to `count` source sentences of `pairs`, of spread lengths, for attention pictures.

    Only sentences the source tokenizer encodes without <unk> qualify (a
    picture of unknown tokens shows nothing). The i-th is the first qualifying
    sentence, in corpus order, whose length in words is nearest to the i-th of
    5, 8, 11, 14, ... words; each sentence is taken once.
    """
    candidates = []
    for pair in pairs:
        ids, _ = source_tokenizer.encode(pair.source)
        if ids and UNK not in ids:
            candidates.append(pair.source)
    chosen: list[str] = []
    for target in _PICTURE_LENGTHS[:count]:
        remaining = [s for s in candidates if s not in chosen]
        if not remaining:
            break
        chosen.append(min(remaining, key=lambda s: abs(len(s.split()) - target)))
    return chosen


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
    layers: bool = False,
    rollout: bool = False,
) -> dict[str, np.ndarray]:
    """Translates `sentences` greedily and saves one heatmap PNG per sentence.

    The heatmap `<slug>.png` shows the weights decoding used (for the
    Transformer, its last layer's cross-attention averaged over heads). For a
    Transformer, `layers` adds per sentence grids of every layer (rows) and head
    (columns) under `layers/`: `<slug>.cross.png` (target x source words),
    `<slug>.encoder_self.png` and `<slug>.decoder_self.png`; `rollout` adds
    `rollout/<slug>.png`, the attention rollout to the source words and the
    target prefix. All are taken teacher-forced on the greedy translation, so
    they show the computation that produced it.

    Returns {name: uint8 image [H, W, 3]} for TensorBoard, name being the
    PNG's path under `directory` without ".png".
    """
    if (layers or rollout) and not isinstance(model, Transformer):
        raise ValueError("per-layer attention maps and rollout need a Transformer")
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
    images, pictures = {}, []
    for i, (sentence, ids) in enumerate(zip(sentences, encoded)):
        out_ids = decode.strip(tokens[i : i + 1])[0]
        row_labels = target_tokenizer.tokens(out_ids)
        if len(out_ids) < tokens.shape[1]:  # it stopped: show the EOS decision too
            row_labels.append("</s>")
        rows = len(row_labels)
        columns = source_tokenizer.tokens(ids) + ["</s>"]
        # An untrained model's translation runs to the decoding limit; the
        # title of a picture a few inches wide has to stop somewhere.
        translation = textwrap.shorten(target_tokenizer.decode(out_ids), 60, placeholder=" ...")
        title = f"{title_prefix}{sentence} -> {translation}"
        figure = viz.attention_heatmap(
            weights[i, :rows, : len(columns)],
            column_labels=columns,
            row_labels=row_labels,
            title=title,
        )
        slug = picture_name(sentence)
        images[slug] = viz.save_and_render(figure, os.path.join(directory, f"{slug}.png"))
        # Row t is the decision made from the inputs BOS, y_1 .. y_{t-1}.
        inputs = ([BOS] + list(out_ids))[:rows]
        pictures.append((slug, title, columns, row_labels, inputs))
    if layers or rollout:
        images.update(
            _transformer_pictures(
                model,
                params,
                source,
                tokens.shape[1],
                pictures,
                target_tokenizer,
                directory=directory,
                layers=layers,
                rollout=rollout,
            )
        )
    return images


@functools.partial(jax.jit, static_argnames=("model", "layers", "rollout"))
def _teacher_forced_maps(model, params, source, target_input, *, layers: bool, rollout: bool):
    """(every attention map or None, the rollout or None) of a Transformer."""
    maps = model.apply(params, source, target_input, method=Transformer.forward) if layers else None
    rollouts = (
        model.apply(params, source, target_input, method=Transformer.attention_rollout)
        if rollout
        else None
    )
    return maps, rollouts


def _transformer_pictures(
    model, params, source, target_width, pictures, target_tokenizer, *, directory, layers, rollout
) -> dict[str, np.ndarray]:
    """The `layers/` grids and `rollout/` maps of `attention_maps`.

    `target_width` is the decoding budget, the same at every evaluation, so
    that the maps compile once per run: padding keeps the rows that matter
    unchanged.
    """
    target_input = np.zeros((len(pictures), target_width), np.int32)
    for i, (*_, inputs) in enumerate(pictures):
        target_input[i, : len(inputs)] = inputs
    maps, rollouts = jax.device_get(
        _teacher_forced_maps(model, params, source, target_input, layers=layers, rollout=rollout)
    )
    images = {}

    def save(name, figure):
        images[name] = viz.save_and_render(figure, os.path.join(directory, f"{name}.png"))

    for i, (slug, title, columns, row_labels, inputs) in enumerate(pictures):
        rows, width = len(row_labels), len(columns)
        input_labels = target_tokenizer.tokens(inputs)
        if maps is not None:
            grids = {
                "cross": (
                    "cross-attention",
                    maps["cross"][i, :, :, :rows, :width],
                    row_labels,
                    columns,
                ),
                "encoder_self": (
                    "encoder self-attention",
                    maps["encoder_self"][i, :, :, :width, :width],
                    columns,
                    columns,
                ),
                "decoder_self": (
                    "decoder self-attention",
                    maps["decoder_self"][i, :, :, :rows, :rows],
                    input_labels,
                    input_labels,
                ),
            }
            for name, (what, weights, grid_rows, grid_columns) in grids.items():
                layer_count, head_count = weights.shape[:2]
                panel_titles = [
                    [f"layer {layer + 1}, head {head + 1}" for head in range(head_count)]
                    for layer in range(layer_count)
                ]
                figure = viz.attention_grid(
                    weights,
                    column_labels=grid_columns,
                    row_labels=grid_rows,
                    panel_titles=panel_titles,
                    title=f"{title}\n{what}: layers (rows) x heads (columns)",
                )
                save(f"layers/{slug}.{name}", figure)
        if rollouts is not None:
            to_source, to_target = rollouts
            figure = viz.attention_heatmap(
                np.concatenate([to_source[i, :rows, :width], to_target[i, :rows, :rows]], -1),
                column_labels=columns + input_labels,
                row_labels=row_labels,
                title=f"{title}\nattention rollout to the source words | the target prefix",
            )
            figure.axes[0].axvline(width - 0.5, color="white", linewidth=2)
            save(f"rollout/{slug}", figure)
    return images
