"""Local 2-D self-attention over k x k neighbourhoods (Ramachandran et al. 2019).

Each pixel `(i, j)` attends to the pixels `(i + a, j + b)` with row and
column offsets `a, b` in `[-(k // 2), k // 2]`:

    y_ij = sum_ab softmax_ab(q_ij . (k_{i+a, j+b} + r_ab) / sqrt(d)) v_{i+a, j+b}

per head, where the relative embedding `r_ab` is the concatenation of a row
embedding of `a` (the first half of the head's channels) and a column
embedding of `b` (the second half), as in the paper. The `1 / sqrt(d)` factor
(not in the paper's formula) keeps the logits of different head sizes on one
scale at initialisation. Optionally each head also adds a learned bias `b_ab`
per window position (a relative position bias, as in Swin Transformer): a
spatial prior that does not depend on the query's content. Neighbours outside the image are masked with the
library's masked softmax (True = attend), never attended and never NaN.

Neighbourhood position `n = (a + k // 2) * k + (b + k // 2)` indexes the
`k * k` axis of the weights, row-major over the window.

Five forms (`form=`) give the same result:

- "lean" (default): a loop over the k * k window positions, each step
  reading one shifted slice of the padded keys (or values), with a custom
  gradient that loops the same way. Beside the `[.., channels]` inputs only
  the `[.., heads, k * k]` logits and weights exist (the weights the layer
  returns anyway): a factor head_dim smaller than the neighbourhood copies.
- "lean_batch_minor": the same loops on `[H, W, heads, head_dim, batch]`
  (see attn/local2d_windows.py): faster on CPU for heads of 12 channels or more.
- "blocked": dense attention over query blocks and their halos, masked to
  the windows (attn/local2d_blocked.py): more multiply-adds, as a few large
  matrix products; a small map is one block.
- "auto": one of the three above, chosen by the map and head sizes
  (`choose_form`, from benchmarks/local2d_forms.py).
- "unfold": the plain form: every neighbourhood is copied out
  (`[batch, H, W, heads, head_dim, k * k]`, k^2 copies of keys and values),
  then attended. For comparison (see benchmarks/local2d_memory.py).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from attn.local2d_blocked import blocked_attention
from attn.local2d_windows import pad, relative_logits, window_logits, window_sum

Array = Any
FORMS = ("lean", "lean_batch_minor", "unfold", "blocked", "auto")
DEFAULT_BLOCK = 14  # blocked form: query block side (a 14 x 14 map is one block)


def check_kernel_size(kernel_size) -> None:
    """ValueError unless `kernel_size` is a positive odd integer (a centred window)."""
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be a positive odd integer so the window is centred on its "
            f"pixel, got {kernel_size!r}."
        )


def check_heads(features: int, num_heads: int) -> None:
    """ValueError unless `num_heads` splits `features` into heads of even size.

    Even, because half of each head's channels embed the row offset and half
    the column offset.
    """
    if not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}.")
    if features % num_heads:
        divisors = [h for h in range(1, features + 1) if features % h == 0]
        raise ValueError(
            f"num_heads={num_heads} does not divide features={features}; valid head "
            f"counts for that size: {divisors}."
        )
    if (features // num_heads) % 2:
        valid = [
            h for h in range(1, features + 1) if features % h == 0 and (features // h) % 2 == 0
        ]
        raise ValueError(
            f"features={features} / num_heads={num_heads} gives heads of odd size "
            f"{features // num_heads}; half of each head's channels embed the row offset and "
            f"half the column offset, so the size must be even. Valid head counts: {valid}."
        )


def check_layer(inputs, features: int, num_heads: int, kernel_size, strides) -> None:
    """ValueError unless a local attention layer can run on `inputs` with these settings."""
    if getattr(inputs, "ndim", None) != 4:
        raise ValueError(
            f"inputs must be [batch, height, width, channels], got shape "
            f"{getattr(inputs, 'shape', None)}."
        )
    check_kernel_size(kernel_size)
    check_heads(features, num_heads)
    if not isinstance(strides, (int, np.integer)) or strides < 1:
        raise ValueError(f"strides must be a positive integer, got {strides!r}.")


def pool(output, strides: int):
    """The paper's downsampling after attention: `strides x strides` average pooling."""
    if strides == 1:
        return output
    window = (strides, strides)
    return nn.avg_pool(output, window, strides=window, padding="SAME", count_include_pad=False)


