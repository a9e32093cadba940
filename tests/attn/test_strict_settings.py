"""Every attention form under JAX's strict settings: no implicit rank promotion, no inf, no NaN.

Each form runs forward and backward with a bias and a mask of lower rank
than the logits, causal attention, and sequence lengths and a mask that
leave whole rows without a key. Its results must equal those computed
without the settings; fully masked rows must be zero with finite, zero
gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import additive_chunked, pallas_attention

# Rank promotion is checked when tracing, so a jitted run covers it; the
# debug checks look at every primitive's output only when running eagerly
# (under jit, only at the outputs of the whole function), so those run
# eagerly. Both debug checks at once: each only adds checks to the other.
SETTINGS = {
    "rank_promotion_raise": {"jax_numpy_rank_promotion": "raise"},
    "debug_infs_and_nans": {"jax_debug_infs": True, "jax_debug_nans": True},
}


@pytest.fixture(params=sorted(SETTINGS))
def strict(request):
    """Turns the strict settings on for the test body and restores them afterwards."""
    previous = {name: getattr(jax.config, name) for name in SETTINGS[request.param]}
    for name, value in SETTINGS[request.param].items():
        jax.config.update(name, value)
    yield request.param
    for name, value in previous.items():
        jax.config.update(name, value)


BATCH, Q_LEN, K_LEN, HEADS, KV_HEADS, DIM = 2, 9, 13, 4, 2, 16
# Query 8 of the second sequence is past its length and query 3 is masked
# everywhere: both rows have no key. Blocks of 4 x 8 leave partial blocks.
Q_LENS = np.array([Q_LEN, 8], np.int32)
KV_LENS = np.array([K_LEN, 7], np.int32)


def _inputs():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(BATCH, Q_LEN, HEADS, DIM)).astype(np.float32)
    k = rng.normal(size=(BATCH, K_LEN, KV_HEADS, DIM)).astype(np.float32)
    v = rng.normal(size=(BATCH, K_LEN, KV_HEADS, DIM)).astype(np.float32)
    mask = rng.random((Q_LEN, K_LEN)) < 0.7
    mask[:, 0] = True
    mask[3] = False
    return (q, k, v), dict(
        key_bias=rng.normal(size=(K_LEN,)).astype(np.float32),
        mask=mask,
    )


CASES = {
    "causal_key_bias": lambda extra: dict(bias=extra["key_bias"], is_causal=True),
    "mask_lengths_key_bias": lambda extra: dict(
        mask=extra["mask"],
        bias=extra["key_bias"],
        query_seq_lengths=Q_LENS,
        key_value_seq_lengths=KV_LENS,
    ),
}


def _additive(q, k, v, **kwargs):
    """Chunked additive attention in the `jax.nn` layout, with fixed kernels."""
    rng = np.random.default_rng(1)
    k = jnp.repeat(k, HEADS // KV_HEADS, axis=2)
    v = jnp.repeat(v, HEADS // KV_HEADS, axis=2)
    kernels = dict(
        query_kernel=rng.normal(size=(HEADS, DIM, 8)).astype(np.float32),
        key_kernel=rng.normal(size=(HEADS, DIM, 8)).astype(np.float32),
        energy_kernel=rng.normal(size=(HEADS, 8)).astype(np.float32),
    )
    heads_first = lambda a: a.transpose(0, 2, 1, 3)
    out = additive_chunked.additive_attention(
        *(heads_first(a) for a in (q, k, v)), **kernels, **kwargs, block_q=4, block_k=8
    )
    return heads_first(out)


FORMS = {
    "xla": lambda *a, **kw: attn.dot_product_attention(*a, **kw),
    "blockwise_one_block": lambda *a, **kw: attn.dot_product_attention(
        *a, **kw, implementation="blockwise"
    ),
    "blockwise_blocks": lambda *a, **kw: attn.blockwise_attention(*a, **kw, block_q=4, block_k=8),
    "additive_chunked": _additive,
    "pallas_interpret": lambda *a, **kw: pallas_attention.flash_attention(
        *a, **kw, block_q=16, block_k=16, interpret=True
    ),
}


def _forward_and_grads(form, kwargs):
    fn = lambda q, k, v: FORMS[form](q, k, v, **kwargs)
    loss = lambda q, k, v: (fn(q, k, v) ** 2).sum()
    return lambda q, k, v: (fn(q, k, v), jax.grad(loss, (0, 1, 2))(q, k, v))


def _empty_rows(kwargs):
    """Boolean `[batch, q_len]`: queries that may attend to no key."""
    empty = np.zeros((BATCH, Q_LEN), bool)
    if "mask" in kwargs:
        empty[:, 3] = True
    if "query_seq_lengths" in kwargs:
        empty |= np.arange(Q_LEN)[None, :] >= Q_LENS[:, None]
    return empty


# The chunked additive and Pallas interpret forms take 10-30 s each here.
SLOW_FORMS = {"additive_chunked", "pallas_interpret"}


@pytest.mark.parametrize(
    "form", [pytest.param(f, marks=[pytest.mark.slow] if f in SLOW_FORMS else []) for f in FORMS]
)
@pytest.mark.parametrize("case", sorted(CASES))
def test_forms_run_under_strict_settings_with_unchanged_results(strict, form, case):
    args, extra = _inputs()
    kwargs = CASES[case](extra)
    run = _forward_and_grads(form, kwargs)
    got = jax.jit(run)(*args) if strict == "rank_promotion_raise" else run(*args)
    with jax.numpy_rank_promotion("allow"), jax.debug_infs(False), jax.debug_nans(False):
        expected = jax.jit(run)(*args)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert np.all(np.isfinite(np.asarray(a)))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    out, (dq, _, _) = got
    empty = _empty_rows(kwargs)
    assert empty.any() == (case != "causal_key_bias")
    np.testing.assert_array_equal(np.asarray(out)[empty], 0.0)
    np.testing.assert_array_equal(np.asarray(dq)[empty], 0.0)
