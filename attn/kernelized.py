"""Attention through a positive feature map: the core of linear attention and Performer.

With features `phi(q)`, `phi(k)` (positive, `[batch, heads, length,
features]`) the attention weight of query i on key j is
`phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j')`. Summing over keys first,
`phi(q_i) . (sum_j phi(k_j) v_j^T)`, costs O(N) time and memory instead of
O(N^2) (Katharopoulos et al. 2020). Causal attention keeps running sums:
`kernel_attention` cuts the sequence into chunks, takes the prefix sums of
the chunks' key-value products (O(N / chunk * features * v_features)) and
does the within-chunk part as a small masked product, so memory stays linear
in N.

Padding: keys a per-key mask marks invalid have their features zeroed, so
they add nothing to the sums (their content cannot reach the output). A mask
that differs between queries is applied to the `[q_len, k_len]` products
instead (quadratic memory; decoding steps and exotic masks only). A query
that sees no key gets a zero output.
"""

from __future__ import annotations

import jax.numpy as jnp

from attn import masking


def as_4d(mask):
    """A mask broadcastable to `[batch, heads, q_len, k_len]`, as a 4-d array (or None)."""
    return None if mask is None else masking.to_rank(mask, 4)


def is_per_key(mask) -> bool:
    """Whether a 4-d mask is the same for every query (a padding mask)."""
    return mask is None or mask.shape[-2] == 1


def _safe_ratio(numerator, denominator):
    """numerator / denominator[..., None], zero where the denominator is zero."""
    ok = denominator > 0
    safe = jnp.where(ok, denominator, 1.0)
    return jnp.where(ok[..., None], numerator / safe[..., None], 0.0)


def _quadratic(phi_q, phi_k, value, mask, is_causal):
    """The same attention with the `[q_len, k_len]` products formed (any mask)."""
    scores = jnp.einsum("bhqf,bhkf->bhqk", phi_q, phi_k)
    if is_causal:
        q_len, k_len = scores.shape[-2:]
        mask = masking.causal_mask(q_len, k_len) & (True if mask is None else mask)
    if mask is not None:
        scores = jnp.where(mask, scores, 0.0)
    return _safe_ratio(jnp.einsum("bhqk,bhkd->bhqd", scores, value), scores.sum(-1))


def _causal_chunks(phi_q, phi_k, value, chunk_size):
    """Causal attention from chunked prefix sums; q_len == k_len."""
    batch, heads, length, features = phi_q.shape
    chunk = max(1, min(chunk_size, length))
    pad = -length % chunk
    if pad:
        widths = ((0, 0), (0, 0), (0, pad), (0, 0))
        phi_q, phi_k, value = (jnp.pad(a, widths) for a in (phi_q, phi_k, value))
    n = phi_q.shape[2] // chunk
    split = lambda a: a.reshape(batch, heads, n, chunk, a.shape[-1])
    q, k, v = split(phi_q), split(phi_k), split(value)
    # Sums over the chunks before each one: exclusive prefix sums.
    kv = jnp.einsum("bhncf,bhncd->bhnfd", k, v)
    kv_before = jnp.cumsum(kv, axis=2) - kv
    k_sum = k.sum(3)
    k_before = jnp.cumsum(k_sum, axis=2) - k_sum
    within = jnp.einsum("bhncf,bhnsf->bhncs", q, k) * jnp.tril(jnp.ones((chunk, chunk)))
    numerator = jnp.einsum("bhnfd,bhncf->bhncd", kv_before, q) + jnp.einsum(
        "bhncs,bhnsd->bhncd", within, v
    )
    denominator = jnp.einsum("bhnf,bhncf->bhnc", k_before, q) + within.sum(-1)
    out = _safe_ratio(numerator, denominator)
    return out.reshape(batch, heads, n * chunk, -1)[:, :, :length]


def kernel_attention(phi_q, phi_k, value, *, mask=None, is_causal=False, chunk_size=64):
    """Attention with weights proportional to `phi_q . phi_k`.

    Args:
      phi_q: `[batch, heads, q_len, features]`, non-negative.
      phi_k: `[batch, heads, k_len, features]`, non-negative.
      value: `[batch, heads, k_len, v_features]`.
      mask: boolean, broadcastable to `[batch, heads, q_len, k_len]`; a
        per-key mask (q_len axis 1) keeps memory linear.
      is_causal: query i attends to keys j <= i; needs q_len == k_len.
      chunk_size: positions per chunk of the causal prefix sums.

    Returns:
      `[batch, heads, q_len, v_features]` in float32 or wider.
    """
    dtype = jnp.promote_types(value.dtype, jnp.float32)
    phi_q, phi_k, value = (a.astype(dtype) for a in (phi_q, phi_k, value))
    mask = as_4d(mask)
    if is_causal and phi_q.shape[2] != phi_k.shape[2]:
        raise ValueError(
            f"causal kernelised attention needs as many queries as keys; got q_len "
            f"{phi_q.shape[2]} and k_len {phi_k.shape[2]}."
        )
    if not is_per_key(mask):
        return _quadratic(phi_q, phi_k, value, mask, is_causal)
    if mask is not None:
        key_valid = jnp.broadcast_to(mask[:, :, 0], mask.shape[:2] + phi_k.shape[2:3])
        phi_k = phi_k * key_valid[..., None].astype(dtype)
    if is_causal:
        return _causal_chunks(phi_q, phi_k, value, chunk_size)
    kv = jnp.einsum("bhkf,bhkd->bhfd", phi_k, value)
    numerator = jnp.einsum("bhqf,bhfd->bhqd", phi_q, kv)
    denominator = jnp.einsum("bhqf,bhf->bhq", phi_q, phi_k.sum(2))
    return _safe_ratio(numerator, denominator)


def key_valid(mask, batch: int, heads: int, k_len: int):
    """`[batch, heads, k_len]` booleans of a per-key mask (all True for None)."""
    mask = as_4d(mask)
    if mask is None:
        return jnp.ones((batch, heads, k_len), bool)
    if not is_per_key(mask):
        raise ValueError(
            f"this attention takes a padding mask on the keys ([batch, 1, 1, k_len]); got a "
            f"mask of shape {mask.shape} that differs between queries."
        )
    return jnp.broadcast_to(mask[:, :, 0], (batch, heads, k_len))


__all__ = ["as_4d", "is_per_key", "kernel_attention", "key_valid"]
