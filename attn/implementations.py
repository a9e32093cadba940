"""Which implementation computes attention, and `auto`'s choice among them.

`xla`, the default, runs every registered kind with plain XLA ops and forms the
`[.., q_len, k_len]` weights. A kind's faster forms are registered with it
(`attn.register_implementation`; see `attn.dot_product_forms` and
`attn.additive_chunked`), so this module names no kind: it checks a name
against the registry and the backend, and resolves `auto` from the kind's
table of measured choices (`Mechanism.auto`). A kind without a faster form,
or without a table, runs `xla` under `auto`; `auto` never picks `xla` where
its materialised pairs would exceed `AUTO_MAX_LOGITS_BYTES`.

`python -c "import attn; print(attn.describe())"` lists every kind's forms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attn import registry

# The names documented across the library, in the order listings use; a kind
# may register others.
IMPLEMENTATIONS = ("xla", "cudnn", "jax_nn", "blockwise", "pallas", "auto")
AUTO_MAX_LOGITS_BYTES = 2**30
# The forms that hold every pair's logits (jax.nn's own path does on CPU):
# `auto` leaves them past AUTO_MAX_LOGITS_BYTES.
MATERIALISING = ("xla", "jax_nn")


def _ordered(names):
    known = [n for n in IMPLEMENTATIONS if n in names]
    return known + sorted(set(names) - set(known))


def _all_names() -> list[str]:
    names = {"xla", "auto"}
    for kind in registry.available():
        names.update(registry.lookup(kind).implementations)
    return _ordered(names)


def available_implementations(kind: str = "scaled_dot", backend: str | None = None) -> list[str]:
    """The implementation names that can run `kind` on `backend` (default: JAX's)."""
    backend = backend or jax.default_backend()
    entry = registry.lookup(kind)
    faster = [name for name, impl in entry.implementations.items() if impl.runs_on(backend)]
    return _ordered({"xla", "auto", *faster})


def kinds_by_implementation() -> dict[str, list[str]]:
    """{implementation: the kinds that registered it}, for error messages and docs."""
    table: dict[str, list[str]] = {}
    for kind in registry.available():
        for name in registry.lookup(kind).implementations:
            table.setdefault(name, []).append(kind)
    return {name: table[name] for name in _ordered(table)}


def check(implementation, kind: str = "scaled_dot", backend: str | None = None, **shapes) -> None:
    """ValueError unless `implementation` can run `kind` on `backend`; with
    `shapes` (`head_dim`, `value_dim`, `dtype`) also unless it takes them."""
    backend = backend or jax.default_backend()
    entry = registry.lookup(kind)
    if implementation not in _all_names():
        raise ValueError(
            f"Unknown attention implementation {implementation!r}; valid on {backend}: "
            f"{', '.join(available_implementations('scaled_dot', backend))}."
        )
    if implementation in ("xla", "auto"):
        return
    if implementation not in entry.implementations:
        supports = "; ".join(f"{n}: {', '.join(k)}" for n, k in kinds_by_implementation().items())
        raise ValueError(
            f"implementation={implementation!r} cannot run attention kind {kind!r}. Kinds "
            f"by implementation: {supports}; 'xla' and 'auto' run every kind."
        )
    impl = entry.implementations[implementation]
    if not impl.runs_on(backend):
        raise ValueError(
            f"implementation={implementation!r} needs a {' or '.join(impl.backends)} "
            f"backend, but JAX's is {backend!r}; valid here for {kind!r}: "
            f"{', '.join(available_implementations(kind, backend))}."
        )
    reason = impl.why_unfit(**shapes) if shapes else None
    if reason:
        others = [n for n in available_implementations(kind, backend) if n != implementation]
        raise ValueError(
            f"implementation={implementation!r} {reason}; use one of {', '.join(others)}."
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
    options=None,
    is_causal: bool = False,
) -> str:
    """`auto`'s choice for these shapes (never 'auto').

    `options` are the kind's (e.g. additive's hidden size, which sets how much
    its plain form holds per pair); `features` is a shorthand for
    `options={"features": features}`. `is_causal` and `dtype` select the
    rules conditioned on them (registry.AutoRule).
    """
    backend = backend or jax.default_backend()
    entry = registry.lookup(kind)
    options = dict(options or {})
    if features is not None:
        options.setdefault("features", features)
    shapes = dict(head_dim=head_dim, value_dim=value_dim, dtype=dtype)

    def usable(name: str) -> bool:
        if name == "xla":
            return True
        impl = entry.implementations.get(name)
        return impl is not None and impl.runs_on(backend) and impl.why_unfit(**shapes) is None

    faster = [name for name in entry.implementations if usable(name)]
    rules = entry.auto.get(backend, entry.auto.get("default", ()))
    pairs = q_len * k_len
    name = "xla"

    def holds(conditions) -> bool:
        if "causal" in conditions and conditions["causal"] != bool(is_causal):
            return False
        return "dtypes" not in conditions or jnp.dtype(dtype).name in conditions["dtypes"]

    for max_pairs, max_dim, preferred, *conditions in rules:
        if (
            pairs <= max_pairs
            and head_dim <= max_dim
            and holds(conditions[0] if conditions else {})
        ):
            name = next((n for n in preferred if usable(n)), faster[0] if faster else "xla")
            break
    xla_bytes = batch_heads * pairs * entry.hidden_per_pair(options, head_dim) * 4
    if name in MATERIALISING and xla_bytes > AUTO_MAX_LOGITS_BYTES and faster:
        name = "blockwise" if "blockwise" in faster else faster[0]
    return name


def resolve(implementation, kind: str, **shapes) -> str:
    """The implementation that runs: checked, and `auto` replaced by its choice.

    `shapes` are `choose`'s keyword arguments.
    """
    fit = {k: shapes[k] for k in ("head_dim", "value_dim", "dtype") if k in shapes}
    check(implementation, kind, **fit)
    return choose(kind, **shapes) if implementation == "auto" else implementation


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
    """A kind's faster form, in the layout of `attn.scores`; no weights.

    Call inside the compact method of the 'score' submodule: a form with
    parameters creates them there, as the kind's plain form does.

    Args:
      kind, options: the kind and its options.
      query: `[batch, heads, q_len, q_features]`.
      key: `[batch, heads, k_len, k_features]`.
      value: `[batch, heads, k_len, v_features]`.
      implementation: a registered faster form of the kind (already resolved).
      mask, bias: broadcastable to `[batch, heads, q_len, k_len]`.
      is_causal: query i attends to keys j <= i.

    Returns:
      `[batch, heads, q_len, v_features]`.
    """
    check(
        implementation, kind, head_dim=key.shape[-1], value_dim=value.shape[-1], dtype=query.dtype
    )
    impl = registry.lookup(kind).implementations[implementation]
    return impl.fn(query, key, value, mask=mask, bias=bias, is_causal=is_causal, **options)
