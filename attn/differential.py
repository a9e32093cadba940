"""Differential attention (Ye et al. 2024).

"Differential Transformer", 2024: each head splits its query and key
features into two halves and takes two softmax maps, whose difference
cancels the attention both give to irrelevant context ("attention noise"):

    out = RMSNorm((softmax(Q1 K1^T s) - lambda softmax(Q2 K2^T s)) V) * (1 - lambda_init)

with `s = 1/sqrt(d/2)`, `lambda = exp(lq1 . lk1) - exp(lq2 . lk2) + lambda_init`
from four learned vectors of `d/2` (shared by the heads of a layer, as in the
paper's code) and a head-wise RMSNorm of the output (its scale shared by the
heads). The paper sets `lambda_init = 0.8 - 0.6 exp(-0.3 (layer - 1))`;
here it is an option, 0.8 by default (the deep-layer value).

Both maps see the same keys, masks and bias; a query that sees no key gets a
zero output.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from attn import masking, registry
from attn.kernelized import as_4d


class Lambda(nn.Module):
    """`lambda = exp(lq1 . lk1) - exp(lq2 . lk2) + lambda_init`, a learned scalar."""

    features: int
    lambda_init: float
    dtype: Any = jnp.float32  # of the computation; the vectors are stored in float32

    @nn.compact
    def __call__(self):
        init = nn.initializers.normal(stddev=0.1)
        vectors = [
            self.param(name, init, (self.features,), jnp.float32).astype(self.dtype)
            for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2")
        ]
        q1, k1, q2, k2 = vectors
        return jnp.exp(q1 @ k1) - jnp.exp(q2 @ k2) + self.lambda_init


def differential_maps(query, key, *, mask=None, bias=None, is_causal=False):
    """The two softmax maps `[batch, heads, q_len, k_len]` of the feature halves."""
    dim = query.shape[-1]
    if dim % 2:
        raise ValueError(
            f"differential attention splits each head in two halves; head_dim {dim} is odd."
        )
    q_len, k_len = query.shape[-2], key.shape[-2]
    mask = as_4d(mask)
    if is_causal:
        causal = masking.causal_mask(q_len, k_len)[None, None]
        mask = causal if mask is None else mask & causal
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    scale = 1.0 / math.sqrt(dim // 2)
    maps = []
    for half in (slice(0, dim // 2), slice(dim // 2, dim)):
        logits = jnp.einsum(
            "bhqd,bhkd->bhqk", query[..., half], key[..., half], preferred_element_type=dtype
        )
        logits = logits * scale + (0.0 if bias is None else as_4d(bias))
        maps.append(masking.masked_softmax(logits, mask))
    return maps


@registry.register_mechanism(
    "differential",
    capabilities=("causal", "cross", "padding", "mask", "bias", "decode"),
    has_params=True,
)
def differential_attention(
    query,
    key,
    value,
    *,
    mask=None,
    bias=None,
    is_causal=False,
    lambda_init: float = 0.8,
):
    """Differential attention (Ye et al. 2024): the difference of two softmax maps, normalised.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]` (d even),
    value `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`.
    `lambda_init`: the constant of the learned weight of the second map.
    """
    first, second = differential_maps(query, key, mask=mask, bias=bias, is_causal=is_causal)
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    weight = Lambda(query.shape[-1] // 2, lambda_init, dtype, name="lambda")()
    weights = first - weight * second
    out = jnp.einsum("bhqk,bhkd->bhqd", weights.astype(value.dtype), value)
    out = nn.RMSNorm(epsilon=1e-5, dtype=value.dtype, name="head_norm")(out)
    return out * (1.0 - lambda_init)
