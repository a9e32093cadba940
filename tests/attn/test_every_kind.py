"""The shared suite: every registered kind, single-head and multi-head.

Parametrized over `attn.available()` at collection time, so a newly registered
kind is tested here with no edit to this file. Each test asks only for the
capabilities it needs (`attn.available("weights")`, ...): a mechanism that
never forms weights is held to the same properties through its output, and a
self-attention-only mechanism gets as many keys as queries.
"""

import functools

import flax.linen as nn
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import attn
from attn.modules import attend_heads

KINDS = attn.available()
BATCH, Q_LEN, K_LEN, FEATURES = 3, 4, 6, 8
SETTINGS = hypothesis.settings(max_examples=15, deadline=None, derandomize=False)


def k_len(kind):
    """Keys per sequence: K_LEN, or Q_LEN for self-attention-only kinds."""
    return K_LEN if attn.lookup(kind).supports("cross") else Q_LEN


def random_inputs(seed, dtype=jnp.float32, kind="scaled_dot"):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(BATCH, Q_LEN, FEATURES))
    k = rng.normal(size=(BATCH, k_len(kind), FEATURES))
    v = rng.normal(size=(BATCH, k_len(kind), FEATURES))
    return tuple(jnp.asarray(a, dtype) for a in (q, k, v))


class OneHead(nn.Module):
    """One head of any kind, as `MultiHeadAttention` runs it, without projections.

    query `[batch, q_len, d]`, key and value `[batch, k_len, d]`, mask
    `[batch, q_len or 1, k_len]` -> (context `[batch, q_len, d]`, weights
    `[batch, q_len, k_len]` or None).
    """

    kind: str

    @nn.compact
    def __call__(self, query, key, value, mask=None, is_causal=False):
        heads = lambda a: None if a is None else a[:, None]
        context, weights = attend_heads(
            self.kind,
            {},
            "xla",
            *map(heads, (query, key, value)),
            mask=heads(mask),
            is_causal=is_causal,
        )
        return context[:, 0], None if weights is None else weights[:, 0]


@functools.cache
def single_head(kind):
    """(jitted apply, params) for a kind, built once per test run."""
    module = OneHead(kind)
    params = module.init(jax.random.key(0), *random_inputs(0, kind=kind))
    return jax.jit(module.apply, static_argnames="is_causal"), params


@functools.cache
def multi_head(kind):
    module = attn.MultiHeadAttention(num_heads=2, kind=kind)
    x, y, _ = random_inputs(0)
    # Initialised on the longest keys it will see (Linformer sizes its parameters by them).
    params = module.init(jax.random.key(0), x, y if attn.lookup(kind).supports("cross") else None)
    apply = jax.jit(module.apply, static_argnames="is_causal")
    return apply, params


def key_mask(lengths, kind="scaled_dot"):
    """[batch, 1, k_len] mask keeping the first `lengths[b]` keys."""
    lengths = np.minimum(lengths, k_len(kind))
    return attn.padding_mask(attn.lengths_to_valid(jnp.asarray(lengths), k_len(kind)))


lengths_strategy = st.lists(st.integers(1, K_LEN), min_size=BATCH, max_size=BATCH)


@pytest.mark.parametrize("kind", attn.available("weights"))
@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**31 - 1), lengths=lengths_strategy)
def test_weights_sum_to_one_over_valid_keys(kind, seed, lengths):
    apply, params = single_head(kind)
    _, weights = apply(params, *random_inputs(seed), mask=key_mask(lengths))
    weights = np.asarray(weights)
    for b, length in enumerate(lengths):
        np.testing.assert_allclose(weights[b, :, :length].sum(-1), 1.0, rtol=1e-5)
        assert (weights[b, :, length:] == 0).all()
        assert (weights[b] >= 0).all()


@pytest.mark.parametrize("kind", attn.available("padding"))
@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**31 - 1), lengths=lengths_strategy)
def test_padding_content_does_not_change_outputs(kind, seed, lengths):
    apply, params = single_head(kind)
    q, k, v = random_inputs(seed, kind=kind)
    mask = key_mask(lengths, kind)
    noise_k, noise_v = (
        100 * jnp.asarray(np.random.default_rng(seed + 1).normal(size=a.shape), a.dtype)
        for a in (k, v)
    )
    padded = ~mask[:, 0, :, None]
    k2 = jnp.where(padded, noise_k, k)
    v2 = jnp.where(padded, noise_v, v)
    context, weights = apply(params, q, k, v, mask=mask)
    context2, weights2 = apply(params, q, k2, v2, mask=mask)
    np.testing.assert_allclose(context, context2, atol=1e-6)
    if weights is not None:
        np.testing.assert_allclose(weights, weights2, atol=1e-7)


