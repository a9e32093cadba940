"""The main job: train three variants on the toy corpus and compare them.

    python -m experiments.translation.demo --workdir=runs/demo

Trains `additive` (Bahdanau), `dot` (Luong) and `none` (no attention) with the
`demo` preset of experiments/translate.py, one after the other, then writes
runs/demo/comparison.md (metrics, BLEU by sentence length, attention maps).
A variant that fails is reported and the others still run; rerunning resumes
unfinished runs from their checkpoints and skips finished ones.
"""

from __future__ import annotations

import os
import sys
import traceback

from absl import app, flags, logging

from experiments import translate
from experiments.translation import compare, train

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where the runs and the comparison go.")
_VARIANTS = flags.DEFINE_list("variants", ["additive", "dot", "none"], "Variants to train.")
_STEPS = flags.DEFINE_integer("steps", None, "Override train.steps (for a quicker look).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    workdirs = []
    for variant in _VARIANTS.value:
        config = translate.get_config(f"{variant},demo")
        config.data.data_dir = os.path.join(_WORKDIR.value, "data")
        if _STEPS.value:
            config.train.steps = _STEPS.value
        workdir = os.path.join(_WORKDIR.value, variant)
        workdirs.append(workdir)
        if os.path.exists(os.path.join(workdir, "eval.json")):
            print(f"{variant}: finished earlier, kept ({workdir}/eval.json)")
            continue
        try:
            train.train_and_evaluate(config, workdir)
        except train.ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except Exception:  # one variant failing must not lose the others
            print(f"{variant} failed:\n{traceback.format_exc()}", file=sys.stderr)
    markdown = compare.write_comparison(
        workdirs, _WORKDIR.value, train_max_words=config.data.train_max_words
    )
    print("\n" + markdown.split("## Attention maps")[0])
    print(f"Comparison, plot and attention maps: {os.path.join(_WORKDIR.value, 'comparison.md')}")


if __name__ == "__main__":
    app.run(main)
