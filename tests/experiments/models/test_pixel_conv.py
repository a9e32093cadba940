"""The convolutional reference of the pixel tasks against a float64 NumPy forward pass."""

import jax
import numpy as np
import pytest

from experiments.models.pixel_conv import PixelConvClassifier, side_of


def numpy_forward(params, tokens, num_layers):
    """The same classifier written out: image[r, c] = tokens[r * side + c]."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    batch, length = tokens.shape
    side = int(round(length**0.5))
    embed = p["embed"]["embedding"]
    x = np.zeros((batch, side, side, embed.shape[1]))
    for r in range(side):
        for c in range(side):
            x[:, r, c] = embed[tokens[:, r * side + c]]
    for i in range(num_layers):
        kernel, bias = p[f"conv_{i}"]["kernel"], p[f"conv_{i}"]["bias"]
        k = kernel.shape[0]
        padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
        y = np.zeros(x.shape[:3] + (kernel.shape[3],))
        for dr in range(k):
            for dc in range(k):
                y += padded[:, dr : dr + side, dc : dc + side] @ kernel[dr, dc]
        x = np.maximum(y + bias, 0.0)
    pooled = x.max(axis=(1, 2))
    hidden = pooled @ p["hidden"]["kernel"] + p["hidden"]["bias"]
    # flax's gelu: the tanh approximation
    hidden = 0.5 * hidden * (1 + np.tanh(np.sqrt(2 / np.pi) * (hidden + 0.044715 * hidden**3)))
    return hidden @ p["classes"]["kernel"] + p["classes"]["bias"]


def test_matches_the_float64_reference_on_a_non_symmetric_image():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 257, (3, 25)).astype(np.int32)  # 5 x 5 images
    model = PixelConvClassifier(vocab_size=257, num_classes=4, d_model=6, num_layers=2)
    params = model.init(jax.random.key(1), tokens)["params"]
    # Non-zero biases, so a missing bias or ReLU moves the result.
    params = jax.tree.map(lambda a: a + 0.1 * rng.standard_normal(a.shape), params)
    logits = model.apply({"params": params}, tokens)
    assert logits.shape == (3, 4)
    np.testing.assert_allclose(logits, numpy_forward(params, tokens, 2), rtol=2e-4, atol=2e-5)
    # Read as the transposed image, the logits differ: the row order is tested.
    transposed = tokens.reshape(3, 5, 5).transpose(0, 2, 1).reshape(3, 25)
    assert np.abs(model.apply({"params": params}, transposed) - logits).max() > 1e-3


def test_a_sequence_that_is_not_a_square_image_is_refused():
    assert side_of(256) == 16
    with pytest.raises(ValueError, match="a sequence of 24 pixels is not a square image"):
        side_of(24)
