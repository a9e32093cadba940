"""Local 2-D self-attention against a float64 loop reference, and its properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn.local2d import (
    LocalSelfAttention2D,
    border_mask,
    choose_form,
    local_attention_weights,
    local_self_attention,
    local_window_sum,
)
from benchmarks import local2d_memory

# "blocked:2": the blocked form cut into 2 x 2 query blocks with halos (the
# default block covers these small images whole: one masked dense block).
FORMS = ("lean", "lean_batch_minor", "unfold", "blocked", "blocked:2", "auto")
# "auto" runs one of the others (see test_auto_takes_...); in `make test-slow` only.
PARAMETRIZED_FORMS = [
    pytest.param(f, marks=[pytest.mark.slow] if f == "auto" else []) for f in FORMS
]


def form_options(spec: str) -> dict:
    form, _, block = spec.partition(":")
    return {"form": form, **({"block_size": int(block)} if block else {})}


def reference(images, params, kernel_size, logit_scale=None):
    """The layer in float64 NumPy, one pixel, head and offset at a time.

    images `[batch, H, W, C]` -> (output `[batch, H, W, features]`, weights
    `[batch, heads, H, W, k * k]`).
    """
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    x = np.asarray(images, np.float64)
    q, k, v = (
        np.einsum("bxyc,chd->bxyhd", x, p[name]["kernel"]) for name in ("query", "key", "value")
    )
    rows, cols = p["row_embedding"], p["col_embedding"]
    bias = p.get("relative_bias")  # [heads, k * k] when the layer learns one
    batch, height, width, heads, d = q.shape
    r = kernel_size // 2
    output = np.zeros_like(q)
    weights = np.zeros((batch, heads, height, width, kernel_size * kernel_size))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                for h in range(heads):
                    logits, neighbours = {}, {}
                    for a in range(-r, r + 1):
                        for c in range(-r, r + 1):
                            if not (0 <= i + a < height and 0 <= j + c < width):
                                continue  # outside the image: never attended
                            n = (a + r) * kernel_size + (c + r)
                            relative = np.concatenate([rows[a + r, h], cols[c + r, h]])
                            key = k[b, i + a, j + c, h] + relative
                            scale = 1 / np.sqrt(d) if logit_scale is None else logit_scale
                            logits[n] = q[b, i, j, h] @ key * scale
                            if bias is not None:
                                logits[n] += bias[h, n]
                            neighbours[n] = v[b, i + a, j + c, h]
                    top = max(logits.values())
                    total = sum(np.exp(z - top) for z in logits.values())
                    for n, z in logits.items():
                        weights[b, h, i, j, n] = np.exp(z - top) / total
                        output[b, i, j, h] += weights[b, h, i, j, n] * neighbours[n]
    return output.reshape(batch, height, width, heads * d), weights


def layer_and_params(
    form,
    *,
    heads=2,
    kernel=3,
    features=8,
    seed=0,
    shape=None,
    relative_bias=False,
    logit_scale=None,
):
    shape = shape or (2, 5, 6, 3)
    images = jax.random.normal(jax.random.key(seed), shape)
    layer = LocalSelfAttention2D(
        num_heads=heads,
        kernel_size=kernel,
        features=features,
        **form_options(form),
        relative_bias=relative_bias,
        logit_scale=logit_scale,
    )
    params = layer.init(jax.random.key(seed + 1), images)
    if relative_bias:  # initialised to zero: give it values the reference can get wrong
        params = jax.tree_util.tree_map_with_path(
            lambda path, a: (
                jax.random.normal(jax.random.key(seed + 2), a.shape)
                if "relative_bias" in jax.tree_util.keystr(path)
                else a
            ),
            params,
        )
    return layer, params, images


@pytest.mark.parametrize("form", PARAMETRIZED_FORMS)
@pytest.mark.parametrize(
    "shape, kernel, heads, features, relative_bias, logit_scale",
    [
        ((2, 5, 6, 3), 3, 2, 8, False, None),
        ((1, 3, 2, 2), 5, 1, 4, False, None),
        ((1, 5, 4, 3), 3, 2, 8, True, None),
        ((1, 4, 5, 3), 3, 2, 8, False, 1.0),
    ],
    ids=["3x3", "kernel-wider-than-image", "relative-bias", "unscaled-logits"],
)
def test_matches_float64_loop_reference_including_borders(
    form, shape, kernel, heads, features, relative_bias, logit_scale
):
    with jax.enable_x64(True):
        layer, params, images = layer_and_params(
            form,
            heads=heads,
            kernel=kernel,
            features=features,
            shape=shape,
            relative_bias=relative_bias,
            logit_scale=logit_scale,
        )
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        images = images.astype(jnp.float64)
        output, weights = layer.apply(params, images)
        want_output, want_weights = reference(images, params, kernel, logit_scale)
    assert output.shape == want_output.shape and weights.shape == want_weights.shape
    np.testing.assert_allclose(weights, want_weights, atol=1e-12)
    np.testing.assert_allclose(output, want_output, atol=1e-12)
    # Borders: exactly zero weight outside the image, total weight 1 inside.
    outside = ~border_mask(shape[1], shape[2], kernel)
    assert np.all(np.asarray(weights)[:, :, outside] == 0)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "form",
    ["lean", "lean_batch_minor", "blocked:2", pytest.param("blocked:4", marks=pytest.mark.slow)],
)
def test_forms_agree_in_values_and_finite_gradients(form):
    # A 5 x 5 window on a 6 x 5 image: most windows cross a border. Blocks of 2
    # and 4 leave partial blocks at the bottom and right.
    layer, params, images = layer_and_params(
        "unfold", heads=2, kernel=5, shape=(2, 6, 5, 4), relative_bias=True
    )

    def loss(module):
        def f(params, images):
            output, weights = module.apply(params, images)
            return jnp.sum(jnp.sin(output)) + jnp.sum(weights[..., ::3] ** 2)

        return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))

    (got_value, got_grads), (unfold_value, unfold_grads) = (
        loss(m)(params, images) for m in (layer.clone(**form_options(form)), layer)
    )
    np.testing.assert_allclose(got_value, unfold_value, rtol=1e-5)
    for got, want in zip(jax.tree.leaves(got_grads), jax.tree.leaves(unfold_grads)):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_auto_takes_the_dense_block_only_on_small_maps():
    # 2 k^2 keys per query at most: 7 x 7 (and 9 x 10) maps with k = 7, not 14 x 14;
    # then the batch-minor loops from 12 channels per head.
    assert choose_form(7, 7, 7, 6) == "blocked"
    assert choose_form(9, 10, 7, 24) == "blocked"
    assert choose_form(14, 14, 7, 6) == "lean"
    assert choose_form(14, 14, 7, 12) == "lean_batch_minor"
    assert choose_form(5, 4, 3, 4) == "lean"
    assert choose_form(4, 4, 3, 4) == "blocked"


@pytest.mark.parametrize(
    "form, shape",
    [("lean", (1, 4, 3)), ("lean_batch_minor", (1, 4, 3)), ("blocked:3", (1, 5, 7))],
    ids=["lean", "lean_batch_minor", "blocked-with-halos"],
)
def test_gradient_matches_finite_differences(form, shape):
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(3), 12)
        shapes = [(*shape, 2, 4)] * 3 + [(3, 2, 2)] * 2 + [(2, 9)]
        args = [jax.random.normal(key, s, jnp.float64) for key, s in zip(keys, shapes)]
        direction = [jax.random.normal(key, s, jnp.float64) for key, s in zip(keys[6:], shapes)]

        @jax.jit
        def f(args):
            *qkv_rows_cols, bias = args
            output, weights = local_self_attention(
                *qkv_rows_cols, relative_bias=bias, **form_options(form)
            )
            return jnp.sum(output * jnp.cos(output)) + jnp.sum(weights**2)

        grads = jax.jit(jax.grad(f))(args)
        eps = 1e-6
        step = lambda sign: [a + sign * eps * u for a, u in zip(args, direction)]
        numeric = (f(step(1)) - f(step(-1))) / (2 * eps)
        analytic = sum(jnp.vdot(g, u) for g, u in zip(grads, direction))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_weights_and_window_sum_pieces_rebuild_the_attention():
    # The pieces other layers (the attention stem) build on give the layer's own result.
    keys = jax.random.split(jax.random.key(4), 6)
    query, key, value = (jax.random.normal(k, (2, 5, 4, 2, 6)) for k in keys[:3])
    rows, cols = (jax.random.normal(k, (3, 2, 3)) for k in keys[3:5])
    bias = jax.random.normal(keys[5], (2, 9))
    context, weights = local_self_attention(query, key, value, rows, cols, relative_bias=bias)
    pieces = local_attention_weights(query, key, rows, cols, bias)
    np.testing.assert_allclose(pieces.transpose(0, 3, 1, 2, 4), weights, atol=1e-6)
    np.testing.assert_allclose(local_window_sum(pieces, value), context, atol=1e-5)
    with pytest.raises(ValueError, match="relative_bias must be \\[heads, k \\* k\\]"):
        local_self_attention(query, key, value, rows, cols, relative_bias=bias[:, :4])


def test_unroll_gives_the_same_result():
    layer, params, images = layer_and_params("lean")
    np.testing.assert_allclose(
        layer.clone(unroll=True).apply(params, images)[0], layer.apply(params, images)[0], atol=1e-6
    )


def test_translation_equivariance_away_from_borders():
    layer, params, images = layer_and_params("lean", kernel=3, shape=(1, 9, 10, 3))
    shift = (2, 3)
    shifted = jnp.roll(images, shift, axis=(1, 2))
    output, weights = layer.apply(params, images)
    output_shifted, weights_shifted = layer.apply(params, shifted)
    r = 1
    # Pixels whose window lies inside the image both before and after the shift
    # (and so never sees a pixel that wrapped round).
    rows = slice(r, 9 - shift[0] - r)
    cols = slice(r, 10 - shift[1] - r)
    moved_rows = slice(rows.start + shift[0], rows.stop + shift[0])
    moved_cols = slice(cols.start + shift[1], cols.stop + shift[1])
    np.testing.assert_allclose(
        output_shifted[:, moved_rows, moved_cols], output[:, rows, cols], atol=1e-5
    )
    np.testing.assert_allclose(
        weights_shifted[:, :, moved_rows, moved_cols], weights[:, :, rows, cols], atol=1e-6
    )
    # ...whereas at the border the masked neighbours break it.
    assert not np.allclose(output_shifted[:, shift[0], shift[1]], output[:, 0, 0], atol=1e-3)


def test_pooling_downsamples_after_attention():
    layer, params, images = layer_and_params("lean", shape=(2, 6, 4, 3), features=8)
    output, weights = layer.apply(params, images)
    pooled, pooled_weights = layer.clone(strides=2).apply(params, images)
    assert pooled.shape == (2, 3, 2, 8) and pooled_weights.shape == weights.shape
    want = output.reshape(2, 3, 2, 2, 2, 8).mean(axis=(2, 4))
    np.testing.assert_allclose(pooled, want, atol=1e-6)
    odd = jax.eval_shape(layer.clone(strides=2).apply, params, jnp.ones((1, 7, 5, 3)))[0]
    assert odd.shape == (1, 4, 3, 8)


def test_bfloat16_stays_close_to_float32():
    layer, params, images = layer_and_params("lean")
    want, _ = layer.apply(params, images)
    got, weights = layer.clone(dtype=jnp.bfloat16).apply(params, images.astype(jnp.bfloat16))
    assert got.dtype == jnp.bfloat16 and weights.dtype == jnp.float32
    np.testing.assert_allclose(got.astype(jnp.float32), want, atol=0.1)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"kernel_size": 4}, "kernel_size must be a positive odd integer.*got 4"),
        ({"kernel_size": 0}, "kernel_size must be a positive odd integer.*got 0"),
        ({"num_heads": 3}, r"num_heads=3 does not divide features=8.*\[1, 2, 4, 8\]"),
        ({"num_heads": 8}, "heads of odd size 1.*Valid head counts: \\[1, 2, 4\\]"),
        ({"form": "fast"}, "unknown form 'fast'"),
        ({"form": "blocked", "block_size": 0}, "block_size must be a positive integer, got 0"),
        ({"strides": 0}, "strides must be a positive integer"),
    ],
)
def test_bad_settings_are_clear_errors(options, message):
    layer = LocalSelfAttention2D(**{"num_heads": 2, "kernel_size": 3, "features": 8, **options})
    with pytest.raises(ValueError, match=message):
        layer.init(jax.random.key(0), jnp.ones((1, 5, 5, 3)))


def test_bad_input_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[batch, height, width, channels\]"):
        LocalSelfAttention2D(num_heads=1).init(jax.random.key(0), jnp.ones((5, 5, 3)))


def test_memory_benchmark_smoke():
    rows = [local2d_memory.measure(1, 4, 4, 2, 3, "lean", "forward")]
    assert rows[0]["peak_mib"] > 0
    assert "| 1 x 4 x 4 x 4, 2, 3 | forward |" in local2d_memory.table(rows)


@pytest.mark.parametrize("form", PARAMETRIZED_FORMS)
def test_every_form_runs_under_jax_strict_settings(form):
    # Explicit broadcasting (rank promotion raises) and no inf or NaN anywhere,
    # forward or backward, with a relative bias and windows crossing borders.
    keys = jax.random.split(jax.random.key(6), 5)
    query, key, value = (jax.random.normal(k, (2, 6, 5, 2, 4)) for k in keys[:3])
    embedding = jax.random.normal(keys[3], (3, 2, 2))
    bias = jax.random.normal(keys[4], (2, 9))
    options = form_options(form)

    def loss(query):
        output, weights = local_self_attention(
            query, key, value, embedding, embedding, relative_bias=bias, **options
        )
        return jnp.sum(output**2) + jnp.sum(weights**2)

    with jax.numpy_rank_promotion("raise"), jax.debug_infs(True), jax.debug_nans(True):
        value_, grad = jax.value_and_grad(loss)(query)
    want = local_self_attention(query, key, value, embedding, embedding, relative_bias=bias)
    np.testing.assert_allclose(value_, jnp.sum(want[0] ** 2) + jnp.sum(want[1] ** 2), rtol=1e-5)
    assert np.all(np.isfinite(grad))
