"""The four classifiers: a training step each, parameter budgets, attention maps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attn.local2d import LocalSelfAttention2D
from experiments.configs import vision
from experiments.models import vision as models

TINY_IMAGES = (8, 8, 1)


def tiny_model(variant, **overrides):
    config = vision.get_config(f"{variant},tiny")
    config.model.update(overrides)
    return models.build(config.model, num_classes=10)


def random_params(model, image_shape=TINY_IMAGES, seed=0):
    """Parameters of the right shapes without compiling `init` (tests pay for each compilation)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *image_shape)))
    return jax.tree.map(lambda s: (0.3 * rng.normal(size=s.shape)).astype(s.dtype), shapes)


MODEL_CASES = [(variant, {}) for variant in models.VARIANTS] + [
    # Options of a variant: the slow tier (the variants themselves run in make test).
    pytest.param("full_attention", {"attention_stem": "pointwise"}, marks=pytest.mark.slow),
    pytest.param("conv_stem_attention", {"relative_bias": True}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(
    "variant, options", MODEL_CASES, ids=lambda case: case if isinstance(case, str) else ""
)
def test_one_training_step_of_each_model_on_tiny_images(variant, options):
    model = tiny_model(variant, **options)
    images = jax.random.normal(jax.random.key(0), (4, *TINY_IMAGES))
    labels = jnp.arange(4)
    params = random_params(model)
    optimizer = optax.adam(1e-2)

    @jax.jit
    def step(params, opt_state):
        def loss_fn(params):
            logits = model.apply(params, images)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), loss, logits, grads

    new_params, loss, logits, grads = step(params, optimizer.init(params))
    assert logits.shape == (4, 10)
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    changed = [
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params))
    ]
    assert sum(changed) > 0.9 * len(changed)  # (almost) every parameter learns


def parameter_count(config, image_shape):
    model = models.build(config.model, num_classes=10)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *image_shape)))
    return models.count_parameters(shapes)


@pytest.mark.parametrize(
    "preset, image_shape",
    [("digits", (8, 8, 1)), ("fashion_mnist", (28, 28, 1)), ("tiny", TINY_IMAGES)],
)
def test_attention_variants_have_no_more_parameters_than_the_conv_baseline(preset, image_shape):
    counts = {}
    for variant in models.VARIANTS:
        config = vision.get_config(f"{variant},{preset}")
        counts[variant] = parameter_count(config, image_shape)
    assert counts["conv_stem_attention"] <= counts["conv"]
    assert counts["full_attention"] <= counts["conv"]
    assert counts["vit"] <= 1.1 * counts["conv"]


def test_a_known_parameter_count():
    # Stem 3x3x1x8; stage 0: norms, down 8x4, attention 3 (4x4) + 2 (3x2x2),
    # up 4x8; stage 1: pooled shortcut 8x16, down 8x8, attention 3 (8x8) +
    # 2 (3x2x4), up 8x16; final norm and head.
    config = vision.get_config("conv_stem_attention,tiny")
    stage0 = 2 * 8 + 8 * 4 + 2 * 4 + 3 * 16 + 12 + 2 * 4 + 4 * 8
    stage1 = 2 * 8 + 8 * 16 + 8 * 8 + 2 * 8 + 3 * 64 + 24 + 2 * 8 + 8 * 16
    assert parameter_count(config, TINY_IMAGES) == 72 + stage0 + stage1 + 2 * 16 + 16 * 10 + 10


def test_attention_maps_are_reported_in_layer_order():
    images = jnp.ones((2, *TINY_IMAGES))
    model = tiny_model("full_attention")
    maps = models.attention_maps(model, random_params(model), images)
    assert len(maps) == 2 and [m.name for m in maps[0]] == [
        "stem/local_attention",
        "stage0_block0/mix/local_attention",
        "stage1_block0/mix/local_attention",
    ]
    stem = maps[0][0]
    assert stem.kind == "local" and stem.grid == (8, 8) and stem.weights.shape == (2, 8, 8, 9)
    assert maps[0][2].grid == (8, 8)  # attention runs before the stage's pooling

    vit = tiny_model("vit")
    vit_maps = models.attention_maps(vit, random_params(vit), images)
    assert vit_maps[0][0].kind == "global" and vit_maps[0][0].grid == (2, 2)
    assert vit_maps[0][0].weights.shape == (2, 4, 4)
    conv = tiny_model("conv")
    assert models.attention_maps(conv, random_params(conv), images) == [[], []]
    # What the config check of eval.attention_layer counts, without building a model.
    counted = {
        variant: models.count_attention_layers(vision.get_config(f"{variant},tiny").model)
        for variant in ("full_attention", "vit", "conv")
    }
    assert counted == {"full_attention": len(maps[0]), "vit": len(vit_maps[0]), "conv": 0}


def test_flops_count_the_attention_loops():
    layer = LocalSelfAttention2D(num_heads=2, kernel_size=5, features=8)
    image_shape = (6, 6, 8)
    params = random_params(layer, image_shape)
    rolled, unrolled = (
        models.flops_per_image(m, params, image_shape) for m in (layer, layer.clone(unroll=True))
    )
    # Logits and weighted sum: 2 x 2 flops per channel, window position and pixel;
    # a rolled loop is counted for one of its k^2 = 25 steps.
    assert unrolled - rolled >= 0.8 * 2 * 2 * 8 * (25 - 1) * 36
