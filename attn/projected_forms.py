"""Linear-memory forms of `general` and `cosine`: a per-query map, then the blockwise engine.

Both scores are a dot product after a change of the inputs, so their pairs
never need to be formed:

- `general` (q W k): the queries are projected by W, with the kind's own
  parameter ('bilinear', created here exactly as `attn.scores.general` does),
  then scaled-dot attention with scale 1 runs on `(q W, k)`;
- `cosine` (scale * q.k / |q| |k|): queries and keys are normalised as
  `attn.scores.cosine` normalises them, then attention with the kind's scale.

`implementation="blockwise"` runs them with `attn.blockwise` forward and
backward; on CPU `auto` takes the dot-product kinds' measured table, since the
work after the map is theirs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from attn import blockwise, registry
from attn import scores as _scores  # noqa: F401  (the kinds these forms register with)
from attn.dot_product_forms import DOT_PRODUCT_AUTO


def _blockwise(query, key, value, *, mask, bias, is_causal, scale):
    """`attn.blockwise` in the layout of `attn.scores`, `[batch, heads, length, features]`."""
    as_jax_nn = lambda a: a.transpose(0, 2, 1, 3)
    out = blockwise.blockwise_attention(
        *(as_jax_nn(a) for a in (query, key, value)),
        mask=mask,
        bias=bias,
        is_causal=is_causal,
        scale=scale,
    )
    return as_jax_nn(out)


@registry.register_implementation("general", "blockwise")
def general_blockwise(query, key, value, *, mask=None, bias=None, is_causal=False):
    """`general` in linear memory: `(q W) . k` by the blockwise engine."""
    heads, q_features, k_features = query.shape[1], query.shape[-1], key.shape[-1]
    projected_query = nn.Einsum(
        (heads, q_features, k_features), "bhqd,hde->bhqe", use_bias=False, name="bilinear"
    )(query)
    return _blockwise(
        projected_query.astype(key.dtype),
        key,
        value,
        mask=mask,
        bias=bias,
        is_causal=is_causal,
        scale=1.0,
    )


@registry.register_implementation("cosine", "blockwise")
def cosine_blockwise(
    query, key, value, *, mask=None, bias=None, is_causal=False, scale=10.0, eps=1e-6
):
    """`cosine` in linear memory: normalised queries and keys by the blockwise engine."""
    dtype = jnp.promote_types(jnp.result_type(query, key), jnp.float32)

    def normalize(x):
        x = x.astype(dtype)
        return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)

    return _blockwise(
        normalize(query),
        normalize(key),
        value.astype(dtype),
        mask=mask,
        bias=bias,
        is_causal=is_causal,
        scale=scale,
    ).astype(value.dtype)


def _their_forms(rules, names=("xla", "blockwise")):
    """The dot-product rules with only the forms these kinds have (no jax.nn path)."""
    return tuple(
        (max_pairs, max_dim, tuple(n for n in preferred if n in names), *conditions)
        for max_pairs, max_dim, preferred, *conditions in rules
    )


# CPU: the dot-product kinds' measured table. Elsewhere no table: `auto` keeps
# 'xla' until its pairs outgrow the memory limit (attn.implementations).
for _kind in ("general", "cosine"):
    registry.set_auto(_kind, {"cpu": _their_forms(DOT_PRODUCT_AUTO["cpu"])})
