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

import json
import os
import resource
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from attn import local2d, viz
from experiments.common import attention_config, parallel, validation
from experiments.common.checkpoints import Checkpointer
from experiments.common.errors import ConfigError
from experiments.common.loop import loop_schedule, train_loop
from experiments.common.writers import MetricWriter
from experiments.models import vision as models
from experiments.vision import data as data_lib
from experiments.vision import pictures


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks everything that can be checked without loading data or compiling."""
    validation.check_ranges(config)
    model, train = config.model, config.train
    attention_config.check(
        model, needs=(), what="the ViT's self-attention", num_heads=model.vit_heads
    )
    checks = [
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
            model.logit_scale >= 0,
            f"model.logit_scale must be >= 0 (0: 1/sqrt(head_dim)), got {model.logit_scale}",
        ),
        (
            0 < model.attention_mix <= 1,
            f"model.attention_mix must be in (0, 1], got {model.attention_mix}",
        ),
        (train.steps > 0, f"train.steps must be positive, got {train.steps}"),
        (train.batch_size > 0, f"train.batch_size must be positive, got {train.batch_size}"),
        (
            config.eval.batch_size > 0,
            f"eval.batch_size must be positive, got {config.eval.batch_size}",
        ),
        (
            len(model.widths) == len(model.depths) >= 1
            and all(d >= 1 for d in model.depths)
            and all(w >= 2 for w in model.widths),
            f"model.widths {tuple(model.widths)} and model.depths {tuple(model.depths)} need "
            f"one entry per stage (widths >= 2, depths >= 1)",
        ),
        (
            train.param_sharding in parallel.PARAM_RULES,
            f"unknown train.param_sharding {train.param_sharding!r}; valid: "
            f"{', '.join(parallel.PARAM_RULES)}",
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
        parallel.check_batch_size(train.batch_size, parallel.make_mesh())
        parallel.check_batch_size(config.eval.batch_size, parallel.make_mesh())
        if config.data.name == "fashion_mnist":
            data_lib.check_fashion_mnist_dir(config.data.path)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from error


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


def make_optimizer(train_config) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        train_config.learning_rate,
        max(train_config.warmup_steps, 1),
        max(train_config.steps, train_config.warmup_steps + 1),
        end_value=0.01 * train_config.learning_rate,
    )
    return optax.chain(
        optax.clip_by_global_norm(train_config.grad_clip_norm),
        optax.adamw(schedule, weight_decay=train_config.weight_decay),
    )


def normalize(images, info: data_lib.DatasetInfo):
    """uint8 `[batch, H, W, C]` -> float32, per channel zero mean, unit variance."""
    scaled = images.astype(jnp.float32) / 255.0
    return (scaled - jnp.asarray(info.mean)) / jnp.asarray(info.std)


def train_step(state, batch, *, info, label_smoothing: float):
    """One optimizer step; returns (state, metrics)."""

    def loss_fn(params):
        logits = state.apply_fn({"params": params}, normalize(batch["images"], info))
        targets = optax.smooth_labels(
            jax.nn.one_hot(batch["labels"], info.num_classes), label_smoothing
        )
        loss = jnp.mean(optax.softmax_cross_entropy(logits.astype(jnp.float32), targets))
        return loss, jnp.mean(jnp.argmax(logits, -1) == batch["labels"])

    (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, "accuracy": accuracy, "grad_norm": optax.global_norm(grads)}


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
    return splits, info, models.build(config.model, info.num_classes)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir`; returns eval.json's dict."""
    os.makedirs(workdir, exist_ok=True)
    splits, info, model = _prepare(config)
    writes = parallel.is_writer()  # multi-host: process 0 writes files, all save checkpoints
    if writes:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))

    sample = jnp.zeros((1, *info.image_shape), jnp.float32)

    def init_state():
        params = model.init(jax.random.key(config.seed), sample)["params"]
        return train_state.TrainState.create(
            apply_fn=model.apply, params=params, tx=make_optimizer(config.train)
        )

    mesh = parallel.make_mesh()
    abstract = jax.eval_shape(init_state)
    shardings = parallel.state_shardings(
        abstract, mesh, config.train.param_sharding, config.train.min_shard_size
    )
    parameter_count = models.count_parameters(abstract.params)
    train_iter = data_lib.BatchIterator(
        splits["train"], config.train.batch_size, seed=config.data.seed + config.seed
    )

    checkpointer = Checkpointer(workdir, keep=config.checkpoint.keep)
    elapsed_before, flops = 0.0, None
    if checkpointer.latest_step() is not None:
        # Restoring needs only the shapes: no initialisation to compile and discard.
        like = jax.tree.map(
            lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
            abstract,
            shardings,
        )
        state, extra = checkpointer.restore(like, config.checkpoint.restore_step)
        train_iter.set_state(extra["iterator"])
        elapsed_before = extra.get("train_seconds", 0.0)
        flops = extra.get("flops")
        print(f"Resumed from {checkpointer.directory}/{int(state.step)}")
    else:
        state = jax.jit(init_state, out_shardings=shardings)()
    if flops is None:
        flops = models.flops_per_image(
            models.build(config.model, info.num_classes, unroll=True),
            {"params": state.params},
            info.image_shape,
        )

    writer = MetricWriter(workdir, enabled=writes)
    step_fn = jax.jit(
        lambda s, b: train_step(s, b, info=info, label_smoothing=config.train.label_smoothing),
        in_shardings=(shardings, parallel.batch_sharding(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )
    eval_fn = jax.jit(lambda p, b: eval_step(p, b, apply_fn=model.apply, info=info))
    eval_sets = {
        name: data_lib.eval_batches(splits[name], config.eval.batch_size)
        for name in config.eval.splits
        if name in splits
    }
    has_attention = config.model.variant != "conv"

    def periodic_eval(step, state):
        if "validation" in eval_sets:
            result = evaluate(
                eval_fn, state.params, eval_sets["validation"], mesh, len(splits["validation"])
            )
            writer.write_scalars(step, {f"validation/{k}": result[k] for k in ("accuracy", "loss")})
        if has_attention:
            _draw_attention(
                config,
                workdir,
                writer,
                model,
                state.params,
                splits,
                info,
                step,
                folder=f"step_{step:06d}",
            )

    run = train_loop(
        state,
        step_fn,
        train_iter,
        mesh,
        **loop_schedule(config),
        writer=writer,
        checkpointer=checkpointer,
        elapsed_before=elapsed_before,
        evaluate=periodic_eval,
        checkpoint_extra={"flops": flops},
        description=config.model.variant,
    )
    state = run.state

    results = {
        name: evaluate(eval_fn, state.params, batches, mesh, len(splits[name]))
        for name, batches in eval_sets.items()
    }
    step = int(state.step)
    writer.write_scalars(
        step,
        {f"final/{split}/{k}": r[k] for split, r in results.items() for k in ("accuracy", "loss")},
    )
    if has_attention:
        _draw_attention(
            config, workdir, writer, model, state.params, splits, info, step, folder="final"
        )
    final = {
        "splits": results,
        "headline": ["test/accuracy"],
        "selection": "validation/accuracy",
        "variant": config.model.variant,
        "steps": step,
        "parameters": parameter_count,
        "flops": flops,
        "train_seconds": run.train_seconds,
        "seconds_per_step": run.seconds_per_step,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "data": {
            "name": info.name,
            "image_shape": list(info.image_shape),
            "classes": info.num_classes,
            **{f"{name}_size": len(split) for name, split in splits.items()},
        },
    }
    if writes:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(final, f, indent=2, default=float)
    writer.close()
    return final


def _draw_attention(config, workdir, writer, model, params, splits, info, step, *, folder):
    """Attention of eval.attention_layer at eval.attention_pixels of eval.attention_images.

    PNGs under attention/<folder>/image_<index>.png and in TensorBoard.
    """
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


__all__ = ["train_and_evaluate", "validate_config"]
