"""Attention through a positive feature map: the core of linear attention and Performer.

With features `phi(q)`, `phi(k)` (positive, `[batch, heads, length,
features]`) the attention weight of query i on key j is
`phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j')`. Summing over keys first,
`phi(q_i) . (sum_j phi(k_j) v_j^T)`, costs O(N) time and memory instead of
O(N^2) (Katharopoulos et al. 2020).

`kernel_attention` takes the feature maps as functions and applies them a
chunk of positions at a time inside a scan, so the `[length, features]`
features never exist whole: forward and backward (each chunk's features are
recomputed there) keep O(chunk * features) of them, which matters when the
features outnumber the head's dimensions (Performer's 256 against 64).
Bidirectional attention scans the key chunks into `sum_j phi(k_j) v_j^T` and
`sum_j phi(k_j)`, then reads them chunk by chunk of queries. Causal attention
carries the same sums over the chunks before the current one and does the
within-chunk part as a small masked product; the backward pass keeps one
`[features, v_features]` sum per chunk, and by default is written out
(`attn.kernelized_causal`: one reverse scan, no second forward pass).

Padding: keys a per-key mask marks invalid have their features zeroed, so
they add nothing to the sums (their content cannot reach the output). A mask
that differs between queries is applied to the `[q_len, k_len]` products
instead (quadratic memory; decoding steps and exotic masks only). A query
that sees no key gets a zero output.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from attn import masking
from attn.kernelized_causal import causal_attention

CAUSAL_BACKWARDS = ("written", "autodiff")

FeatureMap = Callable[[jax.Array], jax.Array]  # [..., n, d] -> [..., n, features], >= 0


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


def _chunked(array, chunk: int):
    """`[batch, heads, length, f]` -> `[chunks, batch, heads, chunk, f]`, zero-padded at the end."""
    batch, heads, length, features = array.shape
    pad = -length % chunk
    if pad:
        array = jnp.pad(array, ((0, 0), (0, 0), (0, pad), (0, 0)))
    array = array.reshape(batch, heads, -1, chunk, features)
    return jnp.moveaxis(array, 2, 0)


def _unchunked(array, length: int):
    """The inverse of `_chunked`, padding dropped."""
    chunks, batch, heads, chunk, features = array.shape
    return jnp.moveaxis(array, 0, 2).reshape(batch, heads, chunks * chunk, features)[:, :, :length]


def _chunked_valid(valid, chunk: int):
    """`[batch, heads, k_len]` key validity in chunks `[chunks, batch, heads,
    chunk, 1]`, the chunks' own padding invalid; None (every key valid) stays None."""
    if valid is None:
        return None
    return _chunked(valid[..., None], chunk)


def _valid_only(phi_k, valid):
    """Key features with those of invalid keys zeroed: they add nothing to the sums."""
    return phi_k if valid is None else phi_k * valid.astype(phi_k.dtype)


def _sums_init(phi_shape, value):
    """Zero `sum phi(k) v^T` `[batch, heads, features, v_features]` and `sum phi(k)`."""
    batch, heads, features = phi_shape[0], phi_shape[1], phi_shape[-1]
    return (
        jnp.zeros((batch, heads, features, value.shape[-1]), value.dtype),
        jnp.zeros((batch, heads, features), value.dtype),
    )


def _bidirectional(query, key, value, valid, query_features, key_features, chunk):
    keys = (_chunked(key, chunk), _chunked(value, chunk), _chunked_valid(valid, chunk))
    dtype = value.dtype

    @jax.checkpoint  # the backward pass recomputes a chunk's features instead of keeping them
    def add_keys(sums, chunk_inputs):
        k, v, ok = chunk_inputs
        phi_k = _valid_only(key_features(k).astype(dtype), ok)
        kv, k_sum = sums
        return (kv + jnp.einsum("bhkf,bhkd->bhfd", phi_k, v), k_sum + phi_k.sum(2)), None

    phi_shape = jax.eval_shape(key_features, keys[0][0]).shape
    (kv, k_sum), _ = jax.lax.scan(add_keys, _sums_init(phi_shape, value), keys)

    @jax.checkpoint
    def read(_, q):
        phi_q = query_features(q).astype(dtype)
        numerator = jnp.einsum("bhqf,bhfd->bhqd", phi_q, kv)
        return None, _safe_ratio(numerator, jnp.einsum("bhqf,bhf->bhq", phi_q, k_sum))

    _, out = jax.lax.scan(read, None, _chunked(query, min(chunk, query.shape[2])))
    return _unchunked(out, query.shape[2])


