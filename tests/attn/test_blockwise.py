"""attn.blockwise_attention against the float64 reference, jax.nn and the xla path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import blockwise
from tests.attn import numpy_reference as ref


def qkv(rng, batch=2, q_len=13, k_len=19, heads=4, kv_heads=4, head_dim=8, dtype=np.float32):
    q = rng.normal(size=(batch, q_len, heads, head_dim)).astype(dtype)
    k = rng.normal(size=(batch, k_len, kv_heads, head_dim)).astype(dtype)
    v = rng.normal(size=(batch, k_len, kv_heads, head_dim)).astype(dtype)
    return q, k, v


def lengths_mask(q_lens, kv_lens, q_len, k_len):
    """The `[batch, 1, q_len, k_len]` mask that sequence lengths stand for."""
    q_ok = np.arange(q_len)[None, :] < np.asarray(q_lens)[:, None]
    k_ok = np.arange(k_len)[None, :] < np.asarray(kv_lens)[:, None]
    return (q_ok[:, :, None] & k_ok[:, None, :])[:, None]


# Block sizes 4 x 8 divide neither length (13 queries, 19 keys), so every case
# also covers padded last blocks; the causal cases skip blocks.
CASES = {
    "mask_bias": dict(mask=True, bias=True),
    # Non-causal, so keys past k_len would count if lengths were not clipped.
    "lengths_beyond_the_keys": dict(lengths=True),
    "causal_multi_query_more_keys_key_bias": dict(is_causal=True, kv_heads=1, bias="keys"),
    "causal_grouped_lengths_mask_scale": dict(
        is_causal=True, kv_heads=2, k_len=13, lengths=True, mask="heads", scale=0.3
    ),
}


def case_arguments(rng, case):
    options = dict(CASES[case])
    shape = {k: options.pop(k) for k in ("k_len", "kv_heads") if k in options}
    q, k, v = qkv(rng, **shape)
    batch, q_len, heads, _ = q.shape
    k_len = k.shape[1]
    kwargs, full_mask = {}, np.ones((batch, heads, q_len, k_len), bool)
    bias_kind = options.pop("bias", False)
    if bias_kind:  # one bias per key, shared by heads and queries, or a full one
        shape = (batch, 1, 1, k_len) if bias_kind == "keys" else (1, heads, q_len, k_len)
        kwargs["bias"] = rng.normal(size=shape).astype(np.float32)
    mask_kind = options.pop("mask", False)
    if mask_kind:
        mask = rng.random((batch, 1 if mask_kind == "heads" else heads, q_len, k_len)) < 0.6
        mask[..., 0] = True
        kwargs["mask"] = mask
        full_mask &= mask
    if options.pop("lengths", False):
        q_lens = np.array([q_len, 9], np.int32)
        kv_lens = np.array([11, k_len + 4], np.int32)  # longer than k_len: all valid
        kwargs["query_seq_lengths"], kwargs["key_value_seq_lengths"] = q_lens, kv_lens
        full_mask &= lengths_mask(q_lens, kv_lens, q_len, k_len)
    kwargs.update(options)
    return (q, k, v), kwargs, full_mask


def forward_and_grads(fn, kwargs):
    """Jitted `(q, k, v, bias) -> (out, grads of q, k, v and bias)` for `fn`."""

    def run(q, k, v, bias):
        extra = {} if bias is None else {"bias": bias}
        return fn(q, k, v, **{key: a for key, a in kwargs.items() if key != "bias"}, **extra)

    loss = lambda *args: (run(*args).astype(jnp.float32) ** 2).sum()
    argnums = (0, 1, 2) if kwargs.get("bias") is None else (0, 1, 2, 3)
    return jax.jit(lambda *args: (run(*args), jax.grad(loss, argnums)(*args)))


def blocked(block_q=4, block_k=8):
    return lambda *a, **kw: attn.blockwise_attention(*a, **kw, block_q=block_q, block_k=block_k)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_gradients_match_reference_and_xla(case):
    rng = np.random.default_rng(1)
    (q, k, v), kwargs, full_mask = case_arguments(rng, case)
    bias = kwargs.get("bias")
    got, got_grads = forward_and_grads(blocked(), kwargs)(q, k, v, bias)
    want = ref.dot_product_attention(
        q,
        k,
        v,
        mask=full_mask,
        bias=bias,
        scale=kwargs.get("scale"),
        causal=kwargs.get("is_causal", False),
    )
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    # Every query keeps a key here, so jax.nn's XLA path agrees too.
    np.testing.assert_allclose(
        got, jax.nn.dot_product_attention(q, k, v, **kwargs), atol=2e-5, rtol=2e-5
    )
    _, want_grads = forward_and_grads(attn.dot_product_attention, kwargs)(q, k, v, bias)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=5e-5)


@pytest.mark.parametrize("blocks", [(4, 8), (64, 64)], ids=["blocks", "one_block"])
def test_fully_masked_rows_are_zero_with_finite_zero_gradients(blocks):
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng)
    mask = np.ones((2, 4, 13, 19), bool)
    mask[1, 2, 3] = False  # one query of one head sees nothing
    mask[0, :, 5:9] = False  # whole rows across heads, spanning a block edge
    kv_lens = np.array([19, 0])  # batch 1 sees no key at all

    kwargs = dict(mask=mask, key_value_seq_lengths=kv_lens)
    out, grads = forward_and_grads(blocked(*blocks), kwargs)(q, k, v, None)
    out = np.asarray(out)
    assert np.isfinite(out).all()
    assert (out[1] == 0).all() and (out[0, 5:9] == 0).all()
    assert all(np.isfinite(g).all() for g in grads)
    assert (grads[0][1] == 0).all() and (grads[0][0, 5:9] == 0).all()
    assert (grads[1][1] == 0).all() and (grads[2][1] == 0).all()
    keep = mask.copy()
    keep[1] = False
    want = ref.dot_product_attention(q, k, v, mask=keep)
    np.testing.assert_allclose(out, want, atol=2e-5, rtol=2e-5)


def test_bfloat16_within_its_tolerance():
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng, kv_heads=2)
    want = ref.dot_product_attention(q, k, v, causal=True)
    bf16 = [jnp.asarray(a, jnp.bfloat16) for a in (q, k, v)]
    got = attn.blockwise_attention(*bf16, is_causal=True, block_q=4, block_k=8)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(np.float32), want, atol=5e-2, rtol=5e-2)
    grads = jax.grad(
        lambda q: (
            attn.blockwise_attention(q, *bf16[1:], block_q=4, block_k=8).astype(jnp.float32).sum()
        )
    )(bf16[0])
    assert grads.dtype == jnp.bfloat16 and np.isfinite(grads.astype(np.float32)).all()


def test_unbatched_and_vmapped_with_lengths():
    rng = np.random.default_rng(4)
    q, k, v = qkv(rng)
    got = jax.jit(lambda q, k, v: blocked()(q, k, v, is_causal=True))(q[0], k[0], v[0])
    want = attn.dot_product_attention(q[0], k[0], v[0], is_causal=True)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    lens = jnp.array([[3], [19]])
    vmapped = jax.jit(jax.vmap(lambda q, k, v, n: blocked()(q, k, v, key_value_seq_lengths=n)))(
        q[:, None], k[:, None], v[:, None], lens
    )
    for b in range(2):
        want = attn.dot_product_attention(
            q[b : b + 1], k[b : b + 1], v[b : b + 1], key_value_seq_lengths=lens[b]
        )
        np.testing.assert_allclose(vmapped[b], want, atol=2e-5, rtol=2e-5)


def test_training_memory_is_linear_in_length():
    """XLA's own memory plan for forward+backward, compiled but not run."""

    def plan(fn, length):
        shape = jax.ShapeDtypeStruct((1, length, 2, 32), jnp.float32)
        grad = jax.grad(lambda q, k, v: fn(q, k, v).sum(), argnums=(0, 1, 2))
        stats = jax.jit(grad).lower(shape, shape, shape).compile().memory_analysis()
        return stats.temp_size_in_bytes + stats.output_size_in_bytes

    # The materialised form holds at least the float32 logits, 2 x 4096 x 4096.
    logits_bytes = 2 * 4096 * 4096 * 4
    assert plan(attn.blockwise_attention, 4096) < logits_bytes / 8
    assert plan(attn.blockwise_attention, 8192) < 2.2 * plan(attn.blockwise_attention, 4096)


def test_bad_arguments_are_named():
    q, k, v = qkv(np.random.default_rng(5))
    with pytest.raises(ValueError, match="block_q must be a positive integer, got 0"):
        attn.blockwise_attention(q, k, v, block_q=0)
    with pytest.raises(ValueError, match=r"key_value_seq_lengths .*\(2,\).*\(3,\)"):
        attn.blockwise_attention(q, k, v, key_value_seq_lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="multiple of the number of key/value heads"):
        attn.blockwise_attention(q[:, :, :3], k, v)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 4, 13, 18\)"):
        attn.blockwise_attention(q, k, v, mask=np.ones((2, 4, 13, 18), bool))
    assert blockwise.default_blocks("cpu") == blockwise.DEFAULT_BLOCKS["cpu"]
    assert blockwise.default_blocks("cpu", is_causal=True) == blockwise.CAUSAL_BLOCKS["cpu"]
    assert blockwise.default_blocks("cpu", batch_heads=16) == (128, 128)
    assert blockwise.default_blocks("gpu", batch_heads=16) == blockwise.DEFAULT_BLOCKS["gpu"]
