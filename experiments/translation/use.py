"""Translate your own sentences with a trained run, and see where attention looks.

    python launch.py --workdir=runs/demo/attention-additive --translate="i love you"

`load(workdir, step)` rebuilds the model from the workdir alone (config.json,
tokenizers/, checkpoints/<step>); `translate(run, sentences, beam_size)`
decodes a batch with the run's own greedy or beam decoder and keeps the
weights decoding used; `main` prints them (text, TSV or JSON lines) and draws
the heatmaps, for the Transformer also any layer and head, every one as the
training run's grid, and the attention rollout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from attn import viz
from experiments.common import trained
from experiments.common.optimizers import make_optimizer
from experiments.common.trained import END, FORMATS, UseError, format_matrix
from experiments.models.transformer import Transformer
from experiments.text import corpora
from experiments.text import tokenizers as tokenizers_lib
from experiments.text.token_ids import BOS_ID as BOS
from experiments.text.token_ids import EOS_ID as EOS
from experiments.translation import evaluation


@dataclasses.dataclass(frozen=True)
class Run:
    workdir: str
    config: Any
    model: Any
    params: Any
    step: int
    source_tokenizer: Any
    target_tokenizer: Any

    @property
    def has_attention(self) -> bool:
        return self.config.model.attention != "none"

    @property
    def is_transformer(self) -> bool:
        return isinstance(self.model, Transformer)


@dataclasses.dataclass
class Translation:
    """One sentence decoded: `weights[t, s]` is target row t's weight on source column s."""

    sentence: str  # as typed
    source_tokens: list[str]  # the columns: the tokens read, then the end token
    translation: str
    target_tokens: list[str]  # the rows: the tokens written (then the end token if it stopped)
    weights: np.ndarray  # [rows, columns]
    source: np.ndarray  # ids the model read, EOS included
    target_input: list[int]  # BOS, then each row's previous token
    truncated: bool = False
    unknown: list[str] = dataclasses.field(default_factory=list)

    def alignment(self) -> list[dict]:
        """Per target token, the source token it attends to most and that weight."""
        return [
            {
                "target": word,
                "source": self.source_tokens[int(np.argmax(row))],
                "weight": round(float(np.max(row)), 4),
            }
            for word, row in zip(self.target_tokens, self.weights)
        ]


def score(workdir: str, splits: str, **options):
    """`--evaluate=SPLITS`: the run scored again on its corpus's splits (score_run.py)."""
    from experiments.translation import score_run  # it imports this module

    return score_run.main(workdir, splits, **options)


def load(workdir: str, step: int | None = None) -> Run:
    """A translation run from its workdir; UseError naming what is missing."""
    from experiments.translation import train  # the run's own model builder

    config = trained.load_config(workdir)
    trained.require_experiment(config, workdir, "--translate", "translation")
    step = trained.choose_step(workdir, step)  # a checkpoint first: it is what is used
    tokenizer_dir = os.path.join(workdir, "tokenizers")
    try:
        source_tok = tokenizers_lib.load_tokenizer(os.path.join(tokenizer_dir, "source"))
        target_tok = tokenizers_lib.load_tokenizer(os.path.join(tokenizer_dir, "target"))
    except (FileNotFoundError, ValueError) as error:
        raise UseError(f"--workdir={workdir}: {error}") from error
    model = train.build_model(config, source_tok.vocab_size, target_tok.vocab_size)
    sample = np.zeros((2, 8), np.int32)

    def init():
        import jax

        return model.init(jax.random.key(0), sample, sample)["params"]

    params, step = trained.restore_params(workdir, init, make_optimizer(config.train), step)
    return Run(workdir, config, model, params, step, source_tok, target_tok)


def source_language(data_config) -> str:
    """The language the run's source sentences were tokenized as."""
    if data_config.name == "ding":
        return "de"
    if data_config.name == "tfds":
        return data_config.source_key
    return data_config.get("source_language", "en")


