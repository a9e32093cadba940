"""attn: attention mechanisms in JAX and Flax.

Quick start::

    import attn, jax, jax.numpy as jnp
    module = attn.get("additive")                   # Bahdanau's attention unit
    params = module.init(jax.random.key(0), query, keys, values)
    context, weights = module.apply(params, query, keys, values, mask=mask)

`attn.available()` lists the kinds (`attn.available("causal")` those that can
attend causally); `attn.describe()` shows their options and forms. A new kind
is one function and one `attn.register` (a score) or `attn.register_mechanism`
(a function of queries, keys and values) line; see `attn.registry`.

Memory-efficient forms: `attn.blockwise_attention` (scaled dot product, pure
JAX), `attn.flash_attention` (Pallas kernels), `attn.additive_attention`
(additive, chunked); or pass `implementation=` to `attn.dot_product_attention`
and the modules (`attn.available_implementations()` lists what runs here).
"""

from attn import dot_product_forms as _dot_product_forms  # their faster forms
from attn import mechanisms as _mechanisms  # registers the attend mechanisms
from attn import projected_forms as _projected_forms  # general's and cosine's blockwise forms
from attn import scores as _scores  # registers the built-in kinds
from attn.additive_chunked import additive_attention
from attn.attention_stem import SpatiallyAwareStem2D
from attn.blockwise import blockwise_attention
from attn.functional import dot_product_attention, dot_product_attention_weights
from attn.implementations import available_implementations
from attn.local2d import LocalSelfAttention2D
from attn.masking import causal_mask, combine_masks, lengths_to_valid, masked_softmax, padding_mask
from attn.modules import Attention, get
from attn.multihead import MultiHeadAttention
from attn.pallas_attention import flash_attention
from attn.registry import (
    CAPABILITIES,
    Mechanism,
    ScoreKind,
    available,
    check_capabilities,
    describe,
    lookup,
    register,
    register_implementation,
    register_mechanism,
    set_auto,
    unregister,
)

__all__ = [
    "CAPABILITIES",
    "Attention",
    "LocalSelfAttention2D",
    "Mechanism",
    "MultiHeadAttention",
    "ScoreKind",
    "SpatiallyAwareStem2D",
    "additive_attention",
    "available",
    "available_implementations",
    "check_capabilities",
    "blockwise_attention",
    "causal_mask",
    "combine_masks",
    "describe",
    "dot_product_attention",
    "dot_product_attention_weights",
    "flash_attention",
    "get",
    "lengths_to_valid",
    "lookup",
    "masked_softmax",
    "padding_mask",
    "register",
    "register_implementation",
    "register_mechanism",
    "set_auto",
    "unregister",
]
del _scores, _dot_product_forms, _mechanisms, _projected_forms