@pytest.mark.parametrize("kind", attn.available("padding"))
def test_fully_masked_rows_give_zeros_and_no_nan(kind):
    """A sequence with no valid key, and (where a kind takes any mask) a query
    row with none, get zero outputs, finite gradients and no query gradient."""
    apply, params = single_head(kind)
    q, k, v = random_inputs(1, kind=kind)
    mask = jnp.broadcast_to(key_mask([K_LEN, 2, 0], kind), (BATCH, Q_LEN, k_len(kind)))
    any_mask = attn.lookup(kind).supports("mask")
    if any_mask:
        mask = mask.at[1, 2].set(False)
    else:
        mask = mask[:, :1]
    context, weights = apply(params, q, k, v, mask=mask)
    assert np.isfinite(context).all()
    assert (context[2] == 0).all()
    if any_mask:
        assert (context[1, 2] == 0).all() and np.abs(context[1, :2]).sum() > 0
    if weights is not None:
        assert np.isfinite(weights).all() and (weights[2] == 0).all()
        assert (weights[1, 2] == 0).all()

    def loss(params, q, k, v):
        return (apply(params, q, k, v, mask=mask)[0] ** 2).sum()

    grads = jax.grad(loss, argnums=(0, 1, 2, 3))(params, q, k, v)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert (grads[1][2] == 0).all()  # queries that see nothing get no gradient
    assert np.abs(grads[1][0]).sum() > 0


@pytest.mark.parametrize("kind", attn.available("causal"))
def test_causal_output_ignores_later_inputs(kind):
    """d output[t] / d input[s] == 0 for s > t, single- and multi-head."""
    apply, params = multi_head(kind)
    x = random_inputs(2)[0][:, :Q_LEN]
    # One compiled Jacobian of every output: [batch, length, features, batch, length, features].
    jac = np.asarray(jax.jit(jax.jacrev(lambda x: apply(params, x, is_causal=True)[0]))(x))
    for t in range(Q_LEN):
        assert (jac[:, t, :, :, t + 1 :] == 0).all(), f"output {t} depends on later inputs"
        assert np.abs(jac[:, t, :, :, : t + 1]).sum() > 0

    single, single_params = single_head(kind)
    q, k, v = random_inputs(3)
    k, v = k[:, :Q_LEN], v[:, :Q_LEN]
    jac = jax.jit(jax.jacrev(lambda k: single(single_params, q, k, v, is_causal=True)[0]))(k)
    for t in range(Q_LEN):
        assert (np.asarray(jac)[:, t, :, :, t + 1 :] == 0).all()
        # (the first query sees one key: softmax gives it weight 1 whatever it is)
        assert t == 0 or np.abs(np.asarray(jac)[:, t, :, :, : t + 1]).sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind):
    module = OneHead(kind)
    with jax.enable_x64(True):
        q, k, v = random_inputs(4, jnp.float64, kind=kind)
        q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)  # keep tanh/softmax tame
        mask = key_mask([K_LEN, 3, 1], kind)
        params = module.init(jax.random.key(0), q, k, v)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        # Compiled once: op-by-op, each of the many small ops would compile on its own.
        f = jax.jit(lambda params, q, k, v: module.apply(params, q, k, v, mask=mask)[0])
        check_grads(
            f, (params, q, k, v), order=1, modes=["rev", "fwd"], atol=1e-6, rtol=1e-6, eps=1e-6
        )


@pytest.mark.parametrize("kind", KINDS)
def test_has_params_says_whether_the_kind_owns_parameters(kind):
    """The registry's `has_params` (the table, the reports) is what the module creates."""
    shapes = jax.eval_shape(OneHead(kind).init, jax.random.key(0), *random_inputs(0, kind=kind))
    assert bool(jax.tree.leaves(shapes)) == attn.lookup(kind).has_params


@pytest.mark.parametrize("kind", KINDS)
def test_jit_vmap_grad_compose(kind):
    """vmap, grad and their compositions under jit agree with plain calls.

    In float64: the programs differ only in how XLA orders their sums, so in
    float32 a kind whose rounding is amplified (Nystromformer's iterated
    pseudo-inverse: 7e-5 relative, seen once) could fail without a bug, while a
    wrong composition moves values by O(1) in either precision.
    """
    with jax.enable_x64(True):
        _check_jit_vmap_grad_compose(kind)


