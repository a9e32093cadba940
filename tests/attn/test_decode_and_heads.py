"""MultiHeadAttention's decode mode and grouped-query heads, for every registered kind.

Parametrised over `attn.available()` at collection time, so a new kind is
checked here with no edit to this file.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn

BATCH, LENGTH, MEMORY, FEATURES, HEADS = 2, 5, 4, 8, 4


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(BATCH, LENGTH, FEATURES)), jnp.float32)
    memory = jnp.asarray(rng.normal(size=(BATCH, MEMORY, FEATURES)), jnp.float32)
    return x, memory


def decoding_kinds():
    return attn.available("decode", "causal")


def step_through(module, params, x, *, memory=None, memory_mask=None, implementation=None):
    """Feeds x one position at a time through `module` in decode mode."""
    module = module.clone(
        decode=True, **({"implementation": implementation} if implementation else {})
    )
    if memory is None:
        _, cache = module.apply(params, jnp.zeros_like(x), is_causal=True, mutable=["cache"])
    else:
        _, cache = module.apply(params, x[:, :1], memory, mask=memory_mask, mutable=["cache"])
    outputs = []
    for t in range(x.shape[1]):
        args = (x[:, t : t + 1],) if memory is None else (x[:, t : t + 1], memory)
        (out, _), cache = module.apply(
            {**params, **cache}, *args, mask=memory_mask, mutable=["cache"]
        )
        outputs.append(out)
    return jnp.concatenate(outputs, axis=1), cache


@pytest.mark.parametrize("kind", decoding_kinds())
def test_cached_self_attention_steps_equal_the_causal_pass(kind):
    x, _ = inputs(1)
    mha = attn.MultiHeadAttention(HEADS, kind)
    params = mha.init(jax.random.key(0), x)
    want, _ = mha.apply(params, x, is_causal=True)
    got, cache = step_through(mha, params, x)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    assert int(cache["cache"]["cache_index"]) == LENGTH


@pytest.mark.parametrize("kind", attn.available("decode", "cross"))
def test_cached_cross_attention_steps_equal_the_full_pass(kind):
    x, memory = inputs(2)
    memory_mask = jnp.array([[True] * MEMORY, [True, True, False, False]])[:, None, None, :]
    mha = attn.MultiHeadAttention(HEADS, kind)
    params = mha.init(jax.random.key(0), x, memory)
    want, _ = mha.apply(params, x, memory, mask=memory_mask)
    got, cache = step_through(mha, params, x, memory=memory, memory_mask=memory_mask)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    # The memory's keys are projected once, at the first call, and kept.
    kernel = params["params"]["key"]["kernel"]
    projected = jnp.einsum("bsf,fhd->bshd", memory, kernel) + params["params"]["key"]["bias"]
    np.testing.assert_allclose(cache["cache"]["cached_key"], projected, atol=1e-5)


def test_cross_attention_reuses_the_cached_memory():
    """After the first call, the memory given is not read: the cache is."""
    x, memory = inputs(3)
    mha = attn.MultiHeadAttention(HEADS, decode=True)
    params = mha.init(jax.random.key(0), x[:, :1], memory)
    _, cache = mha.apply(params, x[:, :1], memory, mutable=["cache"])
    (first, _), _ = mha.apply({**params, **cache}, x[:, :1], memory, mutable=["cache"])
    (other, _), _ = mha.apply({**params, **cache}, x[:, :1], memory * 0 + 5, mutable=["cache"])
    np.testing.assert_array_equal(first, other)


def test_cached_decoding_honours_the_implementation():
    x, _ = inputs(4)
    mha = attn.MultiHeadAttention(HEADS, "scaled_dot")
    params = mha.init(jax.random.key(0), x)
    want, _ = mha.apply(params, x, is_causal=True)
    got, _ = step_through(mha, params, x, implementation="blockwise")
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)


def test_chunks_of_several_positions_decode_causally():
    x, _ = inputs(5)
    mha = attn.MultiHeadAttention(HEADS)
    params = mha.init(jax.random.key(0), x)
    want, _ = mha.apply(params, x, is_causal=True)
    module = mha.clone(decode=True)
    _, cache = module.apply(params, jnp.zeros_like(x), mutable=["cache"])
    (head, _), cache = module.apply({**params, **cache}, x[:, :3], mutable=["cache"])
    (tail, _), cache = module.apply({**params, **cache}, x[:, 3:], mutable=["cache"])
    np.testing.assert_allclose(jnp.concatenate([head, tail], 1), want, atol=2e-5, rtol=2e-5)


def _grouped_reference(params, x, num_heads, num_kv_heads):
    """Float64 grouped-query attention from the parameters, in NumPy."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    x = np.asarray(x, np.float64)
    project = lambda name: np.einsum("blf,fhd->blhd", x, p[name]["kernel"]) + p[name]["bias"]
    q, k, v = project("query"), project("key"), project("value")
    group = num_heads // num_kv_heads
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    logits = logits - logits.max(-1, keepdims=True)
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    context = np.einsum("bhqk,bkhd->bqhd", weights, v)
    return np.einsum("bqhd,hdf->bqf", context, p["out"]["kernel"]) + p["out"]["bias"]


@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
def test_grouped_query_heads_match_a_float64_reference(num_kv_heads):
    x, _ = inputs(6)
    mha = attn.MultiHeadAttention(HEADS, num_kv_heads=num_kv_heads)
    params = mha.init(jax.random.key(1), x)
    assert params["params"]["key"]["kernel"].shape == (FEATURES, num_kv_heads, FEATURES // HEADS)
    got, weights = mha.apply(params, x)
    np.testing.assert_allclose(got, _grouped_reference(params, x, HEADS, num_kv_heads), atol=1e-5)
    assert weights.shape == (BATCH, HEADS, LENGTH, LENGTH)
    # The decoding cache holds the key/value heads only.
    _, cache = step_through(mha, params, x)
    assert cache["cache"]["cached_key"].shape == (BATCH, LENGTH, num_kv_heads, FEATURES // HEADS)


def test_bad_head_counts_and_inputs_are_one_line_errors():
    x, memory = inputs(7)
    with pytest.raises(
        ValueError, match=r"num_kv_heads=3 must divide num_heads=4; valid: \[1, 2, 4\]"
    ):
        attn.MultiHeadAttention(HEADS, num_kv_heads=3).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="inputs_v was given without inputs_k"):
        attn.MultiHeadAttention(HEADS).init(jax.random.key(0), x, inputs_v=x)


@pytest.mark.parametrize("kind", attn.available())
def test_auto_runs_every_kind(kind):
    x, _ = inputs(8)
    mha = attn.MultiHeadAttention(HEADS, kind)
    params = mha.init(jax.random.key(0), x)
    want, _ = mha.apply(params, x)
    got, _ = mha.clone(implementation="auto").apply(params, x)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
