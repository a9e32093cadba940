"""Which implementation computes attention, and `auto`'s choice among them.

| name        | what runs                                             | kinds                    | backends |
|-------------|-------------------------------------------------------|--------------------------|----------|
| `xla`       | plain XLA ops (materialises the logits); the default  | every registered kind    | all      |
| `cudnn`     | `jax.nn.dot_product_attention(implementation="cudnn")`| dot, scaled_dot          | gpu      |
| `blockwise` | `attn.blockwise` / `attn.additive_chunked` (pure JAX) | dot, scaled_dot, additive| all      |
| `pallas`    | `attn.pallas_attention` (Pallas kernels)              | dot, scaled_dot          | gpu      |
| `auto`      | the fastest of those for the backend and shapes       | dot, scaled_dot, additive| all      |

Every implementation gives a zero output (and zero, finite gradients) to a
query with no valid key; for `cudnn` that is enforced on jax.nn's output.

`auto` reads `AUTO_TABLE`, fastest forward+backward measured per backend by
`benchmarks/attention.py` (the figures are in benchmarks/RESULTS.md), and
never picks `xla` when its logits would exceed `AUTO_MAX_LOGITS_BYTES`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from attn import additive_chunked, blockwise, pallas_attention, registry

IMPLEMENTATIONS = ("xla", "cudnn", "blockwise", "pallas", "auto")
DOT_KINDS = ("dot", "scaled_dot")
KINDS = {
    "cudnn": DOT_KINDS,
    "blockwise": ("additive", *DOT_KINDS),
    "pallas": DOT_KINDS,
    "auto": ("additive", *DOT_KINDS),
}  # xla: every registered kind
BACKENDS = {"cudnn": ("gpu",), "pallas": ("gpu",)}  # the others: every backend

# auto: backend -> score family -> [(up to this many query x key pairs per
# head, up to this head size, implementation), ...], first match wins. "cpu"
# is measured (2-core AMD EPYC, forward+backward, head sizes 64 and 128,
# float32 and bfloat16, causal or not; benchmarks/RESULTS.md): blockwise was
# fastest at 128 x 128 pairs (one block) and from 512 x 512 up; at 256 x 256,
# where it splits into 2 x 2 smaller blocks, it ranged from 0.56x to 1.38x of
# jax.nn and the materialising form from 0.94x to 1.12x, so that one takes it.
# The materialising additive form was fastest up to 64 x 64 pairs, the chunked
# one from 128 x 128. "gpu" is NOT measured: it is the usual expectation
# (cuDNN for half precision, else the Pallas kernel) until
# benchmarks/attention.py is run on a GPU.
AUTO_TABLE = {
    "cpu": {
        "dot_product": [
            (128 * 128, math.inf, "blockwise"),
            (256 * 256, math.inf, "xla"),
            (math.inf, math.inf, "blockwise"),
        ],
        "additive": [(64 * 64, math.inf, "xla"), (math.inf, math.inf, "blockwise")],
    },
    "gpu": {
        "dot_product": [(math.inf, math.inf, "cudnn")],
        "additive": [(64 * 64, math.inf, "xla"), (math.inf, math.inf, "blockwise")],
    },
}
AUTO_MAX_LOGITS_BYTES = 2**30


def available_implementations(kind: str = "scaled_dot", backend: str | None = None) -> list[str]:
    """The implementation names that can run `kind` on `backend` (default: JAX's)."""
    backend = backend or jax.default_backend()
    registry.lookup(kind)
    return [
        name
        for name in IMPLEMENTATIONS
        if kind in KINDS.get(name, (kind,)) and backend in BACKENDS.get(name, (backend,))
    ]


def check(implementation, kind: str = "scaled_dot", backend: str | None = None) -> None:
    """ValueError unless `implementation` can run `kind` on `backend`."""
    backend = backend or jax.default_backend()
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"Unknown attention implementation {implementation!r}; valid on {backend}: "
            f"{', '.join(available_implementations('scaled_dot', backend))}."
        )
    if kind not in KINDS.get(implementation, (kind,)):
        supports = "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in KINDS.items())
        raise ValueError(
            f"implementation={implementation!r} cannot run attention kind {kind!r}. Kinds "
            f"by implementation: {supports}; 'xla' runs every kind."
        )
    if backend not in BACKENDS.get(implementation, (backend,)):
        raise ValueError(
            f"implementation={implementation!r} needs a {' or '.join(BACKENDS[implementation])} "
            f"backend, but JAX's is {backend!r}; valid here for {kind!r}: "
            f"{', '.join(available_implementations(kind, backend))}."
        )


