"""Chunked additive attention against the float64 reference and the materialising form."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import additive_chunked, masking
from attn.modules import Score
from tests.attn import numpy_reference as ref
from tests.attn.program_shapes import intermediate_shapes

BATCH, HEADS, Q_LEN, K_LEN, FEATURES, HIDDEN = 2, 2, 11, 13, 6, 5


def arrays(rng, q_len=Q_LEN, k_len=K_LEN):
    q = rng.normal(size=(BATCH, HEADS, q_len, FEATURES)).astype(np.float32)
    k = rng.normal(size=(BATCH, HEADS, k_len, FEATURES)).astype(np.float32)
    v = rng.normal(size=(BATCH, HEADS, k_len, 3)).astype(np.float32)
    kernels = dict(
        query_kernel=rng.normal(size=(HEADS, FEATURES, HIDDEN)).astype(np.float32) / 2,
        key_kernel=rng.normal(size=(HEADS, FEATURES, HIDDEN)).astype(np.float32) / 2,
        energy_kernel=rng.normal(size=(HEADS, HIDDEN)).astype(np.float32),
    )
    return q, k, v, kernels


def materialising(q, k, v, kernels, mask=None, bias=None):
    """What the 'xla' implementation of the modules computes (attn.scores.additive)."""
    params = {
        "query_proj": {"kernel": kernels["query_kernel"]},
        "key_proj": {"kernel": kernels["key_kernel"]},
        "energy": {"kernel": kernels["energy_kernel"]},
    }
    features = {"features": kernels["energy_kernel"].shape[-1]}
    logits = Score("additive", features).apply({"params": params}, q, k)
    weights = masking.attention_weights(logits, mask=mask, bias=bias)
    return jnp.einsum("bhqk,bhkd->bhqd", weights, v)


def reference(q, k, v, kernels, mask):
    """Float64, one head and batch element at a time (tests/attn/numpy_reference.py)."""
    out = np.zeros(q.shape[:3] + (v.shape[-1],))
    full = np.broadcast_to(mask, q.shape[:3] + (k.shape[2],))
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            params = {
                "query_proj": np.float64(kernels["query_kernel"][h]),
                "key_proj": np.float64(kernels["key_kernel"][h]),
                "energy": np.float64(kernels["energy_kernel"][h]),
            }
            logits = ref.additive(np.float64(q[b, h]), np.float64(k[b, h]), params)
            out[b, h] = ref.masked_softmax(logits, full[b, h]) @ v[b, h]
    return out


def test_forward_and_gradients_with_masks_causal_and_lengths():
    rng = np.random.default_rng(1)
    q, k, v, kernels = arrays(rng)
    mask = rng.random((BATCH, 1, Q_LEN, K_LEN)) < 0.7
    mask[0, 0, 4] = False  # a query that sees nothing
    q_lens, kv_lens = np.array([Q_LEN, 6], np.int32), np.array([9, K_LEN], np.int32)
    lengths = dict(query_seq_lengths=q_lens, key_value_seq_lengths=kv_lens)
    full = (
        mask
        & np.tril(np.ones((Q_LEN, K_LEN), bool))
        & (np.arange(Q_LEN)[:, None] < q_lens[:, None, None, None])
        & (np.arange(K_LEN) < kv_lens[:, None, None, None])
    )

    def chunked(q, k, v, kernels):
        # 4 x 8 chunks divide neither length.
        return additive_chunked.additive_attention(
            q, k, v, **kernels, mask=mask, is_causal=True, **lengths, block_q=4, block_k=8
        )

    loss = lambda fn: jax.grad(lambda *a: (fn(*a) ** 2).sum(), argnums=(0, 1, 2, 3))
    got, got_grads = jax.jit(lambda *a: (chunked(*a), loss(chunked)(*a)))(q, k, v, kernels)
    np.testing.assert_allclose(got, reference(q, k, v, kernels, full), atol=2e-5, rtol=2e-5)
    assert (np.asarray(got)[0, :, 4] == 0).all() and (np.asarray(got)[1, :, 6:] == 0).all()

    naive = lambda *a: materialising(*a, mask=full)
    want_grads = jax.jit(loss(naive))(q, k, v, kernels)
    for g, w in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=5e-5)


def test_bias_and_bfloat16_values():
    rng = np.random.default_rng(2)
    q, k, v, kernels = arrays(rng)
    bias = rng.normal(size=(1, HEADS, Q_LEN, K_LEN)).astype(np.float32)
    got = additive_chunked.additive_attention(q, k, v, **kernels, bias=bias, block_q=8, block_k=4)
    np.testing.assert_allclose(got, materialising(q, k, v, kernels, bias=bias), atol=2e-5)
    half = additive_chunked.additive_attention(q, k, jnp.asarray(v, jnp.bfloat16), **kernels)
    assert half.dtype == jnp.bfloat16
    want = materialising(q, k, v, kernels)
    np.testing.assert_allclose(half.astype(np.float32), want, atol=5e-2, rtol=5e-2)


def test_modules_share_parameters_and_results():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(BATCH, Q_LEN, 8)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(BATCH, K_LEN, 8)), jnp.float32)
    key_mask = attn.padding_mask(attn.lengths_to_valid(jnp.array([K_LEN, 4]), K_LEN))
    options = {"features": HIDDEN}
    for make in (
        lambda impl: attn.MultiHeadAttention(2, "additive", options, implementation=impl),
        lambda impl: attn.get("additive", implementation=impl, **options),
    ):
        xla, chunked = make("xla"), make("blockwise")
        inputs = (x, y) if isinstance(xla, attn.MultiHeadAttention) else (x, y, y)
        params = jax.jit(xla.init)(jax.random.key(0), *inputs)
        same = jax.jit(chunked.init)(jax.random.key(0), *inputs)
        assert jax.tree.structure(params) == jax.tree.structure(same)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(same)):
            np.testing.assert_array_equal(a, b)
        out, weights = jax.jit(xla.apply)(params, *inputs, mask=key_mask)
        got, no_weights = jax.jit(chunked.apply)(params, *inputs, mask=key_mask)
        assert no_weights is None and weights is not None
        np.testing.assert_allclose(got, out, atol=2e-5, rtol=2e-5)


def test_memory_is_a_tenth_of_the_materialising_form():
    """XLA's compiled plans for forward+backward at 512 x 512 pairs, 128 features."""
    n, hidden = 512, 128
    shapes = (
        jax.ShapeDtypeStruct((1, 1, n, 32), jnp.float32),
        jax.ShapeDtypeStruct((1, 1, n, 32), jnp.float32),
        jax.ShapeDtypeStruct((1, 1, n, 32), jnp.float32),
        dict(
            query_kernel=jax.ShapeDtypeStruct((1, 32, hidden), jnp.float32),
            key_kernel=jax.ShapeDtypeStruct((1, 32, hidden), jnp.float32),
            energy_kernel=jax.ShapeDtypeStruct((1, hidden), jnp.float32),
        ),
    )

    def plan(fn):
        grad = jax.grad(lambda *a: fn(*a).sum(), argnums=(0, 1, 2, 3))
        stats = jax.jit(grad).lower(*shapes).compile().memory_analysis()
        return stats.temp_size_in_bytes + stats.output_size_in_bytes

    chunked = lambda q, k, v, kernels: additive_chunked.additive_attention(q, k, v, **kernels)
    hidden_bytes = n * n * hidden * 4
    assert plan(materialising) > hidden_bytes
    assert plan(chunked) < plan(materialising) / 10


