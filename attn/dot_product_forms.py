"""The faster forms of the dot-product kinds, registered with `dot` and `scaled_dot`.

| name        | what runs                                              | backends |
|-------------|--------------------------------------------------------|----------|
| `blockwise` | `attn.blockwise` (online softmax, pure JAX)            | all      |
| `pallas`    | `attn.pallas_attention` (Pallas flash kernels)         | gpu      |
| `cudnn`     | `jax.nn.dot_product_attention(implementation="cudnn")` | gpu      |
| `jax_nn`    | `jax.nn.dot_product_attention()`, jax's own choice     | all      |

Every form gives a zero output (and zero, finite gradients) to a query with no
valid key; for `cudnn` and `jax_nn` that is enforced on jax.nn's output.
`jax_nn` is there so that `auto` can take jax.nn's own path where it measured
fastest: `auto` is then never slower than jax.nn but for noise.

`DOT_PRODUCT_AUTO` is `implementation="auto"`'s table for both kinds, from the
fastest forward+backward measured by `benchmarks/attention.py` (the figures
are in benchmarks/RESULTS.md). "cpu" is measured (2-core AMD EPYC, head sizes
64 and 128, float32 and bfloat16, causal or not, N = 128 to 1024 in one run):
blockwise was fastest at 128 x 128 pairs (one block; not for float32 at head
size 128 without a causal mask, 0.97x of jax.nn), and from 512 x 512 up
at head size 64, causal, or bfloat16; at 256 x 256, where it splits into
2 x 2 smaller blocks, it fell to 0.61x of jax.nn, and for float32 at head size
128 without a causal mask to 0.72x (N = 512). There `auto` takes jax.nn's own
path: the same program as `jax.nn.dot_product_attention`, so parity with it
by construction (repeated runs of one program differed by up to 8% on this
shared machine). "default" (GPU and the rest) is NOT measured: it is the
usual expectation (cuDNN for half precision, else the Pallas kernel) until
the benchmark runs on a GPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn import blockwise, pallas_attention, registry
from attn import scores as _scores  # noqa: F401  (the kinds these forms register with)

DOT_PRODUCT_AUTO = {
    "cpu": (
        (128 * 128, 64, ("blockwise",)),
        (
            128 * 128,
            registry.UNLIMITED,
            ("jax_nn", "xla"),
            {"causal": False, "dtypes": ("float32",)},
        ),
        (128 * 128, registry.UNLIMITED, ("blockwise",)),
        (256 * 256, registry.UNLIMITED, ("jax_nn", "xla")),
        (1024 * 1024, 64, ("blockwise",)),
        (
            1024 * 1024,
            registry.UNLIMITED,
            ("jax_nn", "xla"),
            {"causal": False, "dtypes": ("float32",)},
        ),
        (registry.UNLIMITED, registry.UNLIMITED, ("blockwise",)),
    ),
    "default": ((registry.UNLIMITED, registry.UNLIMITED, ("cudnn", "pallas", "blockwise")),),
}


def pallas_unfit(*, head_dim: int, **_) -> str | None:
    """Why the Pallas kernel cannot take this head size (a power of two from 16)."""
    if head_dim >= 16 and head_dim & (head_dim - 1) == 0:
        return None
    return f"needs head_dim a power of two >= 16, got {head_dim}"


def pallas_fits(head_dim: int) -> bool:
    """Whether the Pallas kernel takes this head size."""
    return pallas_unfit(head_dim=head_dim) is None


def cudnn_unfit(*, head_dim: int, value_dim: int, dtype, **_) -> str | None:
    """Why cuDNN's fused attention cannot take these shapes."""
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
        return f"needs bfloat16 or float16 inputs, got {jnp.dtype(dtype).name}"
    if head_dim != value_dim:
        return f"needs keys and values of one size, got {head_dim} and {value_dim}"
    if head_dim > 128 or head_dim % 8:
        return f"needs head_dim a multiple of 8 up to 128, got {head_dim}"
    return None


