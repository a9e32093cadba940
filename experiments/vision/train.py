"""Training loop of the vision experiment: `train_and_evaluate(config, workdir)`.

A workdir ends up holding:
  config.json        the full config
  metrics.jsonl      one JSON line per logged step (train and validation metrics)
  tensorboard/       the same, plus the attention pictures
  checkpoints/<step> orbax checkpoints (the last few); a restarted run resumes
  attention/         attention over chosen pixels of chosen test images, per
                     evaluation step and final/ (attention models only)
  eval.json          accuracy and loss of every split, parameters, FLOPs, speed
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from attn import local2d, viz
from experiments.common import attention_config, parallel, sections, trainer, validation
from experiments.common.errors import ConfigError
from experiments.models import vision as models
from experiments.vision import data as data_lib
from experiments.vision import pictures


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without loading data or compiling."""
    validation.check_ranges(config)
    sections.check_train(config)
    model = config.model
    attention_config.check(
        model, needs=(), what="the ViT's self-attention", num_heads=model.vit_heads
    )
    eval_splits = ("validation", "test")
    checks = [
        *(
            (name in eval_splits, f"eval.splits holds {name!r}; valid: {', '.join(eval_splits)}")
            for name in config.eval.splits
        ),
        (
            model.variant in models.VARIANTS,
            f"unknown model variant {model.variant!r}; valid: {', '.join(models.VARIANTS)}",
        ),
        (
            config.data.name in data_lib.DATASETS,
            f"unknown dataset {config.data.name!r}; valid: {', '.join(data_lib.DATASETS)}",
        ),
        (
            model.attention_form in local2d.FORMS,
            f"unknown model.attention_form {model.attention_form!r}; valid: "
            f"{', '.join(local2d.FORMS)}",
        ),
        (
            model.attention_stem in models.ATTENTION_STEMS,
            f"unknown model.attention_stem {model.attention_stem!r}; valid: "
            f"{', '.join(models.ATTENTION_STEMS)}",
        ),
        (
            0 <= model.logit_scale < math.inf,
            f"model.logit_scale must be finite and >= 0 (0: 1/sqrt(head_dim)), got "
            f"{model.logit_scale}",
        ),
        (
            0 < model.attention_mix <= 1,
            f"model.attention_mix must be in (0, 1], got {model.attention_mix}",
        ),
        (
            len(model.widths) == len(model.depths) >= 1
            and all(d >= 1 for d in model.depths)
            and all(w >= 2 for w in model.widths),
            f"model.widths {tuple(model.widths)} and model.depths {tuple(model.depths)} need "
            f"one entry per stage (widths >= 2, depths >= 1)",
        ),
        (
            all(0 <= r < 1 and 0 <= c < 1 for r, c in config.eval.attention_pixels),
            f"eval.attention_pixels are (row, column) fractions in [0, 1), got "
            f"{tuple(config.eval.attention_pixels)}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    layers = models.count_attention_layers(model)
    if layers and config.eval.attention_images and not 0 <= config.eval.attention_layer < layers:
        raise ConfigError(
            f"eval.attention_layer={config.eval.attention_layer!r}; valid: 0 to {layers - 1} "
            f"(the {layers} attention layers of model.variant={model.variant!r})"
        )
    try:
        if model.variant != "conv":
            local2d.check_kernel_size(model.kernel_size)
        heads = model.vit_heads if model.variant == "vit" else model.num_heads
        for name, width in models.attention_widths(model).items():
            if model.variant == "vit":
                if width % heads:
                    raise ValueError(f"model.vit_heads={heads} does not divide {name}={width}")
            else:
                try:
                    local2d.check_heads(width, heads)
                except ValueError as error:
                    raise ValueError(f"{name}={width}: {error}") from None
        parallel.check_batch_size(config.eval.batch_size, parallel.make_mesh())
        if config.data.name == "fashion_mnist":
            data_lib.check_fashion_mnist_dir(config.data.path)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from error


VIT_FIELDS = ("patch_size", "vit_width", "vit_depth", "vit_heads", "vit_mlp_dim")
VIT_FIELDS += ("attention", "attention_options", "implementation", "num_kv_heads")
RESNET_FIELDS = ("stem_width", "stem_strides", "widths", "depths", "kernel_size")
LOCAL_ATTENTION_FIELDS = ("num_heads", "relative_bias", "logit_scale", "attention_form")
LOCAL_ATTENTION_FIELDS += ("attention_mix",)


def unread_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
    """Fields this variant never reads -> why (see experiments.unread_fields)."""
    variant = config.model.variant
    if variant == "vit":
        names = RESNET_FIELDS + LOCAL_ATTENTION_FIELDS + ("attention_stem",)
        why = "model.variant='vit' (a field of the convolutional and local-attention variants)"
        return {f"model.{name}": why for name in names}
    unread = {f"model.{name}": f"model.variant={variant!r} (ViT only)" for name in VIT_FIELDS}
    if variant == "conv":
        for name in LOCAL_ATTENTION_FIELDS:
            unread[f"model.{name}"] = "model.variant='conv' has no attention"
        unread["eval.attention_layer"] = "model.variant='conv' has no attention to draw"
    if variant != "full_attention":
        unread["model.attention_stem"] = f"model.variant={variant!r} (full_attention only)"
    return unread


def _check_against_data(config, info: data_lib.DatasetInfo, splits) -> None:
    """What depends on the images: sizes of windows and patches, picture indices."""
    height, width = info.image_shape[:2]
    model = config.model
    if model.variant in ("conv_stem_attention", "full_attention") and model.kernel_size > min(
        height, width
    ):
        raise ConfigError(
            f"model.kernel_size={model.kernel_size} is larger than the {height}x{width} images "
            f"of {info.name}; use an odd size up to {min(height, width)}"
        )
    if model.variant == "vit" and (height % model.patch_size or width % model.patch_size):
        raise ConfigError(
            f"model.patch_size={model.patch_size} does not tile the {height}x{width} images of "
            f"{info.name}"
        )
    if config.train.batch_size > len(splits["train"]):
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} exceeds the {len(splits['train'])} "
            f"training images"
        )
    bad = [i for i in config.eval.attention_images if not 0 <= i < len(splits["test"])]
    if bad:
        raise ConfigError(
            f"eval.attention_images {bad} are not test images (0..{len(splits['test']) - 1})"
        )


