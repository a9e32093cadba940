"""Rotary embeddings, ALiBi, T5's relative bias and QK-norm: against hand-computed values and float64
NumPy, and in `MultiHeadAttention`, where cached decoding must equal the full pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import positions


def numpy_rotary(x, pos, base=10000.0):
    """Each feature pair (k, k + d/2) rotated by pos * base^(-2k/d), by 2x2 matrices."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    half = x.shape[-1] // 2
    for t, p in enumerate(pos):
        for k in range(half):
            angle = p * base ** (-2 * k / x.shape[-1])
            c, s = np.cos(angle), np.sin(angle)
            a, b = x[:, t, :, k], x[:, t, :, k + half]
            out[:, t, :, k], out[:, t, :, k + half] = c * a - s * b, s * a + c * b
    return out


def test_rotary_matches_the_float64_rotation_and_keeps_norms():
    x = np.random.default_rng(0).normal(size=(2, 5, 3, 8))
    pos = np.array([0, 1, 2, 7, 30])
    with jax.enable_x64(True):
        got = np.asarray(positions.rotary(jnp.asarray(x), pos))
    np.testing.assert_allclose(got, numpy_rotary(x, pos), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(x, axis=-1))
    np.testing.assert_array_equal(got[:, 0], x[:, 0])  # position 0: no rotation
    with pytest.raises(ValueError, match="even head_dim; got 7"):
        positions.rotary(jnp.ones((1, 2, 1, 7)), np.arange(2))


def test_rotary_dot_products_depend_only_on_the_offset():
    rng = np.random.default_rng(1)
    q, k = (jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32) for _ in range(2))
    dots = [
        float(jnp.sum(positions.rotary(q, [i]) * positions.rotary(k, [j])))
        for i, j in ((3, 1), (10, 8), (102, 100))
    ]
    np.testing.assert_allclose(dots, dots[0], rtol=1e-5)
    assert abs(float(jnp.sum(positions.rotary(q, [5]) * positions.rotary(k, [1]))) - dots[0]) > 1e-3


def test_alibi_slopes_and_bias_by_hand():
    np.testing.assert_allclose(positions.alibi_slopes(8), [2.0**-i for i in range(1, 9)])
    # 6 heads: the 4-head slopes, then every other 8-head slope.
    np.testing.assert_allclose(
        positions.alibi_slopes(6), [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    )
    bias = positions.alibi_bias(2, np.arange(3), np.arange(4))
    want_head0 = -(2.0**-4) * np.abs(np.arange(3)[:, None] - np.arange(4)[None, :])
    np.testing.assert_allclose(bias[0], want_head0)
    assert bias.shape == (2, 3, 4)


def step_by_step(module, x):
    """Cached decoding of `x` one position at a time: `[batch, length, features]`."""
    cache = module.init(jax.random.key(0), x, decode=True)["cache"]
    params = module.init(jax.random.key(1), x, is_causal=True)["params"]
    outs = []
    for t in range(x.shape[1]):
        (out, _), updated = module.apply(
            {"params": params, "cache": cache}, x[:, t : t + 1], decode=True, mutable=["cache"]
        )
        cache = updated["cache"]
        outs.append(out)
    return params, jnp.concatenate(outs, axis=1)


@pytest.mark.parametrize(
    "kind, settings",
    [
        ("scaled_dot", dict(rotary=True)),
        ("scaled_dot", dict(alibi=True, qk_norm=True)),
        ("linear", dict(rotary=True, qk_norm=True)),
        ("scaled_dot", dict(relative_buckets=8, relative_max_distance=16)),
    ],
)
def test_cached_decoding_equals_the_causal_pass(kind, settings):
    module = attn.MultiHeadAttention(num_heads=2, kind=kind, **settings)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 6, 8)), jnp.float32)
    params, stepped = step_by_step(module, x)
    full, _ = module.apply({"params": params}, x, is_causal=True)
    np.testing.assert_allclose(stepped, full, atol=2e-5)
    # The positions matter: without them the output differs.
    plain = attn.MultiHeadAttention(num_heads=2, kind=kind)
    drop = {"query_norm", "key_norm", "relative_bias"}
    plain_out, _ = plain.apply(
        {"params": {k: v for k, v in params.items() if k not in drop}}, x, is_causal=True
    )
    assert not np.allclose(plain_out, full, atol=1e-4)