def _check_jit_vmap_grad_compose(kind):
    module = OneHead(kind)
    q, k, v = random_inputs(5, jnp.float64, kind=kind)
    params = module.init(jax.random.key(0), q, k, v)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    apply = lambda p, q, k, v: module.apply(p, q, k, v)[0]
    loss = lambda p, q: (apply(p, q, k, v) ** 2).sum()
    stacked = [jnp.stack([a, 2 * a]) for a in (q, k, v)]

    @jax.jit  # one program for every composition: each compiled alone costs more
    def compositions(params, q, stacked):
        return {
            "vmapped": jax.vmap(apply, in_axes=(None, 0, 0, 0))(params, *stacked),
            "single": [apply(params, *(s[i] for s in stacked)) for i in range(2)],
            "grad": jax.grad(loss, argnums=(0, 1))(params, q),
            "per_example": jax.vmap(jax.grad(loss, argnums=1), in_axes=(None, 0))(
                params, stacked[0]
            ),
        }

    got = compositions(params, q, stacked)
    # vmap over an extra leading axis equals single calls.
    for i in range(2):
        np.testing.assert_allclose(got["vmapped"][i], got["single"][i], atol=1e-9, rtol=1e-9)
    # grad under jit equals grad of the jitted loss.
    outside = jax.grad(jax.jit(loss), argnums=(0, 1))(params, q)
    for a, b in zip(jax.tree.leaves(got["grad"]), jax.tree.leaves(outside)):
        np.testing.assert_allclose(a, b, atol=1e-9, rtol=1e-9)
    # Per-example gradients: vmap of grad, each equal to its own gradient.
    per_example = got["per_example"]
    np.testing.assert_allclose(per_example[0], got["grad"][1], atol=1e-9, rtol=1e-9)
    assert per_example.shape == stacked[0].shape and np.isfinite(per_example).all()
    assert not np.allclose(per_example[0], per_example[1])  # the second example is 2x


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_inputs_stay_close_to_float32(kind):
    apply, params = single_head(kind)
    q, k, v = random_inputs(6, kind=kind)
    mask = key_mask([K_LEN, 4, 2], kind)
    want_context, want_weights = apply(params, q, k, v, mask=mask)
    bf16 = [a.astype(jnp.bfloat16) for a in (q, k, v)]
    context, weights = apply(params, *bf16, mask=mask)
    assert context.dtype == jnp.bfloat16
    # bfloat16 keeps 8 significant bits: one ulp is 2**-7 at 1. Over seeds 6-11
    # the weights moved by at most 4.3e-3 and the contexts (|c| <= 3.6, whose
    # own rounding to bf16 costs up to 1.4e-2) by at most 1.5e-2.
    if weights is not None:
        np.testing.assert_allclose(weights.astype(np.float32), want_weights, atol=1e-2)
    # (cosine's scale of 10 sharpens its weights: 1.2e-2 seen on a context of 0.09.)
    np.testing.assert_allclose(context.astype(np.float32), want_context, atol=2e-2, rtol=2**-7)


@pytest.mark.parametrize("kind", KINDS)
def test_multi_head_self_and_cross_attention(kind):
    apply, params = multi_head(kind)
    x, y, _ = random_inputs(7)
    has_weights = attn.lookup(kind).supports("weights")
    out, weights = apply(params, x)
    assert out.shape == x.shape and np.isfinite(out).all()
    assert weights.shape == (BATCH, 2, Q_LEN, Q_LEN) if has_weights else weights is None
    if not attn.lookup(kind).supports("cross"):
        with pytest.raises(ValueError, match="cannot do keys and values from another sequence"):
            apply(params, x, y)
        return
    out, weights = apply(params, x, y, mask=key_mask([K_LEN, 2, 5]))
    assert out.shape == x.shape and np.isfinite(out).all()
    if has_weights:
        assert weights.shape == (BATCH, 2, Q_LEN, K_LEN)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        assert (weights[1, :, :, 2:] == 0).all()


def test_a_new_kind_is_one_function_and_one_line():
    @attn.register("negative_distance", same_features=True)
    def negative_distance(query, key):
        """Closer keys score higher: -|q - k|^2."""
        return -jnp.sum((query[..., :, None, :] - key[..., None, :, :]) ** 2, -1)

    try:
        assert "negative_distance" in attn.available()
        q, k, v = random_inputs(8)
        module = attn.get("negative_distance")
        context, weights = module.apply({}, q, k, v)
        # The nearest key gets the largest weight.
        distances = ((q[:, :, None] - k[:, None]) ** 2).sum(-1)
        np.testing.assert_array_equal(weights.argmax(-1), distances.argmin(-1))
        out, _ = attn.MultiHeadAttention(num_heads=2, kind="negative_distance").init_with_output(
            jax.random.key(0), q
        )[0]
        assert out.shape == q.shape
    finally:
        attn.unregister("negative_distance")
    assert "negative_distance" not in attn.available()