@functools.lru_cache(maxsize=64)
def border_mask(height: int, width: int, kernel_size: int) -> np.ndarray:
    """Boolean `[height, width, k * k]`: True where the neighbour lies inside the image."""
    r = kernel_size // 2
    offsets = np.arange(kernel_size) - r
    rows = np.arange(height)[:, None] + offsets[None, :]  # [H, k]
    cols = np.arange(width)[:, None] + offsets[None, :]  # [W, k]
    row_ok = (rows >= 0) & (rows < height)
    col_ok = (cols >= 0) & (cols < width)
    mask = row_ok[:, None, :, None] & col_ok[None, :, None, :]  # [H, W, k, k]
    mask = mask.reshape(height, width, kernel_size * kernel_size)
    mask.setflags(write=False)
    return mask


# Finite, not -inf: exp() of it is exactly 0 and jax.debug_infs stays quiet.
_OUTSIDE = -1e30


def window_softmax(logits, inside, axis: int = -1):
    """Softmax over each pixel's window; positions where `inside` is False get exactly 0.

    Every window holds its own pixel, so no row is empty and adding -1e30
    outside does what `masking.masked_softmax` does, for a fraction of its
    cost here: the backward pass of its `where` over the broadcast `[H, W, k*k]`
    mask measured 4x a plain softmax's on CPU.
    """
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    outside = np.where(np.asarray(inside), 0.0, _OUTSIDE).astype(logits.dtype)
    return jax.nn.softmax(logits + outside, axis=axis)


def choose_form(height: int, width: int, kernel_size: int, head_dim: int) -> str:
    """The form `form="auto"` runs, from CPU measurements (benchmarks/local2d_forms.py).

    "blocked" where the whole map is one dense block of at most 2 k^2 keys per
    query (a few large matrix products beat the window loops there); else the
    window loops, batch minor for heads of 12 channels or more (one pass of
    each loop step then runs along the batch in contiguous memory) and batch
    first for narrower heads, where the batch-minor layout measured slower.
    """
    if height * width <= 2 * kernel_size**2:
        return "blocked"
    return "lean_batch_minor" if head_dim >= 12 else "lean"


def _lean(query, key_pad, value_pad, relative, mask, kernel_size, unroll):
    content = window_logits(query, key_pad, kernel_size, unroll)
    weights = window_softmax(content + relative, mask)
    context = window_sum(weights.astype(value_pad.dtype), value_pad, kernel_size, unroll)
    return context, weights


def _lean_batch_minor(query, key, value, row_embedding, col_embedding, bias, kernel_size, unroll):
    """The lean form in the `[H, W, heads, d, batch]` layout (query already scaled)."""
    to_minor = lambda x: x.transpose(1, 2, 3, 4, 0)
    r, half = kernel_size // 2, query.shape[-1] // 2
    query = to_minor(query)
    dtype = jnp.promote_types(query.dtype, jnp.float32)
    rows = jnp.einsum("xyhdb,ahd->axyhb", query[..., :half, :], row_embedding)
    cols = jnp.einsum("xyhdb,chd->cxyhb", query[..., half:, :], col_embedding)
    relative = (rows[:, None] + cols[None, :]).reshape(kernel_size**2, *rows.shape[1:])
    relative = relative.astype(dtype)
    if bias is not None:
        relative = relative + bias.T[:, None, None, :, None]
    height, width = query.shape[:2]
    mask = border_mask(height, width, kernel_size).transpose(2, 0, 1)[..., None, None]
    content = window_logits(query, pad(to_minor(key), r, True), kernel_size, unroll, True)
    weights = window_softmax(content + relative, mask, axis=0)  # [k * k, H, W, heads, b]
    context = window_sum(
        weights.astype(value.dtype), pad(to_minor(value), r, True), kernel_size, unroll, True
    )
    return context.transpose(4, 0, 1, 2, 3), weights.transpose(4, 3, 1, 2, 0)  # [b, heads, H, W, n]