def choose(
    kind: str,
    *,
    batch_heads: int,
    q_len: int,
    k_len: int,
    head_dim: int,
    value_dim: int,
    dtype,
    features: int | None = None,
    backend: str | None = None,
) -> str:
    """`auto`'s choice for these shapes (never 'auto').

    `features` is additive attention's hidden size (its naive form holds
    `batch_heads * q_len * k_len * features` activations).
    """
    backend = backend or jax.default_backend()
    family = "additive" if kind == "additive" else "dot_product"
    table = AUTO_TABLE.get(backend, AUTO_TABLE["gpu"])[family]
    pairs = q_len * k_len
    name = next(
        name for max_pairs, max_dim, name in table if pairs <= max_pairs and head_dim <= max_dim
    )
    if name == "cudnn" and not _cudnn_fits(head_dim, value_dim, dtype):
        name = "pallas" if pallas_fits(head_dim) else "blockwise"
    per_pair = (features or head_dim) if family == "additive" else 1
    xla_bytes = batch_heads * pairs * per_pair * 4
    if name == "xla" and xla_bytes > AUTO_MAX_LOGITS_BYTES:
        name = "blockwise"
    return name if name in available_implementations(kind, backend) else "blockwise"


def _cudnn_fits(head_dim: int, value_dim: int, dtype) -> bool:
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    return half and head_dim == value_dim and head_dim <= 128 and head_dim % 8 == 0


def pallas_fits(head_dim: int) -> bool:
    """Whether the Pallas kernel takes this head size (a power of two from 16)."""
    return head_dim >= 16 and head_dim & (head_dim - 1) == 0


def resolve(implementation, kind: str, **shapes) -> str:
    """The implementation that runs: checked, and `auto` replaced by its choice.

    `shapes` are `choose`'s keyword arguments (read only for 'auto').
    """
    check(implementation, kind)
    return choose(kind, **shapes) if implementation == "auto" else implementation


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


def run_dot_product(name: str, query, key, value, **kwargs):
    """Scaled dot-product attention by implementation `name` (not xla or auto).

    Arguments as `attn.dot_product_attention`, already checked.
    """
    if name == "blockwise":
        return blockwise.blockwise_attention(query, key, value, **kwargs)
    if name == "pallas":
        if not pallas_fits(query.shape[-1]):
            raise ValueError(
                f"implementation='pallas' needs head_dim a power of two >= 16, got "
                f"{query.shape[-1]} (query {query.shape}); use 'blockwise' or 'cudnn'."
            )
        return pallas_attention.flash_attention(query, key, value, **kwargs)
    if name == "cudnn":
        return jax_nn_attention(query, key, value, implementation="cudnn", **kwargs)
    raise ValueError(f"run_dot_product runs cudnn, blockwise or pallas, not {name!r}.")


def module_attention(
    kind: str,
    options,
    query,
    key,
    value,
    *,
    implementation: str,
    mask=None,
    bias=None,
    is_causal: bool = False,
):
    """Attention of a registered kind in the layout of `attn.scores`, no weights.

    Call inside a linen compact method: for 'additive' it creates the score's
    parameters (`attn.additive_chunked.AdditiveKernels`, named 'score').

    Args:
      kind, options: the score kind and its options.
      query: `[batch, heads, q_len, q_features]`.
      key: `[batch, heads, k_len, k_features]`.
      value: `[batch, heads, k_len, v_features]`.
      implementation: 'cudnn', 'blockwise' or 'pallas' (already resolved).
      mask, bias: broadcastable to `[batch, heads, q_len, k_len]`.
      is_causal: query i attends to keys j <= i.

    Returns:
      `[batch, heads, q_len, v_features]`.
    """
    check(implementation, kind)
    kwargs = dict(mask=mask, bias=bias, is_causal=is_causal)
    if kind == "additive":
        kernels = additive_chunked.AdditiveKernels(options.get("features"), name="score")
        return additive_chunked.additive_attention(
            query, key, value, **kernels(query, key), **kwargs
        )
    if implementation == "cudnn" and key.shape != value.shape:
        raise ValueError(
            f"implementation='cudnn' needs keys and values of the same size; got key "
            f"{key.shape} and value {value.shape}; use 'blockwise' or 'pallas'."
        )
    scale = options.get("scale") if kind == "scaled_dot" else 1.0
    as_jax_nn = lambda a: a.transpose(0, 2, 1, 3)  # [b, h, l, d] <-> [b, l, h, d]
    out = run_dot_product(
        implementation, *(as_jax_nn(a) for a in (query, key, value)), scale=scale, **kwargs
    )
    return as_jax_nn(out)
