"""The windowed operations of local 2-D attention, with memory-lean gradients.

Each pixel of `[batch, H, W, heads, d]` looks at its `kernel_size x
kernel_size` neighbourhood of the zero-padded keys and values. The logits
and the weighted sum are loops over the k*k offsets with custom VJPs that
recompute each window in the backward pass instead of saving it, so neither
pass holds a `[.., H, W, k*k, d]` unfolded copy (`attn.local2d`'s "lean"
form).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def pad(x, r: int):
    """Zero-pads the two spatial axes of `[batch, H, W, heads, d]` by r on each side."""
    return jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0), (0, 0)))


def relative_logits(query, row_embedding, col_embedding):
    """`q . r_ab` for every offset: `[batch, H, W, heads, k * k]`.

    query `[batch, H, W, heads, d]` (already scaled); row_embedding and
    col_embedding `[k, heads, d / 2]`. The row part depends on `a` only and
    the column part on `b` only, so they are formed apart and broadcast.
    """
    half = query.shape[-1] // 2
    rows = jnp.einsum("bxyhd,khd->bxyhk", query[..., :half], row_embedding)
    cols = jnp.einsum("bxyhd,khd->bxyhk", query[..., half:], col_embedding)
    k = row_embedding.shape[0]
    return (rows[..., :, None] + cols[..., None, :]).reshape(*rows.shape[:-1], k * k)


def _window(x_pad, n, kernel_size: int, height: int, width: int):
    """The `[batch, H, W, heads, d]` slice of padded `x_pad` seen at window position n."""
    a, b = n // kernel_size, n % kernel_size
    start = (0, a, b) + (0,) * (x_pad.ndim - 3)
    return jax.lax.dynamic_slice(x_pad, start, (x_pad.shape[0], height, width, *x_pad.shape[3:]))


def _add_window(x_pad, n, kernel_size: int, update):
    """`x_pad` with `update` added to the slice `_window` reads at n."""
    a, b = n // kernel_size, n % kernel_size
    start = (0, a, b) + (0,) * (x_pad.ndim - 3)
    current = jax.lax.dynamic_slice(x_pad, start, update.shape)
    return jax.lax.dynamic_update_slice(x_pad, current + update, start)


def _loop(kernel_size: int, body, init, unroll: bool):
    """`body(n, carry)` over the k * k window positions, as a loop or unrolled."""
    steps = kernel_size * kernel_size
    return jax.lax.fori_loop(0, steps, body, init, unroll=steps if unroll else 1)


# The two custom-VJP loops below are the whole of the lean form. Each visits the
# k * k window positions one at a time, in the forward pass and in the backward
# pass, so neither pass keeps more than one shifted copy of keys or values;
# their residuals are their own inputs. Plain autodiff of the same loops would
# save one shifted copy per position for the backward pass.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def window_logits(query, key_pad, kernel_size: int, unroll: bool):
    """`q_ij . k_{i+a, j+b}` for every window position: `[batch, H, W, heads, k * k]`.

    query `[batch, H, W, heads, d]`, key_pad the keys padded by k // 2 on both
    spatial sides. Logits are float32 or wider.
    """
    return _window_logits_fwd(query, key_pad, kernel_size, unroll)[0]


def _window_logits_fwd(query, key_pad, kernel_size, unroll):
    height, width = query.shape[1:3]
    dtype = jnp.promote_types(query.dtype, jnp.float32)

    def body(n, logits):
        dots = jnp.sum(query * _window(key_pad, n, kernel_size, height, width), -1, dtype=dtype)
        return jax.lax.dynamic_update_index_in_dim(logits, dots, n, 0)

    # Position-major while filling, so each step writes one contiguous block.
    logits = jnp.zeros((kernel_size * kernel_size, *query.shape[:-1]), dtype)
    logits = _loop(kernel_size, body, logits, unroll)
    return jnp.moveaxis(logits, 0, -1), (query, key_pad)


def _window_logits_bwd(kernel_size, unroll, residuals, grad):
    query, key_pad = residuals
    height, width = query.shape[1:3]
    grad = jnp.moveaxis(grad, -1, 0)

    def body(n, carry):
        d_query, d_key_pad = carry
        g = jax.lax.dynamic_index_in_dim(grad, n, 0, keepdims=False)[..., None]
        d_query = d_query + g * _window(key_pad, n, kernel_size, height, width)
        d_key_pad = _add_window(d_key_pad, n, kernel_size, g * query)
        return d_query, d_key_pad

    zeros = (jnp.zeros(query.shape, grad.dtype), jnp.zeros(key_pad.shape, grad.dtype))
    d_query, d_key_pad = _loop(kernel_size, body, zeros, unroll)
    return d_query.astype(query.dtype), d_key_pad.astype(key_pad.dtype)


window_logits.defvjp(_window_logits_fwd, _window_logits_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def window_sum(weights, value_pad, kernel_size: int, unroll: bool):
    """`sum_n w_ij[n] v_{(i, j) + offset n}`: `[batch, H, W, heads, d]`.

    weights `[batch, H, W, heads, k * k]` in the values' dtype, value_pad the
    values padded by k // 2 on both spatial sides.
    """
    return _window_sum_fwd(weights, value_pad, kernel_size, unroll)[0]


def _window_sum_fwd(weights, value_pad, kernel_size, unroll):
    height, width = weights.shape[1:3]
    by_position = jnp.moveaxis(weights, -1, 0)

    def body(n, context):
        w = jax.lax.dynamic_index_in_dim(by_position, n, 0, keepdims=False)[..., None]
        return context + w * _window(value_pad, n, kernel_size, height, width)

    shape = (*weights.shape[:-1], value_pad.shape[-1])
    context = _loop(kernel_size, body, jnp.zeros(shape, value_pad.dtype), unroll)
    return context, (by_position, value_pad)


def _window_sum_bwd(kernel_size, unroll, residuals, grad):
    by_position, value_pad = residuals
    height, width = grad.shape[1:3]

    def body(n, carry):
        d_weights, d_value_pad = carry
        w = jax.lax.dynamic_index_in_dim(by_position, n, 0, keepdims=False)[..., None]
        dots = jnp.sum(grad * _window(value_pad, n, kernel_size, height, width), -1)
        d_weights = jax.lax.dynamic_update_index_in_dim(d_weights, dots, n, 0)
        return d_weights, _add_window(d_value_pad, n, kernel_size, w * grad)

    zeros = (jnp.zeros(by_position.shape, grad.dtype), jnp.zeros(value_pad.shape, grad.dtype))
    d_weights, d_value_pad = _loop(kernel_size, body, zeros, unroll)
    return jnp.moveaxis(d_weights, 0, -1).astype(by_position.dtype), d_value_pad


window_sum.defvjp(_window_sum_fwd, _window_sum_bwd)
