"""The windowed operations of local 2-D attention, with memory-lean gradients.

Each pixel of `[batch, H, W, heads, d]` looks at its `kernel_size x
kernel_size` neighbourhood of the zero-padded keys and values. The logits
and the weighted sum are loops over the k*k offsets with custom VJPs that
recompute each window in the backward pass instead of saving it, so neither
pass holds a `[.., H, W, k*k, d]` unfolded copy (`attn.local2d`'s "lean"
form).

Two layouts run the same loops: batch first, `[batch, H, W, heads, d]`, and
batch minor, `[H, W, heads, d, batch]` (`batch_minor=True`), where each
window's dot product sums over a major axis and every elementwise step runs
along the batch in contiguous memory: on CPU the faster of the two once heads
are 12 channels or wider (benchmarks/local2d_forms.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def pad(x, r: int, batch_minor: bool = False):
    """Zero-pads the two spatial axes of `[batch, H, W, heads, d]` (or `[H, W, heads,
    d, batch]`) by r on each side."""
    spatial = ((r, r), (r, r))
    widths = spatial + ((0, 0),) * 3 if batch_minor else ((0, 0),) + spatial + ((0, 0),) * 2
    return jnp.pad(x, widths)


def _axes(batch_minor: bool) -> tuple[int, int]:
    """(first spatial axis, channel axis) of the layout."""
    return (0, 3) if batch_minor else (1, 4)


def relative_logits(query, row_embedding, col_embedding, plain: bool = False):
    """`q . r_ab` for every offset: `[batch, H, W, heads, k * k]`.

    query `[batch, H, W, heads, d]` (already scaled); row_embedding and
    col_embedding `[k, heads, d / 2]`. The row part depends on `a` only and
    the column part on `b` only, so they are formed apart and broadcast.
    """
    *lead, heads, d = query.shape
    half, k = d // 2, row_embedding.shape[0]
    if plain:  # for FLOP counts: the block-diagonal product below multiplies zeros
        rows = jnp.einsum("...hd,khd->...hk", query[..., :half], row_embedding)
        cols = jnp.einsum("...hd,khd->...hk", query[..., half:], col_embedding)
        return (rows[..., :, None] + cols[..., None, :]).reshape(*lead, heads, k * k)

    def per_offset(q_half, embedding):
        # [.., heads, d / 2] x [k, heads, d / 2] -> [.., heads, k] as one 2-D matrix
        # product with a block-diagonal [heads * d / 2, heads * k] matrix: faster on
        # CPU than a product batched over a few small heads.
        eye = jnp.eye(heads, dtype=embedding.dtype)
        blocks = jnp.einsum("khd,hg->hdgk", embedding, eye).reshape(heads * half, heads * k)
        return (q_half.reshape(-1, heads * half) @ blocks).reshape(*lead, heads, k)

    rows = per_offset(query[..., :half], row_embedding)
    cols = per_offset(query[..., half:], col_embedding)
    return (rows[..., :, None] + cols[..., None, :]).reshape(*lead, heads, k * k)


def _start(x_pad, n, kernel_size: int, spatial: int):
    start = [0] * x_pad.ndim
    start[spatial], start[spatial + 1] = n // kernel_size, n % kernel_size
    return tuple(start)


def _window(x_pad, n, kernel_size: int, height: int, width: int, spatial: int = 1):
    """The unpadded-size slice of padded `x_pad` seen at window position n."""
    shape = list(x_pad.shape)
    shape[spatial], shape[spatial + 1] = height, width
    return jax.lax.dynamic_slice(x_pad, _start(x_pad, n, kernel_size, spatial), shape)


def _add_window(x_pad, n, kernel_size: int, update, spatial: int = 1):
    """`x_pad` with `update` added to the slice `_window` reads at n."""
    start = _start(x_pad, n, kernel_size, spatial)
    current = jax.lax.dynamic_slice(x_pad, start, update.shape)
    return jax.lax.dynamic_update_slice(x_pad, current + update, start)


def _dot(x, y, channel: int, dtype, plain: bool):
    """`sum(x * y)` over the channel axis of `[.., heads, d]` (or `[.., heads, d, batch]`).

    Batch first, the sum over the last (short) axis is a matrix product with a
    `[heads * d, heads]` 0/1 matrix: 15-20% faster through the whole layer on
    CPU than XLA's reduction along a minor axis of 6 to 12. `plain` keeps the
    sum, for FLOP counts (the product multiplies by zeros).
    """
    if plain or channel != x.ndim - 1:
        return jnp.sum(x * y, channel, dtype=dtype)
    heads, d = x.shape[-2:]
    indicator = np.kron(np.eye(heads), np.ones((d, 1))).astype(x.dtype)
    flat = (x * y).reshape(-1, heads * d)
    return jnp.dot(flat, indicator, preferred_element_type=dtype).reshape(x.shape[:-1])


def _loop(kernel_size: int, body, init, unroll: bool):
    """`body(n, carry)` over the k * k window positions, as a loop or unrolled."""
    steps = kernel_size * kernel_size
    return jax.lax.fori_loop(0, steps, body, init, unroll=steps if unroll else 1)


# The two custom-VJP loops below are the whole of the lean form. Each visits the
# k * k window positions one at a time, in the forward pass and in the backward
# pass, so neither pass keeps more than one shifted copy of keys or values;
# their residuals are their own inputs. Plain autodiff of the same loops would
# save one shifted copy per position for the backward pass.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def window_logits(query, key_pad, kernel_size: int, unroll: bool, batch_minor: bool = False):
    """`q_ij . k_{i+a, j+b}` for every window position: `[batch, H, W, heads, k * k]`.

    query `[batch, H, W, heads, d]`, key_pad the keys padded by k // 2 on both
    spatial sides. Logits are float32 or wider. batch_minor: query `[H, W,
    heads, d, batch]` (key_pad likewise) and logits position-major, `[k * k,
    H, W, heads, batch]`.
    """
    return _window_logits_fwd(query, key_pad, kernel_size, unroll, batch_minor)[0]


def _window_logits_fwd(query, key_pad, kernel_size, unroll, batch_minor):
    spatial, channel = _axes(batch_minor)
    height, width = query.shape[spatial : spatial + 2]
    dtype = jnp.promote_types(query.dtype, jnp.float32)

    def body(n, logits):
        window = _window(key_pad, n, kernel_size, height, width, spatial)
        dots = _dot(query, window, channel, dtype, unroll)
        return jax.lax.dynamic_update_index_in_dim(logits, dots, n, 0)

    # Position-major while filling, so each step writes one contiguous block.
    shape = query.shape[:channel] + query.shape[channel + 1 :]
    logits = jnp.zeros((kernel_size * kernel_size, *shape), dtype)
    logits = _loop(kernel_size, body, logits, unroll)
    return (logits if batch_minor else jnp.moveaxis(logits, 0, -1)), (query, key_pad)


def _window_logits_bwd(kernel_size, unroll, batch_minor, residuals, grad):
    query, key_pad = residuals
    spatial, channel = _axes(batch_minor)
    height, width = query.shape[spatial : spatial + 2]
    grad = grad if batch_minor else jnp.moveaxis(grad, -1, 0)

    def body(n, carry):
        d_query, d_key_pad = carry
        g = jnp.expand_dims(jax.lax.dynamic_index_in_dim(grad, n, 0, keepdims=False), channel)
        d_query = d_query + g * _window(key_pad, n, kernel_size, height, width, spatial)
        d_key_pad = _add_window(d_key_pad, n, kernel_size, g * query, spatial)
        return d_query, d_key_pad

    zeros = (jnp.zeros(query.shape, grad.dtype), jnp.zeros(key_pad.shape, grad.dtype))
    d_query, d_key_pad = _loop(kernel_size, body, zeros, unroll)
    return d_query.astype(query.dtype), d_key_pad.astype(key_pad.dtype)


window_logits.defvjp(_window_logits_fwd, _window_logits_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def window_sum(weights, value_pad, kernel_size: int, unroll: bool, batch_minor: bool = False):
    """`sum_n w_ij[n] v_{(i, j) + offset n}`: `[batch, H, W, heads, d]`.

    weights `[batch, H, W, heads, k * k]` in the values' dtype, value_pad the
    values padded by k // 2 on both spatial sides. batch_minor: weights
    position-major `[k * k, H, W, heads, batch]`, values and result `[H, W,
    heads, d, batch]`.
    """
    return _window_sum_fwd(weights, value_pad, kernel_size, unroll, batch_minor)[0]


def _window_sum_fwd(weights, value_pad, kernel_size, unroll, batch_minor):
    spatial, channel = _axes(batch_minor)
    by_position = weights if batch_minor else jnp.moveaxis(weights, -1, 0)
    height, width = by_position.shape[1 + spatial : 3 + spatial]

    def body(n, context):
        w = jax.lax.dynamic_index_in_dim(by_position, n, 0, keepdims=False)
        window = _window(value_pad, n, kernel_size, height, width, spatial)
        return context + jnp.expand_dims(w, channel) * window

    shape = list(value_pad.shape)
    shape[spatial], shape[spatial + 1] = height, width
    context = _loop(kernel_size, body, jnp.zeros(shape, value_pad.dtype), unroll)
    return context, (by_position, value_pad)


def _window_sum_bwd(kernel_size, unroll, batch_minor, residuals, grad):
    by_position, value_pad = residuals
    spatial, channel = _axes(batch_minor)
    height, width = grad.shape[spatial : spatial + 2]

    def body(n, carry):
        d_weights, d_value_pad = carry
        w = jax.lax.dynamic_index_in_dim(by_position, n, 0, keepdims=False)
        window = _window(value_pad, n, kernel_size, height, width, spatial)
        d_weights = jax.lax.dynamic_update_index_in_dim(
            d_weights, _dot(grad, window, channel, grad.dtype, unroll), n, 0
        )
        update = jnp.expand_dims(w, channel) * grad
        return d_weights, _add_window(d_value_pad, n, kernel_size, update, spatial)

    zeros = (jnp.zeros(by_position.shape, grad.dtype), jnp.zeros(value_pad.shape, grad.dtype))
    d_weights, d_value_pad = _loop(kernel_size, body, zeros, unroll)
    d_weights = d_weights if batch_minor else jnp.moveaxis(d_weights, 0, -1)
    return d_weights.astype(by_position.dtype), d_value_pad


window_sum.defvjp(_window_sum_fwd, _window_sum_bwd)
