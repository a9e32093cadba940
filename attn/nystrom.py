"""Nyströmformer attention (Xiong et al. 2021): softmax attention through landmarks.

"Nyströmformer: A Nyström-Based Algorithm for Approximating Self-Attention",
AAAI 2021: with m landmarks (the means of m consecutive segments of the
queries and of the keys), softmax(Q K^T) is approximated by
`softmax(Q K~^T) pinv(softmax(Q~ K~^T)) softmax(Q~ K^T)`, three matrices of
n x m, m x m and m x n: O(N m) time and memory. The pseudo-inverse is the
paper's iterative one (Newton-Schulz, `pinv_iterations` steps). With as many
landmarks as positions the approximation is softmax attention itself.

Padded keys are left out of the key landmarks' means and masked in the last
softmax, so they contribute nothing; a landmark segment with no valid key is
left out of the first two softmaxes. Not causal.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from attn import masking, registry
from attn.kernelized import key_valid


def segment_means(x, valid, num_landmarks: int):
    """Means of `num_landmarks` consecutive segments of `x` `[b, h, n, d]` over `valid` `[b, h, n]`.

    Returns `(means [b, h, m, d], has_valid [b, h, m])`; n is padded to a
    multiple of m with invalid positions.
    """
    b, h, n, d = x.shape
    segment = -(-n // num_landmarks)
    pad = segment * num_landmarks - n
    x = jnp.pad(x, ((0, 0), (0, 0), (0, pad), (0, 0)))
    valid = jnp.pad(valid, ((0, 0), (0, 0), (0, pad)))
    weights = valid.astype(x.dtype).reshape(b, h, num_landmarks, segment)
    sums = jnp.einsum("bhms,bhmsd->bhmd", weights, x.reshape(b, h, num_landmarks, segment, d))
    counts = weights.sum(-1)
    return sums / jnp.maximum(counts, 1.0)[..., None], counts > 0


def iterative_pinv(a, iterations: int):
    """Newton-Schulz pseudo-inverse of `[..., m, m]` matrices (Xiong et al. 2021, eq. 14)."""
    identity = jnp.eye(a.shape[-1], dtype=a.dtype)
    abs_a = jnp.abs(a)
    norm = jnp.max(abs_a.sum(-1), axis=-1) * jnp.max(abs_a.sum(-2), axis=-1)
    # An all-zero matrix (no valid key anywhere) has the pseudo-inverse zero.
    z = jnp.swapaxes(a, -1, -2) / jnp.where(norm > 0, norm, 1.0)[..., None, None]
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * identity - az @ (15 * identity - az @ (7 * identity - az)))
    return z


@registry.register_mechanism("nystrom", capabilities=("cross", "padding", "linear_memory"))
def nystrom_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    num_landmarks: int = 64,
    pinv_iterations: int = 6,
    scale: float | None = None,
):
    """Nyströmformer (Xiong et al. 2021): softmax attention approximated through m landmarks.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`.
    `num_landmarks`: m (at most the sequence lengths); `pinv_iterations`:
    steps of the iterative pseudo-inverse; `scale`: default `1/sqrt(d)`.
    Non-causal.
    """
    if is_causal:
        raise ValueError(
            "nystrom's landmarks average over whole segments, so it cannot be causal; use a "
            "causal kind (attn.available('causal'))."
        )
    batch, heads, q_len, dim = query.shape
    k_len = key.shape[2]
    m = min(num_landmarks, q_len, k_len)
    if not isinstance(num_landmarks, int) or num_landmarks < 1:
        raise ValueError(f"num_landmarks must be a positive integer, got {num_landmarks!r}.")
    out_dtype, dtype = value.dtype, jnp.promote_types(query.dtype, jnp.float32)
    query, key, value = (a.astype(dtype) for a in (query, key, value))
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    valid = key_valid(mask, batch, heads, k_len)
    q_landmarks, _ = segment_means(query, jnp.ones((batch, heads, q_len), bool), m)
    k_landmarks, has_keys = segment_means(key, valid, m)
    landmark_mask = has_keys[:, :, None, :]
    logits = lambda a, b: jnp.einsum("bhqd,bhkd->bhqk", a, b) * scale
    to_landmarks = masking.masked_softmax(logits(query, k_landmarks), landmark_mask)
    between = masking.masked_softmax(logits(q_landmarks, k_landmarks), landmark_mask)
    from_landmarks = masking.masked_softmax(logits(q_landmarks, key), valid[:, :, None, :])
    summary = jnp.einsum("bhmk,bhkd->bhmd", from_landmarks, value)
    out = to_landmarks @ (iterative_pinv(between, pinv_iterations) @ summary)
    return out.astype(out_dtype)