def _causal(query, key, value, valid, query_features, key_features, chunk, written_backward):
    """Causal attention from the sums over earlier chunks (`attn.kernelized_causal`)."""
    chunks = (_chunked(a, chunk) for a in (query, key, value))
    valid = _chunked_valid(valid, chunk)
    key_ok = None if valid is None else valid.astype(value.dtype)
    out = causal_attention(
        *chunks, key_ok, query_features, key_features, written_backward=written_backward
    )
    return _unchunked(out, query.shape[2])


def kernel_attention(
    query,
    key,
    value,
    query_features: FeatureMap,
    key_features: FeatureMap,
    *,
    mask=None,
    is_causal=False,
    chunk_size=64,
    bidirectional_chunk_size=1024,
    causal_backward="written",
):
    """Attention with weights proportional to `phi_q(query) . phi_k(key)`.

    Args:
      query: `[batch, heads, q_len, d]`.
      key: `[batch, heads, k_len, d]`.
      value: `[batch, heads, k_len, v_features]`.
      query_features, key_features: the feature maps, `[..., n, d] -> [...,
        n, features]`, non-negative; applied to chunks of positions (a map
        must treat positions independently, or with constants fixed
        beforehand, as Performer's key stabiliser is).
      mask: boolean, broadcastable to `[batch, heads, q_len, k_len]`; a
        per-key mask (q_len axis 1) keeps memory linear.
      is_causal: query i attends to keys j <= i; needs q_len == k_len.
      chunk_size: positions per chunk of the causal form (its within-chunk
        products cost O(chunk) per position).
      bidirectional_chunk_size: positions per chunk without causality (no
        within-chunk products: larger chunks mean fewer loop steps, at
        O(chunk * features) memory).
      causal_backward: "written" (the causal form's backward pass by hand,
        `attn.kernelized_causal`: faster, no forward-mode derivative) or
        "autodiff" (JAX differentiates the scan; `jax.jvp` works).

    Returns:
      `[batch, heads, q_len, v_features]` in float32 or wider.
    """
    for name, size in (
        ("chunk_size", chunk_size),
        ("bidirectional_chunk_size", bidirectional_chunk_size),
    ):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name} must be a positive integer, got {size!r}.")
    if causal_backward not in CAUSAL_BACKWARDS:
        raise ValueError(
            f"causal_backward must be one of {', '.join(CAUSAL_BACKWARDS)}; got "
            f"{causal_backward!r}."
        )
    value = jnp.asarray(value)  # a NumPy float64 array is float32 unless x64 is on
    dtype = jnp.promote_types(value.dtype, jnp.float32)
    value = value.astype(dtype)
    mask = as_4d(mask)
    batch, heads, q_len = query.shape[:3]
    k_len = key.shape[2]
    if is_causal and q_len != k_len:
        raise ValueError(
            f"causal kernelised attention needs as many queries as keys; got q_len "
            f"{q_len} and k_len {k_len}."
        )
    if not is_per_key(mask):
        phi_q, phi_k = query_features(query).astype(dtype), key_features(key).astype(dtype)
        return _quadratic(phi_q, phi_k, value, mask, is_causal)
    chunk = min(chunk_size if is_causal else bidirectional_chunk_size, k_len)
    # Keys padded to whole chunks are zeros, whose features are not: they need a mask too.
    padded = k_len % chunk != 0
    valid = None if mask is None and not padded else key_valid(mask, batch, heads, k_len)
    if is_causal:
        written = causal_backward == "written"
        return _causal(query, key, value, valid, query_features, key_features, chunk, written)
    return _bidirectional(query, key, value, valid, query_features, key_features, chunk)


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