def normalize(images, info: data_lib.DatasetInfo):
    """uint8 `[batch, H, W, C]` -> float32, per channel zero mean, unit variance."""
    scaled = images.astype(jnp.float32) / 255.0
    return (scaled - jnp.asarray(info.mean)) / jnp.asarray(info.std)


def loss(model, params, batch, *, info, label_smoothing: float):
    """Mean cross-entropy of `batch` ("images" `[batch, H, W, C]` uint8, "labels"
    `[batch]`): (loss, {"accuracy"})."""
    logits = model.apply({"params": params}, normalize(batch["images"], info))
    targets = optax.smooth_labels(
        jax.nn.one_hot(batch["labels"], info.num_classes), label_smoothing
    )
    mean = jnp.mean(optax.softmax_cross_entropy(logits.astype(jnp.float32), targets))
    return mean, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["labels"])}


def eval_step(params, batch, *, apply_fn, info):
    """Summed loss and correct predictions over the valid rows of a padded batch."""
    logits = apply_fn({"params": params}, normalize(batch["images"], info)).astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    correct = jnp.argmax(logits, -1) == batch["labels"]
    valid = batch["valid"]
    return jnp.sum(jnp.where(valid, losses, 0.0)), jnp.sum(correct & valid)


def evaluate(eval_fn, params, batches, mesh, examples: int) -> dict[str, float]:
    loss, correct = 0.0, 0
    for batch in batches:
        batch_loss, batch_correct = jax.device_get(
            eval_fn(params, parallel.shard_batch(batch, mesh))
        )
        loss, correct = loss + float(batch_loss), correct + int(batch_correct)
    return {"accuracy": correct / examples, "loss": loss / examples, "examples": examples}


def _prepare(config):
    """Data and model: every bad-input error surfaces here, before compiling."""
    validate_config(config)
    try:
        splits, info = data_lib.load(config.data)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from error
    _check_against_data(config, info, splits)
    dtype = trainer.COMPUTE_DTYPES[config.train.compute_dtype]
    return splits, info, models.build(config.model, info.num_classes, dtype=dtype)


