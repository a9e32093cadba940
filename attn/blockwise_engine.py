"""The blockwise engine: an online softmax over key blocks, forward and backward.

A score is a pair of functions, block logits and their vector-Jacobian
product (`BlockScore`); `run_blockwise` does the masking, the softmax and
the weighted sum of values for it, one query block at a time, with memory
linear in sequence length. The backward pass (a custom VJP) recomputes each
block's probabilities from the saved log-sum-exp. `attn.blockwise` runs the
scaled dot score on it, `attn.additive_chunked` the additive one.

Grouped query heads are packed into the rows of a query block,
`[kv_heads, q_len * group]`, so that the queries sharing a key/value head
make one matrix product.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from attn import masking
from attn.inputs import group_heads

# (block_q, block_k) by backend, then for causal attention, whose diagonal
# blocks are partly wasted, so smaller blocks skip more. On CPU the blocks
# also shrink (to no less than 128 x 128) until batch x heads x block_q x
# block_k fits CPU_BLOCK_ELEMENTS, about a core's cache of float32 logits.
# CPU: the best of sweeps of 64..512 x 128..1024 at lengths 512 to 8192 and
# batch x heads 2 to 64 (2-core AMD EPYC). GPU and TPU: not measured here.
DEFAULT_BLOCKS = {"cpu": (256, 512), "gpu": (512, 512), "tpu": (512, 1024)}
CAUSAL_BLOCKS = {"cpu": (128, 128), "gpu": (256, 256), "tpu": (512, 512)}
CPU_BLOCK_ELEMENTS = 2**18

# Masked logits are `masking.MASKED_LOGIT`, finite (no inf anywhere, so the
# engine runs under `jax.debug_infs`). A row with no valid key yet has that
# as its maximum; it is shifted by _FLOOR instead, so that its terms are
# exp(MASKED_LOGIT - _FLOOR) = 0 rather than 1, with no select in the loop.
_MASKED = masking.MASKED_LOGIT
_FLOOR = masking.SHIFT_FLOOR
# The log-sum-exp of a row with no valid key: its recomputed probabilities in
# the backward pass are exp(MASKED_LOGIT - 0) = 0.
EMPTY_ROW_LSE = 0.0


class BlockScore(NamedTuple):
    """A score the engine can run blockwise.

    `logits(q, k, params)`: q `[batch, kv_heads, rows, q_features]` (rows =
    query positions x group), k `[batch, kv_heads, block_k, k_features]` ->
    `(logits, aux)`: float32 `[batch, kv_heads, rows, block_k]` and anything
    the VJP can reuse (None if nothing).
    `vjp(q, k, params, aux, d_logits)` -> `(dq, dk, dparams)` in float32,
    shaped like q, k and params (dparams None for a score without
    parameters); `aux` is None when the logits were not recomputed.
    """

    logits: Any
    vjp: Any


class _Config(NamedTuple):
    score: BlockScore
    group: int
    block_q: int  # query positions per block; a block has block_q * group rows
    block_k: int
    k_len: int  # before padding to whole blocks
    is_causal: bool


def default_blocks(
    backend: str | None = None, is_causal: bool = False, batch_heads: int = 1
) -> tuple[int, int]:
    """`(block_q, block_k)` for `backend` (default: JAX's default backend)."""
    backend = backend or jax.default_backend()
    table = CAUSAL_BLOCKS if is_causal else DEFAULT_BLOCKS
    block_q, block_k = table.get(backend, table["gpu"])
    while backend == "cpu" and batch_heads * block_q * block_k > CPU_BLOCK_ELEMENTS:
        if block_k >= block_q and block_k > 128:
            block_k //= 2
        elif block_q > 128:
            block_q //= 2
        else:
            break
    return block_q, block_k


def _rows(array, i, rows):
    return jax.lax.dynamic_slice_in_dim(array, i * rows, rows, 2)


def _block(cfg, array, i, j):
    """Block (i, j) of a `[b, h, q, group, k]` mask or bias, as `[b, h, rows, block_k]`.

    Axes of size 1 broadcast and stay of size 1 where they can.
    """
    if array.shape[2] > 1:
        array = jax.lax.dynamic_slice_in_dim(array, i * cfg.block_q, cfg.block_q, 2)
    if array.shape[4] > 1:
        array = jax.lax.dynamic_slice_in_dim(array, j * cfg.block_k, cfg.block_k, 4)
    b, h, q, g, k = array.shape
    if q == g == 1:
        return array.reshape(b, h, 1, k)
    return jnp.broadcast_to(array, (b, h, cfg.block_q, cfg.group, k)).reshape(b, h, -1, k)


def _block_logits(cfg, i, j, q_i, k_j, params, bias, mask, q_lens, kv_lens):
    """Logits of query block i against key block j (MASKED_LOGIT where masked), and aux."""
    s, aux = cfg.score.logits(q_i, k_j, params)
    if bias is not None:
        s = s + _block(cfg, bias, i, j)
    # Positions as [1, 1, rows, 1] and [1, 1, 1, block_k], the logits' rank.
    rows = jnp.arange(cfg.block_q * cfg.group)[None, None, :, None]
    q_pos = i * cfg.block_q + (rows if cfg.group == 1 else rows // cfg.group)
    k_pos = j * cfg.block_k + jnp.arange(cfg.block_k)[None, None, None, :]
    valid = [] if mask is None else [_block(cfg, mask, i, j)]
    if cfg.is_causal:
        valid.append(k_pos <= q_pos)
    if kv_lens is not None:
        valid.append(k_pos < kv_lens[:, None, None, None])
    elif cfg.k_len % cfg.block_k:
        valid.append(k_pos < cfg.k_len)  # the last block's padding keys
    if q_lens is not None:
        valid.append(q_pos < q_lens[:, None, None, None])
    if valid:
        s = jnp.where(functools.reduce(jnp.logical_and, valid), s, _MASKED)
    return s, aux


def _counts(cfg, q, k, q_lens, kv_lens):
    """Number of query and key blocks, and how many of them hold valid positions."""
    n_q = q.shape[2] // (cfg.block_q * cfg.group)
    n_k = k.shape[2] // cfg.block_k
    q_stop = n_q if q_lens is None else jnp.clip(-(-jnp.max(q_lens) // cfg.block_q), 0, n_q)
    k_stop = n_k if kv_lens is None else jnp.clip(-(-jnp.max(kv_lens) // cfg.block_k), 0, n_k)
    return n_q, n_k, q_stop, k_stop


def _loop(start, stop, body, carry, static_count):
    """fori_loop, with no loop at all when there is exactly one block."""
    if static_count == 1:
        if isinstance(start, int) and isinstance(stop, int):
            return body(start, carry) if start < stop else carry
        return jax.lax.cond(start < stop, lambda c: body(start, c), lambda c: c, carry)
    return jax.lax.fori_loop(start, stop, body, carry)


def _single_block(cfg, q, k, v, params, bias, mask, q_lens, kv_lens):
    """Everything in one block: a plain softmax; returns the probabilities and aux too."""
    s, aux = _block_logits(cfg, 0, 0, q, k, params, bias, mask, q_lens, kv_lens)
    p = jnp.exp(s - jnp.maximum(s.max(-1, keepdims=True), _FLOOR))
    # A row with a valid key sums to at least 1 (its largest term is exp(0)).
    p = p * (1.0 / jnp.maximum(p.sum(-1, keepdims=True), 1.0))
    out = jnp.einsum("bhrs,bhsd->bhrd", p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.astype(v.dtype), (p, aux)


def _forward(cfg, q, k, v, params, bias, mask, q_lens, kv_lens):
    """Output `[b, h, rows, dv]` (value dtype) and log-sum-exp `[b, h, rows]`.

    The log-sum-exp is EMPTY_ROW_LSE on rows with no valid key, which makes
    their recomputed probabilities exp(MASKED_LOGIT - 0) = 0 in the backward
    pass.
    """
    bq, bk = cfg.block_q, cfg.block_k
    rows = bq * cfg.group
    n_q, n_k, q_stop, k_stop = _counts(cfg, q, k, q_lens, kv_lens)
    row_shape = q.shape[:2] + (rows,)

    def query_block(i, carry):
        out, lse = carry
        q_i = _rows(q, i, rows)
        k_end = k_stop
        if cfg.is_causal:
            k_end = jnp.minimum(k_end, ((i + 1) * bq + bk - 1) // bk)

        def key_block(j, state):
            m, total, acc = state
            k_j = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, 2)
            v_j = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, 2)
            s, _ = _block_logits(cfg, i, j, q_i, k_j, params, bias, mask, q_lens, kv_lens)
            m_new = jnp.maximum(m, s.max(-1))
            shift = jnp.maximum(m_new, _FLOOR)
            p = jnp.exp(s - shift[..., None])
            rescale = jnp.exp(m - shift)
            pv = jnp.einsum(
                "bhrs,bhsd->bhrd", p.astype(v.dtype), v_j, preferred_element_type=jnp.float32
            )
            return m_new, total * rescale + p.sum(-1), acc * rescale[..., None] + pv

        init = (
            jnp.full(row_shape, _MASKED, jnp.float32),
            jnp.zeros(row_shape, jnp.float32),
            jnp.zeros(row_shape + (v.shape[-1],), jnp.float32),
        )
        m, total, acc = _loop(0, k_end, key_block, init, n_k)
        o_i = (acc * (1.0 / jnp.maximum(total, 1.0))[..., None]).astype(v.dtype)
        lse_i = jnp.where(total == 0.0, EMPTY_ROW_LSE, m + jnp.log(jnp.maximum(total, 1.0)))
        out = jax.lax.dynamic_update_slice_in_dim(out, o_i, i * rows, 2)
        lse = jax.lax.dynamic_update_slice_in_dim(lse, lse_i, i * rows, 2)
        return out, lse

    init = (
        jnp.zeros(q.shape[:3] + (v.shape[-1],), v.dtype),
        jnp.full(q.shape[:3], EMPTY_ROW_LSE, jnp.float32),
    )
    return _loop(0, q_stop, query_block, init, n_q)


def _add_bias_grad(cfg, dbias, ds, i, j):
    """Adds block (i, j) of the logits' cotangent into a `[b, h, q, group, k]` bias grad."""
    ds = ds.reshape(ds.shape[:2] + (cfg.block_q, cfg.group, ds.shape[-1]))
    ds = ds.sum(tuple(a for a in range(5) if dbias.shape[a] == 1), keepdims=True)
    starts = [0, 0, i * cfg.block_q if dbias.shape[2] > 1 else 0, 0]
    starts.append(j * cfg.block_k if dbias.shape[4] > 1 else 0)
    current = jax.lax.dynamic_slice(dbias, starts, ds.shape)
    return jax.lax.dynamic_update_slice(dbias, current + ds, starts)


def _backward(cfg, residuals, d_out):
    q, k, v, params, bias, mask, q_lens, kv_lens, out, lse, saved = residuals
    bq, bk = cfg.block_q, cfg.block_k
    rows = bq * cfg.group
    n_q, n_k, q_stop, k_stop = _counts(cfg, q, k, q_lens, kv_lens)
    d_out = d_out.astype(v.dtype)
    # rowsum(dO * O) = rowsum(dP * P): the softmax VJP's per-row term, from
    # arrays linear in length.
    delta = jnp.einsum("bhrd,bhrd->bhr", d_out, out, preferred_element_type=jnp.float32)
    zeros_f32 = functools.partial(jax.tree.map, lambda x: jnp.zeros(x.shape, jnp.float32))

    def key_block(j, carry):
        dq, dparams, dbias, dk, dv = carry
        k_j = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, 2)
        v_j = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, 2)
        q_start = (j * bk) // bq if cfg.is_causal else 0

        def query_block(i, state):
            dq, dparams, dbias, dk_j, dv_j = state
            q_i, do_i, delta_i = (_rows(a, i, rows) for a in (q, d_out, delta))
            if saved is None:
                s, aux = _block_logits(cfg, i, j, q_i, k_j, params, bias, mask, q_lens, kv_lens)
                p = jnp.exp(s - _rows(lse, i, rows)[..., None])
            else:
                p, aux = saved
            dv_j = dv_j + jnp.einsum(
                "bhrs,bhrd->bhsd", p.astype(v.dtype), do_i, preferred_element_type=jnp.float32
            )
            dp = jnp.einsum("bhrd,bhsd->bhrs", do_i, v_j, preferred_element_type=jnp.float32)
            ds = p * (dp - delta_i[..., None])
            dq_i, dk_part, dparams_part = cfg.score.vjp(q_i, k_j, params, aux, ds)
            dq = jax.lax.dynamic_update_slice_in_dim(dq, _rows(dq, i, rows) + dq_i, i * rows, 2)
            if dparams_part is not None:
                dparams = jax.tree.map(jnp.add, dparams, dparams_part)
            if bias is not None:
                dbias = _add_bias_grad(cfg, dbias, ds, i, j)
            return dq, dparams, dbias, dk_j + dk_part, dv_j

        init = (dq, dparams, dbias, zeros_f32(k_j), jnp.zeros(v_j.shape, jnp.float32))
        dq, dparams, dbias, dk_j, dv_j = _loop(q_start, q_stop, query_block, init, n_q)
        dk = jax.lax.dynamic_update_slice_in_dim(dk, dk_j.astype(k.dtype), j * bk, 2)
        dv = jax.lax.dynamic_update_slice_in_dim(dv, dv_j.astype(v.dtype), j * bk, 2)
        return dq, dparams, dbias, dk, dv

    init = (
        zeros_f32(q),
        zeros_f32(params),
        None if bias is None else zeros_f32(bias),
        jnp.zeros_like(k),
        jnp.zeros_like(v),
    )
    dq, dparams, dbias, dk, dv = _loop(0, k_stop, key_block, init, n_k)
    dparams = jax.tree.map(lambda d, p: d.astype(p.dtype), dparams, params)
    dbias = None if bias is None else dbias.astype(bias.dtype)
    return dq.astype(q.dtype), dk, dv, dparams, dbias, None, None, None


def _is_single_block(cfg, q, k):
    return q.shape[2] == cfg.block_q * cfg.group and k.shape[2] == cfg.block_k


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attention(cfg, q, k, v, params, bias, mask, q_lens, kv_lens):
    if _is_single_block(cfg, q, k):
        return _single_block(cfg, q, k, v, params, bias, mask, q_lens, kv_lens)[0]
    return _forward(cfg, q, k, v, params, bias, mask, q_lens, kv_lens)[0]


def _attention_fwd(cfg, q, k, v, params, bias, mask, q_lens, kv_lens):
    lse = saved = None
    if _is_single_block(cfg, q, k):
        out, saved = _single_block(cfg, q, k, v, params, bias, mask, q_lens, kv_lens)
    else:
        out, lse = _forward(cfg, q, k, v, params, bias, mask, q_lens, kv_lens)
    return out, (q, k, v, params, bias, mask, q_lens, kv_lens, out, lse, saved)


_attention.defvjp(_attention_fwd, _backward)


def backward_pass(
    score: BlockScore,
    q,
    k,
    v,
    out,
    lse,
    d_out,
    *,
    group: int,
    block_q: int,
    block_k: int,
    k_len: int,
    is_causal: bool,
    params=(),
    bias=None,
    mask=None,
    q_lens=None,
    kv_lens=None,
):
    """This engine's backward pass from another forward pass's output and log-sum-exp.

    For forward implementations that keep the same residuals
    (`attn.pallas_attention`). Arrays in the engine's layout, padded to whole
    blocks: q `[b, kv_heads, q_pad * group, d]`, k and v `[b, kv_heads,
    k_pad, d]`, out and d_out like q with v's last axis, lse `[b, kv_heads,
    q_pad * group]` (EMPTY_ROW_LSE on rows with no key), bias and mask as made by
    `group_heads`. Returns `(dq, dk, dv, dparams, dbias)`.
    """
    cfg = _Config(score, group, block_q, block_k, k_len, bool(is_causal))
    residuals = (q, k, v, params, bias, mask, q_lens, kv_lens, out, lse, None)
    return _backward(cfg, residuals, d_out)[:5]


def _pad_to(array, axis, multiple):
    extra = -array.shape[axis] % multiple
    if extra == 0 or array.shape[axis] == 1:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, extra)
    return jnp.pad(array, widths)


def run_blockwise(
    score: BlockScore,
    query,
    key,
    value,
    params=None,
    *,
    bias=None,
    mask=None,
    is_causal: bool = False,
    query_seq_lengths=None,
    key_value_seq_lengths=None,
    block_q: int | None = None,
    block_k: int | None = None,
):
    """The blockwise engine; shapes are checked by the callers.

    Args:
      score: the block score.
      query: `[batch, kv_heads, q_len, group, q_features]`.
      key: `[batch, kv_heads, k_len, k_features]`.
      value: `[batch, kv_heads, k_len, v_features]`.
      params: the score's parameters (a pytree of arrays), differentiated.
      bias, mask: broadcastable to `[batch, heads, q_len, k_len]`, heads =
        kv_heads * group (head n reads key/value head n // group).
      is_causal, query_seq_lengths, key_value_seq_lengths: as in
        `blockwise_attention`.
      block_q, block_k: block sizes (default: `default_blocks(...)`), cut down to
        the lengths.

    Returns:
      `[batch, kv_heads, q_len, group, v_features]` in the value's dtype.
    """
    batch, kv_heads, q_len, group, _ = query.shape
    k_len = key.shape[2]
    default_q, default_k = default_blocks(is_causal=is_causal, batch_heads=batch * kv_heads * group)
    for name, size in (("block_q", block_q), ("block_k", block_k)):
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"{name} must be a positive integer, got {size!r}.")
    block_q = min(block_q or default_q, q_len)
    block_k = min(block_k or default_k, k_len)
    cfg = _Config(score, group, block_q, block_k, k_len, bool(is_causal))

    bias, mask = group_heads(bias, kv_heads), group_heads(mask, kv_heads)
    if bias is not None:
        bias = bias.astype(jnp.promote_types(bias.dtype, jnp.float32))
    bias, mask = (
        None if a is None else _pad_to(_pad_to(a, 2, block_q), 4, block_k) for a in (bias, mask)
    )
    query = _pad_to(query, 2, block_q)
    q_pad = query.shape[2]
    query = query.reshape(batch, kv_heads, q_pad * group, query.shape[-1])
    key, value = _pad_to(key, 2, block_k), _pad_to(value, 2, block_k)
    # Clipped to the lengths, so that the padding of the last blocks stays invalid.
    q_lens, kv_lens = (
        None if x is None else jnp.minimum(jnp.asarray(x, jnp.int32), n)
        for x, n in ((query_seq_lengths, q_len), (key_value_seq_lengths, k_len))
    )
    params = () if params is None else params
    out = _attention(cfg, query, key, value, params, bias, mask, q_lens, kv_lens)
    return out.reshape(batch, kv_heads, q_pad, group, -1)[:, :, :q_len]
