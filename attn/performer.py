"""Performer's FAVOR+ attention (Choromanski et al. 2021).

"Rethinking Attention with Performers", ICLR 2021: `exp(q . k / sqrt(d))`
equals the expectation over Gaussian `w` of `phi(q) . phi(k)` with the
positive random features `phi(x) = exp(w . x - |x|^2 / 2) / sqrt(m)` (x
scaled by `d^-1/4`). With `m` orthogonal random features the estimate of
softmax attention is unbiased up to the normalisation and its error shrinks
as `m` grows; attention then costs O(N m) through `attn.kernelized`,
bidirectional or causal.

The features are drawn from an explicit PRNG key: `random_projection(key,
num_features, dim)`. In the modules the key is `jax.random.key(feature_seed)`
unless the call passes a 'features' rng (`module.apply(..., rngs={"features":
key})`), which redraws them, as the paper does during training.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn import registry
from attn.kernelized import as_4d, is_per_key, kernel_attention, key_valid


def random_projection(key, num_features: int, dim: int):
    """`[num_features, dim]` orthogonal Gaussian features (blocks of `dim` orthogonal rows).

    Each row is a row of a random orthogonal matrix scaled by the norm of an
    independent `N(0, I_dim)` vector, so that rows are marginally Gaussian.
    """
    blocks = -(-num_features // dim)
    block_key, norm_key = jax.random.split(key)
    gaussian = jax.random.normal(block_key, (blocks, dim, dim))
    orthogonal = jnp.linalg.qr(gaussian)[0].transpose(0, 2, 1)  # rows orthonormal
    rows = orthogonal.reshape(blocks * dim, dim)[:num_features]
    norms = jnp.linalg.norm(jax.random.normal(norm_key, (num_features, dim)), axis=-1)
    return rows * norms[:, None]


def _exponent(x, projection):
    """`w . x - |x|^2 / 2` for every feature w: `[..., length, d]` -> `[..., length, m]`."""
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    x = x * x.shape[-1] ** -0.25
    wx = jnp.einsum("...ld,md->...lm", x, projection.astype(x.dtype))
    return wx - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)


def key_shift(key, projection, *, valid=None):
    """`[..., 1, 1]`: the largest exponent over the valid keys `[..., length]`.

    The keys' stabiliser: one constant per batch and head, so it cancels in
    the attention's normalisation, and fixed before the keys' features are
    formed chunk by chunk. No gradient flows through it.
    """
    exponent = _exponent(key, projection)
    if valid is not None:
        exponent = jnp.where(valid[..., None], exponent, -jnp.inf)
    shift = exponent.max(axis=(-2, -1), keepdims=True)
    return jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))


def favor_features(x, projection, *, shift=None, epsilon: float = 0.0):
    """Positive random features `[..., length, m]` of `x` `[..., length, d]`.

    A max subtracted inside the exponential keeps it finite: `shift` (the
    keys' `key_shift`), or each row's own largest exponent (queries, None).
    Either is a constant factor per row or per batch and head that cancels in
    the attention's normalisation, so no gradient flows through it. `epsilon`
    is added to the stabilised exponentials (the Performer authors' numerical
    stabiliser): a key far below the largest then still has a feature, so no
    normaliser falls to a denormal whose gradient overflows.
    """
    exponent = _exponent(x, projection)
    if shift is None:
        shift = jax.lax.stop_gradient(exponent.max(-1, keepdims=True))
    features = jnp.exp(exponent - shift)
    if epsilon:
        features = features + epsilon
    return features / math.sqrt(projection.shape[0])


def favor_attention(
    query,
    key,
    value,
    projection,
    *,
    mask=None,
    is_causal=False,
    chunk_size: int = 128,
    bidirectional_chunk_size: int = 1024,
    epsilon: float = 0.0,
    causal_backward: str = "written",
):
    """FAVOR+ attention with a given `[m, d]` projection; layout as `performer_attention`."""
    mask = as_4d(mask)
    # Keys' stabiliser over the valid keys only (a query-dependent mask: over all).
    valid = key_valid(mask, *key.shape[:3]) if is_per_key(mask) and mask is not None else None
    shift = key_shift(key, projection, valid=valid)
    out = kernel_attention(
        query,
        key,
        value,
        functools.partial(favor_features, projection=projection, epsilon=epsilon),
        functools.partial(favor_features, projection=projection, shift=shift, epsilon=epsilon),
        mask=mask,
        is_causal=is_causal,
        chunk_size=chunk_size,
        bidirectional_chunk_size=bidirectional_chunk_size,
        causal_backward=causal_backward,
    )
    return out.astype(value.dtype)


class RandomFeatures(nn.Module):
    """The projection of a Performer layer: drawn from the 'features' rng when
    the call has one, else from `jax.random.key(seed)`. Holds no parameters."""

    num_features: int
    seed: int = 0

    @nn.compact
    def __call__(self, dim: int):
        key = self.make_rng("features") if self.has_rng("features") else jax.random.key(self.seed)
        return random_projection(key, self.num_features, dim)


@registry.register_mechanism(
    "performer", capabilities=("causal", "cross", "padding", "mask", "decode", "linear_memory")
)
def performer_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    num_features: int = 256,
    feature_seed: int = 0,
    chunk_size: int = 128,
    bidirectional_chunk_size: int = 1024,
    epsilon: float = 0.0,
    causal_backward: str = "written",
):
    """Performer FAVOR+ (Choromanski et al. 2021): softmax by positive orthogonal random features.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`.
    `num_features`: random features m; `feature_seed`: the features' key
    unless the call passes a 'features' rng; `chunk_size`: positions per chunk
    of the causal form (128: fastest of 32-256 forward+backward at N = 4k and
    16k with 256 features on 2 CPU cores, where linear attention's 64 features
    favour 64), `bidirectional_chunk_size` without causality;
    `epsilon`: added to each stabilised feature (the authors use 1e-6; it keeps
    long causal training finite, but the output then depends on the stabiliser,
    so cached decoding no longer equals the full pass and gradients ignore it:
    0, the exact estimator, by default); `causal_backward`: "written" (the
    causal form's backward pass by hand, faster) or "autodiff" (keeps `jax.jvp`).
    """
    if not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"num_features must be a positive integer, got {num_features!r}.")
    projection = RandomFeatures(num_features, feature_seed, name="features")(query.shape[-1])
    return favor_attention(
        query,
        key,
        value,
        projection,
        mask=mask,
        is_causal=is_causal,
        chunk_size=chunk_size,
        bidirectional_chunk_size=bidirectional_chunk_size,
        epsilon=epsilon,
        causal_backward=causal_backward,
    )
