"""Use a trained run from its workdir alone: `launch.py --workdir=RUN` with

- `--translate="i love you"` (repeatable) on a translation run: the
  translation and the attention matrix (target words down, source words
  across), see experiments/translation/use.py;
- `--generate="le petit chat"` on a language model run: the continuation and
  which earlier words each new word attended to, per layer
  (experiments/language/use.py);
- `--classify=image.png` (or `FILE.idx:INDEX`, `FILE.npz:INDEX`) on a vision
  run: the class, the probabilities and the attention picture of chosen
  pixels (experiments/vision/use.py);
- `--input_file=FILE`: one sentence, prompt or image a line, for whichever of
  the three the run is;
- `--evaluate=test` (comma-separated splits) on a translation run: its
  metrics on its corpus's splits again, for `--step` and `--beam_size`
  (experiments/translation/score_run.py).

Nothing is written into the run's workdir; pictures go to `--out`. Bad input
raises trained.UseError (one line, exit code 2 from launch.py).
"""

from __future__ import annotations

import importlib
import os

from experiments.common import trained
from experiments.common.trained import UseError

FLAG_OF = {"translation": "--translate", "language_model": "--generate", "vision": "--classify"}
# The options each experiment's use reads; any other given is an error, not ignored.
OPTIONS_OF = {
    "translation": ("beam_size", "layer", "head", "rollout"),
    "language_model": ("layer", "max_new_tokens"),
    "vision": ("layer", "pixels"),
}


def read_lines(path: str) -> list[str]:
    """The lines of --input_file, blank ones kept (an empty sentence is an error)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UseError(f"--input_file={path}: {error}") from error
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing newline or two is not a sentence
    if not lines:
        raise UseError(f"--input_file={path} is empty; give one sentence a line")
    return lines


def main(
    workdir: str | None,
    *,
    translate=(),
    generate=(),
    classify=(),
    input_file: str | None = None,
    step: int | None = None,
    beam_size: int = 1,
    out: str | None = None,
    output_format: str = "text",
    layer: str = "",
    head: int = 0,
    rollout: bool = False,
    pixels: str = "",
    max_new_tokens: int = 0,
    evaluate: str | None = None,
):
    if not workdir:
        raise UseError("--workdir=RUN is required: the trained run to use")
    # Which use options were given (their defaults mean "not given").
    options = dict(beam_size=beam_size != 1, layer=layer, head=head, rollout=rollout)
    options.update(pixels=pixels, max_new_tokens=max_new_tokens)
    if evaluate is not None:
        inputs = dict(translate=translate, generate=generate, classify=classify)
        inputs.update(input_file=input_file)
        for name, given in {**inputs, **options}.items():
            if given and name != "beam_size":
                raise UseError(f"--{name} does not apply to --evaluate, which scores whole splits")
        return _evaluate(workdir, evaluate, step, beam_size, out, output_format)
    asked = [
        flag for flag, values in zip(FLAG_OF.values(), (translate, generate, classify)) if values
    ]
    if len(asked) > 1:
        raise UseError(f"{' and '.join(asked)} together: a run is one experiment, pick one")
    config = trained.load_config(workdir)
    experiment = config.get("experiment")
    if experiment not in FLAG_OF:
        raise UseError(f"--workdir={workdir} is a {experiment!r} run; valid: {', '.join(FLAG_OF)}")
    flag = asked[0] if asked else FLAG_OF[experiment]
    wanted = {v: k for k, v in FLAG_OF.items()}[flag]
    trained.require_experiment(config, workdir, flag, wanted)
    inputs = list(translate or generate or classify)
    if input_file:
        inputs += read_lines(input_file)
    for name, given in options.items():
        if given and name not in OPTIONS_OF[experiment]:
            users = [e for e, names in OPTIONS_OF.items() if name in names]
            raise UseError(
                f"--{name} does not apply to a {experiment} run; it is for "
                f"{' and '.join(f'{FLAG_OF[e]} ({e})' for e in users)} runs"
            )
    trained.check_out_path(out, workdir)
    if out and not out.lower().endswith(".png") and os.path.isfile(out):
        raise UseError(f"--out={out} is a file; give a directory or a .png path")
    # Each experiment's part is its package's `use` module (the experiment's name
    # is its package's), found by name as experiments/__init__.py finds training.
    use = importlib.import_module(f"experiments.{experiment}.use")
    if experiment == "translation":
        return use.main(
            workdir,
            inputs,
            step=step,
            beam_size=beam_size,
            out=out,
            output_format=output_format,
            layer=layer,
            head=head,
            rollout=rollout,
        )
    if experiment == "language_model":
        return use.main(
            workdir,
            inputs,
            step=step,
            out=out,
            output_format=output_format,
            layer=layer,
            max_new_tokens=max_new_tokens,
        )
    return use.main(
        workdir,
        inputs,
        step=step,
        out=out,
        output_format=output_format,
        layer=layer,
        pixels=pixels,
    )


def _evaluate(workdir: str, splits: str, step, beam_size, out, output_format):
    """`--evaluate`: the translation run scored again (experiments/translation/score_run.py)."""
    config = trained.load_config(workdir)
    trained.require_experiment(config, workdir, "--evaluate", "translation")
    use = importlib.import_module("experiments.translation.use")
    return use.score(
        workdir, splits, step=step, beam_size=beam_size, out=out, output_format=output_format
    )


__all__ = ["main", "read_lines"]
