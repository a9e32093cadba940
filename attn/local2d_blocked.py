"""Local 2-D attention as dense attention over blocks with halos (`form="blocked"`).

The image is cut into `block x block` query blocks; every query of a block
attends to one shared key region, the block grown by k // 2 on each side
(the "halo" of HaloNet, Vaswani et al. 2021), and a static mask keeps each
query to its own k x k window and to pixels inside the image. Where a block
covers the whole image along an axis, the keys along that axis are simply
the image's own pixels, so small maps become one masked dense attention.

This does more multiply-adds than the window loops of the lean form (each
query scores `(block + k - 1)^2` keys, or the whole map, instead of k^2),
but as a few large matrix products rather than k^2 small elementwise passes,
which is what CPUs and accelerators run fast. Memory grows with the logits,
`[batch, blocks, heads, block^2, halo^2]`, where the lean form keeps only
`[.., k^2]`.

The relative logits `q . r_ab` need no gather over the dense logits: within
a block the row offset `a` of a (query row, key row) pair is fixed by the
two local indices alone, so the row embeddings are laid out once per
(query row, key row) pair, `[block, halo, heads, d / 2]`, and contracted with
the queries; likewise the columns, and the two are broadcast together.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class AxisLayout:
    """How one spatial axis of `size` pixels is cut into blocks.

    Query block `I` covers pixels `[I * block, (I + 1) * block)`; its keys are
    pixels `[I * block - before, I * block - before + keys)`.
    """

    size: int
    block: int
    blocks: int
    before: int  # key pixels before a block's first query
    keys: int  # key pixels per block

    @property
    def padded(self) -> int:
        """Length of the zero-padded axis the key regions are cut from."""
        return (self.blocks - 1) * self.block + self.keys

    def offsets(self, kernel_size: int) -> np.ndarray:
        """`[block, keys]` window index `a + k // 2` of each (query, key) pair; may be outside [0, k)."""
        i = np.arange(self.block)[:, None]
        j = np.arange(self.keys)[None, :]
        return j - i - self.before + kernel_size // 2

    def key_inside(self) -> np.ndarray:
        """`[blocks, keys]`: True where a block's key pixel lies inside the image."""
        pixel = np.arange(self.blocks)[:, None] * self.block - self.before + np.arange(self.keys)
        return (pixel >= 0) & (pixel < self.size)


