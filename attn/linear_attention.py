"""Linear attention with the elu+1 feature map (Katharopoulos et al. 2020).

"Transformers are RNNs: Fast Autoregressive Transformers with Linear
Attention", ICML 2020: softmax's `exp(q . k)` is replaced by `phi(q) .
phi(k)` with `phi(x) = elu(x) + 1`, which lets the sum over keys be taken
once for every query: O(N) time and memory, bidirectional or causal (chunked
prefix sums, see `attn.kernelized`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn import registry
from attn.kernelized import kernel_attention


def elu_feature_map(x):
    """`elu(x) + 1`: positive features, `[..., features]` -> same shape."""
    return jax.nn.elu(x.astype(jnp.promote_types(x.dtype, jnp.float32))) + 1.0


@registry.register_mechanism(
    "linear", capabilities=("causal", "cross", "padding", "mask", "decode", "linear_memory")
)
def linear_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    chunk_size: int = 64,
    bidirectional_chunk_size: int = 1024,
    causal_backward: str = "written",
):
    """Linear attention, elu+1 features (Katharopoulos et al. 2020): O(N), also causal.

    query `[batch, heads, q_len, d]`, key `[batch, heads, k_len, d]`, value
    `[batch, heads, k_len, dv]` -> `[batch, heads, q_len, dv]` in the value's
    dtype. `chunk_size`: positions per chunk of the causal form;
    `bidirectional_chunk_size`: the same without causality (see
    `attn.kernelized.kernel_attention`); `causal_backward`: "written" (the
    causal form's backward pass by hand, faster) or "autodiff" (keeps `jax.jvp`).
    """
    out = kernel_attention(
        query,
        key,
        value,
        elu_feature_map,
        elu_feature_map,
        mask=mask,
        is_causal=is_causal,
        chunk_size=chunk_size,
        bidirectional_chunk_size=bidirectional_chunk_size,
        causal_backward=causal_backward,
    )
    return out.astype(value.dtype)
