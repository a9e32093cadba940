"""Linformer attention (Wang et al. 2020): keys and values projected along the sequence.

"Linformer: Self-Attention with Linear Complexity", 2020: learned `[k, n]`
matrices E and F map the n keys and values to k rows each (`E K`, `F V`),
and the queries attend to those k rows, so the logits are `[n, k]`: O(N k)
time and memory. The projections are shared by the heads of a layer (the
paper's head-wise sharing) and sized for `max_length` keys (by default the
key length they are created for); shorter sequences use their first
columns. Padded keys are zeroed before the
projection, so their content cannot reach the output. Each projected row
mixes every position, so there is no causal form.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn import registry
from attn.kernelized import key_valid


class SequenceProjection(nn.Module):
    """A learned `[projected_length, max_length]` matrix applied along the sequence."""

    projected_length: int
    max_length: int | None = None  # None: the length of the first call (init)

    @nn.compact
    def __call__(self, x):
        """`x` `[batch, heads, length, features]` -> `[batch, heads, projected_length, features]`."""
        length = x.shape[2]
        if self.has_variable("params", "kernel"):  # created already: its own width
            matrix = self.get_variable("params", "kernel")
        else:
            columns = length if self.max_length is None else self.max_length
            shape = (self.projected_length, columns)
            matrix = self.param("kernel", nn.initializers.normal(stddev=1.0), shape, jnp.float32)
        if length > matrix.shape[1]:
            raise ValueError(
                f"linformer was built for at most max_length={matrix.shape[1]} keys; got "
                f"{length}. Set the option max_length to at least {length}."
            )
        # Scaled by the keys used, so that a projected row has the keys' scale at any length.
        matrix = matrix[:, :length].astype(x.dtype) / math.sqrt(length)
        return jnp.einsum("pn,bhnf->bhpf", matrix, x)


@registry.register_mechanism(
    "linformer", capabilities=("cross", "padding", "linear_memory"), has_params=True
)
def linformer_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    projected_length: int = 64,
    max_length: int | None = None,
    scale: float | None = None,
):
    """Linformer (Wang et al. 2020): learned projections of keys and values along the sequence.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]`.
    `projected_length`: k rows; `max_length`: the most keys it takes (default:
    the key length at initialisation); `scale`: default `1/sqrt(d)`. Non-causal.
    """
    if is_causal:
        raise ValueError(
            "linformer mixes every position into each projected key, so it cannot be "
            "causal; use a causal kind (attn.available('causal'))."
        )
    for name, size in (("projected_length", projected_length), ("max_length", max_length)):
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ValueError(f"linformer's {name} must be a positive integer, got {size!r}.")
    batch, heads, k_len, _ = key.shape
    valid = key_valid(mask, batch, heads, k_len)[..., None]
    key, value = (jnp.where(valid, a, 0).astype(a.dtype) for a in (key, value))
    projected_key = SequenceProjection(projected_length, max_length, name="key_projection")(key)
    projected_value = SequenceProjection(projected_length, max_length, name="value_projection")(
        value
    )
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    logits = jnp.einsum("bhqd,bhpd->bhqp", query, projected_key, preferred_element_type=dtype)
    weights = jax.nn.softmax(logits * scale, axis=-1)
    # A sequence with no valid key has zero projected values: its output is zero.
    return jnp.einsum("bhqp,bhpd->bhqd", weights.astype(value.dtype), projected_value)
