"""A convolutional reference for the pixel tasks of the long-range comparison.

The pixel sequences of Pathfinder and the image task are square images read
row by row. This classifier reads them as images again: grey-level embeddings
`[batch, side, side, d_model]`, `num_layers` same-padded `kernel_size`
convolutions with ReLU, the largest response of each channel over the image,
then the same hidden layer and class logits as the attention classifier
(`sequence_classifier.SequenceClassifier`). It has no attention: it shows how
much of a task a local, translation-equivariant model gets within the same
budget, so a mechanism left at chance can be told from a task without signal.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

PIXEL_TASKS = ("pathfinder", "image")  # tasks whose sequences are square images


def side_of(length: int) -> int:
    """The image side of a pixel sequence of `length` tokens; ValueError if not square."""
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"a sequence of {length} pixels is not a square image")
    return side


class PixelConvClassifier(nn.Module):
    """pixel tokens `[batch, side * side]` (grey level + 1) -> class logits
    `[batch, num_classes]`."""

    vocab_size: int
    num_classes: int
    d_model: int = 64
    num_layers: int = 6
    kernel_size: int = 3
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens, *, deterministic: bool = True):
        side = side_of(tokens.shape[1])
        x = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype, name="embed")(tokens)
        x = x.reshape(tokens.shape[0], side, side, self.d_model)
        for i in range(self.num_layers):
            kernel = (self.kernel_size, self.kernel_size)
            x = nn.relu(nn.Conv(self.d_model, kernel, dtype=self.dtype, name=f"conv_{i}")(x))
        # The largest response anywhere: a path's break or a joined marker is one place.
        # jnp.max, not pooling.max_over_image: the figures recorded for this reference
        # were trained so, and the index form rounds its gradient differently (~1e-7).
        pooled = jnp.max(x, axis=(1, 2))
        hidden = nn.gelu(nn.Dense(self.d_model, dtype=self.dtype, name="hidden")(pooled))
        hidden = nn.Dropout(self.dropout_rate)(hidden, deterministic=deterministic)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="classes")(hidden)


__all__ = ["PIXEL_TASKS", "PixelConvClassifier", "side_of"]
