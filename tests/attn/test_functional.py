"""attn.dot_product_attention against jax.nn and the float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from tests.attn import numpy_reference as ref
from tests.attn.program_shapes import intermediate_shapes


def inputs(rng, batch=2, q_len=5, k_len=7, heads=4, kv_heads=4, head_dim=8, dtype=np.float32):
    q = rng.normal(size=(batch, q_len, heads, head_dim)).astype(dtype)
    k = rng.normal(size=(batch, k_len, kv_heads, head_dim)).astype(dtype)
    v = rng.normal(size=(batch, k_len, kv_heads, head_dim)).astype(dtype)
    return q, k, v


def mask_with_a_valid_key_per_row(rng, shape):
    """Random mask in which key 0 stays valid, so causal rows keep a key too."""
    mask = rng.random(shape) < 0.6
    mask[..., 0] = True
    return mask


CASES = {
    "plain": dict(),
    "bias": dict(bias=True),
    "mask": dict(mask=True),
    "causal": dict(is_causal=True, k_len=5),
    "causal_longer_keys": dict(is_causal=True),
    "mask_bias_causal": dict(mask=True, bias=True, is_causal=True, k_len=5),
    "scale": dict(scale=0.3),
    "grouped_query": dict(kv_heads=2, mask=True),
    "multi_query": dict(kv_heads=1),
    "head_broadcast_mask": dict(mask="heads"),
    "seq_lengths": dict(lengths=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_jax_nn(case):
    options = dict(CASES[case])
    rng = np.random.default_rng(1)
    shape_args = {k: options.pop(k) for k in ("k_len", "kv_heads") if k in options}
    q, k, v = inputs(rng, **shape_args)
    batch, q_len, heads, _ = q.shape
    k_len = k.shape[1]
    kwargs = {}
    if options.pop("bias", False):
        kwargs["bias"] = rng.normal(size=(batch, heads, q_len, k_len)).astype(np.float32)
    mask_kind = options.pop("mask", False)
    if mask_kind == "heads":
        kwargs["mask"] = mask_with_a_valid_key_per_row(rng, (batch, 1, q_len, k_len))
    elif mask_kind:
        kwargs["mask"] = mask_with_a_valid_key_per_row(rng, (batch, heads, q_len, k_len))
    if options.pop("lengths", False):
        kwargs["key_value_seq_lengths"] = jnp.array([k_len, 3])
        kwargs["query_seq_lengths"] = jnp.array([q_len, 2])
    kwargs.update(options)
    got = attn.dot_product_attention(q, k, v, **kwargs)
    want = jax.nn.dot_product_attention(q, k, v, **kwargs)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_unbatched_inputs():
    q, k, v = inputs(np.random.default_rng(2), batch=1)
    got = attn.dot_product_attention(q[0], k[0], v[0], is_causal=True)
    want = jax.nn.dot_product_attention(q[0], k[0], v[0], is_causal=True)
    assert got.shape == q[0].shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_matches_float64_reference():
    rng = np.random.default_rng(3)
    q, k, v = inputs(rng, kv_heads=2)
    mask = mask_with_a_valid_key_per_row(rng, (2, 4, 5, 7))
    bias = rng.normal(size=(2, 4, 5, 7)).astype(np.float32)
    got = attn.dot_product_attention(q, k, v, mask=mask, bias=bias, scale=0.5)
    want = ref.dot_product_attention(q, k, v, mask=mask, bias=bias, scale=0.5)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_fully_masked_query_gets_zero_output_not_the_mean():
    """The one documented difference from jax.nn's XLA path."""
    q, k, v = inputs(np.random.default_rng(4))
    mask = np.ones((2, 4, 5, 7), bool)
    mask[1, 2, 3, :] = False
    ours = attn.dot_product_attention(q, k, v, mask=mask)
    theirs = jax.nn.dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(ours[1, 3, 2], 0.0)
    np.testing.assert_allclose(theirs[1, 3, 2], v[1, :, 2].mean(0), atol=1e-5)
    keep = np.ones(ours.shape, bool)
    keep[1, 3, 2] = False
    np.testing.assert_allclose(ours[keep], theirs[keep], atol=1e-5, rtol=1e-5)
    grads = jax.grad(lambda q: attn.dot_product_attention(q, k, v, mask=mask).sum())(q)
    assert np.isfinite(grads).all()


def test_bfloat16_close_to_float32():
    q, k, v = inputs(np.random.default_rng(5))
    want = attn.dot_product_attention(q, k, v, is_causal=True)
    got = attn.dot_product_attention(
        *(jnp.asarray(a, jnp.bfloat16) for a in (q, k, v)), is_causal=True
    )
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(np.float32), want, atol=5e-2, rtol=5e-2)


