"""Positions inside attention: rotary embeddings (RoPE) and ALiBi biases.

- Rotary position embeddings (Su et al. 2021, "RoFormer: Enhanced Transformer
  with Rotary Position Embedding"): each pair of query and key features is
  rotated by an angle proportional to the position, so that `q_i . k_j`
  depends on the positions only through `i - j`. Pairs are the two halves of
  the head (`x[..., :d/2]`, `x[..., d/2:]`), with frequencies
  `base^(-2k/d)`.
- ALiBi (Press et al. 2022, "Train Short, Test Long: Attention with Linear
  Biases Enables Input Length Extrapolation"): no position embedding; each
  head adds `-slope * |i - j|` to its logits, with slopes a geometric
  sequence over the heads.

Both take explicit positions, so that cached decoding passes the positions
of the new queries and of the cache slots (`attn.MultiHeadAttention` does,
with `rotary=True` or `alibi=True`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


def rotary(x, positions, *, base: float = 10000.0):
    """Rotates `x` `[batch, length, heads, head_dim]` by `positions` `[length]` or `[batch, length]`.

    `head_dim` must be even. Returns the same shape and dtype; the rotation is
    computed in float32 or wider.
    """
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"rotary position embeddings need an even head_dim; got {dim}.")
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    frequencies = base ** (-jnp.arange(0, dim // 2, dtype=dtype) * 2 / dim)  # [d/2]
    positions = jnp.asarray(positions, dtype)
    positions = positions.reshape((1,) * (2 - positions.ndim) + positions.shape)  # [b, len]
    angles = positions[:, :, None, None] * frequencies  # [b, len, 1, d/2]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    first, second = jnp.split(x.astype(dtype), 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)
    return rotated.astype(x.dtype)


def alibi_slopes(num_heads: int) -> np.ndarray:
    """The heads' slopes: `2^(-8 h / n)` for h = 1..n when n is a power of two; otherwise
    those of the power of two below, then every other slope of the one above (Press et al.)."""

    def geometric(n):
        start = 2 ** (-8 / n)
        return [start ** (h + 1) for h in range(n)]

    if num_heads & (num_heads - 1) == 0:
        return np.asarray(geometric(num_heads), np.float32)
    below = 2 ** math.floor(math.log2(num_heads))
    extra = geometric(2 * below)[0::2][: num_heads - below]
    return np.asarray(geometric(below) + extra, np.float32)


def alibi_bias(num_heads: int, query_positions, key_positions):
    """`[heads, q_len, k_len]` float32: `-slope_h * |i - j|`."""
    distance = jnp.abs(
        jnp.asarray(query_positions)[:, None] - jnp.asarray(key_positions)[None, :]
    ).astype(jnp.float32)
    return -jnp.asarray(alibi_slopes(num_heads))[:, None, None] * distance


__all__ = ["alibi_bias", "alibi_slopes", "rotary"]