def rows_with_a_key(
    q_len, k_len, *, mask=None, is_causal=False, query_seq_lengths=None, key_value_seq_lengths=None
):
    """Boolean broadcastable to `[batch, heads, q_len]`: may the query attend to anything?

    None when every query has a key (no mask, no key lengths, k_len > 0).
    """
    if mask is None and key_value_seq_lengths is None and query_seq_lengths is None:
        return None if k_len > 0 else jnp.zeros((1, 1, q_len), bool)
    k_pos = jnp.arange(k_len)
    q_pos = jnp.arange(q_len)
    if mask is None:
        # Top-left causal alignment always leaves key 0, so only lengths matter.
        valid = jnp.ones((1, 1, q_len), bool) if k_len > 0 else jnp.zeros((1, 1, q_len), bool)
        if key_value_seq_lengths is not None:
            valid = valid & (jnp.asarray(key_value_seq_lengths) > 0)[:, None, None]
    else:
        mask = jnp.asarray(mask, bool)
        mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
        if is_causal:
            mask = mask & (k_pos[None, :] <= q_pos[:, None])
        if key_value_seq_lengths is not None:
            kv = jnp.asarray(key_value_seq_lengths)
            mask = mask & (k_pos < kv[:, None, None, None])
        valid = mask.any(-1)
    if query_seq_lengths is not None:
        valid = valid & (q_pos < jnp.asarray(query_seq_lengths)[:, None, None])
    return valid


def jax_nn_attention(query, key, value, *, implementation="cudnn", **kwargs):
    """`jax.nn.dot_product_attention`, with zero output for queries with no key.

    Same layout and keywords as `attn.dot_product_attention`. `implementation`
    is jax.nn's ('cudnn' on GPU; 'xla' lets the tests check this wrapper on CPU).
    """
    for name in ("query_seq_lengths", "key_value_seq_lengths"):
        if kwargs.get(name) is not None:
            kwargs[name] = jnp.asarray(kwargs[name], jnp.int32)
    out = jax.nn.dot_product_attention(query, key, value, implementation=implementation, **kwargs)
    has_key = rows_with_a_key(
        query.shape[-3],
        key.shape[-3],
        mask=kwargs.get("mask"),
        is_causal=kwargs.get("is_causal", False),
        query_seq_lengths=kwargs.get("query_seq_lengths"),
        key_value_seq_lengths=kwargs.get("key_value_seq_lengths"),
    )
    if has_key is None:
        return out
    # [b, h, q] -> the output's [b, q, h, 1] (or [q, h, 1] unbatched)
    has_key = jnp.swapaxes(has_key, -1, -2)[..., None]
    if out.ndim == 3:
        has_key = has_key[0]
    return jnp.where(has_key, out, jnp.zeros((), out.dtype))


# Each form in `attn.dot_product_attention`'s layout, `[batch, length, heads, head_dim]`.
DOT_PRODUCT_FORMS = {
    "blockwise": blockwise.blockwise_attention,
    "pallas": pallas_attention.flash_attention,
    "cudnn": lambda *args, **kwargs: jax_nn_attention(*args, implementation="cudnn", **kwargs),
    "jax_nn": lambda *args, **kwargs: jax_nn_attention(*args, implementation=None, **kwargs),
}
BACKENDS = {"blockwise": None, "pallas": ("gpu",), "cudnn": ("gpu",), "jax_nn": None}


def jax_nn_unfit(*, head_dim: int, value_dim: int, **_) -> str | None:
    """Why jax.nn's attention cannot take these shapes (one size for keys and values)."""
    if head_dim != value_dim:
        return f"needs keys and values of one size, got {head_dim} and {value_dim}"
    return None


UNFIT = {"blockwise": None, "pallas": pallas_unfit, "cudnn": cudnn_unfit, "jax_nn": jax_nn_unfit}


def _module_form(name: str, kind: str):
    """The form `name` in the layout of `attn.scores`, `[batch, heads, length, features]`."""
    run = DOT_PRODUCT_FORMS[name]

    def form(query, key, value, *, mask=None, bias=None, is_causal=False, scale=None):
        scale = scale if kind == "scaled_dot" else 1.0
        as_jax_nn = lambda a: a.transpose(0, 2, 1, 3)  # [b, h, l, d] <-> [b, l, h, d]
        out = run(
            *(as_jax_nn(a) for a in (query, key, value)),
            mask=mask,
            bias=bias,
            is_causal=is_causal,
            scale=scale,
        )
        return as_jax_nn(out)

    form.__name__ = f"{kind}_{name}"
    return form


for _kind in ("dot", "scaled_dot"):
    for _name in DOT_PRODUCT_FORMS:
        registry.register_implementation(
            _kind, _name, backends=BACKENDS[_name], unfit=UNFIT[_name]
        )(_module_form(_name, _kind))
    registry.set_auto(_kind, DOT_PRODUCT_AUTO)
