"""Score functions: how much each query attends to each key, before softmax.

Every function maps query `[batch, heads, q_len, q_features]` and key
`[batch, heads, k_len, k_features]` to logits `[batch, heads, q_len, k_len]`.
Single-head attention uses `heads = 1`. Parameters, where a score has them,
are per head and are created as linen submodules (see attn.registry).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn.registry import register


def _logits_dtype(*arrays):
    # Logits are accumulated in at least float32: bf16 scores lose too much.
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


@register("dot", same_features=True)
def dot(query, key):
    """Luong's dot score: q . k."""
    return jnp.einsum(
        "bhqd,bhkd->bhqk", query, key, preferred_element_type=_logits_dtype(query, key)
    )


@register("scaled_dot", same_features=True)
def scaled_dot(query, key, *, scale: float | None = None):
    """Vaswani et al.'s scaled dot score: q . k / sqrt(d) (or q . k * scale)."""
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    return dot(query, key) * scale


@register("general", has_params=True)
def general(query, key):
    """Luong's general (bilinear) score: q W k, W [q_features, k_features] per head."""
    heads, q_features, k_features = query.shape[1], query.shape[-1], key.shape[-1]
    projected_query = nn.Einsum(
        (heads, q_features, k_features), "bhqd,hde->bhqe", use_bias=False, name="bilinear"
    )(query)
    return jnp.einsum(
        "bhqe,bhke->bhqk", projected_query, key, preferred_element_type=_logits_dtype(query, key)
    )


def _additive_hidden(options, head_dim: int) -> int:
    # the plain form holds a hidden vector per pair
    return options.get("features") or head_dim


@register("additive", has_params=True, hidden_per_pair=_additive_hidden)
def additive(query, key, *, features: int | None = None):
    """Bahdanau's additive score: v . tanh(W q + U k), a one-hidden-layer network.

    `features` is the hidden size of that network (default: the query's feature
    size). This form materialises `[batch, heads, q_len, k_len, features]`.
    """
    heads, q_features, k_features = query.shape[1], query.shape[-1], key.shape[-1]
    features = q_features if features is None else features
    if not isinstance(features, int) or features < 1:
        raise ValueError(
            f"additive attention needs a positive integer `features`, got {features!r}."
        )
    projected_query = nn.Einsum(
        (heads, q_features, features), "bhqd,hdf->bhqf", use_bias=False, name="query_proj"
    )(query)
    projected_key = nn.Einsum(
        (heads, k_features, features), "bhkd,hdf->bhkf", use_bias=False, name="key_proj"
    )(key)
    hidden = jnp.tanh(projected_query[:, :, :, None, :] + projected_key[:, :, None, :, :])
    return nn.Einsum((heads, features), "bhqkf,hf->bhqk", use_bias=False, name="energy")(
        hidden
    ).astype(_logits_dtype(query, key))


@register("cosine", same_features=True)
def cosine(query, key, *, scale=10.0, eps=1e-6):
    """Cosine similarity times a fixed `scale` (a temperature for the softmax)."""

    def normalize(x):
        x = x.astype(_logits_dtype(x))
        return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)

    return dot(normalize(query), normalize(key)) * scale
