"""The Pallas kernels of `attn.pallas_attention`: forward, dq and dk/dv.

Each kernel instance owns one block (of queries, or of keys for dk/dv) of one
head and loops over the other side's blocks with an online softmax, reading
the optional bias, mask and sequence lengths its configuration says are
there. Masked logits are finite, and a row with no valid key gets the
log-sum-exp `attn.blockwise_engine.EMPTY_ROW_LSE`, so that the blockwise
backward pass can reuse this forward's saved statistics.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from attn import blockwise, masking

# Finite masked logits and log-sum-exp of empty rows, as in `attn.blockwise`
# (whose backward pass reads this forward's log-sum-exp).
_MASKED = masking.MASKED_LOGIT
_FLOOR = masking.SHIFT_FLOOR


class Config(NamedTuple):
    block_q: int
    block_k: int
    group: int  # query heads per key/value head
    scale: float
    is_causal: bool
    k_len: int  # before padding
    has_bias: bool
    has_mask: bool
    has_q_lens: bool
    has_kv_lens: bool
    interpret: bool


def _scores(cfg, q, k, i, j, bias, mask, q_len, kv_len):
    """Masked, scaled logits of query block i against key block j, float32."""
    s = (
        jax.lax.dot_general(q, k, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
        * cfg.scale
    )
    if bias is not None:
        s = s + bias.astype(jnp.float32)
    q_pos = i * cfg.block_q + jax.lax.broadcasted_iota(jnp.int32, s.shape, 0)
    k_pos = j * cfg.block_k + jax.lax.broadcasted_iota(jnp.int32, s.shape, 1)
    valid = k_pos < kv_len
    if mask is not None:
        valid = valid & (mask != 0)
    if cfg.is_causal:
        valid = valid & (k_pos <= q_pos)
    if q_len is not None:
        valid = valid & (q_pos < q_len)
    return jnp.where(valid, s, _MASKED)


def _key_blocks(cfg, i, n_k, kv_len):
    """Key blocks query block i needs: those before the causal edge and the length."""
    stop = jnp.minimum(n_k, (kv_len + cfg.block_k - 1) // cfg.block_k)
    if cfg.is_causal:
        stop = jnp.minimum(stop, ((i + 1) * cfg.block_q + cfg.block_k - 1) // cfg.block_k)
    return stop


def _unpack(cfg, refs):
    """Splits kernel refs into the fixed inputs and the optional ones, by config."""
    refs = list(refs)
    fixed = [refs.pop(0) for _ in range(3)]
    optional = {}
    for name in ("bias", "mask", "q_lens", "kv_lens"):
        if getattr(cfg, f"has_{name}"):
            optional[name] = refs.pop(0)
    return fixed, optional, refs


def _limits(cfg, optional):
    q_len = optional["q_lens"][0] if cfg.has_q_lens else None
    kv_len = optional["kv_lens"][0] if cfg.has_kv_lens else cfg.k_len
    return q_len, kv_len


def _row_slice(ref, j, size):
    """Columns j*size.. of a `[rows or 1, k_pad]` mask or bias block."""
    return ref[:, pl.ds(j * size, size)]


def forward_kernel(cfg, n_k, *refs):
    (q_ref, k_ref, v_ref), optional, (o_ref, lse_ref) = _unpack(cfg, refs)
    i = pl.program_id(2)
    q_len, kv_len = _limits(cfg, optional)
    q = q_ref[...]
    bq, bk = cfg.block_q, cfg.block_k

    def body(j, carry):
        m, total, acc = carry
        k = k_ref[pl.ds(j * bk, bk), :]
        v = v_ref[pl.ds(j * bk, bk), :]
        bias = _row_slice(optional["bias"], j, bk) if cfg.has_bias else None
        mask = _row_slice(optional["mask"], j, bk) if cfg.has_mask else None
        s = _scores(cfg, q, k, i, j, bias, mask, q_len, kv_len)
        m_new = jnp.maximum(m, s.max(axis=1))
        shift = jnp.maximum(m_new, _FLOOR)
        p = jnp.exp(s - shift[:, None])
        rescale = jnp.exp(m - shift)
        pv = jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
        return m_new, total * rescale + p.sum(axis=1), acc * rescale[:, None] + pv

    init = (
        jnp.full((bq,), _MASKED, jnp.float32),
        jnp.zeros((bq,), jnp.float32),
        jnp.zeros((bq, v_ref.shape[-1]), jnp.float32),
    )
    m, total, acc = jax.lax.fori_loop(0, _key_blocks(cfg, i, n_k, kv_len), body, init)
    o_ref[...] = (acc * (1.0 / jnp.maximum(total, 1.0))[:, None]).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(
        total == 0.0, blockwise.EMPTY_ROW_LSE, m + jnp.log(jnp.maximum(total, 1.0))
    )


def dq_kernel(cfg, n_k, *refs):
    (q_ref, k_ref, v_ref), optional, (do_ref, lse_ref, delta_ref, dq_ref) = _unpack(cfg, refs)
    i = pl.program_id(2)
    q_len, kv_len = _limits(cfg, optional)
    q, do, lse, delta = q_ref[...], do_ref[...], lse_ref[...], delta_ref[...]
    bk = cfg.block_k

    def body(j, dq):
        k = k_ref[pl.ds(j * bk, bk), :]
        v = v_ref[pl.ds(j * bk, bk), :]
        mask = _row_slice(optional["mask"], j, bk) if cfg.has_mask else None
        s = _scores(cfg, q, k, i, j, None, mask, q_len, kv_len)
        p = jnp.exp(s - lse[:, None])
        dp = jax.lax.dot_general(
            do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32
        )
        ds = p * (dp - delta[:, None])
        return dq + jnp.dot(ds.astype(k.dtype), k, preferred_element_type=jnp.float32)

    dq = jnp.zeros(q.shape, jnp.float32)
    dq = jax.lax.fori_loop(0, _key_blocks(cfg, i, n_k, kv_len), body, dq)
    dq_ref[...] = (dq * cfg.scale).astype(dq_ref.dtype)


def dkdv_kernel(cfg, n_q, *refs):
    (q_ref, k_ref, v_ref), optional, rest = _unpack(cfg, refs)
    do_ref, lse_ref, delta_ref, dk_ref, dv_ref = rest
    j = pl.program_id(2)
    q_len, kv_len = _limits(cfg, optional)
    k, v = k_ref[...], v_ref[...]
    bq = cfg.block_q

    def body(i, carry):
        dk, dv = carry
        rows = pl.ds(i * bq, bq)
        q, do, lse, delta = q_ref[rows, :], do_ref[rows, :], lse_ref[rows], delta_ref[rows]
        mask = None
        if cfg.has_mask:
            mask_ref = optional["mask"]
            mask = mask_ref[rows, :] if mask_ref.shape[0] > 1 else mask_ref[...]
        s = _scores(cfg, q, k, i, j, None, mask, q_len, kv_len)
        p = jnp.exp(s - lse[:, None])
        dv = dv + jax.lax.dot_general(
            p.astype(do.dtype), do, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        dp = jax.lax.dot_general(
            do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32
        )
        ds = p * (dp - delta[:, None])
        dk = dk + jax.lax.dot_general(
            ds.astype(q.dtype), q, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32
        )
        return dk, dv

    start = (j * cfg.block_k) // bq if cfg.is_causal else 0
    stop = n_q
    if q_len is not None:
        stop = jnp.minimum(stop, (q_len + bq - 1) // bq)
    stop = jnp.where(j * cfg.block_k < kv_len, stop, start)  # a block of padding keys
    init = (jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32))
    dk, dv = jax.lax.fori_loop(start, stop, body, init)
    # Key blocks past the length get exactly zero, like the keys they hold.
    dk_ref[...] = (dk * cfg.scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)
