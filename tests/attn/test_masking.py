"""Masks and the masked softmax."""

import re

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import masking
from tests.attn import numpy_reference as ref

logits_and_masks = st.integers(1, 6).flatmap(
    lambda k: st.tuples(
        hnp.arrays(np.float32, (3, k), elements=st.floats(-30, 30, width=32)),
        hnp.arrays(np.bool_, (3, k)),
    )
)


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(logits_and_masks)
def test_masked_softmax_matches_reference(data):
    logits, mask = data
    got = np.asarray(attn.masked_softmax(logits, mask))
    np.testing.assert_allclose(got, ref.masked_softmax(logits, mask), atol=1e-6)
    valid_rows = mask.any(-1)
    np.testing.assert_allclose(got[valid_rows].sum(-1), 1.0, rtol=1e-5)
    assert (got[~mask] == 0).all()
    assert (got[~valid_rows] == 0).all()


def test_masked_softmax_gradient_is_finite_on_fully_masked_rows():
    logits = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = jnp.array([[True, False, True], [False, False, False]])
    grad = jax.grad(lambda x: (attn.masked_softmax(x, mask) * jnp.arange(3.0)).sum())(logits)
    assert np.isfinite(grad).all()
    assert (grad[1] == 0).all() and grad[0, 1] == 0


def test_masked_softmax_without_mask_is_softmax():
    x = jnp.array([[0.5, -1.0, 2.0]])
    np.testing.assert_allclose(attn.masked_softmax(x), jax.nn.softmax(x), rtol=1e-6)


def test_causal_mask():
    np.testing.assert_array_equal(attn.causal_mask(3), np.tril(np.ones((3, 3), bool)))
    # Two new queries over five cached keys: bottom-right aligned with offset.
    np.testing.assert_array_equal(
        attn.causal_mask(2, 5, offset=3), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    )


def test_padding_masks():
    valid = attn.lengths_to_valid(jnp.array([1, 3]), 4)
    np.testing.assert_array_equal(valid, [[1, 0, 0, 0], [1, 1, 1, 0]])
    mask = attn.padding_mask(valid)
    assert mask.shape == (2, 1, 4)
    both = attn.padding_mask(valid, query_valid=valid[:, :2])
    assert both.shape == (2, 2, 4)
    np.testing.assert_array_equal(both[0], [[1, 0, 0, 0], [0, 0, 0, 0]])
    assert attn.combine_masks(None, None) is None
    np.testing.assert_array_equal(
        attn.combine_masks(valid, None, valid[:, ::-1]), valid & valid[:, ::-1]
    )


def test_masked_softmax_normalises_over_the_given_axis():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3, 4)).astype(np.float32)
    mask = rng.random((3, 4)) < 0.7
    mask[0, :] = True
    mask[:, 0] = True
    got = np.asarray(attn.masked_softmax(logits, mask, axis=0))
    np.testing.assert_allclose(got, ref.masked_softmax(logits.T, mask.T).T, atol=1e-6)
    np.testing.assert_allclose(got.sum(0), 1.0, rtol=1e-5)
    got = np.asarray(attn.masked_softmax(logits, axis=0))
    np.testing.assert_allclose(got.sum(0), 1.0, rtol=1e-5)


def test_masked_softmax_of_bfloat16_is_computed_in_float32():
    # bf16 keeps 8 bits: weights computed in bf16 would be rounded to it.
    logits = jnp.asarray(np.linspace(-3, 3, 7), jnp.bfloat16)
    mask = jnp.array([True, True, False, True, True, True, True])
    for got in (attn.masked_softmax(logits, mask), attn.masked_softmax(logits)):
        assert got.dtype == jnp.float32
    want = ref.masked_softmax(np.asarray(logits.astype(jnp.float32))[None], np.asarray(mask)[None])
    np.testing.assert_allclose(attn.masked_softmax(logits, mask), want[0], rtol=1e-6, atol=1e-7)


