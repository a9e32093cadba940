"""Continue your own prompt with a trained language model run, and see what it attended to.

    python launch.py --workdir=runs/lm --generate="le petit chat"

The run is rebuilt from its workdir alone (config.json, tokenizer.json,
checkpoints/<step>). The continuation is the run's own greedy one
(generate.Continuer's prompts and `greedy_tokens`); the attention is the
teacher-forced self-attention of every layer, heads averaged, over the prompt
and what was generated: row "w" is the position that produced the word w,
looking at the words before it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Sequence

import jax
import numpy as np

from attn import viz
from experiments.common import trained
from experiments.common.optimizers import make_optimizer
from experiments.common.trained import END, FORMATS, UseError, format_matrix
from experiments.language_model.generate import Continuer, greedy_tokens
from experiments.models.transformer_layers import DecoderLayer
from experiments.text import corpora
from experiments.text import tokenizers as tokenizers_lib


@dataclasses.dataclass
class Continuation:
    prompt: str
    continuation: str
    columns: list[str]  # <s>, the prompt's tokens, the generated ones but the last
    rows: list[str]  # the generated tokens (then the end token if it stopped)
    weights: list[np.ndarray]  # per layer [rows, columns], heads averaged

    def attended(self) -> list[dict]:
        """Per generated token and layer, the earlier token it attended to most."""
        return [
            {
                "token": word,
                "layers": [
                    {
                        "token": self.columns[int(np.argmax(w[i]))],
                        "weight": round(float(w[i].max()), 4),
                    }
                    for w in self.weights
                ],
            }
            for i, word in enumerate(self.rows)
        ]


def _self_attention(model, params, tokens):
    """Each layer's self-attention weights `[batch, heads, T, T]`, teacher-forced."""

    @jax.jit  # one compiled pass for every prompt: op by op, each length would recompile
    def capture(params, tokens):
        _, state = model.apply(
            params,
            tokens,
            capture_intermediates=lambda module, name: (
                isinstance(module, DecoderLayer) and name == "__call__"
            ),
        )
        return state["intermediates"]

    intermediates = capture(params, tokens)
    layers = sorted(intermediates, key=lambda name: int(name.rsplit("_", 1)[-1]))
    return [np.asarray(intermediates[name]["__call__"][0][1], np.float64) for name in layers]


