"""Flash attention as Pallas kernels, for GPU (and CPU in interpret mode).

`flash_attention` has the arguments of `attn.dot_product_attention`. One
kernel instance owns a block of queries of one head and streams the key and
value blocks of that head's key/value head past it with an online softmax, so
no `[q_len, k_len]` array exists outside the chip's fast memory. Causal and
sequence-length limits bound the key loop per query block (and per sequence),
so skipped blocks cost nothing.

The backward pass is two more kernels, one over query blocks (dq) and one
over key blocks (dk, dv), which recompute the probabilities from the saved
log-sum-exp. With a `bias`, whose gradient is a full `[q_len, k_len]` array
per broadcast group, the backward pass is instead the blockwise JAX one of
`attn.blockwise`, fed with this kernel's saved output and log-sum-exp.

On CPU the kernels only run with `interpret=True` (the default there), which
is for testing: it is far slower than `attn.blockwise`. The kernels are
written for the Triton lowering used on GPUs (block sizes are powers of two,
lengths are padded to whole blocks); they have been checked in interpret mode
only.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from attn import blockwise, inputs
from attn.pallas_kernels import Config, dkdv_kernel, dq_kernel, forward_kernel


def _optional_specs(cfg, bias, mask, q_lens, kv_lens, *, by_key_block):
    """BlockSpecs and arrays of the optional inputs, grid (batch, heads, block)."""
    specs, arrays = [], []
    for array in (bias, mask):
        if array is None:
            continue
        b, h, q, k = array.shape
        if by_key_block:  # rows: all queries; columns: the key block
            shape, col = (q, cfg.block_k), True
        else:  # rows: the query block; columns: all keys
            shape, col = (cfg.block_q if q > 1 else 1, k), False

        def index(bi, hi, blk, b=b, h=h, q=q, col=col):
            return (
                bi if b > 1 else 0,
                hi if h > 1 else 0,
                blk if (q > 1 and not col) else 0,
                blk if col else 0,
            )

        specs.append(pl.BlockSpec((None, None, *shape), index))
        arrays.append(array)
    for lengths in (q_lens, kv_lens):
        if lengths is not None:
            specs.append(pl.BlockSpec((1,), lambda bi, hi, blk: (bi,)))
            arrays.append(lengths)
    return specs, arrays


def _call(cfg, kernel, grid, specs, arrays, out_shapes, out_specs):
    return pl.pallas_call(
        kernel,
        grid=grid,
        in_specs=specs,
        out_specs=out_specs,
        out_shape=out_shapes,
        interpret=cfg.interpret,
    )(*arrays)


def _qkv_specs(cfg, q, k, *, by_key_block):
    """Specs of q, k, v, `[batch, heads or kv_heads, length, dim]`."""
    g = cfg.group
    q_len, k_len = q.shape[2], k.shape[2]
    if by_key_block:
        q_spec = pl.BlockSpec((None, None, q_len, q.shape[-1]), lambda b, h, j: (b, h, 0, 0))
        k_spec = pl.BlockSpec(
            (None, None, cfg.block_k, k.shape[-1]), lambda b, h, j: (b, h // g, j, 0)
        )
    else:
        q_spec = pl.BlockSpec((None, None, cfg.block_q, q.shape[-1]), lambda b, h, i: (b, h, i, 0))
        k_spec = pl.BlockSpec((None, None, k_len, k.shape[-1]), lambda b, h, i: (b, h // g, 0, 0))
    return q_spec, k_spec


def _forward(cfg, q, k, v, bias, mask, q_lens, kv_lens):
    batch, heads, q_pad, _ = q.shape
    n_q, n_k = q_pad // cfg.block_q, k.shape[2] // cfg.block_k
    q_spec, k_spec = _qkv_specs(cfg, q, k, by_key_block=False)
    v_spec = pl.BlockSpec((None, None, v.shape[2], v.shape[-1]), k_spec.index_map)
    opt_specs, opt_arrays = _optional_specs(cfg, bias, mask, q_lens, kv_lens, by_key_block=False)
    row = lambda b, h, i: (b, h, i)
    return _call(
        cfg,
        functools.partial(forward_kernel, cfg, n_k),
        (batch, heads, n_q),
        [q_spec, k_spec, v_spec, *opt_specs],
        [q, k, v, *opt_arrays],
        (
            jax.ShapeDtypeStruct((batch, heads, q_pad, v.shape[-1]), v.dtype),
            jax.ShapeDtypeStruct((batch, heads, q_pad), jnp.float32),
        ),
        (
            pl.BlockSpec((None, None, cfg.block_q, v.shape[-1]), lambda b, h, i: (b, h, i, 0)),
            pl.BlockSpec((None, None, cfg.block_q), row),
        ),
    )


def _backward_kernels(cfg, q, k, v, mask, q_lens, kv_lens, out, lse, d_out):
    batch, heads, q_pad, dim = q.shape
    kv_heads, k_pad = k.shape[1], k.shape[2]
    n_q, n_k = q_pad // cfg.block_q, k_pad // cfg.block_k
    delta = jnp.einsum("bhqd,bhqd->bhq", d_out, out, preferred_element_type=jnp.float32)

    q_spec, k_spec = _qkv_specs(cfg, q, k, by_key_block=False)
    v_spec = pl.BlockSpec((None, None, k_pad, v.shape[-1]), k_spec.index_map)
    opt_specs, opt_arrays = _optional_specs(cfg, None, mask, q_lens, kv_lens, by_key_block=False)
    do_spec = pl.BlockSpec((None, None, cfg.block_q, v.shape[-1]), q_spec.index_map)
    row_spec = pl.BlockSpec((None, None, cfg.block_q), lambda b, h, i: (b, h, i))
    dq = _call(
        cfg,
        functools.partial(dq_kernel, cfg, n_k),
        (batch, heads, n_q),
        [q_spec, k_spec, v_spec, *opt_specs, do_spec, row_spec, row_spec],
        [q, k, v, *opt_arrays, d_out, lse, delta],
        jax.ShapeDtypeStruct(q.shape, q.dtype),
        pl.BlockSpec((None, None, cfg.block_q, dim), q_spec.index_map),
    )

    q_spec, k_spec = _qkv_specs(cfg, q, k, by_key_block=True)
    v_spec = pl.BlockSpec((None, None, cfg.block_k, v.shape[-1]), k_spec.index_map)
    opt_specs, opt_arrays = _optional_specs(cfg, None, mask, q_lens, kv_lens, by_key_block=True)
    do_spec = pl.BlockSpec((None, None, q_pad, v.shape[-1]), q_spec.index_map)
    rows_spec = pl.BlockSpec((None, None, q_pad), lambda b, h, j: (b, h, 0))
    # One dk, dv per query head; heads sharing a key/value head are summed after.
    per_head = lambda a: jax.ShapeDtypeStruct((batch, heads, k_pad, a.shape[-1]), jnp.float32)
    key_block = lambda d: pl.BlockSpec((None, None, cfg.block_k, d), lambda b, h, j: (b, h, j, 0))
    dk, dv = _call(
        cfg,
        functools.partial(dkdv_kernel, cfg, n_q),
        (batch, heads, n_k),
        [q_spec, k_spec, v_spec, *opt_specs, do_spec, rows_spec, rows_spec],
        [q, k, v, *opt_arrays, d_out, lse, delta],
        (per_head(k), per_head(v)),
        (key_block(dim), key_block(v.shape[-1])),
    )
    dk = dk.reshape(batch, kv_heads, cfg.group, k_pad, dim).sum(2)
    dv = dv.reshape(batch, kv_heads, cfg.group, k_pad, v.shape[-1]).sum(2)
    return dq, dk.astype(k.dtype), dv.astype(v.dtype)


def _to_engine(array, group):
    """`[b, heads, q, ...]` -> `[b, kv_heads, q * group, ...]` (blockwise's row layout)."""
    b, h, q = array.shape[:3]
    array = array.reshape(b, h // group, group, q, *array.shape[3:])
    array = jnp.moveaxis(array, 2, 3)
    return array.reshape(b, h // group, q * group, *array.shape[4:])


def _blockwise_backward(cfg, q, k, v, bias, mask, q_lens, kv_lens, out, lse, d_out):
    """The JAX backward pass of attn.blockwise on this kernel's residuals."""
    g = cfg.group
    grouped = lambda a: None if a is None else inputs.group_heads(a, k.shape[1])
    dq, dk, dv, _, dbias = blockwise.backward_pass(
        blockwise.scaled_dot_score(cfg.scale),
        _to_engine(q, g),
        k,
        v,
        _to_engine(out, g),
        _to_engine(lse, g),
        _to_engine(d_out, g),
        group=g,
        block_q=cfg.block_q,
        block_k=cfg.block_k,
        k_len=cfg.k_len,
        is_causal=cfg.is_causal,
        bias=grouped(bias),
        mask=grouped(None if mask is None else mask != 0),
        q_lens=q_lens,
        kv_lens=kv_lens,
    )
    b, kh, _, dim = dq.shape
    dq = dq.reshape(b, kh, q.shape[2], g, dim)
    dq = jnp.moveaxis(dq, 3, 2).reshape(q.shape)
    if dbias is not None:  # [b, kh or 1, q, g or 1, k] -> bias's [b, h or 1, q, k]
        dbias = jnp.moveaxis(dbias, 3, 2).reshape(bias.shape)
    return dq, dk, dv, dbias


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _flash(cfg, q, k, v, bias, mask, q_lens, kv_lens):
    return _forward(cfg, q, k, v, bias, mask, q_lens, kv_lens)[0]


def _flash_fwd(cfg, q, k, v, bias, mask, q_lens, kv_lens):
    out, lse = _forward(cfg, q, k, v, bias, mask, q_lens, kv_lens)
    return out, (q, k, v, bias, mask, q_lens, kv_lens, out, lse)


def _flash_bwd(cfg, residuals, d_out):
    q, k, v, bias, mask, q_lens, kv_lens, out, lse = residuals
    d_out = d_out.astype(v.dtype)
    if bias is None:
        dq, dk, dv = _backward_kernels(cfg, q, k, v, mask, q_lens, kv_lens, out, lse, d_out)
        dbias = None
    else:
        dq, dk, dv, dbias = _blockwise_backward(
            cfg, q, k, v, bias, mask, q_lens, kv_lens, out, lse, d_out
        )
    return dq, dk, dv, dbias, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def _pad(array, axis, multiple):
    extra = -array.shape[axis] % multiple
    if extra == 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, extra)
    return jnp.pad(array, widths)


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@inputs.accepts_unbatched
def flash_attention(
    query,
    key,
    value,
    *,
    bias=None,
    mask=None,
    scale: float | None = None,
    is_causal: bool = False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    block_q: int = 128,
    block_k: int = 128,
    interpret: bool | None = None,
):
    """Scaled dot-product attention as Pallas flash-attention kernels.

    Args:
      query: `[batch, q_len, heads, head_dim]` (or without the batch axis).
      key: `[batch, k_len, kv_heads, head_dim]`; `heads` a multiple of `kv_heads`.
      value: `[batch, k_len, kv_heads, v_dim]`.
      bias: optional float, broadcastable to `[batch, heads, q_len, k_len]`.
      mask: optional boolean, broadcastable to `[batch, heads, q_len, k_len]`;
        True = attend.
      scale: logit scale; default `1 / sqrt(head_dim)`.
      is_causal: query i attends to keys j <= i.
      query_seq_lengths, key_value_seq_lengths: optional `[batch]` ints, as in
        `attn.dot_product_attention`.
      block_q, block_k: powers of two; cut down to the (padded) lengths.
      interpret: run the kernels in the Pallas interpreter; default: on CPU.

    Returns:
      `[batch, q_len, heads, v_dim]` in the value's dtype; zero for a query
      with no valid key.
    """
    inputs.check_inputs(query, key, value, bias, mask, query_seq_lengths, key_value_seq_lengths)
    for name, size in (("block_q", block_q), ("block_k", block_k)):
        if not isinstance(size, int) or size < 1 or size & (size - 1):
            raise ValueError(f"{name} must be a power of two, got {size!r}.")
    batch, q_len, heads, head_dim = query.shape
    k_len, kv_heads = key.shape[1], key.shape[2]
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    block_q = min(block_q, _power_of_two_at_least(q_len))
    block_k = min(block_k, _power_of_two_at_least(k_len))
    cfg = Config(
        block_q=block_q,
        block_k=block_k,
        group=heads // kv_heads,
        scale=1.0 / math.sqrt(head_dim) if scale is None else float(scale),
        is_causal=bool(is_causal),
        k_len=k_len,
        has_bias=bias is not None,
        has_mask=mask is not None,
        has_q_lens=query_seq_lengths is not None,
        has_kv_lens=key_value_seq_lengths is not None,
        interpret=bool(interpret),
    )

    def four_d(array, dtype, fill_axes):
        array = jnp.asarray(array, dtype)
        array = array.reshape((1,) * (4 - array.ndim) + array.shape)
        for axis, multiple in fill_axes:
            if array.shape[axis] > 1:
                array = _pad(array, axis, multiple)
        return array

    pads = ((2, block_q), (3, block_k))
    if bias is not None:
        bias = four_d(bias, jnp.promote_types(bias.dtype, jnp.float32), pads)
    if mask is not None:  # int8: boolean memory is awkward for kernels
        mask = four_d(mask, jnp.int8, pads)
    q = _pad(query.transpose(0, 2, 1, 3), 2, block_q)
    k = _pad(key.transpose(0, 2, 1, 3), 2, block_k)
    v = _pad(value.transpose(0, 2, 1, 3), 2, block_k)
    q_lens, kv_lens = (
        None if x is None else jnp.minimum(jnp.asarray(x, jnp.int32), n)
        for x, n in ((query_seq_lengths, q_len), (key_value_seq_lengths, k_len))
    )
    out = _flash(cfg, q, k, v, bias, mask, q_lens, kv_lens)
    return out[:, :, :q_len].transpose(0, 2, 1, 3)
