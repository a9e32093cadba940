"""Block-sparse attention in the BigBird pattern (Zaheer et al. 2020).

"Big Bird: Transformers for Longer Sequences", 2020: the sequence is cut into
blocks of `block_size` positions, and each query block attends to

- a window of `window_blocks` key blocks centred on its own,
- the first `global_blocks` blocks (global tokens: every query sees them,
  and their queries see every key),
- `random_blocks` more blocks drawn at random among the rest,

so a query sees a fixed number of keys whatever the length: O(N) time and
memory. The pattern (`block_pattern`) is fixed by the integer option `seed`
and drawn once per shape, when the function is traced, as in the paper's
implementation; it is the same for every layer, head and batch row.

The computation never forms the `[q_len, k_len]` logits: each non-global
query block gathers its key blocks (`[n, slots * block]` logits), and the
global query rows attend densely (`[global_blocks * block, k_len]`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from attn import masking, registry
from attn.kernelized import key_valid


def block_pattern(
    num_blocks: int, *, window_blocks: int, global_blocks: int, random_blocks: int, seed: int
) -> np.ndarray:
    """`[num_blocks, num_blocks]` booleans: may query block i attend to key block j?

    Rows of global blocks are all True; every other row holds its window, the
    global blocks and `random_blocks` distinct others (fewer where fewer are
    left), drawn with `numpy.random.default_rng(seed)`.
    """
    rng = np.random.default_rng(seed)
    allowed = np.zeros((num_blocks, num_blocks), bool)
    allowed[:, :global_blocks] = True
    allowed[:global_blocks] = True
    half = window_blocks // 2
    for i in range(global_blocks, num_blocks):
        allowed[i, max(0, i - half) : i + window_blocks - half] = True
        others = np.flatnonzero(~allowed[i])
        if random_blocks and len(others):
            allowed[i, rng.choice(others, min(random_blocks, len(others)), replace=False)] = True
    return allowed


def _slots(allowed: np.ndarray, first_row: int):
    """Per row from `first_row`: the allowed key blocks, padded to one width, and which are real."""
    rows = [np.flatnonzero(row) for row in allowed[first_row:]]
    width = max((len(r) for r in rows), default=0)
    index = np.zeros((len(rows), width), np.int32)
    real = np.zeros((len(rows), width), bool)
    for i, row in enumerate(rows):
        index[i, : len(row)], real[i, : len(row)] = row, True
    return index, real


@registry.register_mechanism("block_sparse", capabilities=("padding", "linear_memory"))
def block_sparse_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    block_size: int = 64,
    window_blocks: int = 3,
    global_blocks: int = 2,
    random_blocks: int = 3,
    seed: int = 0,
    scale: float | None = None,
):
    """BigBird block-sparse softmax attention: window, global and random blocks (Zaheer et al. 2020).

    query `[batch, heads, length, d]`, key `[batch, heads, length, d]`, value
    `[batch, heads, length, dv]` -> `[batch, heads, length, dv]`
    (self-attention). `block_size`: positions per block; `window_blocks`,
    `global_blocks`, `random_blocks`: the pattern (see `block_pattern`);
    `seed`: draws the random blocks; `scale`: default `1/sqrt(d)`. Non-causal.
    """
    if is_causal:
        raise ValueError(
            "block_sparse lets global and random blocks see later positions, so it is not "
            "causal; use a causal kind (attn.available('causal'))."
        )
    for name, number, least in (
        ("block_size", block_size, 1),
        ("window_blocks", window_blocks, 1),
        ("global_blocks", global_blocks, 0),
        ("random_blocks", random_blocks, 0),
    ):
        if not isinstance(number, int) or number < least:
            raise ValueError(f"block_sparse needs an integer {name} >= {least}, got {number!r}.")
    batch, heads, length, dim = query.shape
    if key.shape[2] != length:
        raise ValueError(
            f"block_sparse attention needs as many keys as queries; got q_len {length} "
            f"and k_len {key.shape[2]}."
        )
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    block = min(block_size, length)
    n = -(-length // block)
    pad = n * block - length
    widths = ((0, 0), (0, 0), (0, pad), (0, 0))
    q, k, v = (jnp.pad(a, widths) for a in (query, key, value))
    valid = jnp.pad(key_valid(mask, batch, heads, length), ((0, 0), (0, 0), (0, pad)))
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    allowed = block_pattern(
        n,
        window_blocks=window_blocks,
        global_blocks=min(global_blocks, n),
        random_blocks=random_blocks,
        seed=seed,
    )
    first = min(global_blocks, n)  # query blocks before it are global: dense rows
    outputs = []
    if first:
        rows = q[:, :, : first * block]
        logits = jnp.einsum("bhqd,bhkd->bhqk", rows, k, preferred_element_type=dtype)
        weights = masking.masked_softmax(logits * scale, valid[:, :, None, :])
        outputs.append(jnp.einsum("bhqk,bhkd->bhqd", weights.astype(v.dtype), v))
    if first < n:
        index, real = _slots(allowed, first)  # [rows, slots]
        rows, slots = index.shape

        def gathered(a):  # [b, h, n * block, f] -> [b, h, rows, slots * block, f]
            blocks = a.reshape(a.shape[:2] + (n, block) + a.shape[3:])[:, :, index]
            return blocks.reshape(a.shape[:2] + (rows, slots * block) + a.shape[3:])

        q_blocks = q[:, :, first * block :].reshape(batch, heads, rows, block, dim)
        logits = jnp.einsum(
            "bhnqd,bhnkd->bhnqk", q_blocks, gathered(k), preferred_element_type=dtype
        )
        seen = gathered(valid) & jnp.repeat(jnp.asarray(real), block, axis=1)
        weights = masking.masked_softmax(logits * scale, seen[:, :, :, None, :])
        out = jnp.einsum("bhnqk,bhnkd->bhnqd", weights.astype(v.dtype), gathered(v))
        outputs.append(out.reshape(batch, heads, rows * block, -1))
    return jnp.concatenate(outputs, axis=2)[:, :, :length]
