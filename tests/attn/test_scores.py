"""Score functions' parameter shapes and values, against hand-written formulas."""

import jax
import numpy as np
import pytest

import attn
from tests.attn import numpy_reference as ref


def qkv(dq, dk, dv=3, batch=2, q_len=3, k_len=5, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, q_len, dq)).astype(np.float32),
        rng.normal(size=(batch, k_len, dk)).astype(np.float32),
        rng.normal(size=(batch, k_len, dv)).astype(np.float32),
    )


def test_additive_hidden_size_defaults_to_the_query_features():
    q, k, v = qkv(dq=4, dk=10)
    module = attn.get("additive")
    score = module.init(jax.random.key(0), q, k, v)["params"]["score"]
    assert score["query_proj"]["kernel"].shape == (1, 4, 4)
    assert score["key_proj"]["kernel"].shape == (1, 10, 4)
    assert score["energy"]["kernel"].shape == (1, 4)


def test_additive_and_general_logits_follow_their_formulas():
    q, k, v = qkv(dq=4, dk=6, seed=1)
    for kind in ("additive", "general"):
        module = attn.get(kind)
        params = module.init(jax.random.key(1), q, k, v)
        _, weights = module.apply(params, q, k, v)
        p = params["params"]["score"]
        if kind == "additive":
            hidden = np.tanh(
                (q @ p["query_proj"]["kernel"][0])[:, :, None]
                + (k @ p["key_proj"]["kernel"][0])[:, None]
            )
            logits = hidden @ np.asarray(p["energy"]["kernel"][0], np.float64)
        else:
            logits = np.einsum("bqd,de,bke->bqk", q, p["bilinear"]["kernel"][0], k)
        np.testing.assert_allclose(weights, ref.masked_softmax(logits), atol=2e-6)


def test_additive_hidden_per_pair_is_its_features_option_or_the_head_size():
    hidden = attn.lookup("additive").hidden_per_pair
    assert hidden({}, 8) == 8 and hidden({"features": 5}, 8) == 5


@pytest.mark.parametrize("features", [0, -2, 2.0, "3"])
def test_additive_features_must_be_a_positive_integer(features):
    q, k, v = qkv(dq=4, dk=6)
    module = attn.get("additive", features=features)
    with pytest.raises(ValueError, match=f"positive integer `features`, got {features!r}"):
        module.init(jax.random.key(0), q, k, v)


def test_additive_with_one_hidden_feature():
    q, k, v = qkv(dq=4, dk=6)
    params = attn.get("additive", features=1).init(jax.random.key(0), q, k, v)
    assert params["params"]["score"]["energy"]["kernel"].shape == (1, 1)


def test_cosine_of_a_zero_vector_is_zero_not_nan():
    rng = np.random.default_rng(3)
    query = rng.normal(size=(1, 1, 3, 4)).astype(np.float32)
    query[0, 0, 1] = 0.0
    key = rng.normal(size=(1, 1, 5, 4)).astype(np.float32)
    logits = np.asarray(attn.lookup("cosine").fn(query, key, scale=2.0))
    np.testing.assert_array_equal(logits[0, 0, 1], 0.0)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        logits[0, 0, 0], 2.0 * unit(key[0, 0]) @ unit(query[0, 0, 0]), rtol=1e-5
    )
