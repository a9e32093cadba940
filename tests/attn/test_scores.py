"""Score functions' parameter shapes and values, against hand-written formulas."""

import jax
import numpy as np

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
