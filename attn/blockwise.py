"""Blockwise scaled dot-product attention: memory linear in sequence length.

`blockwise_attention` takes the arguments of `attn.dot_product_attention`
(`[batch, length, heads, head_dim]`, grouped-query heads, bias, boolean mask,
causal, sequence lengths) and returns the same result to float32 rounding,
but never holds the `[batch, heads, q_len, k_len]` logits: queries are cut
into blocks, and each query block runs an online softmax over key blocks
(running max, running sum, rescaled accumulator). The backward pass is a
custom VJP that recomputes each block's probabilities from the saved
log-sum-exp instead of storing them, so training memory is linear too.

Work is skipped, not just masked: with `is_causal`, key blocks entirely after
a query block are never visited; with sequence lengths, blocks past the
longest sequence are never visited. When everything fits in one block the
probabilities are kept for the backward pass instead (they are then no
larger than a block).

The loops are a small engine (`attn.blockwise_engine`) shared with other scores (see
`attn.additive_chunked`): a score is a pair of functions, block logits and
their vector-Jacobian product; the engine does the masking, the softmax and
the weighted sum of values. Grouped query heads are packed into the rows of
a query block, `[kv_heads, q_len * group]`, so that the queries sharing a
key/value head make one matrix product.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp

from attn.blockwise_engine import (  # noqa: F401  (re-exported: the engine's public names)
    CAUSAL_BLOCKS,
    CPU_BLOCK_ELEMENTS,
    DEFAULT_BLOCKS,
    EMPTY_ROW_LSE,
    BlockScore,
    backward_pass,
    default_blocks,
    run_blockwise,
)
from attn.inputs import accepts_unbatched, check_inputs


def _scaled_dot_logits(q, k, params, *, scale):
    s = jnp.einsum("bhrd,bhsd->bhrs", q, k, preferred_element_type=jnp.float32)
    return s * scale, None


def _scaled_dot_vjp(q, k, params, aux, ds, *, scale):
    dq = jnp.einsum("bhrs,bhsd->bhrd", ds.astype(k.dtype), k, preferred_element_type=jnp.float32)
    dk = jnp.einsum("bhrs,bhrd->bhsd", ds.astype(q.dtype), q, preferred_element_type=jnp.float32)
    return dq * scale, dk * scale, None


@functools.cache
def scaled_dot_score(scale: float) -> BlockScore:
    """The block score q . k * scale (no parameters)."""
    return BlockScore(
        functools.partial(_scaled_dot_logits, scale=scale),
        functools.partial(_scaled_dot_vjp, scale=scale),
    )


@accepts_unbatched
def blockwise_attention(
    query,
    key,
    value,
    *,
    bias=None,
    mask=None,
    scale: float | None = None,
    is_causal: bool = False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    block_q: int | None = None,
    block_k: int | None = None,
):
    """Scaled dot-product attention in blocks, `attn.dot_product_attention`'s layout.

    Args:
      query: `[batch, q_len, heads, head_dim]` (or without the batch axis).
      key: `[batch, k_len, kv_heads, head_dim]`; `heads` is a multiple of
        `kv_heads` (grouped-query attention).
      value: `[batch, k_len, kv_heads, v_dim]`.
      bias: optional float, broadcastable to `[batch, heads, q_len, k_len]`;
        differentiable.
      mask: optional boolean, broadcastable to `[batch, heads, q_len, k_len]`;
        True = attend. A full-size mask or bias is itself quadratic in memory:
        prefer `is_causal` and the sequence lengths, which cost nothing.
      scale: logit scale; default `1 / sqrt(head_dim)`.
      is_causal: query i attends to keys j <= i (top-left aligned).
      query_seq_lengths: optional `[batch]` int; queries at or past the length
        get a zero output.
      key_value_seq_lengths: optional `[batch]` int; keys at or past it are ignored.
      block_q, block_k: query and key block sizes (default: per backend,
        see `default_blocks`); lengths need not be multiples of them.

    Returns:
      `[batch, q_len, heads, v_dim]` in the value's dtype; zero for a query
      with no valid key (and no NaN in its gradients).
    """
    check_inputs(query, key, value, bias, mask, query_seq_lengths, key_value_seq_lengths)
    batch, q_len, heads, head_dim = query.shape
    kv_heads = key.shape[2]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
    grouped_query = query.reshape(batch, q_len, kv_heads, heads // kv_heads, head_dim)
    out = run_blockwise(
        scaled_dot_score(scale),
        grouped_query.transpose(0, 2, 1, 3, 4),
        key.transpose(0, 2, 1, 3),
        value.transpose(0, 2, 1, 3),
        bias=bias,
        mask=mask,
        is_causal=is_causal,
        query_seq_lengths=query_seq_lengths,
        key_value_seq_lengths=key_value_seq_lengths,
        block_q=block_q,
        block_k=block_k,
    )
    # [b, kv_heads, q, group, dv] -> [b, q, heads, dv]
    return out.transpose(0, 2, 1, 3, 4).reshape(batch, q_len, heads, value.shape[-1])
