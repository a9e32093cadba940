"""Float64 NumPy references for every attention form, written loop-light but
independently of the library (no JAX), to compare against.

Scores take one head: query [q_len, q_features], key [k_len, k_features] and
that head's parameters as float64 arrays; they return logits [q_len, k_len].
"""

import numpy as np


def dot(q, k, params):
    return q @ k.T


def scaled_dot(q, k, params):
    return q @ k.T / np.sqrt(q.shape[-1])


def general(q, k, params):
    return q @ params["bilinear"] @ k.T


def additive(q, k, params):
    logits = np.empty((q.shape[0], k.shape[0]))
    for i in range(q.shape[0]):
        for j in range(k.shape[0]):
            hidden = np.tanh(q[i] @ params["query_proj"] + k[j] @ params["key_proj"])
            logits[i, j] = hidden @ params["energy"]
    return logits


def cosine(q, k, params, scale=10.0):
    qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=-1, keepdims=True)
    return scale * qn @ kn.T


SCORES = {
    "dot": dot,
    "scaled_dot": scaled_dot,
    "general": general,
    "additive": additive,
    "cosine": cosine,
}


def head_params(params, head):
    """One head's score parameters from the 'score' collection of a module."""
    score = params.get("params", {}).get("score", {})
    return {name: np.asarray(leaf["kernel"], np.float64)[head] for name, leaf in score.items()}


def masked_softmax(logits, mask=None):
    """Row softmax over valid entries; all-zero rows where nothing is valid."""
    logits = np.asarray(logits, np.float64)
    if mask is None:
        mask = np.ones(logits.shape, bool)
    mask = np.broadcast_to(mask, logits.shape)
    out = np.zeros_like(logits)
    for index in np.ndindex(logits.shape[:-1]):
        valid = mask[index]
        if valid.any():
            row = logits[index][valid]
            e = np.exp(row - row.max())
            out[index][valid] = e / e.sum()
    return out


def single_head_attention(kind, params, q, k, v, mask=None):
    """Batched single-head attention: returns context [b, q, dv], weights [b, q, k]."""
    score = SCORES[kind]
    hp = head_params(params, 0)
    logits = np.stack([score(q[b], k[b], hp) for b in range(q.shape[0])])
    weights = masked_softmax(logits, mask)
    return np.einsum("bqk,bkv->bqv", weights, v), weights


def multi_head_attention(kind, params, x_q, x_kv, mask=None, causal=False):
    """Flax-layout multi-head attention in float64, for any score kind."""
    p = {
        name: {k: np.asarray(v, np.float64) for k, v in leaf.items()}
        for name, leaf in params["params"].items()
        if name != "score"
    }
    q = np.einsum("bld,dhe->bhle", x_q, p["query"]["kernel"]) + p["query"]["bias"][:, None]
    k = np.einsum("bld,dhe->bhle", x_kv, p["key"]["kernel"]) + p["key"]["bias"][:, None]
    v = np.einsum("bld,dhe->bhle", x_kv, p["value"]["kernel"]) + p["value"]["bias"][:, None]
    batch, heads, q_len, _ = q.shape
    k_len = k.shape[2]
    logits = np.empty((batch, heads, q_len, k_len))
    for h in range(heads):
        hp = head_params(params, h)
        for b in range(batch):
            logits[b, h] = SCORES[kind](q[b, h], k[b, h], hp)
    full_mask = np.ones(logits.shape, bool)
    if mask is not None:
        full_mask &= np.broadcast_to(mask, logits.shape)
    if causal:
        full_mask &= np.tril(np.ones((q_len, k_len), bool))
    weights = masked_softmax(logits, full_mask)
    context = np.einsum("bhqk,bhke->bqhe", weights, v)
    out = np.einsum("bqhe,hed->bqd", context, p["out"]["kernel"]) + p["out"]["bias"]
    return out, weights


def dot_product_attention(q, k, v, mask=None, bias=None, scale=None, causal=False):
    """[batch, length, heads, head_dim] layout, grouped-query heads allowed."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    full_mask = np.ones(logits.shape, bool)
    if mask is not None:
        full_mask &= np.broadcast_to(mask, logits.shape)
    if causal:
        full_mask &= np.tril(np.ones(logits.shape[-2:], bool))
    weights = masked_softmax(logits, full_mask)
    return np.einsum("bnts,bsnh->btnh", weights, v)