def translate(run: Run, sentences: Sequence[str], *, beam_size: int = 1) -> list[Translation]:
    """Decodes `sentences` in one batch, as the run's evaluation decodes its splits.

    Each sentence is split into words as the training corpus was, cut to
    data.max_length tokens (with a warning), and unknown words become <unk>
    (one warning per sentence with their count).
    """
    max_length = run.config.data.max_length
    language = source_language(run.config.data)
    encoded = []
    for number, sentence in enumerate(sentences, 1):
        words = corpora.tokenize_words(sentence, language=language)
        if not words:
            raise UseError(
                f"sentence {number} is empty ({sentence!r}); give at least one word to translate"
            )
        ids, truncated = run.source_tokenizer.encode(words, max_length=max_length)
        if truncated:
            count = len(run.source_tokenizer.encode(words)[0])
            trained.warn(
                f"sentence {number} ({textwrap.shorten(sentence, 40, placeholder=' ...')!r}) has "
                f"{count} tokens, more than the model's data.max_length={max_length}: cut to "
                f"the first {max_length}"
            )
        unknown = (
            [
                word
                for word, token in zip(words.split(), run.source_tokenizer.encode(words)[0])
                if token == tokenizers_lib.UNK_ID
            ]
            if isinstance(run.source_tokenizer, tokenizers_lib.WordVocabulary)
            else []
        )
        unknown_ids = sum(token == tokenizers_lib.UNK_ID for token in ids)
        if unknown_ids:
            shown = f": {', '.join(repr(w) for w in unknown)}" if unknown else ""
            trained.warn(
                f"sentence {number}: {unknown_ids} word{'s' * (unknown_ids > 1)} not in the "
                f"run's source vocabulary{shown}, shown as <unk>"
            )
        encoded.append((sentence, ids, truncated, unknown))
    # Padded as the evaluation pads its batches: the decoding budget follows the width.
    multiple = run.config.train.length_multiple
    width = -(-(max(len(ids) for _, ids, _, _ in encoded) + 1) // multiple) * multiple
    source = np.zeros((len(encoded), width), np.int32)
    for row, (_, ids, _, _) in enumerate(encoded):
        source[row, : len(ids)] = ids
        source[row, len(ids)] = EOS
    tokens, weights = evaluation.decode_batch(
        run.model,
        run.params,
        source,
        max_length=max_length,
        beam_size=beam_size,
        length_penalty=run.config.eval.length_penalty,
    )
    tokens, weights = np.asarray(tokens), np.asarray(weights, np.float64)
    results = []
    for row, (sentence, ids, truncated, unknown) in enumerate(encoded):
        out_ids = _until_end(tokens[row])
        rows = run.target_tokenizer.tokens(out_ids)
        if len(out_ids) < tokens.shape[1]:  # it stopped: the end decision is a row too
            rows.append(END)
        columns = run.source_tokenizer.tokens(ids) + [END]
        results.append(
            Translation(
                sentence=sentence,
                source_tokens=columns,
                translation=run.target_tokenizer.decode(out_ids),
                target_tokens=rows,
                weights=weights[row, : len(rows), : len(columns)],
                source=source[row, : len(columns)],
                target_input=([BOS] + out_ids)[: len(rows)],
                truncated=truncated,
                unknown=unknown,
            )
        )
    return results


def _until_end(row) -> list[int]:
    ids = []
    for token in row:
        if token in (EOS, 0):
            break
        ids.append(int(token))
    return ids


# -- the Transformer's layers, heads and rollout ----------------------------------


def transformer_maps(run: Run, result: Translation) -> dict[str, np.ndarray]:
    """Teacher-forced on the translation: "cross" `[layers, heads, rows, columns]`,
    "rollout" `[rows, columns]` (to the source words)."""
    source = result.source[None]
    target_input = np.asarray(result.target_input, np.int32)[None]
    maps = run.model.apply(run.params, source, target_input, method=Transformer.forward)
    to_source, _ = run.model.apply(
        run.params, source, target_input, method=Transformer.attention_rollout
    )
    return {
        "cross": np.asarray(maps["cross"][0], np.float64),
        "rollout": np.asarray(to_source[0], np.float64),
    }


def parse_layer(layer: str, head: int, run: Run) -> tuple[str | int | None, int]:
    """--layer ("" | "all" | 1-based number) and --head (0: their mean | 1-based)."""
    if not run.is_transformer:
        if layer or head:
            raise UseError(
                f"--layer/--head pick a Transformer's layer and head; --workdir={run.workdir} "
                f"is an RNN encoder-decoder with {run.config.model.attention} attention "
                f"(one attention unit)"
            )
        return None, 0
    layers = run.config.model.transformer.num_decoder_layers
    heads = run.config.model.transformer.num_heads
    if layer in ("", "all"):
        chosen = layer or None
    elif layer.isdigit() and 1 <= int(layer) <= layers:
        chosen = int(layer)
    else:
        raise UseError(f"--layer={layer}: the decoder has {layers}; valid: 1..{layers} or all")
    if not 0 <= head <= heads:
        raise UseError(f"--head={head}: each layer has {heads}; valid: 1..{heads}, 0 for the mean")
    if head and chosen is None:
        chosen = layers
    return chosen, head


# -- printing -------------------------------------------------------------------


def main(
    workdir: str,
    sentences: Sequence[str],
    *,
    step: int | None = None,
    beam_size: int = 1,
    out: str | None = None,
    output_format: str = "text",
    layer: str = "",
    head: int = 0,
    rollout: bool = False,
) -> list[Translation]:
    """The command: prints each translation and its attention; PNGs under `out`."""
    trained.check_out_path(out, workdir)
    if output_format not in FORMATS:
        raise UseError(f"--format={output_format}; valid: {', '.join(FORMATS)}")
    if beam_size < 1:
        raise UseError(f"--beam_size={beam_size}; valid: 1 (greedy) or more")
    if not sentences:
        raise UseError("no sentence to translate: give --translate=... or --input_file=...")
    run = load(workdir, step)
    chosen_layer, chosen_head = parse_layer(layer, head, run)
    if rollout and not run.is_transformer:
        raise UseError(
            "--rollout is the attention rollout of a Transformer's layers; "
            f"--workdir={workdir} is an RNN encoder-decoder"
        )
    results = translate(run, sentences, beam_size=beam_size)
    decoding = "greedy" if beam_size == 1 else f"beam {beam_size}"
    kind = run.config.model.attention
    for number, result in enumerate(results):
        matrices = _matrices(run, result, chosen_layer, chosen_head, rollout)
        if output_format == "jsonl":
            record = {
                "sentence": result.sentence,
                "translation": result.translation,
                "source_tokens": result.source_tokens,
                "target_tokens": result.target_tokens,
                "step": run.step,
                "decoding": decoding,
                "attention": kind,
                "truncated": result.truncated,
                "unknown_words": result.unknown,
            }
            if run.has_attention:
                record["alignment"] = result.alignment()
                record["weights"] = np.round(result.weights, 4).tolist()
                for name, (matrix, _) in matrices.items():
                    if name != "decoding":
                        record[f"weights_{name}"] = np.round(matrix, 4).tolist()
            print(json.dumps(record, ensure_ascii=False))
        elif output_format == "tsv":
            if number == 0:
                print("sentence\ttranslation\talignment\tweights")
            alignment = " ".join(f"{a['target']}->{a['source']}" for a in result.alignment())
            weights = "|".join(" ".join(f"{x:.2f}" for x in row) for row in result.weights)
            if not run.has_attention:
                alignment = weights = ""
            print(f"{result.sentence}\t{result.translation}\t{alignment}\t{weights}")
        else:
            if number:
                print()
            print(f"{result.sentence} -> {result.translation}")
            if not run.has_attention:
                print(f"(attention {kind}: this run has no attention to show)")
                continue
            for matrix, caption in matrices.values():
                print(f"\n{caption}" if caption else "")
                print(format_matrix(matrix, result.target_tokens, result.source_tokens))
        if out and run.has_attention:
            _draw(result, matrices, out, len(results), kind, every_layer=chosen_layer == "all")
    if out and run.is_transformer and chosen_layer == "all":
        evaluation.attention_maps(
            run.model,
            run.params,
            [r.sentence for r in results],
            run.source_tokenizer,
            run.target_tokenizer,
            max_length=run.config.data.max_length,
            directory=out if not out.lower().endswith(".png") else os.path.dirname(out) or ".",
            title_prefix=f"{kind}: ",
            layers=True,
            rollout=rollout,
        )
        if beam_size > 1:
            trained.warn("the layers/ grids show the greedy translation, not the beam's")
    return results


def _matrices(run, result, layer, head, rollout) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (matrix, caption) of what to show, "decoding" first."""
    if not run.has_attention:
        return {}
    if not run.is_transformer:
        return {"decoding": (result.weights, "")}
    maps = transformer_maps(run, result)
    count = maps["cross"].shape[0]
    shown = {
        "decoding": (
            result.weights,
            f"cross-attention of the last layer ({count}), mean of the heads (what decoding used)",
        )
    }
    if layer == "all":
        for i in range(count):
            for h in range(maps["cross"].shape[1]):
                shown[f"layer{i + 1}_head{h + 1}"] = (
                    maps["cross"][i, h],
                    f"cross-attention, layer {i + 1}, head {h + 1}",
                )
    elif layer is not None:
        matrix = maps["cross"][layer - 1, head - 1] if head else maps["cross"][layer - 1].mean(0)
        which = f"head {head}" if head else "mean of the heads"
        shown[f"layer{layer}_head{head}"] = (matrix, f"cross-attention, layer {layer}, {which}")
    if rollout:
        shown["rollout"] = (maps["rollout"], "attention rollout to the source words")
    return shown


def _draw(result, matrices, out, count, kind, *, every_layer: bool) -> None:
    title = f"{kind}: {result.sentence} -> " + textwrap.shorten(
        result.translation, 60, placeholder=" ..."
    )
    for name, (matrix, caption) in matrices.items():
        if every_layer and name.startswith("layer"):
            continue  # every layer and head: drawn as the run's grid instead
        figure = viz.attention_heatmap(
            matrix,
            column_labels=result.source_tokens,
            row_labels=result.target_tokens,
            title=title if name == "decoding" else f"{title}\n{caption}",
        )
        suffix = "" if name == "decoding" else f".{name}"
        pictures = count * len(matrices)
        path = trained.png_path(
            out, f"{evaluation.picture_name(result.sentence)}{suffix}", pictures
        )
        viz.save_figure(figure, path)
        print(f"wrote {path}", file=sys.stderr)


__all__ = ["Run", "Translation", "load", "main", "translate"]
