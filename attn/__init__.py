"""attn: attention mechanisms in JAX and Flax.

Quick start::

    import attn, jax, jax.numpy as jnp
    module = attn.get("additive")                   # Bahdanau's attention unit
    params = module.init(jax.random.key(0), query, keys, values)
    context, weights = module.apply(params, query, keys, values, mask=mask)

`attn.available()` lists the kinds; `attn.describe()` shows their options.
"""

from attn import scores as _scores  # registers the built-in kinds
from attn.functional import dot_product_attention, dot_product_attention_weights
from attn.masking import causal_mask, combine_masks, lengths_to_valid, masked_softmax, padding_mask
from attn.modules import Attention, MultiHeadAttention, get
from attn.registry import ScoreKind, available, describe, lookup, register, unregister

__all__ = [
    "Attention",
    "MultiHeadAttention",
    "ScoreKind",
    "available",
    "causal_mask",
    "combine_masks",
    "describe",
    "dot_product_attention",
    "dot_product_attention_weights",
    "get",
    "lengths_to_valid",
    "lookup",
    "masked_softmax",
    "padding_mask",
    "register",
    "unregister",
]
del _scores