def test_default_chunks_fit_the_budget():
    block_q, block_k = additive_chunked.default_blocks(4, 1024, 1024, 256)
    assert 4 * block_q * block_k * 256 <= additive_chunked.CHUNK_ELEMENTS
    assert additive_chunked.default_blocks(1, 5, 7, 8) == (5, 7)


def test_bad_kernels_are_named():
    q, k, v, kernels = arrays(np.random.default_rng(4))
    kernels["key_kernel"] = kernels["key_kernel"][:, :4]
    with pytest.raises(ValueError, match=r"key_kernel has shape \(2, 4, 5\).*\(2, 6, 5\)"):
        additive_chunked.additive_attention(q, k, v, **kernels)
    with pytest.raises(ValueError, match=r"\[batch, heads, length, features\]"):
        additive_chunked.additive_attention(q[0], k, v, **arrays(np.random.default_rng(5))[3])


def test_default_blocks_by_hand():
    """Powers of two whose hidden chunk (batch*heads x block_q x block_k x features) fits 2**19."""
    # 2**19 / (1 * 64 * 256) = 32 query rows of 64 keys at 256 features.
    assert additive_chunked.default_blocks(1, 1000, 1000, 256) == (32, 64)
    # 2**19 / (4 * 64 * 100) = 20.48 -> the power of two below, 16.
    assert additive_chunked.default_blocks(4, 1000, 1000, 100) == (16, 64)
    # One feature, one key: 2**19 query rows, capped by q_len only.
    assert additive_chunked.default_blocks(1, 2**20, 1, 1) == (2**19, 1)
    # Never under 8 query rows (more than a chunk then), never over q_len.
    assert additive_chunked.default_blocks(64, 1000, 1000, 512) == (8, 64)
    assert additive_chunked.default_blocks(1, 5, 3, 4) == (5, 3)


