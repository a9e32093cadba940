"""Scores a trained translation run again on its corpus's splits: `launch.py
--workdir=RUN --evaluate=test [--beam_size=4] [--step=S] [--out=FILE.json]`.

A run's eval.json holds the metrics of the decoding it trained with (greedy
unless eval.beam_size said otherwise); this gives the same metrics (BLEU,
exact match, token accuracy, loss, BLEU by source length, AER where the
corpus has alignments) for any checkpoint and beam size, from the workdir
alone: the corpus is read again from the run's own data config and the
tokenizers are the run's. Nothing is written into the workdir.
"""

from __future__ import annotations

import json
import os

from experiments.common import trained
from experiments.common.trained import FORMATS, UseError
from experiments.translation import input_pipeline, use
from experiments.translation.train import forms_attention_weights, score_split

METRICS = ("bleu", "exact_match", "token_accuracy", "loss", "aer")


def parse_splits(text: str) -> list[str]:
    """ "validation,test" -> ["validation", "test"]; UseError on an empty list."""
    splits = [name.strip() for name in text.split(",") if name.strip()]
    if not splits:
        raise UseError(f"--evaluate={text!r}: give split names, e.g. --evaluate=test")
    return splits


def evaluate(workdir: str, splits, *, step: int | None = None, beam_size: int = 1) -> dict:
    """{split: metrics} of checkpoint `step` (latest if None) decoded with `beam_size`."""
    if beam_size < 1:
        raise UseError(f"--beam_size={beam_size}; valid: 1 (greedy) or more")
    run = use.load(workdir, step)
    config = run.config
    try:
        data, _ = input_pipeline.load_splits(config.data)
    except (ValueError, FileNotFoundError) as error:
        raise UseError(f"--workdir={workdir}: cannot read its corpus again: {error}") from error
    missing = [name for name in splits if not data.get(name)]
    if missing:
        valid = ", ".join(name for name, pairs in data.items() if pairs)
        raise UseError(f"--evaluate: no split {missing[0]!r} in this run's corpus; valid: {valid}")
    eval_config = config.eval.copy_and_resolve_references()
    eval_config.beam_size = beam_size
    results = {}
    for name in splits:
        result, _ = score_split(
            config,
            eval_config,
            run.model,
            run.params,
            data[name],
            run.source_tokenizer,
            run.target_tokenizer,
            has_attention=forms_attention_weights(config),
        )
        results[name] = dict(result, examples=len(data[name]), step=run.step, beam_size=beam_size)
    return results


def describe(name: str, result: dict) -> str:
    """One line: `test: BLEU 6.54, exact match 0.8%, ... (1000 sentences, beam 4, step 7044)`."""
    parts = [f"BLEU {result['bleu']:.2f}", f"exact match {100 * result['exact_match']:.1f}%"]
    parts.append(f"token accuracy {100 * result['token_accuracy']:.1f}%")
    parts.append(f"loss {result['loss']:.4f}")
    if "aer" in result:
        parts.append(f"AER {result['aer']:.3f}")
    decoding = "greedy" if result["beam_size"] == 1 else f"beam {result['beam_size']}"
    sentences = f"{result['examples']} sentences, {decoding}, step {result['step']}"
    return f"{name}: {', '.join(parts)} ({sentences})"


def main(
    workdir: str,
    splits_text: str,
    *,
    step: int | None = None,
    beam_size: int = 1,
    out: str | None = None,
    output_format: str = "text",
) -> dict:
    """The command: one line per split (or a JSON line with `--format=jsonl`); `--out` a JSON file."""
    if output_format not in FORMATS:
        raise UseError(f"--format={output_format}; valid: {', '.join(FORMATS)}")
    trained.check_out_path(out, workdir)
    if out and os.path.isdir(out):
        raise UseError(f"--out={out} is a directory; give the path of a .json file to write")
    results = evaluate(workdir, parse_splits(splits_text), step=step, beam_size=beam_size)
    for name, result in results.items():
        if output_format == "text":
            print(describe(name, result))
            continue
        record = dict(split=name, **{k: result[k] for k in METRICS if k in result})
        record.update(examples=result["examples"], beam_size=beam_size, step=result["step"])
        if output_format == "jsonl":
            print(json.dumps(dict(record, by_length=result["by_length"])))
        else:  # tsv: one row a split, name=value cells
            print("\t".join(f"{k}={v}" for k, v in record.items()))
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump({"workdir": workdir, "splits": results}, f, indent=2)
    return results
