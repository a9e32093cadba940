"""Each attention kind against the float64 NumPy references, fresh inputs."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from tests.attn import numpy_reference as ref

# (batch, q_len, k_len, q_features, k_features, v_features)
SHAPES = [(1, 1, 1, 4, 4, 3), (2, 5, 7, 6, 6, 4), (3, 4, 9, 8, 8, 2), (2, 3, 6, 5, 7, 3)]


def random_mask(rng, batch, q_len, k_len):
    """Random padding-style mask with one fully masked row in the first example."""
    mask = rng.random((batch, q_len, k_len)) < 0.7
    mask[..., 0] |= ~mask.any(-1)  # every row keeps a key...
    if q_len > 1:
        mask[0, -1, :] = False  # ...except one that keeps none
    return mask


def test_references_cover_the_builtin_kinds():
    assert {"dot", "scaled_dot", "general", "additive", "cosine"} <= set(ref.SCORES)
    assert set(ref.SCORES) <= set(attn.available())


@pytest.mark.parametrize(
    "kind, shape",
    [
        (kind, shape)
        for kind in sorted(ref.SCORES)
        for shape in SHAPES
        # Dot-product kinds need equal query and key features.
        if not (attn.lookup(kind).same_features and shape[3] != shape[4])
    ],
    ids=str,
)
def test_single_head_matches_numpy(kind, shape):
    batch, q_len, k_len, dq, dk, dv = shape
    rng = np.random.default_rng(1)
    q = rng.normal(size=(batch, q_len, dq)).astype(np.float32)
    k = rng.normal(size=(batch, k_len, dk)).astype(np.float32)
    v = rng.normal(size=(batch, k_len, dv)).astype(np.float32)
    mask = random_mask(rng, batch, q_len, k_len)
    module = attn.get(kind)
    params = module.init(jax.random.key(int(rng.integers(1 << 30))), q, k, v)
    context, weights = module.apply(params, q, k, v, mask=mask)
    want_context, want_weights = ref.single_head_attention(
        kind, params, q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), mask
    )
    np.testing.assert_allclose(weights, want_weights, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(context, want_context, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", sorted(ref.SCORES))
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_matches_numpy(kind, causal):
    rng = np.random.default_rng(2)
    batch, q_len, k_len, features = 2, 5, 5 if causal else 7, 12
    x_q = rng.normal(size=(batch, q_len, features)).astype(np.float32)
    x_kv = x_q if causal else rng.normal(size=(batch, k_len, features)).astype(np.float32)
    mask = random_mask(rng, batch, q_len, k_len)[:, None]
    module = attn.MultiHeadAttention(num_heads=3, kind=kind)
    params = module.init(jax.random.key(1), x_q, x_kv)
    # Non-zero biases so that they are checked too.
    params = jax.tree.map(
        lambda p: p + 0.1 * jnp.asarray(rng.normal(size=p.shape), p.dtype), params
    )
    out, weights = module.apply(params, x_q, x_kv, mask=mask, is_causal=causal)
    want_out, want_weights = ref.multi_head_attention(
        kind, params, x_q.astype(np.float64), x_kv.astype(np.float64), mask, causal
    )
    np.testing.assert_allclose(weights, want_weights, atol=3e-5, rtol=1e-4)
    np.testing.assert_allclose(out, want_out, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_equals_flax(causal):
    """Same parameters copied in -> same output as flax's MultiHeadDotProductAttention."""
    rng = np.random.default_rng(3)
    batch, length, features, heads = 3, 6, 16, 4
    x = jnp.asarray(rng.normal(size=(batch, length, features)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(batch, length + 2, features)), jnp.float32)
    key_valid = jnp.asarray(rng.random((batch, y.shape[1])) < 0.8).at[:, 0].set(True)
    if causal:
        y, key_valid = x, key_valid[:, :length]
    flax_mask = nn.make_attention_mask(jnp.ones((batch, length), bool), key_valid)
    if causal:
        flax_mask = nn.combine_masks(flax_mask, nn.make_causal_mask(jnp.ones((batch, length))))
    theirs = nn.MultiHeadDotProductAttention(num_heads=heads, deterministic=True)
    params = theirs.init(jax.random.key(0), x, y, mask=flax_mask)
    want = theirs.apply(params, x, y, mask=flax_mask)

    ours = attn.MultiHeadAttention(num_heads=heads, kind="scaled_dot")
    assert jax.tree.structure(ours.init(jax.random.key(5), x, y)) == jax.tree.structure(params)
    got, _ = ours.apply(params, x, y, mask=attn.padding_mask(key_valid), is_causal=causal)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


def test_additive_is_bahdanau_unit():
    """A hand-built additive unit: one query, two keys, parameters set by hand."""
    module = attn.get("additive", features=2)
    q = jnp.array([[[1.0, 0.0]]])
    k = jnp.array([[[0.0, 1.0], [1.0, 1.0]]])
    params = {
        "params": {
            "score": {
                "query_proj": {"kernel": jnp.eye(2)[None]},
                "key_proj": {"kernel": jnp.eye(2)[None]},
                "energy": {"kernel": jnp.array([[1.0, -1.0]])},
            }
        }
    }
    context, weights = module.apply(params, q, k, k)
    # score_j = tanh(q0 + k_j0) - tanh(q1 + k_j1)
    s = np.array([np.tanh(1) - np.tanh(1), np.tanh(2) - np.tanh(1)])
    w = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(weights[0, 0], w, rtol=1e-6)
    np.testing.assert_allclose(context[0, 0], w @ np.array([[0, 1], [1, 1]]), rtol=1e-6)
