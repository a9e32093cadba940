"""The spatially aware attention stem against a float64 loop reference, and its properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn.attention_stem import SpatiallyAwareStem2D
from attn.local2d import border_mask


def reference(images, params, kernel_size):
    """The stem in float64 NumPy, one pixel, head and window offset at a time.

    Follows the paper's formula literally: the value at offset (a, b) is
    `sum_m p(a, b, m) W_V^m x`, with no reordering of the sums.
    """
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    x = np.asarray(images, np.float64)
    q, k = (
        np.einsum("bxyc,chd->bxyhd", x, p[name]["kernel"]) + p[name]["bias"]
        for name in ("query", "key")
    )
    batch, height, width, heads, d = q.shape
    r = kernel_size // 2
    value_matrices = p["value"]  # [heads, M, C, head_dim]
    output = np.zeros((batch, height, width, heads, d))
    weights = np.zeros((batch, heads, height, width, kernel_size * kernel_size))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                for h in range(heads):
                    logits, values = {}, {}
                    for a in range(-r, r + 1):
                        for c in range(-r, r + 1):
                            if not (0 <= i + a < height and 0 <= j + c < width):
                                continue
                            n = (a + r) * kernel_size + (c + r)
                            relative = np.concatenate(
                                [p["row_embedding"][a + r, h], p["col_embedding"][c + r, h]]
                            )
                            logits[n] = q[b, i, j, h] @ (k[b, i + a, j + c, h] + relative)
                            logits[n] /= np.sqrt(d)
                            position = p["mixture_row_embedding"][a + r]
                            position = position + p["mixture_col_embedding"][c + r]
                            mixture_logits = position @ p["mixture_logits"]
                            mixture = np.exp(mixture_logits - mixture_logits.max())
                            mixture /= mixture.sum()
                            matrix = np.einsum("m,mcd->cd", mixture, value_matrices[h])
                            values[n] = x[b, i + a, j + c] @ matrix
                    top = max(logits.values())
                    total = sum(np.exp(z - top) for z in logits.values())
                    for n, z in logits.items():
                        weights[b, h, i, j, n] = np.exp(z - top) / total
                        output[b, i, j, h] += weights[b, h, i, j, n] * values[n]
    return output.reshape(batch, height, width, heads * d), weights


def stem_and_params(*, shape=(2, 5, 6, 3), heads=2, features=8, kernel=3, mixtures=3, seed=0):
    images = jax.random.normal(jax.random.key(seed), shape)
    stem = SpatiallyAwareStem2D(
        num_heads=heads, features=features, kernel_size=kernel, num_mixtures=mixtures
    )
    params = stem.init(jax.random.key(seed + 1), images)
    # Biases start at zero; make them matter.
    params = jax.tree.map(lambda a: a + 0.1 * jnp.cos(jnp.arange(a.size).reshape(a.shape)), params)
    return stem, params, images


@pytest.mark.parametrize(
    "shape, kernel, heads, features",
    [((2, 5, 6, 3), 3, 2, 8), ((1, 4, 3, 1), 5, 1, 4)],
    ids=["rgb-3x3", "grey-kernel-wider-than-image"],
)
def test_matches_float64_loop_reference_including_borders(shape, kernel, heads, features):
    with jax.enable_x64(True):
        stem, params, images = stem_and_params(
            shape=shape, kernel=kernel, heads=heads, features=features
        )
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        output, weights = stem.apply(params, images.astype(jnp.float64))
        want_output, want_weights = reference(images, params, kernel)
    np.testing.assert_allclose(weights, want_weights, atol=1e-12)
    np.testing.assert_allclose(output, want_output, atol=1e-12)
    outside = ~border_mask(shape[1], shape[2], kernel)
    assert np.all(np.asarray(weights)[:, :, outside] == 0)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-12)


def test_values_depend_on_the_window_position():
    # The point of the stem: a constant image still gives position-dependent
    # values, so output differs from plain attention's mean of equal values.
    stem, params, _ = stem_and_params(shape=(1, 7, 7, 1), kernel=3)
    flat = jnp.ones((1, 7, 7, 1))
    output, _ = stem.apply(params, flat)
    # Interior pixels see the same window: equal outputs there...
    np.testing.assert_allclose(
        output[0, 1:-1, 1:-1], output[0, 3:4, 3:4].repeat(5, 0).repeat(5, 1), atol=1e-5
    )
    # ...but a corner sees a different part of the window, so a different value mix.
    assert not np.allclose(output[0, 0, 0], output[0, 3, 3], atol=1e-4)


def test_gradients_are_finite_and_match_finite_differences():
    with jax.enable_x64(True):
        stem, params, images = stem_and_params(shape=(1, 4, 5, 2), kernel=3)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        images = images.astype(jnp.float64)

        def loss(params, images):
            output, weights = stem.apply(params, images)
            return jnp.sum(jnp.sin(output)) + jnp.sum(weights**2)

        grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, images)
        directions = jax.tree.map(
            lambda a: jnp.cos(3.0 * jnp.arange(a.size).reshape(a.shape)), (params, images)
        )
        eps = 1e-6
        step = lambda sign: jax.tree.map(
            lambda a, u: a + sign * eps * u, (params, images), directions
        )
        numeric = (loss(*step(1)) - loss(*step(-1))) / (2 * eps)
        analytic = sum(
            jnp.vdot(g, u) for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(directions))
        )
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_pooling_and_jit_vmap():
    stem, params, images = stem_and_params(shape=(2, 6, 4, 3))
    output, weights = stem.apply(params, images)
    pooled, _ = stem.clone(strides=2).apply(params, images)
    np.testing.assert_allclose(
        pooled, output.reshape(2, 3, 2, 2, 2, 8).mean(axis=(2, 4)), atol=1e-6
    )
    one_at_a_time = jax.vmap(lambda image: stem.apply(params, image[None])[0][0])(images)
    np.testing.assert_allclose(jax.jit(stem.apply)(params, images)[0], one_at_a_time, atol=1e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"kernel_size": 2}, "kernel_size must be a positive odd integer.*got 2"),
        ({"num_heads": 3}, r"num_heads=3 does not divide features=8.*\[1, 2, 4, 8\]"),
        ({"num_mixtures": 0}, "num_mixtures must be a positive integer, got 0"),
        ({"strides": 0}, "strides must be a positive integer, got 0"),
    ],
)
def test_bad_settings_are_clear_errors(options, message):
    stem = SpatiallyAwareStem2D(**{"num_heads": 2, "features": 8, "kernel_size": 3, **options})
    with pytest.raises(ValueError, match=message):
        stem.init(jax.random.key(0), jnp.ones((1, 5, 5, 1)))


def test_the_image_layers_are_exported_by_attn():
    import attn
    from attn.attention_stem import SpatiallyAwareStem2D
    from attn.local2d import LocalSelfAttention2D

    assert attn.SpatiallyAwareStem2D is SpatiallyAwareStem2D
    assert attn.LocalSelfAttention2D is LocalSelfAttention2D
