"""The spatially aware attention stem (Ramachandran et al. 2019, section 3.2).

Local self-attention straight on pixels has little to mix: each value is a
linear map of one pixel, so every head can only average intensities. The
paper's stem lets the value depend on where in the window the pixel lies,
through a mixture of M value matrices weighted by a learned function of the
window offset `(a, b)`:

    v_ab = sum_m p(a, b, m) W_V^m x_{i+a, j+b},
    p(a, b, m) = softmax_m((e_row(a) + e_col(b)) . nu_m),

so the layer can express position-dependent, convolution-like mixing while
the weights over the window stay attention weights. The logits are those of
`attn.LocalSelfAttention2D`: `q . (k + r_ab) / sqrt(d)`, borders masked.

The inputs of a stem have few channels (1 for grey, 3 for colour), so the
mixture is applied to them before the value matrices,

    y_ij = sum_m W_V^m (sum_ab w_ij,ab p(a, b, m) x_{i+a, j+b}),

one window sum over heads x M x in_channels channels: cheap on pixels, but
it grows with the input width, so use this layer first, not in the blocks.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from attn.local2d import check_layer, local_attention_weights, local_window_sum, pool


class SpatiallyAwareStem2D(nn.Module):
    """Local self-attention with position-dependent value mixtures, for raw pixels.

    Attributes:
      num_heads: heads; must divide `features` into heads of even size.
      features: output channels (split over the heads; concatenated).
      kernel_size: side k of the square window, odd.
      num_mixtures: M, the value matrices mixed per window position.
      embedding_features: size of the row and column offset embeddings that
        decide the mixture.
      strides: average pooling after attention (1: none).
      use_bias: biases in the query and key projections (on by default: on
        raw pixels, a bias lets dark and bright pixels alike place their
        attention by position).
      unroll: unroll the window loops, for FLOP counts only.
      dtype, param_dtype: computation and parameter dtypes.

    Call with images `[batch, H, W, in_channels]`. Returns `(output [batch,
    H', W', features], weights [batch, heads, H, W, k * k])`, the weights
    before pooling, as `LocalSelfAttention2D` returns them.
    """

    num_heads: int
    features: int
    kernel_size: int = 7
    num_mixtures: int = 4
    embedding_features: int = 8
    strides: int = 1
    use_bias: bool = True
    unroll: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs):
        check_layer(inputs, self.features, self.num_heads, self.kernel_size, self.strides)
        if not isinstance(self.num_mixtures, (int, np.integer)) or self.num_mixtures < 1:
            raise ValueError(f"num_mixtures must be a positive integer, got {self.num_mixtures!r}.")
        batch, height, width, channels = inputs.shape
        heads, k, mixtures = self.num_heads, self.kernel_size, self.num_mixtures
        head_dim = self.features // heads
        project = functools.partial(
            nn.DenseGeneral,
            features=(heads, head_dim),
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        query = project(name="query")(inputs)  # [batch, H, W, heads, head_dim]
        key = project(name="key")(inputs)
        normal = nn.initializers.normal(stddev=1.0)
        shape = (k, heads, head_dim // 2)
        row = self.param("row_embedding", normal, shape, self.param_dtype).astype(query.dtype)
        col = self.param("col_embedding", normal, shape, self.param_dtype).astype(query.dtype)
        weights = local_attention_weights(query, key, row, col, unroll=self.unroll)

        # p(a, b, m): [k * k, M], row-major over the window like the weights.
        offsets = (k, self.embedding_features)
        row_offset = self.param("mixture_row_embedding", normal, offsets, self.param_dtype)
        col_offset = self.param("mixture_col_embedding", normal, offsets, self.param_dtype)
        nu = self.param(
            "mixture_logits",
            nn.initializers.lecun_normal(),
            (self.embedding_features, mixtures),
            self.param_dtype,
        )
        position = (row_offset[:, None, :] + col_offset[None, :, :]).reshape(k * k, -1)
        mixture = jax.nn.softmax(position @ nu, axis=-1)

        # Per head and mixture component, a window sum of the raw inputs.
        mixed = weights[..., None, :] * mixture.T.astype(weights.dtype)  # [.., heads, M, k*k]
        mixed = mixed.reshape(batch, height, width, heads * mixtures, k * k)
        dtype = self.dtype or inputs.dtype
        pixels = jnp.broadcast_to(
            inputs.astype(dtype)[:, :, :, None, :],
            (batch, height, width, heads * mixtures, channels),
        )
        pooled = local_window_sum(mixed, pixels, unroll=self.unroll)
        pooled = pooled.reshape(batch, height, width, heads, mixtures, channels)
        value = self.param(
            "value",
            nn.initializers.lecun_normal(in_axis=(1, 2), out_axis=3, batch_axis=(0,)),
            (heads, mixtures, channels, head_dim),
            self.param_dtype,
        )
        output = jnp.einsum("bxyhmc,hmcd->bxyhd", pooled, value.astype(dtype))
        output = output.reshape(batch, height, width, self.features)
        return pool(output, self.strides), weights.transpose(0, 3, 1, 2, 4)


__all__ = ["SpatiallyAwareStem2D"]