def axis_layout(size: int, block: int, kernel_size: int) -> AxisLayout:
    """One block covering the axis (keys: the pixels themselves), or halo blocks."""
    if block >= size:
        return AxisLayout(size=size, block=size, blocks=1, before=0, keys=size)
    r = kernel_size // 2
    return AxisLayout(
        size=size, block=block, blocks=-(-size // block), before=r, keys=block + 2 * r
    )


def _one_hot(offsets: np.ndarray, kernel_size: int) -> np.ndarray:
    """`[..., k]` float one-hot of the window index (all zero outside the window)."""
    return (offsets[..., None] == np.arange(kernel_size)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def block_mask(rows: AxisLayout, cols: AxisLayout, kernel_size: int) -> np.ndarray:
    """Boolean `[row blocks, col blocks, 1, block_h * block_w, keys_h * keys_w]`, True = attend."""
    in_row = (rows.offsets(kernel_size) >= 0) & (rows.offsets(kernel_size) < kernel_size)
    in_col = (cols.offsets(kernel_size) >= 0) & (cols.offsets(kernel_size) < kernel_size)
    window = in_row[:, None, :, None] & in_col[None, :, None, :]  # [bh, bw, kh, kw]
    inside = rows.key_inside()[:, None, :, None] & cols.key_inside()[None, :, None, :]
    mask = window[None, None] & inside[:, :, None, None]  # [Bh, Bw, bh, bw, kh, kw]
    shape = (rows.blocks, cols.blocks, 1, rows.block * cols.block, rows.keys * cols.keys)
    mask = mask.reshape(shape)
    mask.setflags(write=False)
    return mask


def _blocks(x, rows: AxisLayout, cols: AxisLayout):
    """Queries `[batch, H, W, heads, d]` -> `[batch, Bh, Bw, heads, bh, bw, d]` (zero-padded)."""
    batch, height, width, heads, d = x.shape
    x = jnp.pad(
        x,
        ((0, 0), (0, rows.blocks * rows.block - height), (0, cols.blocks * cols.block - width))
        + ((0, 0),) * 2,
    )
    x = x.reshape(batch, rows.blocks, rows.block, cols.blocks, cols.block, heads, d)
    return x.transpose(0, 1, 3, 5, 2, 4, 6)


def _regions(x, rows: AxisLayout, cols: AxisLayout):
    """Keys `[batch, H, W, heads, d]` -> each block's key region `[batch, Bh, Bw, heads, kh * kw, d]`."""
    height, width = x.shape[1:3]
    x = jnp.pad(
        x,
        (
            (0, 0),
            (rows.before, rows.padded - rows.before - height),
            (cols.before, cols.padded - cols.before - width),
        )
        + ((0, 0),) * 2,
    )
    # Overlapping regions: one static slice per block (at most a few dozen).
    x = jnp.stack(
        [x[:, i * rows.block : i * rows.block + rows.keys] for i in range(rows.blocks)], 1
    )
    x = jnp.stack(
        [x[:, :, :, j * cols.block : j * cols.block + cols.keys] for j in range(cols.blocks)], 2
    )  # [batch, Bh, Bw, kh, kw, heads, d]
    batch, heads, d = x.shape[0], x.shape[-2], x.shape[-1]
    x = x.reshape(batch, rows.blocks, cols.blocks, rows.keys * cols.keys, heads, d)
    return x.transpose(0, 1, 2, 4, 3, 5)


def blocked_attention(query, key_, value, row_embedding, col_embedding, bias, *, block: int):
    """Context `[batch, H, W, heads, d]` and weights `[batch, H, W, heads, k * k]`.

    query (already scaled), key_ and value `[batch, H, W, heads, d]`;
    row/col embeddings `[k, heads, d / 2]`; bias `[heads, k * k]` or None;
    block: the query block's side (>= H or W: one block along that axis).
    """
    kernel_size = row_embedding.shape[0]
    batch, height, width, heads, d = query.shape
    rows = axis_layout(height, block, kernel_size)
    cols = axis_layout(width, block, kernel_size)
    q = _blocks(query, rows, cols)  # [batch, Bh, Bw, heads, bh, bw, d]
    k_regions = _regions(key_, rows, cols)
    v_regions = _regions(value, rows, cols)
    logit_dtype = jnp.promote_types(query.dtype, jnp.float32)
    content = jnp.einsum(
        "bIJhyxd,bIJhkd->bIJhyxk", q, k_regions, preferred_element_type=logit_dtype
    )
    half = d // 2
    # Embedding of the row offset of every (query row, key row) pair; zero outside the window.
    row_pairs = jnp.einsum(
        "yja,ahd->yjhd", _one_hot(rows.offsets(kernel_size), kernel_size), row_embedding
    )
    col_pairs = jnp.einsum(
        "xla,ahd->xlhd", _one_hot(cols.offsets(kernel_size), kernel_size), col_embedding
    )
    row_logits = jnp.einsum(
        "bIJhyxd,yjhd->bIJhyxj", q[..., :half], row_pairs, preferred_element_type=logit_dtype
    )
    col_logits = jnp.einsum(
        "bIJhyxd,xlhd->bIJhyxl", q[..., half:], col_pairs, preferred_element_type=logit_dtype
    )
    relative = row_logits[..., :, None] + col_logits[..., None, :]  # [.., bh, bw, kh, kw]
    if bias is not None:
        k = kernel_size
        bias_pairs = jnp.einsum(
            "hab,yja,xlb->hyxjl",
            bias.reshape(heads, k, k),
            _one_hot(rows.offsets(k), k),
            _one_hot(cols.offsets(k), k),
        )
        relative = relative + bias_pairs[None, None, None].astype(logit_dtype)
    q_len, k_len = rows.block * cols.block, rows.keys * cols.keys
    shape = (batch, rows.blocks, cols.blocks, heads, q_len, k_len)
    logits = content.reshape(shape) + relative.reshape(shape)
    # Additive -1e30 outside the windows, as `attn.local2d.window_softmax` does: every
    # query inside the image sees itself; the padding queries, which may see no
    # key, are cropped away.
    outside = np.where(block_mask(rows, cols, kernel_size), 0.0, -1e30)[None].astype(logits.dtype)
    weights = jax.nn.softmax(logits + outside, axis=-1)
    context = jnp.einsum("bIJhqk,bIJhkd->bIJhqd", weights.astype(value.dtype), v_regions)
    context = context.reshape(batch, rows.blocks, cols.blocks, heads, rows.block, cols.block, d)
    context = context.transpose(0, 1, 4, 2, 5, 3, 6).reshape(
        batch, rows.blocks * rows.block, cols.blocks * cols.block, heads, d
    )[:, :height, :width]
    return context, _window_weights(weights, rows, cols, kernel_size, height, width)


def _window_weights(weights, rows: AxisLayout, cols: AxisLayout, kernel_size, height, width):
    """Dense block weights -> each pixel's `[batch, H, W, heads, k * k]` window weights.

    Only the attention pictures and tests read these; under jit an unused
    result is never computed.
    """
    k, r = kernel_size, kernel_size // 2
    # Key index within the region of window position (a, b) for local query (y, x).
    a = np.arange(k)
    key_row = np.arange(rows.block)[:, None] + a[None, :] - r + rows.before  # [bh, k]
    key_col = np.arange(cols.block)[:, None] + a[None, :] - r + cols.before  # [bw, k]
    valid = ((key_row >= 0) & (key_row < rows.keys))[:, None, :, None] & (
        (key_col >= 0) & (key_col < cols.keys)
    )[None, :, None, :]
    index = (
        np.clip(key_row, 0, rows.keys - 1)[:, None, :, None] * cols.keys
        + np.clip(key_col, 0, cols.keys - 1)[None, :, None, :]
    )  # [bh, bw, k, k]
    q_len = rows.block * cols.block
    index = index.reshape(q_len, k * k)
    picked = jnp.take_along_axis(weights, jnp.asarray(index)[None, None, None, None], axis=-1)
    picked = jnp.where(valid.reshape(q_len, k * k), picked, 0)
    batch, heads = weights.shape[0], weights.shape[3]
    picked = picked.reshape(batch, rows.blocks, cols.blocks, heads, rows.block, cols.block, k * k)
    picked = picked.transpose(0, 1, 4, 2, 5, 3, 6).reshape(
        batch, rows.blocks * rows.block, cols.blocks * cols.block, heads, k * k
    )
    return picked[:, :height, :width]
