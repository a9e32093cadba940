"""Classify your own image with a trained vision run, and see where attention looks.

    python launch.py --workdir=runs/vision --classify=digit.png --out=/tmp/pictures
    python launch.py --workdir=runs/vision --classify=t10k-images-idx3-ubyte.gz:7

An image is a PNG of the run's size and colour depth (grey or RGB), or one
image of an idx file or an .npz archive (`FILE:INDEX`, the first by default).
The run is rebuilt from its workdir alone (config.json, checkpoints/<step>;
the per-channel mean and std of the training images come from its dataset,
as in training). Printed: the class, every class's probability, and for each
chosen pixel and head of the chosen attention layer the cell it attends to
most; `--out` gets the training run's picture of those pixels.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from attn import viz
from experiments.common import trained
from experiments.common.optimizers import make_optimizer
from experiments.common.trained import FORMATS, UseError
from experiments.models import vision as models
from experiments.vision import data as data_lib
from experiments.vision import pictures


@dataclasses.dataclass
class Classified:
    name: str
    label: str
    probabilities: dict[str, float]
    looks: list[dict]  # per pixel: the pixel and, per head, the cell it attends to most
    layer: str | None


def read_image(spec: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 `[H, W, C]` from a PNG, `FILE.idx[.gz][:INDEX]` or `FILE.npz[:INDEX]`."""
    path, index = spec, None
    match = re.fullmatch(r"(.+):(\d+)", spec)
    if match and not os.path.isfile(spec):
        path, index = match.group(1), int(match.group(2))
    if not os.path.isfile(path):
        raise UseError(f"--classify={spec}: no such file")
    height, width, channels = image_shape
    wanted = f"{height}x{width} {'grey' if channels == 1 else 'RGB'}"
    lower = path.lower()
    if lower.endswith(".png"):
        if index is not None:
            raise UseError(f"--classify={spec}: a PNG holds one image; drop the :{index}")
        from matplotlib import image as mpimg

        try:
            pixels = mpimg.imread(path)
        except Exception as error:  # matplotlib raises many types for bad files
            raise UseError(f"--classify={spec}: not a readable PNG: {error}") from error
        if pixels.dtype != np.uint8:
            pixels = np.round(np.asarray(pixels) * 255).astype(np.uint8)
        image = _to_channels(pixels, channels, spec, wanted)
    elif lower.endswith((".npz", ".idx", ".gz", "ubyte")):
        if lower.endswith(".npz"):
            with np.load(path) as archive:
                key = "images" if "images" in archive else archive.files[0]
                stack = archive[key]
        else:
            try:
                stack = data_lib.read_idx(path, ndim=3)
            except ValueError as error:
                raise UseError(f"--classify={spec}: {error}") from error
        stack = np.asarray(stack)
        if stack.ndim in (2, 3) and stack.shape[:2] == (height, width):
            stack = stack[None]  # one image
        position = index or 0
        if not 0 <= position < len(stack):
            raise UseError(
                f"--classify={spec}: index {position} out of range; valid: 0..{len(stack) - 1}"
            )
        image = _to_channels(np.asarray(stack[position]), channels, spec, wanted)
    else:
        raise UseError(
            f"--classify={spec}: unknown image file type; valid: .png, an idx file "
            f"(.idx, .gz, -ubyte) or .npz, with :INDEX for the last two"
        )
    if image.shape[:2] != (height, width):
        raise UseError(
            f"--classify={spec} is {image.shape[0]}x{image.shape[1]}; the run's images are {wanted}"
        )
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def _to_channels(pixels: np.ndarray, channels: int, spec: str, wanted: str) -> np.ndarray:
    """[H, W], [H, W, 1], [H, W, 3] or opaque [H, W, 4] -> [H, W, channels], else UseError."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4):
        raise UseError(f"--classify={spec} has shape {pixels.shape}; the run's images are {wanted}")
    if pixels.shape[-1] == 4:
        if (pixels[..., 3] != pixels[..., 3].max()).any():
            raise UseError(f"--classify={spec} is transparent; the run's images are {wanted}")
        pixels = pixels[..., :3]
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 1 and (pixels == pixels[..., :1]).all():
        return pixels[..., :1]  # grey stored as RGB
    have = "grey" if pixels.shape[-1] == 1 else "colour (RGB)"
    raise UseError(f"--classify={spec} is {have}; the run's images are {wanted}")


def parse_pixels(text: str, default) -> list[tuple[float, float]]:
    if not text:
        return [tuple(p) for p in default]
    try:
        found = [tuple(float(v) for v in part.split(",")) for part in text.split(";")]
    except ValueError:
        found = []
    if not found or any(len(p) != 2 or not all(0 <= v <= 1 for v in p) for p in found):
        raise UseError(
            f"--pixels={text}: give row,col fractions in [0, 1], ';' between pixels, "
            f"e.g. 0.5,0.5;0.25,0.75"
        )
    return found


def main(
    workdir: str,
    images: Sequence[str],
    *,
    step: int | None = None,
    out: str | None = None,
    output_format: str = "text",
    layer: str = "",
    pixels: str = "",
) -> list[Classified]:
    from experiments.vision import train  # the run's own normalisation and optimizer

    trained.check_out_path(out, workdir)
    if output_format not in FORMATS:
        raise UseError(f"--format={output_format}; valid: {', '.join(FORMATS)}")
    if not images:
        raise UseError("no image to classify: give --classify=... or --input_file=...")
    config = trained.load_config(workdir)
    trained.require_experiment(config, workdir, "--classify", "vision")
    fractions = parse_pixels(pixels, config.eval.attention_pixels)
    trained.choose_step(workdir, step)  # before the dataset is read
    try:
        _, info = data_lib.load(config.data)
    except (ValueError, FileNotFoundError) as error:
        raise UseError(f"the run's dataset is needed for its normalisation: {error}") from error
    batch = np.stack([read_image(spec, info.image_shape) for spec in images])
    model = models.build(config.model, info.num_classes)
    sample = jnp.zeros((1, *info.image_shape), jnp.float32)
    params, step = trained.restore_params(
        workdir,
        lambda: model.init(jax.random.key(0), sample)["params"],
        make_optimizer(config.train),
        step,
    )
    normalized = train.normalize(batch, info)
    logits = np.asarray(jax.jit(model.apply)(params, normalized), np.float64)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    maps = models.attention_maps(model, params, normalized)
    height, width = info.image_shape[:2]
    points = [
        (min(int(r * height), height - 1), min(int(c * width), width - 1)) for r, c in fractions
    ]
    results = []
    for number, (spec, image, layers) in enumerate(zip(images, batch, maps)):
        label = info.class_names[int(np.argmax(probabilities[number]))]
        probs = {n: float(p) for n, p in zip(info.class_names, probabilities[number])}
        looks, chosen = [], None
        if layers:
            index = _layer_index(layer, len(layers), config.eval.attention_layer)
            chosen = layers[index]
            heats = np.stack(
                [
                    pictures.weights_on_grid(
                        chosen.kind,
                        chosen.weights,
                        chosen.grid,
                        pictures.query_cell(p, (height, width), chosen.grid),
                    )
                    for p in points
                ]
            )
            for p, heat in zip(points, heats):
                cells = [np.unravel_index(int(np.argmax(h)), h.shape) for h in heat]
                looks.append(
                    {
                        "pixel": list(p),
                        "heads": [
                            {"cell": [int(i), int(j)], "weight": round(float(h[i, j]), 4)}
                            for h, (i, j) in zip(heat, cells)
                        ],
                    }
                )
            if out:
                name = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(spec)).strip("_")
                path = trained.png_path(out, name or f"image_{number}", len(images))
                window = int(round(np.sqrt(chosen.weights.shape[-1])))
                figure = pictures.attention_overlay(
                    image,
                    points,
                    heats,
                    window=window if chosen.kind == "local" else None,
                    title=f"{config.model.variant}, step {step}: {os.path.basename(spec)} "
                    f"({label}), {chosen.name}",
                )
                viz.save_figure(figure, path)
                print(f"wrote {path}", file=sys.stderr)
        results.append(
            Classified(spec, label, probs, looks, chosen.name if chosen is not None else None)
        )
    for result in results:
        _print(result, output_format, config.model.variant, layer_grid=_grid(maps, result))
    return results


def _grid(maps, result):
    for layers in maps:
        for layer in layers:
            if layer.name == result.layer:
                return layer.grid
    return None


def _layer_index(layer: str, count: int, default: int) -> int:
    if not layer:
        return min(default, count - 1)
    if layer.isdigit() and 1 <= int(layer) <= count:
        return int(layer) - 1
    raise UseError(f"--layer={layer}: the model has {count} attention layers; valid: 1..{count}")


def _print(result: Classified, output_format: str, variant: str, *, layer_grid) -> None:
    ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
    if output_format == "jsonl":
        print(
            json.dumps(
                {
                    "image": result.name,
                    "class": result.label,
                    "probabilities": {k: round(v, 4) for k, v in result.probabilities.items()},
                    "layer": result.layer,
                    "attention": result.looks,
                }
            )
        )
        return
    if output_format == "tsv":
        top = " ".join(f"{name}:{p:.2f}" for name, p in ranked[:3])
        print(f"{result.name}\t{result.label}\t{top}")
        return
    print(f"{result.name}: {result.label}")
    print("  " + "  ".join(f"{name} {p:.2f}" for name, p in ranked))
    if result.layer is None:
        print(f"  (variant {variant}: this model has no attention to show)")
        return
    print(f"  attention of {result.layer} (feature map {layer_grid[0]}x{layer_grid[1]}):")
    for look in result.looks:
        heads = ", ".join(
            f"head {h}: cell {tuple(head['cell'])} {head['weight']:.2f}"
            for h, head in enumerate(look["heads"])
        )
        print(f"  pixel {tuple(look['pixel'])} looks most at {heads}")


__all__ = ["Classified", "main", "parse_pixels", "read_image"]
