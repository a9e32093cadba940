"""Using a trained vision run: --classify an image file, or one image of an idx/npz file."""

import json
import os

import numpy as np
import pytest
from matplotlib import image as mpimg

from experiments import classify, use_run
from experiments.common.trained import UseError
from experiments.vision import data as data_lib
from experiments.vision import train
from tests.experiments.images.test_idx import idx_bytes

# Each test here trains a run first; --classify loads the run as
# --translate does (experiments/common/trained.py, tested in make test): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = classify.get_config("conv_stem_attention,tiny")
    config.eval.every_steps = 100  # only the final evaluation
    workdir = tmp_path_factory.mktemp("vision") / "run"
    train.train_and_evaluate(config, str(workdir))
    splits, _ = data_lib.load(config.data)
    return workdir, config, splits["test"]


def files(directory):
    return {
        os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    }


def test_classes_give_the_runs_test_accuracy(run, tmp_path, capsys):
    workdir, _, test = run
    np.savez(tmp_path / "test.npz", images=test.images)
    specs = [f"{tmp_path / 'test.npz'}:{i}" for i in range(len(test))]
    results = use_run.main(str(workdir), classify=specs, output_format="jsonl")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["class"] for r in records] == [r.label for r in results]
    accuracy = np.mean([r.label == str(label) for r, label in zip(results, test.labels)])
    final = json.loads((workdir / "eval.json").read_text())
    assert accuracy == pytest.approx(final["splits"]["test"]["accuracy"])
    for record in records:
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert record["class"] == max(record["probabilities"], key=record["probabilities"].get)
        assert len(record["attention"]) == 3  # eval.attention_pixels


def test_png_and_idx_images_and_the_attention_picture(run, tmp_path, capsys):
    workdir, _, test = run
    image = test.images[0]  # [8, 8, 1]
    mpimg.imsave(tmp_path / "digit.png", np.repeat(image, 3, -1))  # grey, saved as RGBA
    (tmp_path / "digits.idx").write_bytes(idx_bytes(test.images[:3, ..., 0]))
    out = tmp_path / "pictures"
    first, second = use_run.main(
        str(workdir),
        classify=[str(tmp_path / "digit.png"), f"{tmp_path / 'digits.idx'}:0"],
        out=str(out),
        pixels="0.5,0.5",
    )
    assert first.probabilities == pytest.approx(second.probabilities, abs=1e-6)
    text = capsys.readouterr().out
    assert text.startswith(f"{tmp_path / 'digit.png'}: {first.label}")
    assert "pixel (4, 4) looks most at head 0: cell" in text
    assert sorted(os.listdir(out)) == ["digit_png.png", "digits_idx_0.png"]


def test_bad_images_and_flags(run, tmp_path):
    workdir, _, test = run
    before = files(workdir)
    mpimg.imsave(tmp_path / "big.png", np.zeros((16, 16, 3), np.uint8))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 255
    mpimg.imsave(tmp_path / "colour.png", colour)
    np.savez(tmp_path / "few.npz", images=test.images[:2])
    for options, message in [
        (
            dict(classify=[str(tmp_path / "big.png")]),
            "big.png is 16x16; the run's images are 8x8 grey",
        ),
        (
            dict(classify=[str(tmp_path / "colour.png")]),
            "is colour \\(RGB\\); the run's images are 8x8 grey",
        ),
        (dict(classify=[f"{tmp_path / 'few.npz'}:5"]), "index 5 out of range; valid: 0..1"),
        (dict(classify=[str(tmp_path / "none.png")]), "none.png: no such file"),
        (dict(classify=[f"{tmp_path / 'few.npz'}"], pixels="2,2"), "--pixels=2,2"),
        (
            dict(translate=["i love you"]),
            "--translate needs a translation run, but .* is a vision run; use --classify",
        ),
    ]:
        with pytest.raises(UseError, match=message):
            use_run.main(str(workdir), **options)
    assert files(workdir) == before