class VisionTask(trainer.Task):
    """The image classifiers for the shared trainer (common/trainer.py)."""

    def __init__(self, config, workdir):
        self.config, self.workdir = config, workdir
        self.splits, self.info, self.model = _prepare(config)
        self.train_iterator = data_lib.BatchIterator(
            self.splits["train"], config.train.batch_size, seed=config.data.seed + config.seed
        )
        self.mesh = parallel.make_mesh()
        model, info = self.model, self.info
        self.eval_fn = jax.jit(lambda p, b: eval_step(p, b, apply_fn=model.apply, info=info))
        self.eval_sets = {
            name: data_lib.eval_batches(self.splits[name], config.eval.batch_size)
            for name in config.eval.splits
            if name in self.splits
        }
        self.has_attention = config.model.variant != "conv"

    def init_params(self, seed_key):
        sample = jnp.zeros((1, *self.info.image_shape), jnp.float32)
        # Compiled, and from the seed's key itself: the runs recorded so far did so.
        return jax.jit(self.model.init)(seed_key, sample)["params"]

    def loss(self, params, batch, dropout_key):
        del dropout_key  # the classifiers have no dropout
        return loss(
            self.model,
            params,
            batch,
            info=self.info,
            label_smoothing=self.config.train.label_smoothing,
        )

    def _evaluate(self, name, params):
        return evaluate(
            self.eval_fn, params, self.eval_sets[name], self.mesh, len(self.splits[name])
        )

    def evaluate(self, step, params, writer):
        if "validation" in self.eval_sets:
            result = self._evaluate("validation", params)
            writer.write_scalars(step, {f"validation/{k}": result[k] for k in ("accuracy", "loss")})
        if self.has_attention:
            _draw_attention(self, writer, params, step, folder=f"step_{step:06d}")

    def final_evaluation(self, step, params, writer):
        config, info, splits = self.config, self.info, self.splits
        results = {name: self._evaluate(name, params) for name in self.eval_sets}
        writer.write_scalars(
            step,
            {
                f"final/{split}/{k}": r[k]
                for split, r in results.items()
                for k in ("accuracy", "loss")
            },
        )
        if self.has_attention:
            _draw_attention(self, writer, params, step, folder="final")
        unrolled = models.build(config.model, info.num_classes, unroll=True)
        return {
            "splits": results,
            "headline": ["test/accuracy"],
            "selection": "validation/accuracy",
            "variant": config.model.variant,
            "flops": models.flops_per_image(unrolled, {"params": params}, info.image_shape),
            "data": {
                "name": info.name,
                "image_shape": list(info.image_shape),
                "classes": info.num_classes,
                **{f"{name}_size": len(split) for name, split in splits.items()},
            },
        }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir` (the layout of the
    module docstring); returns eval.json's dict."""
    return trainer.train_and_evaluate(VisionTask, config, workdir)


def _draw_attention(task: VisionTask, writer, params, step, *, folder):
    """Attention of eval.attention_layer at eval.attention_pixels of eval.attention_images.

    PNGs under attention/<folder>/image_<index>.png and in TensorBoard.
    """
    config, workdir, model, splits, info = (
        task.config,
        task.workdir,
        task.model,
        task.splits,
        task.info,
    )
    if not writer.enabled or not config.eval.attention_images:
        return  # in multi-host runs process 0 draws them
    indices = list(config.eval.attention_images)
    images = splits["test"].images[indices]
    maps = models.attention_maps(model, {"params": params}, normalize(images, info))
    height, width = info.image_shape[:2]
    pixels = [
        (min(int(r * height), height - 1), min(int(c * width), width - 1))
        for r, c in config.eval.attention_pixels
    ]
    directory = os.path.join(workdir, "attention", folder)
    drawn = {}
    for index, image, layers in zip(indices, images, maps):
        if not layers:
            return
        layer = layers[min(config.eval.attention_layer, len(layers) - 1)]
        heats = np.stack(
            [
                pictures.weights_on_grid(
                    layer.kind,
                    layer.weights,
                    layer.grid,
                    pictures.query_cell(pixel, (height, width), layer.grid),
                )
                for pixel in pixels
            ]
        )
        label = info.class_names[int(splits["test"].labels[index])]
        figure = pictures.attention_overlay(
            image,
            pixels,
            heats,
            window=int(round(np.sqrt(layer.weights.shape[-1]))) if layer.kind == "local" else None,
            title=f"{config.model.variant}, step {step}: test image {index} ({label}), "
            f"{layer.name}",
        )
        viz.save_figure(figure, os.path.join(directory, f"image_{index}.png"))
        drawn[f"attention/{folder}/image_{index}"] = viz.figure_to_array(figure)
    writer.write_images(step, drawn)


__all__ = ["VisionTask", "loss", "train_and_evaluate", "unread_fields", "validate_config"]