def _unfold(query, key_pad, value_pad, relative, mask, kernel_size, unroll):
    del unroll  # no loops
    height, width = query.shape[1:3]
    batch, _, _, heads, d = query.shape

    def unfold(x_pad):
        # -> [batch, H, W, heads, d, k * k]; the patches op orders features (channel, window).
        flat = x_pad.reshape(*x_pad.shape[:3], heads * d)
        patches = jax.lax.conv_general_dilated_patches(
            flat,
            (kernel_size, kernel_size),
            (1, 1),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
        return patches.reshape(batch, height, width, heads, d, kernel_size * kernel_size)

    content = jnp.einsum("bxyhd,bxyhdn->bxyhn", query, unfold(key_pad))
    weights = window_softmax(content + relative, mask)
    context = jnp.einsum("bxyhn,bxyhdn->bxyhd", weights.astype(value_pad.dtype), unfold(value_pad))
    return context, weights


def local_self_attention(
    query,
    key,
    value,
    row_embedding,
    col_embedding,
    *,
    relative_bias=None,
    logit_scale: float | None = None,
    form: str = "lean",
    block_size: int = DEFAULT_BLOCK,
    unroll: bool = False,
):
    """Attention of every pixel over its k x k neighbourhood, per head.

    Args:
      query, key, value: `[batch, H, W, heads, head_dim]`, head_dim even.
      row_embedding, col_embedding: `[k, heads, head_dim / 2]`, the embeddings
        of row offsets `-(k // 2) .. k // 2` (first half of each head's
        channels) and of column offsets (second half); k odd.
      relative_bias: optional `[heads, k * k]`, added to every pixel's logits
        at each window position (row-major over the window).
      logit_scale: factor on the logits; None: `1 / sqrt(head_dim)`; 1.0: the
        paper's formula.
      form: one of `FORMS` (same result, see the module doc).
      block_size: the blocked form's query block side; a block as large as
        the map along an axis makes that axis one block (no halo).
      unroll: unroll the lean form's loops over window positions: same result,
        for counting FLOPs (XLA's cost analysis counts a loop body once); the
        rolled loops are what keeps memory down.

    Returns:
      `(context [batch, H, W, heads, head_dim], weights [batch, heads, H, W,
      k * k])`; weights are float32 or wider, zero outside the image and
      summing to 1 over each pixel's neighbourhood.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; valid: {', '.join(FORMS)}")
    for name, array in (("query", query), ("key", key), ("value", value)):
        if getattr(array, "ndim", None) != 5:
            raise ValueError(
                f"{name} must be [batch, H, W, heads, head_dim], got shape "
                f"{getattr(array, 'shape', None)}."
            )
    if not query.shape == key.shape == value.shape:
        raise ValueError(
            f"query, key and value must have one shape; got {query.shape}, {key.shape}, "
            f"{value.shape}."
        )
    kernel_size = row_embedding.shape[0]
    check_kernel_size(kernel_size)
    heads, d = query.shape[-2:]
    want = (kernel_size, heads, d // 2)
    if d % 2 or row_embedding.shape != want or col_embedding.shape != want:
        raise ValueError(
            f"row and column embeddings must both be [k, heads, head_dim / 2] = {want} for "
            f"queries of shape {query.shape} (head_dim even); got {row_embedding.shape} and "
            f"{col_embedding.shape}."
        )
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
    if relative_bias is not None and relative_bias.shape != (heads, kernel_size**2):
        raise ValueError(
            f"relative_bias must be [heads, k * k] = {(heads, kernel_size**2)}, got "
            f"{relative_bias.shape}."
        )
    return _attend(
        query,
        key,
        value,
        row_embedding,
        col_embedding,
        relative_bias,
        logit_scale=logit_scale,
        form=form,
        block_size=int(block_size),
        unroll=unroll,
    )


def _query_terms(query, row_embedding, col_embedding, bias, logit_scale, unroll=False):
    """The scaled queries, their relative logits (plus any bias), and the border mask."""
    kernel_size = row_embedding.shape[0]
    height, width, _, d = query.shape[1:]
    scale = d**-0.5 if logit_scale is None else logit_scale
    query = query * jnp.asarray(scale, query.dtype)
    relative = relative_logits(query, row_embedding, col_embedding, plain=unroll)
    if bias is not None:
        relative = relative + bias[None, None, None]  # [heads, k * k] at every pixel
    mask = border_mask(height, width, kernel_size)[None, :, :, None, :]  # [1, H, W, 1, k * k]
    return query, relative, mask


# Compiled as one piece even when called eagerly (in `init`, in tests): the
# loops would otherwise be dispatched op by op.
@functools.partial(jax.jit, static_argnames=("logit_scale", "form", "block_size", "unroll"))
def _attend(
    query, key, value, row_embedding, col_embedding, bias, *, logit_scale, form, block_size, unroll
):
    kernel_size = row_embedding.shape[0]
    if form == "auto":
        form = choose_form(*query.shape[1:3], kernel_size, query.shape[-1])
    if form in ("blocked", "lean_batch_minor"):
        d = query.shape[-1]
        scale = d**-0.5 if logit_scale is None else logit_scale
        query = query * jnp.asarray(scale, query.dtype)
        args = (query, key, value, row_embedding, col_embedding, bias)
        if form == "lean_batch_minor":
            return _lean_batch_minor(*args, kernel_size, unroll)
        context, weights = blocked_attention(*args, block=block_size)
        return context, weights.transpose(0, 3, 1, 2, 4)
    query, relative, mask = _query_terms(
        query, row_embedding, col_embedding, bias, logit_scale, unroll
    )
    r = kernel_size // 2
    attend = _lean if form == "lean" else _unfold
    context, weights = attend(
        query, pad(key, r), pad(value, r), relative, mask, kernel_size, unroll
    )
    return context, weights.transpose(0, 3, 1, 2, 4)


@functools.partial(jax.jit, static_argnames=("logit_scale", "unroll"))
def local_attention_weights(
    query,
    key,
    row_embedding,
    col_embedding,
    relative_bias=None,
    *,
    logit_scale: float | None = None,
    unroll: bool = False,
):
    """The lean form's softmax weights alone, for layers that form their own values.

    Same arguments as `local_self_attention`; returns `[batch, H, W, heads,
    k * k]` (float32 or wider), zero outside the image, in the layout
    `local_window_sum` takes.
    """
    kernel_size = row_embedding.shape[0]
    query, relative, mask = _query_terms(
        query, row_embedding, col_embedding, relative_bias, logit_scale, unroll
    )
    content = window_logits(query, pad(key, kernel_size // 2), kernel_size, unroll)
    return window_softmax(content + relative, mask)


@functools.partial(jax.jit, static_argnames=("unroll",))
def local_window_sum(weights, values, *, unroll: bool = False):
    """`sum_n weights[..., n] * values` at window position n, for every pixel.

    weights `[batch, H, W, heads, k * k]`, values `[batch, H, W, heads, d]`
    -> `[batch, H, W, heads, d]` in the values' dtype. Positions outside the
    image read zeros.
    """
    kernel_size = math.isqrt(weights.shape[-1])
    if kernel_size**2 != weights.shape[-1]:
        raise ValueError(f"weights' last axis must be k * k, got {weights.shape[-1]}.")
    return window_sum(
        weights.astype(values.dtype), pad(values, kernel_size // 2), kernel_size, unroll
    )


class LocalSelfAttention2D(nn.Module):
    """Multi-head local self-attention layer for images.

    Attributes:
      num_heads: heads; must divide `features` into heads of even size.
      kernel_size: side k of the square neighbourhood, odd (7 in the paper).
      features: output channels (default: the input's); queries, keys and
        values have this many channels, split over the heads, and the heads'
        outputs are concatenated, as in the paper (no output projection).
      strides: spatial downsampling after attention by average pooling over
        `strides x strides` windows (1: none), as the paper does.
      form: "lean" (default), "lean_batch_minor", "blocked", "auto" or "unfold"
        (see the module doc).
      block_size: the blocked form's query block side.
      use_bias: biases in the 1x1 query/key/value projections.
      relative_bias: learn a bias per head and window position, added to the
        logits (initialised to zero: the layer starts as the paper's).
      logit_scale: factor on the logits; None: `1 / sqrt(head_dim)`; 1.0: the
        paper's formula.
      unroll: unroll the lean form's loops over the k * k window positions:
        same result, for counting FLOPs with XLA's cost analysis (which counts
        a loop body once); leave off for training.
      dtype, param_dtype: computation and parameter dtypes.

    Call with images `[batch, H, W, in_channels]`. Returns `(output [batch,
    H', W', features], weights [batch, heads, H, W, k * k])`, with `H' =
    ceil(H / strides)`; the weights are those of the attention before pooling.
    """

    num_heads: int
    kernel_size: int = 7
    features: int | None = None
    strides: int = 1
    form: str = "lean"
    block_size: int = DEFAULT_BLOCK
    use_bias: bool = False
    relative_bias: bool = False
    logit_scale: float | None = None
    unroll: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    embedding_init: Any = nn.initializers.normal(stddev=1.0)

    @nn.compact
    def __call__(self, inputs: Array):
        features = self.features or getattr(inputs, "shape", (None,))[-1]
        check_layer(inputs, features, self.num_heads, self.kernel_size, self.strides)
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; valid: {', '.join(FORMS)}")
        head_dim = features // self.num_heads
        project = functools.partial(
            nn.DenseGeneral,
            features=(self.num_heads, head_dim),
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
        )
        # 1x1 projections: [batch, H, W, in_channels] -> [batch, H, W, heads, head_dim]
        query = project(name="query")(inputs)
        key = project(name="key")(inputs)
        value = project(name="value")(inputs)
        shape = (self.kernel_size, self.num_heads, head_dim // 2)
        row = self.param("row_embedding", self.embedding_init, shape, self.param_dtype)
        col = self.param("col_embedding", self.embedding_init, shape, self.param_dtype)
        row, col = (e.astype(query.dtype) for e in (row, col))
        bias = None
        if self.relative_bias:
            bias = self.param(
                "relative_bias",
                nn.initializers.zeros,
                (self.num_heads, self.kernel_size**2),
                self.param_dtype,
            ).astype(jnp.promote_types(query.dtype, jnp.float32))
        context, weights = local_self_attention(
            query,
            key,
            value,
            row,
            col,
            relative_bias=bias,
            logit_scale=self.logit_scale,
            form=self.form,
            block_size=self.block_size,
            unroll=self.unroll,
        )
        return pool(context.reshape(*context.shape[:3], features), self.strides), weights


__all__ = [
    "FORMS",
    "LocalSelfAttention2D",
    "border_mask",
    "check_heads",
    "check_kernel_size",
    "check_layer",
    "local_attention_weights",
    "local_self_attention",
    "local_window_sum",
    "pool",
]