def main(
    workdir: str,
    prompts: Sequence[str],
    *,
    step: int | None = None,
    out: str | None = None,
    output_format: str = "text",
    layer: str = "",
    max_new_tokens: int = 0,
) -> list[Continuation]:
    from experiments.language_model import train  # the run's own model builder

    trained.check_out_path(out, workdir)
    if not prompts:
        raise UseError("no prompt to continue: give --generate=... or --input_file=...")
    config = trained.load_config(workdir)
    trained.require_experiment(config, workdir, "--generate", "language_model")
    step = trained.choose_step(workdir, step)
    try:
        tokenizer = tokenizers_lib.load_tokenizer(f"{workdir}/tokenizer.json")
    except (FileNotFoundError, ValueError) as error:
        raise UseError(f"--workdir={workdir}: {error}") from error
    model = train.build_model(
        config.model, tokenizer.vocab_size, train.COMPUTE_DTYPES[config.train.compute_dtype]
    )
    layers = config.model.num_layers
    if layer and not (layer.isdigit() and 1 <= int(layer) <= layers) and layer != "all":
        raise UseError(f"--layer={layer}: the model has {layers}; valid: 1..{layers} or all")
    shown = range(layers) if layer in ("", "all") else [int(layer) - 1]
    if max_new_tokens < 0:
        raise UseError(f"--max_new_tokens={max_new_tokens}; valid: 1 or more (0: the run's)")
    sample = np.full((1, config.data.max_length), tokenizers_lib.BOS_ID, np.int32)
    params, step = trained.restore_params(
        workdir,
        lambda: model.init(jax.random.key(0), sample)["params"],
        make_optimizer(config.train),
        step,
    )
    words = []
    for number, prompt in enumerate(prompts, 1):
        text = corpora.tokenize_words(prompt, language=config.data.language)
        if not text:
            raise UseError(f"prompt {number} is empty ({prompt!r}); give at least one word")
        unknown = [
            w for w, t in zip(text.split(), tokenizer.encode(text)[0]) if t == tokenizers_lib.UNK_ID
        ]
        if unknown and isinstance(tokenizer, tokenizers_lib.WordVocabulary):
            trained.warn(
                f"prompt {number}: {len(unknown)} word{'s' * (len(unknown) > 1)} not in the "
                f"run's vocabulary: {', '.join(map(repr, unknown))}, shown as <unk>"
            )
        words.append(text)
    continuer = Continuer(model, tokenizer, words, max_new_tokens or config.eval.max_new_tokens)
    for number, text in enumerate(words, 1):
        kept = int(continuer.lengths[number - 1]) - 1
        if kept < len(tokenizer.encode(text)[0]):
            trained.warn(
                f"prompt {number} is longer than the model's {model.max_length} positions "
                f"leave room for with {continuer.max_new_tokens} new tokens: only its last "
                f"{kept} tokens are read"
            )
    steps = continuer.tokens.shape[1] - 1 + continuer.max_new_tokens
    generated = np.asarray(greedy_tokens(model, params, continuer.tokens, continuer.lengths, steps))
    read_and_new = []
    for row in range(len(prompts)):
        start = int(continuer.lengths[row]) - 1
        new = [int(t) for t in generated[row, start : start + continuer.max_new_tokens]]
        stopped = tokenizers_lib.EOS_ID in new
        if stopped:
            new = new[: new.index(tokenizers_lib.EOS_ID)]
        read_and_new.append(([int(t) for t in continuer.tokens[row, : start + 1]], new, stopped))
    # Every sequence in one batch, padded at its end: causal attention keeps
    # each position's weights as they are alone.
    longest = max(len(read) + len(new) for read, new, _ in read_and_new)
    sequences = np.full((len(prompts), longest), tokenizers_lib.PAD_ID, np.int32)
    for row, (read, new, _) in enumerate(read_and_new):
        sequences[row, : len(read) + len(new)] = read + new
    maps = _self_attention(model, params, sequences)
    results = []
    for row, (prompt, (read, new, stopped)) in enumerate(zip(prompts, read_and_new)):
        start = len(read) - 1
        rows = tokenizer.tokens(new) + ([END] if stopped else [])
        inputs = read + new[: len(rows) - 1] if rows else read
        columns = tokenizer.tokens(inputs)
        if not rows:
            weights = [np.zeros((0, len(columns))) for _ in shown]
        else:
            weights = [
                maps[i][row].mean(0)[start : start + len(rows), : len(columns)] for i in shown
            ]
        results.append(Continuation(prompt, tokenizer.decode(new), columns, rows, weights))
    for result in results:
        _print(result, [i + 1 for i in shown], output_format, step)
        if out and result.rows:
            for number, weights in zip(shown, result.weights):
                name = re.sub(r"[^a-z0-9]+", "_", result.prompt.lower()).strip("_")[:60]
                path = trained.png_path(out, f"{name}.layer{number + 1}", len(results) * len(shown))
                figure = viz.attention_heatmap(
                    weights,
                    column_labels=result.columns,
                    row_labels=result.rows,
                    title=f"{config.model.attention}, layer {number + 1}: {result.prompt} -> "
                    f"{result.continuation}",
                )
                viz.save_figure(figure, path)
                print(f"wrote {path}", file=sys.stderr)
    return results


def _print(result: Continuation, layer_numbers, output_format: str, step: int) -> None:
    if output_format not in FORMATS:
        raise UseError(f"--format={output_format}; valid: {', '.join(FORMATS)}")
    if output_format == "jsonl":
        record = dict(
            prompt=result.prompt,
            continuation=result.continuation,
            step=step,
            tokens=result.rows,
            attended=result.attended(),
            layers=layer_numbers,
            weights=[np.round(w, 4).tolist() for w in result.weights],
        )
        print(json.dumps(record, ensure_ascii=False))
        return
    if output_format == "tsv":
        attended = " ".join(
            f"{a['token']}->" + ",".join(link["token"] for link in a["layers"])
            for a in result.attended()
        )
        print(f"{result.prompt}\t{result.continuation}\t{attended}")
        return
    print(f"{result.prompt} -> {result.continuation}")
    if not result.rows:
        return
    for number, weights in zip(layer_numbers, result.weights):
        print(f"\nlayer {number} self-attention, mean of the heads (rows: generated words)")
        print(format_matrix(weights, result.rows, result.columns))
    print()


__all__ = ["Continuation", "main"]