def test_shape_errors_name_each_mismatch_alone():
    rng = np.random.default_rng(21)
    q, k, v, kernels = arrays(rng)
    for bad_value in (v[:1], v[:, :, :-1]):  # batch alone, length alone
        with pytest.raises(ValueError, match="must share batch and heads, and key and value"):
            additive_chunked.additive_attention(q, k, bad_value, **kernels)
    one_d_energy = {**kernels, "energy_kernel": kernels["energy_kernel"][0]}
    with pytest.raises(ValueError, match=r"energy_kernel has shape \(5,\)"):
        additive_chunked.additive_attention(q, k, v, **one_d_energy)


@pytest.mark.parametrize("features", [0, -1, 2.5, "4"])
def test_additive_kernels_refuse_what_is_not_a_positive_integer(features):
    q, k = jnp.zeros((1, 2, 3, 4)), jnp.zeros((1, 2, 5, 4))
    kernels = additive_chunked.AdditiveKernels(features)
    with pytest.raises(ValueError, match=f"positive integer `features`, got {features!r}"):
        kernels.init(jax.random.key(0), q, k)


def test_additive_kernels_take_a_single_hidden_unit():
    q, k = jnp.zeros((1, 2, 3, 4)), jnp.zeros((1, 2, 5, 4))
    params = additive_chunked.AdditiveKernels(1).init(jax.random.key(0), q, k)["params"]
    assert params["energy"]["kernel"].shape == (2, 1)


def test_chunked_form_is_not_causal_unless_asked():
    rng = np.random.default_rng(22)
    q, k, v = (jnp.asarray(rng.normal(size=(1, 1, 6, 4)), jnp.float32) for _ in "qkv")

    class Form(nn.Module):
        is_causal: bool | None = None

        @nn.compact
        def __call__(self, q, k, v):
            extra = {} if self.is_causal is None else {"is_causal": self.is_causal}
            return additive_chunked.chunked_form(q, k, v, **extra)

    params = Form().init(jax.random.key(0), q, k, v)
    default = Form().apply(params, q, k, v)
    np.testing.assert_array_equal(default, Form(False).apply(params, q, k, v))
    assert np.abs(np.asarray(default - Form(True).apply(params, q, k, v))).max() > 1e-3


def test_auto_takes_the_materialising_form_up_to_64_by_64_pairs():
    shapes = dict(batch_heads=1, head_dim=8, value_dim=8, dtype=jnp.float32, backend="cpu")
    choose = attn.implementations.choose
    assert choose("additive", q_len=64, k_len=64, **shapes) == "xla"
    assert choose("additive", q_len=65, k_len=64, **shapes) == "blockwise"
    assert choose("additive", q_len=64, k_len=65, **shapes) == "blockwise"
    assert choose("additive", q_len=2, k_len=2, **shapes) == "xla"


def test_the_block_sizes_given_are_the_chunks_it_forms():
    rng = np.random.default_rng(23)
    q, k, v, kernels = arrays(rng)

    def hidden_chunks(**blocks):
        run = lambda q, k, v: additive_chunked.additive_attention(q, k, v, **kernels, **blocks)
        shapes = intermediate_shapes(run, q, k, v)
        return {s[-3:] for s in shapes if len(s) == 5 and s[-1] == HIDDEN}

    given = hidden_chunks(block_q=4, block_k=8)
    assert (4, 8, HIDDEN) in given and (Q_LEN, K_LEN, HIDDEN) not in given
    # Without sizes, the defaults: every query against every key at these lengths.
    default = hidden_chunks()
    assert (Q_LEN, K_LEN, HIDDEN) in default and (4, 8, HIDDEN) not in default
