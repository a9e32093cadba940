"""Plain-JAX scaled dot-product attention in the `jax.nn` layout.

`dot_product_attention` takes the arguments of `jax.nn.dot_product_attention`
(`[batch, length, heads, head_dim]`, grouped-query heads, bias, boolean mask,
scale, causal, sequence lengths) and gives the same result to float32
tolerance, with one deliberate difference: a query that may attend to no key
at all gets a zero output here, where `jax.nn`'s XLA path returns the mean of
all values.

`implementation` picks how it is computed (see `attn.implementations`): the
default 'xla' is the plain form below, which materialises the logits;
'blockwise', 'pallas', 'cudnn', 'jax_nn' and 'auto' compute the same result without
them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from attn import dot_product_forms, implementations, masking
from attn.sliding_window import window_sides


def _check_layout(query, key, value) -> None:
    names = "query, key and value"
    if not (
        getattr(query, "ndim", None) == getattr(key, "ndim", None) == getattr(value, "ndim", None)
    ) or query.ndim not in (3, 4):
        raise ValueError(
            f"{names} must all be [batch, length, heads, head_dim] (or unbatched "
            f"[length, heads, head_dim]); got shapes {getattr(query, 'shape', None)}, "
            f"{getattr(key, 'shape', None)}, {getattr(value, 'shape', None)}."
        )
    if key.shape != value.shape:
        raise ValueError(
            f"key and value must have the same shape; got key {key.shape} and value {value.shape}."
        )
    batch_q, _, heads_q, dim_q = query.shape if query.ndim == 4 else (1, *query.shape)
    batch_k, _, heads_k, dim_k = key.shape if key.ndim == 4 else (1, *key.shape)
    if batch_q != batch_k:
        raise ValueError(f"query and key batch sizes differ: query {query.shape}, key {key.shape}.")
    if dim_q != dim_k:
        raise ValueError(
            f"query and key head_dim differ: query {query.shape}, "
            f"key {key.shape} ([batch, length, heads, head_dim])."
        )
    if heads_q % heads_k:
        raise ValueError(
            f"the number of query heads ({heads_q}) must be a multiple of the number "
            f"of key/value heads ({heads_k}); got query {query.shape}, key {key.shape}."
        )


def _logits_and_mask(
    query, key, *, bias, mask, scale, is_causal, query_seq_lengths, key_value_seq_lengths
):
    """Scaled logits `[batch, heads, q_len, k_len]` and the combined boolean mask."""
    batch, q_len, heads, head_dim = query.shape
    k_len, kv_heads = key.shape[1], key.shape[2]
    logits_shape = (batch, heads, q_len, k_len)
    desc = "[batch, heads, q_len, k_len]"
    masking.check_mask(mask, logits_shape, target_desc=desc)
    masking.check_bias(bias, logits_shape, target_desc=desc)

    if kv_heads != heads:
        # Grouped-query attention: query head n reads key/value head n // group.
        key = jnp.repeat(key, heads // kv_heads, axis=2)
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    logits_dtype = jnp.promote_types(query.dtype, jnp.float32)
    logits = jnp.einsum("btnh,bsnh->bnts", query, key, preferred_element_type=logits_dtype) * scale
    if bias is not None:
        logits = logits + masking.to_rank(bias, logits.ndim)

    masks = [None if mask is None else masking.to_rank(mask, logits.ndim)]
    if is_causal:
        masks.append(masking.to_rank(masking.causal_mask(q_len, k_len), logits.ndim))
    if key_value_seq_lengths is not None:
        masks.append(masking.lengths_to_valid(key_value_seq_lengths, k_len)[:, None, None, :])
    if query_seq_lengths is not None:
        masks.append(masking.lengths_to_valid(query_seq_lengths, q_len)[:, None, :, None])
    return logits, masking.combine_masks(*masks)


def local_window_mask(q_len: int, k_len: int, local_window_size, is_causal: bool = False):
    """Boolean `[q_len, k_len]`: key j within the window of query i, `i - left <= j <= i + right`.

    `local_window_size`: w (w each side) or `(left, right)`, as in
    `jax.nn.dot_product_attention`; with `is_causal` the right side is 0.
    """
    left, right = window_sides(local_window_size, is_causal)
    offset = jnp.arange(k_len)[None, :] - jnp.arange(q_len)[:, None]
    return (offset >= -left) & (offset <= right)


def dot_product_attention_weights(
    query,
    key,
    *,
    bias=None,
    mask=None,
    scale=None,
    is_causal=False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    local_window_size=None,
):
    """Attention weights `[batch, heads, q_len, k_len]` (float32 or wider).

    Same arguments as `dot_product_attention`, without the value.
    """
    _check_layout(query, key, key)
    if local_window_size is not None:
        band = local_window_mask(query.shape[-3], key.shape[-3], local_window_size, is_causal)
        mask = masking.combine_masks(mask, band)
    unbatched = query.ndim == 3
    if unbatched:
        query, key = query[None], key[None]
    logits, mask = _logits_and_mask(
        query,
        key,
        bias=bias,
        mask=mask,
        scale=scale,
        is_causal=is_causal,
        query_seq_lengths=query_seq_lengths,
        key_value_seq_lengths=key_value_seq_lengths,
    )
    weights = masking.masked_softmax(logits, mask)
    return weights[0] if unbatched else weights


def dot_product_attention(
    query,
    key,
    value,
    *,
    bias=None,
    mask=None,
    scale=None,
    is_causal=False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    local_window_size=None,
    implementation: str = "xla",
):
    """Scaled dot-product attention, `jax.nn.dot_product_attention`'s layout.

    Args:
      query: `[batch, q_len, heads, head_dim]` (or without the batch axis).
      key: `[batch, k_len, kv_heads, head_dim]`; `heads` is a multiple of
        `kv_heads` (grouped-query attention).
      value: same shape as `key`.
      bias: optional float, broadcastable to `[batch, heads, q_len, k_len]`,
        added to the logits.
      mask: optional boolean, broadcastable to `[batch, heads, q_len, k_len]`;
        True = attend.
      scale: logit scale; default `1 / sqrt(head_dim)`.
      is_causal: query i attends to keys j <= i.
      query_seq_lengths: optional `[batch]` int; queries at or past the length
        are padding and get a zero output.
      key_value_seq_lengths: optional `[batch]` int; keys at or past the length
        are ignored.
      local_window_size: optional w or `(left, right)`: query i attends only
        to keys `i - left <= j <= i + right` (w each side), as in `jax.nn`;
        passed to every implementation as a mask. The `sliding_window` kind
        computes the same in O(N w) memory.
      implementation: 'xla' (plain XLA ops, the logits materialised),
        'blockwise' (memory linear in length, any backend), 'pallas' (GPU
        kernel), 'cudnn' (GPU, via jax.nn), 'jax_nn' (jax.nn's own path) or
        'auto' (the fastest measured for the backend and shapes); see `attn.implementations`.

    Returns:
      `[batch, q_len, heads, head_dim]` in the value's dtype.
    """
    _check_layout(query, key, value)
    if local_window_size is not None:
        band = local_window_mask(query.shape[-3], key.shape[-3], local_window_size, is_causal)
        mask = masking.combine_masks(mask, band)
    if implementation != "xla":
        name = implementations.resolve(
            implementation,
            "scaled_dot",
            batch_heads=(query.shape[0] if query.ndim == 4 else 1) * query.shape[-2],
            q_len=query.shape[-3],
            k_len=key.shape[-3],
            head_dim=query.shape[-1],
            value_dim=value.shape[-1],
            dtype=query.dtype,
            is_causal=is_causal,
        )
        if name != "xla":
            return dot_product_forms.DOT_PRODUCT_FORMS[name](
                query,
                key,
                value,
                bias=bias,
                mask=mask,
                scale=scale,
                is_causal=is_causal,
                query_seq_lengths=query_seq_lengths,
                key_value_seq_lengths=key_value_seq_lengths,
            )
    unbatched = query.ndim == 3
    if unbatched:
        query, key, value = query[None], key[None], value[None]
    heads, kv_heads = query.shape[2], key.shape[2]
    weights = dot_product_attention_weights(
        query,
        key,
        bias=bias,
        mask=mask,
        scale=scale,
        is_causal=is_causal,
        query_seq_lengths=query_seq_lengths,
        key_value_seq_lengths=key_value_seq_lengths,
    )
    if kv_heads != heads:
        value = jnp.repeat(value, heads // kv_heads, axis=2)
    output = jnp.einsum("bnts,bsnh->btnh", weights.astype(value.dtype), value)
    return output[0] if unbatched else output
