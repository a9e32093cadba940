"""Softmax attention with a 2-D locality bias, for the pixel tasks of the long-range comparison.

The sequence classifier (`sequence_classifier.SequenceClassifier`) reads an
image's pixels as one sequence, so a pixel's neighbours above and below are
`side` positions away and every pair of pixels competes for each query's
weight. This classifier reads the same pixel tokens as the image they are:
grey-level embeddings `[batch, side, side, d_model]`, then `num_layers`
pre-norm residual blocks, each local self-attention over the `kernel_size`
x `kernel_size` window around every pixel (`attn.LocalSelfAttention2D`,
softmax over the window, a learned bias per head and window position, as
Ramachandran et al. 2019 use relative positions) followed by a feed-forward
layer; then the same pooling, hidden layer and class logits as the
sequence classifier. It separates two questions a Pathfinder row at chance
leaves open: whether softmax attention can trace the path at this budget
when it is told what is near, and whether global attention over the flat
sequence is what fails.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from attn.local2d import LocalSelfAttention2D
from experiments.models.pixel_conv import side_of
from experiments.models.pooling import max_over_image

POOLINGS = ("mean", "max")  # no "first": a pixel grid has no summary position


class LocalAttentionBlock(nn.Module):
    """x + attend(norm(x)), then + feed_forward(norm(.)), over `[batch, H, W, d_model]`."""

    num_heads: int
    kernel_size: int
    d_ff: int
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, *, deterministic: bool = True):
        y, _ = LocalSelfAttention2D(
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            relative_bias=True,
            form="auto",
            dtype=self.dtype,
            name="attention",
        )(nn.LayerNorm(dtype=self.dtype, name="attention_norm")(x))
        # The layer concatenates its heads without an output projection (the paper's
        # form); the residual branch gets one, as a Transformer block's does.
        y = nn.Dense(x.shape[-1], dtype=self.dtype, name="output")(y)
        x = x + nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)
        y = nn.LayerNorm(dtype=self.dtype, name="feed_forward_norm")(x)
        y = nn.gelu(nn.Dense(self.d_ff, dtype=self.dtype, name="feed_forward_in")(y))
        y = nn.Dense(x.shape[-1], dtype=self.dtype, name="feed_forward_out")(y)
        return x + nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)


class PixelLocalAttentionClassifier(nn.Module):
    """pixel tokens `[batch, side * side]` (grey level + 1) -> class logits
    `[batch, num_classes]`."""

    vocab_size: int
    num_classes: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 128
    kernel_size: int = 7
    pooling: str = "mean"
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens, *, deterministic: bool = True):
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; valid: {', '.join(POOLINGS)}")
        side = side_of(tokens.shape[1])
        x = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype, name="embed")(tokens)
        x = x.reshape(tokens.shape[0], side, side, self.d_model)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
        for i in range(self.num_layers):
            x = LocalAttentionBlock(
                num_heads=self.num_heads,
                kernel_size=self.kernel_size,
                d_ff=self.d_ff,
                dropout_rate=self.dropout_rate,
                dtype=self.dtype,
                name=f"layer_{i}",
            )(x, deterministic=deterministic)
        x = nn.LayerNorm(dtype=self.dtype, name="final_norm")(x)
        pooled = max_over_image(x) if self.pooling == "max" else jnp.mean(x, axis=(1, 2))
        hidden = nn.gelu(nn.Dense(self.d_model, dtype=self.dtype, name="hidden")(pooled))
        hidden = nn.Dropout(self.dropout_rate)(hidden, deterministic=deterministic)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="classes")(hidden)


__all__ = ["LocalAttentionBlock", "POOLINGS", "PixelLocalAttentionClassifier"]
