"""Memory-efficient additive (Bahdanau) attention.

The additive score v . tanh(W q + U k) needs a hidden vector per (query, key)
pair: `attn.scores.additive` materialises `[batch, heads, q_len, k_len,
features]` (and keeps it for the backward pass), which at 1024 x 1024 pairs
and 256 features is a gigabyte per head. Here the projections W q and U k are
computed once (linear in length) and the pairs are visited in query x key
chunks by the blockwise engine of `attn.blockwise` (online softmax, custom
VJP), which recomputes tanh(W q + U k) per chunk in the backward pass. At
most one chunk of hidden vectors exists at a time, and its size is set by a
budget, not by the lengths.

The parameters are those of `attn.scores.additive`, with the same names,
shapes and initialisation (`AdditiveKernels`), so one set of parameters works
with either form.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from attn import blockwise, inputs, masking, registry
from attn import scores as _scores  # noqa: F401  (the kind this form registers with)

# Elements of float32 hidden activations one chunk may hold: batch x heads x
# block_q x block_k x features. 2**19 (2 MiB) stays in cache on a CPU: at
# 1024 x 1024 pairs and 256 features, 4x larger chunks ran 3x slower.
CHUNK_ELEMENTS = 2**19


def _hidden(q, k):
    return jnp.tanh(q[:, :, :, None, :] + k[:, :, None, :, :])


def _logits(q, k, energy):
    # q [b, h, r, f], k [b, h, s, f], energy [h, f] -> [b, h, r, s]. A product
    # and a sum rather than an einsum: in the forward pass XLA then fuses tanh
    # into the reduction instead of writing the chunk out for a matrix
    # product. The backward pass reuses the chunk's hidden layer (aux).
    hidden = _hidden(q, k)
    return (hidden * energy[None, :, None, None, :]).sum(-1), hidden


def _vjp(q, k, energy, hidden, ds):
    hidden = _hidden(q, k) if hidden is None else hidden
    # Contractions rather than sums of a broadcast product: XLA's CPU
    # reductions over a middle axis are several times slower than a dot.
    slope = 1.0 - hidden * hidden
    dq = jnp.einsum("bhrs,bhrsf->bhrf", ds, slope) * energy[None, :, None, :]
    dk = jnp.einsum("bhrs,bhrsf->bhsf", ds, slope) * energy[None, :, None, :]
    return dq, dk, jnp.einsum("bhrs,bhrsf->hf", ds, hidden)


ADDITIVE = blockwise.BlockScore(_logits, _vjp)


def default_blocks(batch_heads: int, q_len: int, k_len: int, features: int) -> tuple[int, int]:
    """Powers of two `(block_q, block_k)` whose hidden chunk fits `CHUNK_ELEMENTS`."""
    block_k = min(k_len, 64)
    block_q = CHUNK_ELEMENTS // max(1, batch_heads * block_k * features)
    block_q = 1 << max(0, block_q.bit_length() - 1)
    return min(q_len, max(8, block_q)), block_k


def additive_attention(
    query,
    key,
    value,
    *,
    query_kernel,
    key_kernel,
    energy_kernel,
    mask=None,
    bias=None,
    is_causal: bool = False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    block_q: int | None = None,
    block_k: int | None = None,
):
    """Additive attention without the `[.., q_len, k_len, features]` hidden layer.

    Computes softmax(v . tanh(W q + U k)) @ value per head, as
    `attn.MultiHeadAttention(kind="additive")` does between its projections.

    Args:
      query: `[batch, heads, q_len, q_features]` (the layout of `attn.scores`).
      key: `[batch, heads, k_len, k_features]`.
      value: `[batch, heads, k_len, v_features]`.
      query_kernel: W, `[heads, q_features, features]` (the score's 'query_proj').
      key_kernel: U, `[heads, k_features, features]` ('key_proj').
      energy_kernel: v, `[heads, features]` ('energy').
      mask: optional boolean, broadcastable to `[batch, heads, q_len, k_len]`.
      bias: optional float added to the logits, same shapes.
      is_causal: query i attends to keys j <= i.
      query_seq_lengths, key_value_seq_lengths: optional `[batch]` ints, as in
        `attn.dot_product_attention`.
      block_q, block_k: chunk sizes (default: `default_blocks`, within
        `CHUNK_ELEMENTS`).

    Returns:
      `[batch, heads, q_len, v_features]` in the value's dtype; zero where a
      query has no valid key.
    """
    _check(query, key, value, query_kernel, key_kernel, energy_kernel)
    batch, heads, q_len, _ = query.shape
    k_len, features = key.shape[2], energy_kernel.shape[-1]
    target, desc = (batch, heads, q_len, k_len), "[batch, heads, q_len, k_len]"
    masking.check_mask(mask, target, target_desc=desc)
    masking.check_bias(bias, target, target_desc=desc)
    inputs.check_lengths(
        batch, query_seq_lengths=query_seq_lengths, key_value_seq_lengths=key_value_seq_lengths
    )
    auto_q, auto_k = default_blocks(batch * heads, q_len, k_len, features)

    dtype = jnp.promote_types(jnp.result_type(query, key, query_kernel), jnp.float32)
    projected_query = jnp.einsum("bhqd,hdf->bhqf", query.astype(dtype), query_kernel.astype(dtype))
    projected_key = jnp.einsum("bhkd,hdf->bhkf", key.astype(dtype), key_kernel.astype(dtype))
    out = blockwise.run_blockwise(
        ADDITIVE,
        projected_query[:, :, :, None, :],
        projected_key,
        value,
        energy_kernel.astype(dtype),
        bias=bias,
        mask=mask,
        is_causal=is_causal,
        query_seq_lengths=query_seq_lengths,
        key_value_seq_lengths=key_value_seq_lengths,
        block_q=block_q or auto_q,
        block_k=block_k or auto_k,
    )
    return out[:, :, :, 0]


def _check(query, key, value, query_kernel, key_kernel, energy_kernel) -> None:
    named = dict(query=query, key=key, value=value)
    shapes = ", ".join(f"{n} {getattr(a, 'shape', None)}" for n, a in named.items())
    if any(getattr(a, "ndim", None) != 4 for a in named.values()):
        raise ValueError(
            f"query, key and value must be [batch, heads, length, features]; got {shapes}."
        )
    if not query.shape[:2] == key.shape[:2] == value.shape[:2] or key.shape[2] != value.shape[2]:
        raise ValueError(
            f"query, key and value must share batch and heads, and key and value "
            f"the length; got {shapes}."
        )
    heads = query.shape[1]
    features = getattr(energy_kernel, "shape", (None,))[-1]
    want = {
        "query_kernel": (heads, query.shape[-1], features),
        "key_kernel": (heads, key.shape[-1], features),
        "energy_kernel": (heads, features),
    }
    got = dict(query_kernel=query_kernel, key_kernel=key_kernel, energy_kernel=energy_kernel)
    for name, kernel in got.items():
        if getattr(kernel, "shape", None) != want[name]:
            expected = ", ".join(f"{n} {s}" for n, s in want.items())
            raise ValueError(
                f"{name} has shape {getattr(kernel, 'shape', None)}; with {shapes} the "
                f"kernels must be {expected} ([heads, in_features, features])."
            )


class _Kernel(nn.Module):
    """One 'kernel' parameter, created exactly as `nn.Einsum` creates its own."""

    shape: tuple[int, ...]

    @nn.compact
    def __call__(self):
        return self.param("kernel", nn.initializers.lecun_normal(), self.shape, jnp.float32)


def additive_kernels(query, key, features: int | None = None) -> dict:
    """The parameters of `attn.scores.additive`, without running the score.

    Same names ('query_proj', 'key_proj', 'energy'), shapes and initial values
    as the score creates, so a module can switch between the two forms with
    the same parameters. Call inside a compact method (the 'score' submodule)
    with query `[batch, heads, q_len, q_features]` and key `[batch, heads,
    k_len, k_features]`; returns the keyword arguments `query_kernel`,
    `key_kernel` and `energy_kernel` of `additive_attention`.
    """
    heads, q_features, k_features = query.shape[1], query.shape[-1], key.shape[-1]
    features = q_features if features is None else features
    if not isinstance(features, int) or features < 1:
        raise ValueError(
            f"additive attention needs a positive integer `features`, got {features!r}."
        )
    return dict(
        query_kernel=_Kernel((heads, q_features, features), name="query_proj")(),
        key_kernel=_Kernel((heads, k_features, features), name="key_proj")(),
        energy_kernel=_Kernel((heads, features), name="energy")(),
    )


class AdditiveKernels(nn.Module):
    """`additive_kernels` as a module of its own (its parameters nest under its name)."""

    features: int | None = None

    @nn.compact
    def __call__(self, query, key):
        return additive_kernels(query, key, self.features)


@registry.register_implementation("additive", "blockwise")
def chunked_form(query, key, value, *, mask=None, bias=None, is_causal=False, features=None):
    """The chunked form in the layout of `attn.scores`, with the score's parameters."""
    kernels = additive_kernels(query, key, features)
    return additive_attention(
        query, key, value, **kernels, mask=mask, bias=bias, is_causal=is_causal
    )


# The materialising form was fastest up to 64 x 64 pairs, the chunked one from
# 128 x 128 (2-core CPU, benchmarks/RESULTS.md); GPUs: the same expectation.
registry.set_auto(
    "additive",
    {
        "default": (
            (64 * 64, registry.UNLIMITED, ("xla",)),
            (registry.UNLIMITED, registry.UNLIMITED, ("blockwise",)),
        )
    },
)
