"""Masks and the masked softmax shared by every attention form.

Masks are boolean with True meaning "may attend". A query row whose keys are
all masked gets exactly zero weights (so a zero context) and no NaN, in the
forward pass and in gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# The logit a masked position gets in the blockwise and kernel forms: finite,
# so that they run under `jax.debug_infs`, and far enough below
# `SHIFT_FLOOR` that exp(MASKED_LOGIT - SHIFT_FLOOR) is exactly 0 in float32.
# A row whose keys are all masked has a running maximum of MASKED_LOGIT; it is
# shifted by SHIFT_FLOOR instead, so its terms stay 0 rather than exp(0) = 1.
MASKED_LOGIT = 0.5 * float(np.finfo(np.float32).min)
SHIFT_FLOOR = 0.25 * float(np.finfo(np.float32).min)


def to_rank(array, ndim: int):
    """`array` with leading axes of size 1 added up to `ndim` axes (numpy's broadcasting, made explicit).

    For code that must run under `jax_numpy_rank_promotion='raise'`.
    """
    array = jnp.asarray(array)
    if array.ndim > ndim:
        raise ValueError(f"an array of shape {array.shape} has more than {ndim} axes.")
    return array.reshape((1,) * (ndim - array.ndim) + array.shape)


def masked_softmax(logits, mask=None, *, axis: int = -1):
    """Softmax of `logits` over `axis`, restricted to where `mask` is True.

    Args:
      logits: float array, e.g. `[batch, heads, q_len, k_len]`.
      mask: None or boolean array broadcastable to `logits`.
      axis: the key axis.

    Returns:
      Weights in at least float32, summing to 1 over valid keys; all zero on rows
      with no valid key.
    """
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    if mask is None:
        return jax.nn.softmax(logits, axis=axis)
    # The finite fill keeps a fully masked row at a uniform softmax (no 0/0);
    # the final `where` then zeroes it, and the gradient through it.
    mask = to_rank(mask, logits.ndim)
    filled = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    return jnp.where(mask, jax.nn.softmax(filled, axis=axis), 0.0)


def attention_weights(logits, *, mask=None, bias=None):
    """Adds `bias` to `logits` and takes the masked softmax over the last axis."""
    if bias is not None:
        logits = logits + to_rank(bias, logits.ndim)
    return masked_softmax(logits, mask)


def causal_mask(q_len: int, k_len: int | None = None, *, offset: int = 0):
    """Boolean `[q_len, k_len]`: query i sees keys j <= i + offset.

    With the default offset 0 the mask is aligned at the top left, as in
    `jax.nn.dot_product_attention(is_causal=True)`. When decoding with a cache
    of earlier keys, pass `offset = k_len - q_len`.
    """
    k_len = q_len if k_len is None else k_len
    return jnp.arange(k_len)[None, :] <= jnp.arange(q_len)[:, None] + offset


def lengths_to_valid(lengths, max_len: int):
    """`[batch]` lengths -> boolean `[batch, max_len]`, True before each length."""
    return jnp.arange(max_len)[None, :] < jnp.asarray(lengths)[:, None]


def padding_mask(key_valid, query_valid=None):
    """Boolean `[batch, q_len, k_len]` (q_len 1 without `query_valid`).

    Args:
      key_valid: boolean `[batch, k_len]`, True on real (non-padding) keys.
      query_valid: optional boolean `[batch, q_len]`, True on real queries.
    """
    mask = jnp.asarray(key_valid, bool)[:, None, :]
    if query_valid is not None:
        mask = mask & jnp.asarray(query_valid, bool)[:, :, None]
    return mask


def combine_masks(*masks):
    """Logical AND of the masks that are not None; None if all are.

    Masks of different ranks broadcast as in numpy (aligned on the last axis),
    explicitly, so this also runs under `jax_numpy_rank_promotion='raise'`.
    """
    present = [jnp.asarray(m, bool) for m in masks if m is not None]
    if not present:
        return None
    ndim = max(m.ndim for m in present)
    present = [to_rank(m, ndim) for m in present]
    combined = present[0]
    for m in present[1:]:
        combined = combined & m
    return combined


def check_mask(mask, target_shape: Sequence[int], *, target_desc: str, name: str = "mask") -> None:
    """ValueError unless `mask` is None or boolean and broadcastable to target."""
    if mask is None:
        return
    dtype = getattr(mask, "dtype", None)
    if dtype is None or dtype != np.bool_:
        hint = (
            " For an additive float mask (0 / -inf) pass it as `bias`."
            if dtype is not None and jnp.issubdtype(dtype, jnp.floating)
            else ""
        )
        raise ValueError(
            f"{name} must be a boolean array (True = attend), got dtype {dtype}.{hint}"
        )
    _check_broadcastable(mask.shape, target_shape, name=name, target_desc=target_desc)


def check_bias(bias, target_shape: Sequence[int], *, target_desc: str) -> None:
    """ValueError unless `bias` is None or a float array broadcastable to target."""
    if bias is None:
        return
    dtype = getattr(bias, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"bias must be a float array added to the logits, got dtype "
            f"{dtype}. For a boolean mask pass it as `mask`."
        )
    _check_broadcastable(bias.shape, target_shape, name="bias", target_desc=target_desc)


def _check_broadcastable(shape, target_shape, *, name, target_desc):
    target_shape = tuple(target_shape)
    ok = len(shape) <= len(target_shape)
    if ok:
        try:
            ok = np.broadcast_shapes(tuple(shape), target_shape) == target_shape
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to the logits shape "
            f"{target_shape} {target_desc}."
        )
