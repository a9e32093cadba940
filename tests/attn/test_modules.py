"""Module construction, the public API, dropout and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn


def qkv(batch=2, q_len=3, k_len=5, dq=4, dk=4, dv=6):
    keys = jax.random.split(jax.random.key(0), 3)
    return (
        jax.random.normal(keys[0], (batch, q_len, dq)),
        jax.random.normal(keys[1], (batch, k_len, dk)),
        jax.random.normal(keys[2], (batch, k_len, dv)),
    )


def test_available_has_the_required_kinds():
    assert {"dot", "scaled_dot", "general", "additive"} <= set(attn.available())
    for name in attn.available():
        assert name in attn.describe()


@pytest.mark.parametrize("kind", ["general", "additive"])
def test_projecting_kinds_accept_different_query_and_key_sizes(kind):
    q, k, v = qkv(dq=4, dk=10)
    module = attn.get(kind)
    context, weights = module.apply(module.init(jax.random.key(0), q, k, v), q, k, v)
    assert context.shape == (2, 3, 6) and weights.shape == (2, 3, 5)


def test_score_options_reach_the_score():
    q, k, v = qkv()
    module = attn.get("additive", features=7)
    params = module.init(jax.random.key(0), q, k, v)
    assert params["params"]["score"]["query_proj"]["kernel"].shape == (1, 4, 7)
    sharp = attn.get("scaled_dot", scale=10.0).apply({}, q, k, v)[1]
    soft = attn.get("scaled_dot", scale=0.01).apply({}, q, k, v)[1]
    assert sharp.max() > soft.max()


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(
        ValueError, match=r"Unknown attention kind 'bahdanau'.*additive.*scaled_dot"
    ):
        attn.get("bahdanau")
    with pytest.raises(ValueError, match="valid kinds"):
        attn.MultiHeadAttention(num_heads=2, kind="nope").init(jax.random.key(0), qkv()[0])


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError, match=r"no option\(s\) \['size'\].*features"):
        attn.get("additive", size=3)


def test_dot_kinds_need_equal_features():
    q, k, v = qkv(dq=4, dk=5)
    with pytest.raises(ValueError, match=r"feature sizes must match.*\(2, 3, 4\).*\(2, 5, 5\)"):
        attn.get("dot").init(jax.random.key(0), q, k, v)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (dict(q=(2, 3, 4), k=(3, 5, 4), v=(3, 5, 6)), "share the batch size"),
        (dict(q=(2, 3, 4), k=(2, 5, 4), v=(2, 6, 6)), "same length"),
        (dict(q=(3, 4), k=(2, 5, 4), v=(2, 5, 6)), r"query must be \[batch, q_len, q_features\]"),
    ],
)
def test_mismatched_shapes(shapes, message):
    arrays = [jnp.zeros(shapes[n]) for n in "qkv"]
    with pytest.raises(ValueError, match=message):
        attn.get("scaled_dot").init(jax.random.key(0), *arrays)


def test_bad_masks_are_named():
    q, k, v = qkv()
    module = attn.get("dot")
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 4\).*\(2, 3, 5\)"):
        module.apply({}, q, k, v, mask=jnp.ones((2, 3, 4), bool))
    with pytest.raises(ValueError, match="boolean.*int32"):
        module.apply({}, q, k, v, mask=jnp.ones((2, 3, 5), jnp.int32))
    with pytest.raises(ValueError, match="pass it as `bias`"):
        module.apply({}, q, k, v, mask=jnp.zeros((2, 3, 5)))


def test_heads_must_divide_features():
    x = jnp.zeros((2, 3, 12))
    with pytest.raises(
        ValueError, match=r"num_heads=5 does not divide qkv_features=12.*\[1, 2, 3, 4, 6, 12\]"
    ):
        attn.MultiHeadAttention(num_heads=5).init(jax.random.key(0), x)


def test_bias_is_added_to_logits():
    q, k, v = qkv()
    bias = jnp.zeros((2, 3, 5)).at[:, :, 2].set(1e4)
    _, weights = attn.get("dot").apply({}, q, k, v, bias=bias)
    np.testing.assert_allclose(weights[..., 2], 1.0)


def test_multi_head_3d_and_4d_masks_agree():
    x = qkv()[0]
    module = attn.MultiHeadAttention(num_heads=2, kind="general")
    params = module.init(jax.random.key(0), x)
    mask3 = jnp.array([[True, False, True]] * 3)[None].repeat(2, 0)
    out3, w3 = module.apply(params, x, mask=mask3)
    out4, w4 = module.apply(params, x, mask=mask3[:, None])
    np.testing.assert_array_equal(out3, out4)
    assert (w3[..., 1] == 0).all()


def test_attention_dropout():
    x = jax.random.normal(jax.random.key(1), (2, 16, 8))
    module = attn.MultiHeadAttention(num_heads=2, dropout_rate=0.5)
    params = module.init(jax.random.key(0), x, deterministic=True)
    deterministic, _ = module.apply(params, x, deterministic=True)
    same, _ = module.apply(params, x, deterministic=True)
    np.testing.assert_array_equal(deterministic, same)
    a, _ = module.apply(params, x, deterministic=False, rngs={"dropout": jax.random.key(1)})
    b, _ = module.apply(params, x, deterministic=False, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(a, b) and not np.allclose(a, deterministic)
    with pytest.raises(ValueError, match="deterministic"):
        module.apply(params, x)

    single = attn.get("dot", dropout_rate=0.5)
    q, k, v = qkv()
    c1, _ = single.apply({}, q, k, v, deterministic=False, rngs={"dropout": jax.random.key(3)})
    c0, _ = single.apply({}, q, k, v)
    assert not np.allclose(c1, c0)