def test_gradients_match_jax_nn():
    rng = np.random.default_rng(6)
    q, k, v = inputs(rng, kv_heads=2)
    mask = mask_with_a_valid_key_per_row(rng, (2, 4, 5, 7))

    def loss(fn):
        return lambda q, k, v: (fn(q, k, v, mask=mask) ** 2).sum()

    got = jax.grad(loss(attn.dot_product_attention), argnums=(0, 1, 2))(q, k, v)
    want = jax.grad(loss(jax.nn.dot_product_attention), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_weights_function():
    q, k, _ = inputs(np.random.default_rng(7))
    weights = attn.dot_product_attention_weights(q, k, is_causal=True)
    assert weights.shape == (2, 4, 5, 7)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert not np.asarray(weights[..., 0, 1:]).any()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda q, k, v: (q[..., :4], k, v), "head_dim differ"),
        (lambda q, k, v: (q[:, :, :3], k, v), "multiple of the number of key/value heads"),
        (lambda q, k, v: (q, k, v[:, :3]), "same shape"),
        (lambda q, k, v: (q[0, 0], k, v), "must all be"),
        (lambda q, k, v: (q[:1], k, v), "batch sizes differ"),
    ],
)
def test_bad_shapes_name_the_shapes(change, message):
    q, k, v = change(*inputs(np.random.default_rng(8)))
    with pytest.raises(ValueError, match=message):
        attn.dot_product_attention(q, k, v)


def test_bad_masks():
    q, k, v = inputs(np.random.default_rng(9))
    with pytest.raises(ValueError, match="boolean.*bias"):
        attn.dot_product_attention(q, k, v, mask=np.zeros((2, 4, 5, 7), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 6\).*\(2, 4, 5, 7\)"):
        attn.dot_product_attention(q, k, v, mask=np.ones((2, 4, 5, 6), bool))
    with pytest.raises(ValueError, match="bias must be a float"):
        attn.dot_product_attention(q, k, v, bias=np.ones((2, 4, 5, 7), bool))


def test_local_window_mask_by_hand():
    """Key j is within query i's window when i - left <= j <= i + right."""
    want = np.array(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 1],
        ],
        bool,
    )
    np.testing.assert_array_equal(attn.functional.local_window_mask(4, 6, (1, 2)), want)
    # Not causal unless asked: w each side.
    np.testing.assert_array_equal(
        attn.functional.local_window_mask(3, 3, 1),
        np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], bool),
    )
    np.testing.assert_array_equal(
        attn.functional.local_window_mask(3, 3, 1, is_causal=True),
        np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], bool),
    )


@pytest.mark.parametrize("unbatched", [False, True])
def test_local_window_size_equals_jax_nn(unbatched):
    """Batched and unbatched, the output and the weights, head_dim unlike the length."""
    q, k, v = inputs(np.random.default_rng(31), q_len=9, k_len=9, head_dim=4)
    window = (2, 1)
    want = jax.nn.dot_product_attention(q, k, v, local_window_size=window)
    want_weights = attn.dot_product_attention_weights(
        q, k, mask=jnp.asarray(attn.functional.local_window_mask(9, 9, window))
    )
    if unbatched:
        q, k, v, want, want_weights = q[0], k[0], v[0], want[0], want_weights[0]
    got = attn.dot_product_attention(q, k, v, local_window_size=window)
    np.testing.assert_allclose(got, want, atol=2e-6)
    weights = attn.dot_product_attention_weights(q, k, local_window_size=window)
    np.testing.assert_allclose(weights, want_weights, atol=1e-7)
    assert not np.asarray(weights[..., 0, 3:]).any()  # keys past the window get nothing


def test_weights_are_not_causal_unless_asked():
    q, k, _ = inputs(np.random.default_rng(32), q_len=4, k_len=4)
    weights = np.asarray(attn.dot_product_attention_weights(q, k))
    assert (weights[..., 0, 1:] > 0).all()


@pytest.mark.parametrize("ndims", [(4, 3, 3), (5, 5, 5), (2, 2, 2)])
def test_inputs_of_other_ranks_are_refused(ndims):
    rng = np.random.default_rng(33)
    q, k, v = (rng.normal(size=(2, 3, 4, 8)[:n] + (8,) * (n - 4)) for n in ndims)
    with pytest.raises(ValueError, match="must all be"):
        attn.dot_product_attention(q, k, v)


def test_an_unknown_implementation_is_refused_and_a_named_one_runs():
    q, k, v = inputs(np.random.default_rng(34), q_len=512, k_len=512, heads=1, kv_heads=1)
    with pytest.raises(ValueError, match="bogus"):
        attn.dot_product_attention(q, k, v, implementation="bogus")

    def largest_square(implementation):
        """The most axes of the length any array of the program has."""
        run = lambda q, k, v: attn.dot_product_attention(q, k, v, implementation=implementation)
        shapes = intermediate_shapes(run, q, k, v)
        return max(sum(size >= 512 for size in shape) for shape in shapes)

    assert largest_square("xla") == 2  # the [q_len, k_len] logits
    assert largest_square("blockwise") == 1  # blocks only


def test_auto_is_asked_with_batch_times_heads(monkeypatch):
    asked = {}
    resolve = attn.implementations.resolve

    def recording(*args, **shapes):
        asked.update(shapes)
        return resolve(*args, **shapes)

    monkeypatch.setattr(attn.implementations, "resolve", recording)
    q, k, v = inputs(np.random.default_rng(35), batch=3, heads=4, kv_heads=4)
    attn.dot_product_attention(q, k, v, implementation="auto")
    assert asked["batch_heads"] == 12 and asked["q_len"] == 5 and asked["k_len"] == 7
    assert asked["head_dim"] == 8 and asked["value_dim"] == 8
    attn.dot_product_attention(q[0], k[0], v[0], implementation="auto")
    assert asked["batch_heads"] == 4  # unbatched: the heads alone