def test_attention_weights_add_the_bias_before_the_softmax():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    bias = rng.normal(size=(1, 3, 5)).astype(np.float32)
    mask = rng.random((2, 1, 5)) < 0.7
    got = masking.attention_weights(jnp.asarray(logits), mask=mask, bias=bias)
    np.testing.assert_allclose(got, ref.masked_softmax(logits + bias, mask), atol=1e-6)
    got = masking.attention_weights(jnp.asarray(logits), mask=mask)
    np.testing.assert_allclose(got, ref.masked_softmax(logits, mask), atol=1e-6)


def test_mask_and_bias_checks_name_what_is_wrong():
    target, desc = (2, 3, 4, 5), "[batch, heads, q_len, k_len]"
    for fine in (None, np.ones((4, 5), bool), np.ones((2, 1, 1, 5), bool), np.ones(target, bool)):
        masking.check_mask(fine, target, target_desc=desc)
    for fine in (None, np.zeros((5,), np.float32), np.zeros((2, 3, 4, 5), jnp.bfloat16)):
        masking.check_bias(fine, target, target_desc=desc)
    with pytest.raises(ValueError, match=r"key_mask must be a boolean .* dtype float32\. For an"):
        masking.check_mask(np.ones((4, 5), np.float32), target, target_desc=desc, name="key_mask")
    with pytest.raises(ValueError, match=r"got dtype int32\.$"):
        masking.check_mask(np.ones((4, 5), np.int32), target, target_desc=desc)
    with pytest.raises(ValueError, match="got dtype None"):
        masking.check_mask([[True]], target, target_desc=desc)
    with pytest.raises(ValueError, match=r"bias must be a float array .* dtype bool"):
        masking.check_bias(np.ones((4, 5), bool), target, target_desc=desc)
    with pytest.raises(ValueError, match="got dtype None"):
        masking.check_bias([[0.0]], target, target_desc=desc)
    bad_shapes = [(4, 6), (4, 4, 5), (1, 2, 3, 4, 5), (2, 3, 1, 4, 5)]
    for shape in bad_shapes:
        message = f"mask of shape {shape} does not broadcast to the logits shape (2, 3, 4, 5) [b"
        with pytest.raises(ValueError, match=re.escape(message)):
            masking.check_mask(np.ones(shape, bool), target, target_desc=desc)
        with pytest.raises(ValueError, match=r"bias of shape .* \(2, 3, 4, 5\) \[batch"):
            masking.check_bias(np.ones(shape, np.float32), target, target_desc=desc)


def test_causal_mask_with_more_keys_and_combined_masks():
    np.testing.assert_array_equal(attn.causal_mask(2, 3), [[1, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(attn.combine_masks(np.array([True, False])), [True, False])
    both = attn.combine_masks(np.array([1, 1, 0], bool), None, np.array([1, 0, 1], bool))
    np.testing.assert_array_equal(both, [True, False, False])


def test_the_masked_logit_and_shift_floor_keep_their_promises_in_float32():
    masked, floor = np.float32(masking.MASKED_LOGIT), np.float32(masking.SHIFT_FLOOR)
    # Headroom: a masked logit plus a masked bias (or minus a large row max)
    # stays finite, so the blockwise forms run under jax.debug_infs.
    assert np.isfinite(masked + masked)
    # A fully masked row, shifted by the floor, contributes exactly nothing.
    with np.errstate(over="raise"):
        assert np.exp(masked - floor) == 0.0
    # The floor lies below any logit a real row has, so it never replaces
    # the true row maximum (a floor near 0 would underflow rows of -100s).
    assert masked < floor < -1e37


def test_to_rank_adds_leading_unit_axes_only():
    key_mask = jnp.array([True, False, True])
    assert masking.to_rank(key_mask, 4).shape == (1, 1, 1, 3)
    assert masking.to_rank(jnp.ones((2, 3)), 2).shape == (2, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) has more than 1 axes"):
        masking.to_rank(jnp.ones((2, 3)), 1)
    logits = jax.random.normal(jax.random.key(0), (2, 4, 3))
    np.testing.assert_array_equal(
        masking.masked_softmax(logits, key_mask),
        masking.masked_softmax(logits, jnp.broadcast_to(key_mask, logits.shape)),
    )
