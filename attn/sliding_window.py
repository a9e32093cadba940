"""Sliding-window (local 1-D) softmax attention, memory O(N w).

Query i attends to the keys j with `i - left <= j <= i + right` (Beltagy et
al. 2020's local attention; `jax.nn.dot_product_attention(...,
local_window_size=(left, right))` computes the same with the full
`[q_len, k_len]` logits). Here the queries are cut into blocks of
`block >= max(left, right)` positions, and each block attends to the three
key blocks around it, so the logits held are `[length, 3 * block]`: memory
linear in the length for a fixed window.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from attn import masking, registry
from attn.kernelized import is_per_key, key_valid

MIN_BLOCK = 16  # smaller blocks cost more in loop overhead than they save


def window_sides(local_window_size, is_causal: bool) -> tuple[int, int]:
    """`(left, right)` from an int w (w each side) or a pair; right = 0 when causal."""
    if isinstance(local_window_size, int) and not isinstance(local_window_size, bool):
        left = right = local_window_size
    elif isinstance(local_window_size, (tuple, list)) and len(local_window_size) == 2:
        left, right = local_window_size
    else:
        left = right = None
    if not all(isinstance(s, int) and s >= 0 for s in (left, right)):
        raise ValueError(
            f"local_window_size must be a non-negative int or a (left, right) pair of them, "
            f"got {local_window_size!r}."
        )
    return left, 0 if is_causal else right


def _blocks_around(array, block: int):
    """`[b, h, n * block, f]` -> `[b, h, n, 3 * block, f]`: each block with its two neighbours."""
    b, h, length, f = array.shape
    padded = jnp.pad(array, ((0, 0), (0, 0), (block, block), (0, 0)))
    blocks = padded.reshape(b, h, length // block + 2, block, f)
    n = length // block
    return jnp.concatenate([blocks[:, :, :n], blocks[:, :, 1 : n + 1], blocks[:, :, 2:]], axis=3)


def _dense_window(query, key, value, mask, left, right, query_offset, scale):
    """The same attention with the `[q_len, k_len]` logits formed: decoding steps
    (one query against the cache) and masks that differ per query."""
    q_len, k_len = query.shape[2], key.shape[2]
    offset = jnp.arange(k_len)[None, :] - (query_offset + jnp.arange(q_len))[:, None]
    in_window = (offset >= -left) & (offset <= right)
    logits = jnp.einsum(
        "bhqd,bhkd->bhqk",
        query,
        key,
        preferred_element_type=jnp.promote_types(query.dtype, jnp.float32),
    )
    seen = masking.combine_masks(in_window, mask)  # causal: right = 0 already
    weights = masking.masked_softmax(logits * scale, seen)
    return jnp.einsum("bhqk,bhkd->bhqd", weights.astype(value.dtype), value)


@registry.register_mechanism(
    "sliding_window", capabilities=("causal", "padding", "decode", "linear_memory")
)
def sliding_window_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    query_offset=0,
    local_window_size: int = 64,
    scale: float | None = None,
):
    """Sliding-window softmax attention, each query to the keys within the window: O(N w).

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`, self-attention:
    query i sits at position `query_offset + i` among the keys (0 in a full
    pass, where q_len = k_len; the cache index when decoding, where the keys
    are the cache). `local_window_size`: w (w keys each side) or `(left,
    right)`; causal attention keeps the left side. `scale`: default
    `1/sqrt(d)`. A full pass with a padding mask runs in blocks (memory O(N
    w)); decoding steps and per-query masks form the `[q_len, k_len]` logits.
    """
    left, right = window_sides(local_window_size, is_causal)
    batch, heads, length, dim = query.shape
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    full_pass = isinstance(query_offset, int) and query_offset == 0 and key.shape[2] == length
    if not full_pass or not is_per_key(None if mask is None else masking.to_rank(mask, 4)):
        if isinstance(query_offset, int) and query_offset + length > key.shape[2]:
            raise ValueError(
                f"sliding-window attention is self-attention: queries at positions "
                f"{query_offset}..{query_offset + length - 1} need that many keys; got k_len "
                f"{key.shape[2]}."
            )
        return _dense_window(query, key, value, mask, left, right, query_offset, scale)
    block = min(max(left, right, MIN_BLOCK), length)
    n = -(-length // block)
    pad = n * block - length
    widths = ((0, 0), (0, 0), (0, pad), (0, 0))
    valid = key_valid(mask, batch, heads, length)
    valid = jnp.pad(valid, ((0, 0), (0, 0), (0, pad)))[..., None]
    q = jnp.pad(query, widths).reshape(batch, heads, n, block, dim)
    k, v = (_blocks_around(jnp.pad(a, widths), block) for a in (key, value))
    k_valid = _blocks_around(valid, block)[..., 0]  # [b, h, n, 3 * block]
    logits = jnp.einsum(
        "bhnqd,bhnkd->bhnqk", q, k, preferred_element_type=jnp.promote_types(q.dtype, jnp.float32)
    )
    # Key column c of block i is position (i - 1) * block + c; query row r is i * block + r.
    offset = jnp.arange(3 * block)[None, :] - block - jnp.arange(block)[:, None]
    in_window = (offset >= -left) & (offset <= right)
    weights = masking.masked_softmax(logits * scale, in_window & k_valid[:, :, :, None, :])
    out = jnp.einsum("bhnqk,bhnkd->bhnqd", weights.astype(value.dtype), v)
    return out.reshape(batch, heads, n * block, -1)[:, :, :length]
