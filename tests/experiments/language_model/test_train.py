"""A tiny training run writes its records and learns; a rerun resumes exactly; launch.py."""

import json
import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import experiments
from experiments.common.runner import read_status
from experiments.common.writers import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIG_FILE = os.path.join(ROOT, "experiments", "configs", "language_model.py")


def _final_params(workdir, step):
    state = ocp.StandardCheckpointer().restore(
        os.path.join(workdir, "checkpoints", str(step), "state")
    )
    return state["params"]


def test_tiny_run_learns_writes_records_and_resumes_exactly(tiny_config, tmp_path):
    workdir = tmp_path / "run"
    steps = tiny_config.train.steps
    result = experiments.train_and_evaluate(tiny_config, str(workdir))

    assert read_status(str(workdir))["status"] == "done"
    for name in ("config.json", "tokenizer.json", "eval.json", "metrics.jsonl"):
        assert (workdir / name).is_file(), name
    assert (workdir / "checkpoints" / str(steps)).is_dir()
    losses = [m["train/loss"] for m in read_metrics(str(workdir)) if "train/loss" in m]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0] - 0.5, losses

    with open(workdir / "eval.json") as f:
        saved = json.load(f)
    assert saved["steps"] == steps and saved["headline"][0] == "test/perplexity"
    for split in ("validation", "test"):
        metrics = saved["splits"][split]
        assert math.isclose(metrics["perplexity"], math.exp(metrics["loss"]), rel_tol=1e-9)
        assert 0 <= metrics["token_accuracy"] <= 1
    assert saved["selection"] == "validation/token_accuracy"
    assert [s["prompt"] for s in saved["samples"]] == list(tiny_config.eval.prompts)
    for sample in saved["samples"]:  # greedy, cut at EOS and at max_new_tokens
        assert len(sample["continuation"].split()) <= tiny_config.eval.max_new_tokens
        assert "</s>" not in sample["continuation"]
    assert result["splits"]["test"]["loss"] == saved["splits"]["test"]["loss"]

    # Losing the last checkpoint: the rerun restarts from the one before and
    # reaches the same parameters bit for bit.
    want = _final_params(workdir, steps)
    shutil.rmtree(workdir / "checkpoints" / str(steps))
    saved_at = steps - tiny_config.checkpoint.every_steps
    logged_before = len(read_metrics(str(workdir)))
    experiments.train_and_evaluate(tiny_config, str(workdir))
    new_steps = [m["step"] for m in read_metrics(str(workdir))[logged_before:] if "train/loss" in m]
    assert min(new_steps) > saved_at
    got = _final_params(workdir, steps)
    for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow  # a subprocess run; make test trains in-process above
def test_launch_trains_on_a_text_file_and_refuses_a_missing_one(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("".join(f"Le chat {i % 7} dort sur le tapis.\n" for i in range(60)))
    base = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config={CONFIG_FILE}:tiny"]
    run = subprocess.run(
        base
        + [
            f"--workdir={tmp_path / 'run'}",
            "--config.data.name=text",
            f"--config.data.path={text}",
            "--config.train.steps=6",
            "--config.eval.prompts=('le chat',)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "test loss" in run.stdout and "le chat |" in run.stdout
    with open(tmp_path / "run" / "eval.json") as f:
        assert json.load(f)["data"]["split_sizes"] == {"train": 48, "validation": 6, "test": 6}

    missing = tmp_path / "nowhere.txt"
    bad = subprocess.run(
        base
        + [
            f"--workdir={tmp_path / 'bad'}",
            "--config.data.name=text",
            f"--config.data.path={missing}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: text file not found: data.path={str(missing)!r}"
    ]
