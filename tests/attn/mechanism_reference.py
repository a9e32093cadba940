"""Float64 NumPy references of the attend mechanisms, one head at a time, by loops.

Each takes one head's query `[q_len, d]`, key `[k_len, d]`, value `[k_len,
dv]` and `key_valid` `[k_len]` booleans (the padding mask) and returns
`[q_len, dv]`; a query that sees no key gets zeros. They follow the papers'
formulas directly (no prefix sums, no blocks, no stabilisers), independently
of the library.
"""

import numpy as np


def _normalised(scores, value):
    """Rows of non-negative `scores` `[q, k]` normalised, times value; zero rows stay zero."""
    out = np.zeros((scores.shape[0], value.shape[1]))
    for i, row in enumerate(scores):
        if row.sum() > 0:
            out[i] = row @ value / row.sum()
    return out


def _visible(q_len, k_len, key_valid, causal):
    seen = np.broadcast_to(np.asarray(key_valid, bool), (q_len, k_len)).copy()
    if causal:
        seen &= np.tril(np.ones((q_len, k_len), bool))
    return seen


def softmax_attention(q, k, v, key_valid, causal=False, scale=None, seen=None):
    scale = 1 / np.sqrt(q.shape[1]) if scale is None else scale
    seen = _visible(len(q), len(k), key_valid, causal) if seen is None else seen
    logits = q @ k.T * scale
    out = np.zeros((len(q), v.shape[1]))
    for i in range(len(q)):
        if seen[i].any():
            row = np.where(seen[i], np.exp(logits[i] - logits[i][seen[i]].max()), 0.0)
            out[i] = row @ v / row.sum()
    return out


def linear(q, k, v, key_valid, causal=False, **_):
    elu1 = lambda x: np.where(x > 0, x + 1, np.exp(x))
    scores = np.einsum("qf,kf->qk", elu1(q), elu1(k))
    return _normalised(scores * _visible(len(q), len(k), key_valid, causal), v)


def favor_features(x, projection):
    x = x * x.shape[1] ** -0.25
    return np.exp(x @ projection.T - 0.5 * (x * x).sum(1, keepdims=True)) / np.sqrt(len(projection))


def performer(q, k, v, key_valid, causal=False, projection=None, **_):
    scores = favor_features(q, projection) @ favor_features(k, projection).T
    return _normalised(scores * _visible(len(q), len(k), key_valid, causal), v)


def sigmoid(q, k, v, key_valid, causal=False, **_):
    """b = -log(n), n the keys the query sees."""
    seen = _visible(len(q), len(k), key_valid, causal)
    out = np.zeros((len(q), v.shape[1]))
    for i in range(len(q)):
        n = max(seen[i].sum(), 1)
        for j in range(len(k)):
            if seen[i, j]:
                logit = q[i] @ k[j] / np.sqrt(q.shape[1]) - np.log(n)
                out[i] += v[j] / (1 + np.exp(-logit))
    return out


def sliding_window(q, k, v, key_valid, causal=False, local_window_size=64, **_):
    left = right = local_window_size
    if causal:
        right = 0
    offsets = np.arange(len(k))[None, :] - np.arange(len(q))[:, None]
    seen = _visible(len(q), len(k), key_valid, False) & (offsets >= -left) & (offsets <= right)
    return softmax_attention(q, k, v, key_valid, seen=seen)


def linformer(q, k, v, key_valid, key_projection=None, value_projection=None, **_):
    valid = np.asarray(key_valid, float)[:, None]
    n = len(k)
    pk = key_projection[:, :n] @ (k * valid) / np.sqrt(n)
    pv = value_projection[:, :n] @ (v * valid) / np.sqrt(n)
    logits = q @ pk.T / np.sqrt(q.shape[1])
    weights = np.exp(logits - logits.max(1, keepdims=True))
    return (weights / weights.sum(1, keepdims=True)) @ pv


def _masked_softmax_rows(logits, valid):
    out = np.zeros_like(logits)
    for i, row in enumerate(logits):
        if valid.any():
            e = np.where(valid, np.exp(row - row[valid].max()), 0.0)
            out[i] = e / e.sum()
    return out


def nystrom(q, k, v, key_valid, num_landmarks=64, pinv=np.linalg.pinv, **_):
    """Landmarks = means of consecutive segments (valid keys only), exact pinv by default."""
    m = min(num_landmarks, len(q), len(k))
    scale = 1 / np.sqrt(q.shape[1])
    valid = np.asarray(key_valid, bool)

    def means(x, ok):
        size = -(-len(x) // m)
        out, has = np.zeros((m, x.shape[1])), np.zeros(m, bool)
        for j in range(m):
            rows = [i for i in range(j * size, min((j + 1) * size, len(x))) if ok[i]]
            if rows:
                out[j], has[j] = x[rows].mean(0), True
        return out, has

    q_tilde, _ = means(q, np.ones(len(q), bool))
    k_tilde, has = means(k, valid)
    f = _masked_softmax_rows(q @ k_tilde.T * scale, has)
    a = _masked_softmax_rows(q_tilde @ k_tilde.T * scale, has)
    b = _masked_softmax_rows(q_tilde @ k.T * scale, valid)
    return f @ pinv(a) @ (b @ v)


def block_sparse(q, k, v, key_valid, pattern=None, block_size=64, **_):
    """Softmax over the keys of the blocks the query's block may see (`pattern`)."""
    blocks = np.arange(len(q)) // block_size
    seen = pattern[blocks[:, None], blocks[None, :]] & np.asarray(key_valid, bool)[None, :]
    return softmax_attention(q, k, v, key_valid, seen=seen)


def differential(q, k, v, key_valid, causal=False, lambdas=None, norm_scale=None, lambda_init=0.8):
    """(softmax(q1 k1) - lambda softmax(q2 k2)) v, RMS-normalised per row, times 1 - lambda_init."""
    half = q.shape[1] // 2
    q1, k1, q2, k2 = (lambdas[n] for n in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"))
    weight = np.exp(q1 @ k1) - np.exp(q2 @ k2) + lambda_init
    seen = _visible(len(q), len(k), key_valid, causal)
    scale = 1 / np.sqrt(half)
    first = softmax_attention(q[:, :half], k[:, :half], v, key_valid, scale=scale, seen=seen)
    second = softmax_attention(q[:, half:], k[:, half:], v, key_valid, scale=scale, seen=seen)
    out = first - weight * second
    rms = np.sqrt((out**2).mean(1, keepdims=True) + 1e-5)
    return out / rms * norm_scale * (1 - lambda_init)


MECHANISMS = {
    "block_sparse": block_sparse,
    "differential": differential,
    "linear": linear,
    "performer": performer,
    "sigmoid": sigmoid,
    "sliding_window": sliding_window,
    "linformer": linformer,
    "nystrom": nystrom,
}
