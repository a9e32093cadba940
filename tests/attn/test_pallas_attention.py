"""The Pallas flash-attention kernels, run by the Pallas interpreter on CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from tests.attn import numpy_reference as ref


def qkv(rng, q_len=21, k_len=27, heads=4, kv_heads=2, head_dim=16, dtype=np.float32):
    q = rng.normal(size=(2, q_len, heads, head_dim)).astype(dtype)
    k = rng.normal(size=(2, k_len, kv_heads, head_dim)).astype(dtype)
    v = rng.normal(size=(2, k_len, kv_heads, head_dim)).astype(dtype)
    return q, k, v


def with_grads(fn, kwargs, argnums=(0, 1, 2)):
    loss = lambda *a: (fn(*a, **kwargs).astype(jnp.float32) ** 2).sum()
    return jax.jit(lambda *a: (fn(*a, **kwargs), jax.grad(loss, argnums)(*a)))


def flash(*args, **kwargs):
    # Blocks of 8 divide neither length; interpret mode runs on CPU.
    return attn.flash_attention(*args, **kwargs, block_q=8, block_k=8, interpret=True)


def test_kernels_match_reference_with_mask_causal_lengths_and_fully_masked_rows():
    """Forward kernel and both backward kernels (no bias), grouped-query heads."""
    rng = np.random.default_rng(1)
    q, k, v = qkv(rng)
    mask = rng.random((2, 1, 21, 27)) < 0.7
    mask[0, 0, 3] = False  # one query that sees nothing
    q_lens, kv_lens = np.array([21, 11], np.int32), np.array([30, 13], np.int32)
    kwargs = dict(
        mask=mask, is_causal=True, query_seq_lengths=q_lens, key_value_seq_lengths=kv_lens
    )
    out, grads = with_grads(flash, kwargs)(q, k, v)

    full = mask & np.tril(np.ones((21, 27), bool))
    full = full & (np.arange(21)[:, None] < q_lens[:, None, None, None])
    full = full & (np.arange(27) < kv_lens[:, None, None, None])
    np.testing.assert_allclose(out, ref.dot_product_attention(q, k, v, mask=full), atol=2e-5)
    assert (np.asarray(out)[0, 3] == 0).all() and (np.asarray(out)[1, 11:] == 0).all()

    _, want = with_grads(attn.dot_product_attention, kwargs)(q, k, v)
    for g, w in zip(grads, want):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=5e-5)
    assert (np.asarray(grads[0])[0, 3] == 0).all()


def test_bias_gradients_through_the_blockwise_backward():
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng, kv_heads=4)
    bias = rng.normal(size=(1, 4, 21, 27)).astype(np.float32)
    run = lambda fn: lambda q, k, v, bias: fn(q, k, v, bias=bias, is_causal=True)
    _, got = with_grads(run(flash), {}, argnums=(0, 1, 2, 3))(q, k, v, bias)
    _, want = with_grads(run(attn.dot_product_attention), {}, argnums=(0, 1, 2, 3))(q, k, v, bias)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=5e-5)


def test_bfloat16_and_unbatched():
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng, q_len=16, k_len=16)
    bf16 = [jnp.asarray(a, jnp.bfloat16) for a in (q, k, v)]
    got = jax.jit(lambda q, k, v: flash(q, k, v, is_causal=True))(*(a[0] for a in bf16))
    assert got.dtype == jnp.bfloat16 and got.shape == (16, 4, 16)
    want = ref.dot_product_attention(q[:1], k[:1], v[:1], causal=True)[0]
    np.testing.assert_allclose(got.astype(np.float32), want, atol=5e-2, rtol=5e-2)


def test_block_sizes_must_be_powers_of_two():
    q, k, v = qkv(np.random.default_rng(4))
    with pytest.raises(ValueError, match="block_k must be a power of two, got 24"):
        attn.flash_attention(q, k, v, block_k=24, interpret=True)