def test_rotary_self_attention_is_unchanged_by_shifting_every_position():
    """With rotary positions only, attention sees offsets: a shifted start changes nothing."""
    module = attn.MultiHeadAttention(num_heads=2, rotary=True)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 5, 8)), jnp.float32)
    params = module.init(jax.random.key(0), x)["params"]
    # Decoding from a cache whose first 4 slots are filled: queries and keys at 4..8.
    cache = module.init(jax.random.key(0), jnp.zeros((1, 9, 8)), decode=True)["cache"]
    cache = dict(cache, cache_index=jnp.array(4, jnp.int32))
    (shifted, _), _ = module.apply(
        {"params": params, "cache": cache},
        x,
        decode=True,
        mask=jnp.arange(9)[None, None, None, :] >= 4,  # only the new slots
        mutable=["cache"],
    )
    want, _ = module.apply({"params": params}, x, is_causal=True)  # positions 0..4
    np.testing.assert_allclose(shifted, want, atol=1e-5)


def test_qk_norm_makes_attention_blind_to_the_scale_of_queries_and_keys():
    module = attn.MultiHeadAttention(num_heads=2, qk_norm=True, use_bias=False)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(1, 5, 8)), jnp.float32)
    params = module.init(jax.random.key(0), x)["params"]
    assert params["query_norm"]["scale"].shape == (4,) and "bias" not in params["key_norm"]
    big = jax.tree.map(lambda p: p, params)
    big["query"]["kernel"] = params["query"]["kernel"] * 100
    big["key"]["kernel"] = params["key"]["kernel"] * 100
    np.testing.assert_allclose(
        module.apply({"params": big}, x)[0], module.apply({"params": params}, x)[0], atol=1e-4
    )


def test_positions_on_cross_attention_and_bias_free_kinds_are_one_line_errors():
    x = jnp.ones((1, 4, 8))
    with pytest.raises(ValueError, match="apply to self-attention") as error:
        attn.MultiHeadAttention(num_heads=2, rotary=True).init(jax.random.key(0), x, x)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="'linear' cannot do a float bias"):
        attn.MultiHeadAttention(num_heads=2, kind="linear", alibi=True).init(jax.random.key(0), x)


def test_t5_buckets_by_hand():
    """32 buckets up to distance 128: the first 8 of each half exact, then log-spaced."""
    bucket = lambda d, **kw: np.asarray(
        positions.relative_bucket(np.asarray(d), num_buckets=32, max_distance=128, **kw)
    ).tolist()
    # Keys before the query (distance key - query < 0) in buckets 0..15, after it 16..31.
    assert bucket([0, -1, -7, -8, -16, -32, -64, -127, -128, -5000], bidirectional=True) == [
        0, 1, 7, 8, 10, 12, 14, 15, 15, 15
    ]  # fmt: skip
    assert bucket([1, 7, 16, 5000], bidirectional=True) == [17, 23, 26, 31]
    # Causal: every bucket for keys behind; 16 exact, then log steps; later keys in bucket 0.
    assert bucket([0, -15, -16, -20, -64, -128, 3], bidirectional=False) == [
        0, 15, 16, 17, 26, 31, 0
    ]  # fmt: skip


@pytest.mark.parametrize("causal", [False, True])
def test_relative_bias_is_the_tables_entries_added_to_the_logits(causal):
    module = attn.MultiHeadAttention(num_heads=2, relative_buckets=8, relative_max_distance=16)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 7, 8)), jnp.float32)
    params = module.init(jax.random.key(0), x)["params"]
    table = np.random.default_rng(6).normal(size=(8, 2))
    params["relative_bias"]["table"] = jnp.asarray(table, jnp.float32)
    distance = np.arange(7)[None, :] - np.arange(7)[:, None]
    index = np.asarray(
        positions.relative_bucket(
            distance, num_buckets=8, max_distance=16, bidirectional=not causal
        )
    )
    bias = jnp.asarray(table[index].transpose(2, 0, 1)[None], jnp.float32)  # [1, heads, q, k]
    got, weights = module.apply({"params": params}, x, is_causal=causal)
    plain = attn.MultiHeadAttention(num_heads=2)
    rest = {k: v for k, v in params.items() if k != "relative_bias"}
    want, want_weights = plain.apply({"params": rest}, x, bias=bias, is_causal=causal)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    assert not np.allclose(got, plain.apply({"params": rest}, x, is_causal=causal)[0], atol=1e-3)
