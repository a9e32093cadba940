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

- Relative position biases (Shaw et al. 2018; T5, Raffel et al. 2020): a
  learned per-head logit bias for each bucket of the distance key - query.
  T5's buckets are exact for small distances and log-spaced up to
  `max_distance` (farther ones share the last); with `num_buckets=None` each
  distance up to `max_distance` has its own bucket and farther ones are
  clipped.

All take explicit positions, so that cached decoding passes the positions
of the new queries and of the cache slots (`attn.MultiHeadAttention` does,
with `rotary=True`, `alibi=True` or `relative_buckets=...`).
"""

from __future__ import annotations

import math

import flax.linen as nn
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


def relative_bucket(distance, *, num_buckets: int, max_distance: int, bidirectional: bool):
    """T5's bucket `[0, num_buckets)` of each int distance key - query.

    Bidirectional: half the buckets for keys after the query, half for keys
    at or before it; causal: every bucket for keys at or before it (later
    keys share bucket 0, which the causal mask hides anyway). In each half,
    the first half of the buckets are single distances and the rest cover
    distances up to `max_distance` in log-spaced steps.
    """
    distance = jnp.asarray(distance)
    if bidirectional:
        num_buckets //= 2
        bucket = jnp.where(distance > 0, num_buckets, 0)
        behind = jnp.abs(distance)
    else:
        bucket = jnp.zeros_like(distance)
        behind = jnp.maximum(-distance, 0)
    exact = num_buckets // 2
    far = behind.astype(jnp.float32) / exact
    far = exact + (
        jnp.log(jnp.maximum(far, 1.0)) / math.log(max_distance / exact) * (num_buckets - exact)
    ).astype(distance.dtype)
    far = jnp.minimum(far, num_buckets - 1)
    return bucket + jnp.where(behind < exact, behind, far)


class RelativePositionBias(nn.Module):
    """A learned per-head logit bias for each bucket of the distance key - query.

    Attributes:
      num_heads: heads, one bias each per bucket.
      max_distance: distances from which buckets are shared.
      num_buckets: T5's log-spaced buckets (32 in T5), or None for one bucket
        per distance in `[-max_distance, max_distance]` (farther ones clipped):
        a table of `2 * max_distance + 1` rows.
      bidirectional: (T5's buckets only) separate buckets for later keys.
    """

    num_heads: int
    max_distance: int = 128
    num_buckets: int | None = 32
    bidirectional: bool = True

    @nn.compact
    def __call__(self, query_positions, key_positions):
        """query_positions `[..., q]`, key_positions `[..., k]` int -> `[..., heads, q, k]` float32."""
        distance = key_positions[..., None, :] - query_positions[..., :, None]
        if self.num_buckets is None:
            rows = 2 * self.max_distance + 1
            index = jnp.clip(distance, -self.max_distance, self.max_distance) + self.max_distance
        else:
            rows = self.num_buckets
            index = relative_bucket(
                distance,
                num_buckets=self.num_buckets,
                max_distance=self.max_distance,
                bidirectional=self.bidirectional,
            )
        table = self.param(
            "table", nn.initializers.normal(0.02), (rows, self.num_heads), jnp.float32
        )
        return jnp.moveaxis(table[index], -1, -3)


__all__ = [
    "RelativePositionBias",
    "alibi_bias",
    "alibi_slopes",
    "relative_bucket",
    "rotary",
]
