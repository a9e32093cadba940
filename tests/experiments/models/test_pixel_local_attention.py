"""The local 2-D attention classifier of the pixel tasks against a float64 NumPy forward
pass, and the reach of its windows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.models.pixel_local_attention import (
    LocalAttentionBlock,
    PixelLocalAttentionClassifier,
)
from tests.attn.test_local2d import reference as local_attention_reference


def _layer_norm(x, p):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * p["scale"] + p["bias"]


def _dense(x, p):
    return x @ p["kernel"] + p["bias"]


def _gelu(x):  # flax's gelu: the tanh approximation
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def numpy_forward(params, tokens, num_layers, kernel_size, pooling):
    """The classifier written out: image[r, c] = tokens[r * side + c]."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    batch, length = tokens.shape
    side = int(round(length**0.5))
    x = p["embed"]["embedding"][tokens].reshape(batch, side, side, -1)
    for i in range(num_layers):
        layer = p[f"layer_{i}"]
        y, _ = local_attention_reference(
            _layer_norm(x, layer["attention_norm"]), {"params": layer["attention"]}, kernel_size
        )
        x = x + _dense(y, layer["output"])
        y = _gelu(_dense(_layer_norm(x, layer["feed_forward_norm"]), layer["feed_forward_in"]))
        x = x + _dense(y, layer["feed_forward_out"])
    x = _layer_norm(x, p["final_norm"])
    pooled = x.max(axis=(1, 2)) if pooling == "max" else x.mean(axis=(1, 2))
    return _dense(_gelu(_dense(pooled, p["hidden"])), p["classes"])


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_matches_the_float64_reference_on_a_non_symmetric_image(pooling):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 257, (2, 25)).astype(np.int32)  # 5 x 5 images
    model = PixelLocalAttentionClassifier(
        vocab_size=257,
        num_classes=3,
        d_model=8,
        num_heads=2,
        num_layers=2,
        d_ff=12,
        kernel_size=3,
        pooling=pooling,
    )
    params = model.init(jax.random.key(1), tokens)["params"]
    # Perturb everything (the relative bias starts at zero, norms at 1 and 0), so a
    # missing term moves the result.
    params = jax.tree.map(lambda a: a + 0.1 * rng.standard_normal(a.shape), params)
    logits = model.apply({"params": params}, tokens)
    assert logits.shape == (2, 3)
    expected = numpy_forward(params, tokens, 2, 3, pooling)
    np.testing.assert_allclose(logits, expected, rtol=2e-4, atol=2e-5)
    # Read as the transposed image, the logits differ: the row order is tested.
    transposed = tokens.reshape(2, 5, 5).transpose(0, 2, 1).reshape(2, 25)
    assert np.abs(model.apply({"params": params}, transposed) - logits).max() > 1e-3


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_a_block_reaches_exactly_its_window(kernel_size):
    """The output at one pixel depends on the pixels within kernel_size // 2 rows and
    columns of it and on no others: the gradient is zero outside the window only."""
    block = LocalAttentionBlock(num_heads=2, kernel_size=kernel_size, d_ff=8)
    images = jax.random.normal(jax.random.key(0), (1, 9, 9, 4))
    params = block.init(jax.random.key(1), images)
    centre = 4
    grad = jax.grad(lambda x: block.apply(params, x)[0, centre, centre].sum())(images)
    reach = np.abs(np.asarray(grad[0])).sum(-1) > 0
    rows, cols = np.nonzero(reach)
    radius = kernel_size // 2
    assert rows.min() == cols.min() == centre - radius
    assert rows.max() == cols.max() == centre + radius
    assert reach.sum() == kernel_size**2  # every pixel of the window, nothing beyond


def test_unknown_pooling_is_refused():
    model = PixelLocalAttentionClassifier(vocab_size=4, num_classes=2, pooling="first")
    with pytest.raises(ValueError, match="unknown pooling 'first'; valid: mean, max"):
        model.init(jax.random.key(0), jnp.ones((1, 16), jnp.int32))
