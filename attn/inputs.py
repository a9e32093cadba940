"""Checks and adapters shared by the attention functions in the dense layout.

`attn.blockwise`, `attn.pallas_attention` and `attn.additive_chunked` take the
arguments of `attn.dot_product_attention` (`[batch, length, heads,
head_dim]`, grouped-query heads, a bias and a boolean mask broadcastable to
`[batch, heads, q_len, k_len]`, `[batch]` sequence lengths); these are the
shape checks they share, the unbatched form, and the grouping of a mask's
heads by key/value head.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from attn import masking


def check_lengths(batch: int, **lengths) -> None:
    """ValueError unless each given sequence-length array is `[batch]` integers."""
    for name, value in lengths.items():
        if value is None:
            continue
        shape = np.shape(value)
        dtype = getattr(value, "dtype", None) or np.asarray(value).dtype
        if shape != (batch,) or not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(
                f"{name} must be integers of shape [batch] = ({batch},); got shape "
                f"{shape} and dtype {dtype}."
            )


def check_inputs(query, key, value, bias, mask, query_seq_lengths, key_value_seq_lengths):
    """ValueError naming the shapes unless these are valid `blockwise_attention` inputs."""
    arrays = {"query": query, "key": key, "value": value}
    shapes = ", ".join(f"{n} {getattr(a, 'shape', None)}" for n, a in arrays.items())
    if any(getattr(a, "ndim", None) != 4 for a in arrays.values()):
        raise ValueError(
            f"query, key and value must all be [batch, length, heads, head_dim] "
            f"(or all unbatched [length, heads, head_dim]); got {shapes}."
        )
    (batch, q_len, heads, dim), (k_batch, k_len, kv_heads, k_dim) = query.shape, key.shape
    if key.shape[:3] != value.shape[:3]:
        raise ValueError(f"key and value must share batch, length and heads; got {shapes}.")
    if batch != k_batch:
        raise ValueError(f"query and key batch sizes differ; got {shapes}.")
    if dim != k_dim:
        raise ValueError(f"query and key head_dim differ; got {shapes}.")
    if heads % kv_heads:
        raise ValueError(
            f"the number of query heads ({heads}) must be a multiple of the number "
            f"of key/value heads ({kv_heads}); got {shapes}."
        )
    target, desc = (batch, heads, q_len, k_len), "[batch, heads, q_len, k_len]"
    masking.check_mask(mask, target, target_desc=desc)
    masking.check_bias(bias, target, target_desc=desc)
    check_lengths(
        batch, query_seq_lengths=query_seq_lengths, key_value_seq_lengths=key_value_seq_lengths
    )


def accepts_unbatched(attention_fn):
    """Lets `attention_fn(query, key, value, *, bias, mask, ...)` also take unbatched inputs.

    With query, key and value all `[length, heads, dim]`, adds a batch axis of
    one (to the mask and bias too) and removes it from the output.
    """

    @functools.wraps(attention_fn)
    def wrapper(query, key, value, *, bias=None, mask=None, **options):
        if all(getattr(a, "ndim", None) == 3 for a in (query, key, value)):
            batched = lambda a: None if a is None else jnp.asarray(a)[None]
            out = attention_fn(
                query[None],
                key[None],
                value[None],
                bias=batched(bias),
                mask=batched(mask),
                **options,
            )
            return out[0]
        return attention_fn(query, key, value, bias=bias, mask=mask, **options)

    return wrapper


def group_heads(array, kv_heads):
    """A mask or bias broadcastable to `[b, heads, q, k]` -> `[b, kv_heads or 1, q, group or 1, k]`."""
    if array is None:
        return None
    array = jnp.asarray(array)
    array = array.reshape((1,) * (4 - array.ndim) + array.shape)
    b, h, q, k = array.shape
    if h == 1:
        return array[:, :, :, None]
    return array.reshape(b, kv_heads, h // kv_heads, q, k).transpose(0, 1, 3, 2, 4)
