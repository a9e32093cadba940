"""Sigmoid attention (Ramapuram et al. 2024).

"Theory, Analysis, and Best Practices for Sigmoid Self-Attention", 2024:
each weight is `sigmoid(q . k * scale + b)` on its own, with no
normalisation over keys; the bias `b = -log(n)` keeps the total weight near
one at the start of training. Here n is the number of keys the query sees
(after padding and causal masks, at least one), which is the paper's
sequence length for unmasked rows and makes cached decoding equal teacher
forcing. Masked pairs get weight zero, so a query that sees nothing gets a
zero output.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from attn import masking, registry
from attn.kernelized import as_4d


@registry.register_mechanism(
    "sigmoid", capabilities=("causal", "cross", "padding", "mask", "bias", "decode")
)
def sigmoid_attention(
    query,
    key,
    value,
    *,
    mask=None,
    bias=None,
    is_causal=False,
    scale: float | None = None,
    logit_bias: float | None = None,
):
    """Sigmoid attention with the -log(n) bias (Ramapuram et al. 2024); weights not normalised.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`. `scale`:
    default `1/sqrt(d)`; `logit_bias`: default `-log(n)`, n the keys each
    query sees.
    """
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    q_len, k_len = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = jnp.einsum("bhqd,bhkd->bhqk", query, key, preferred_element_type=dtype) * scale
    if bias is not None:
        logits = logits + as_4d(bias)
    mask = as_4d(mask)
    if is_causal:
        causal = masking.causal_mask(q_len, k_len)[None, None]
        mask = causal if mask is None else mask & causal
    if logit_bias is not None:
        offset = logit_bias
    elif mask is None:
        offset = -math.log(k_len)
    else:
        seen = jnp.broadcast_to(mask, mask.shape[:2] + (q_len, k_len)).sum(-1, keepdims=True)
        offset = -jnp.log(jnp.maximum(seen, 1).astype(dtype))
    weights = jax.nn.sigmoid(logits + offset)
    if mask is not None:
        weights = jnp.where(mask, weights, 0.0)
    return jnp.einsum("bhqk,bhkd->bhqd", weights.astype(value.dtype), value)
