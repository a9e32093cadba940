"""Flax linen attention modules built on the registered kinds.

- `Attention`: single-head attention of queries over a set of keys/values, the
  unit an RNN decoder uses (Bahdanau, Luong). No projections of its own beyond
  what the kind needs; returns the context and the weights.
- `attend_heads`: any registered kind over `[batch, heads, length, features]`
  heads, the core `attn.multihead.MultiHeadAttention` (projections, masks,
  the decoding cache) runs.

Both modules take `implementation` (see `attn.implementations`): the default 'xla'
runs the kind's plain form, which for a score kind forms the weights and
returns them; a kind's faster forms ('blockwise', 'pallas', 'cudnn', 'jax_nn') and
'auto' compute the same output without forming the `[.., q_len, k_len]`
weights and return `None` in their place, with the same parameters.
Mechanisms registered as attend functions never return weights. Attention
dropout needs the weights, so it runs only where they are formed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from attn import implementations, masking, registry

Array = Any


class Score(nn.Module):
    """Applies the registered score `kind`; owns that score's parameters.

    query `[batch, heads, q_len, q_features]`, key `[batch, heads, k_len,
    k_features]` -> logits `[batch, heads, q_len, k_len]`.
    """

    kind: str
    options: Mapping[str, Any] = FrozenDict()

    @nn.compact
    def __call__(self, query: Array, key: Array) -> Array:
        spec = registry.lookup(self.kind)
        spec.check_options(self.options)
        return spec.fn(query, key, **self.options)


class Attend(nn.Module):
    """Runs a kind to its output without weights: an attend mechanism's own
    function, or a faster form of a score kind. Owns the kind's parameters,
    under the same names as `Score` creates them.

    query `[batch, heads, q_len, q_features]`, key `[batch, heads, k_len,
    k_features]`, value `[batch, heads, k_len, v_features]` -> `[batch, heads,
    q_len, v_features]`.
    """

    kind: str
    options: Mapping[str, Any] = FrozenDict()
    implementation: str = "xla"

    @nn.compact
    def __call__(self, query, key, value, *, mask=None, bias=None, is_causal=False, query_offset=0):
        spec = registry.lookup(self.kind)
        spec.check_options(self.options)
        if self.implementation == "xla":
            extra = {} if bias is None else {"bias": bias}
            if spec.takes_query_offset:
                extra["query_offset"] = query_offset
            return spec.fn(
                query, key, value, mask=mask, is_causal=is_causal, **extra, **self.options
            )
        return implementations.module_attention(
            self.kind,
            self.options,
            query,
            key,
            value,
            implementation=self.implementation,
            mask=mask,
            bias=bias,
            is_causal=is_causal,
        )


def check_use(kind: str, *, mask=None, bias=None, is_causal=False, cross=False, decode=False):
    """One-line ValueError unless `kind` can do what the call asks (before tracing)."""
    spec = registry.lookup(kind)
    needed = [
        name
        for name, asked in (
            ("causal", is_causal),
            ("bias", bias is not None),
            ("cross", cross),
            ("decode", decode),
        )
        if asked
    ]
    if mask is not None and not spec.supports("mask"):
        shape = tuple(getattr(mask, "shape", ()))
        per_key = len(shape) < 2 or shape[-2] == 1  # the same for every query: padding
        needed.append("padding" if per_key else "mask")
    registry.check_capabilities(kind, needed, what="this call")


def _check_rank(name: str, array: Array, layout: str) -> None:
    if getattr(array, "ndim", None) != layout.count(",") + 1:
        raise ValueError(
            f"{name} must be {layout}, got shape {getattr(array, 'shape', type(array).__name__)}."
        )


def check_ranks(kind: str, names, query, key, value) -> None:
    """Trace-time checks of `[batch, length, features]` inputs."""
    registry.lookup(kind)
    q_name, k_name, v_name = names
    _check_rank(q_name, query, "[batch, q_len, q_features]")
    _check_rank(k_name, key, "[batch, k_len, k_features]")
    _check_rank(v_name, value, "[batch, k_len, v_features]")
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        raise ValueError(
            f"{q_name}, {k_name} and {v_name} must share the batch size; got {q_name} "
            f"{query.shape}, {k_name} {key.shape}, {v_name} {value.shape}."
        )
    if key.shape[1] != value.shape[1]:
        raise ValueError(
            f"{k_name} and {v_name} must have the same length; got {k_name} {key.shape} "
            f"and {v_name} {value.shape} ([batch, k_len, features])."
        )


def _check_same_features(kind: str, query, key) -> None:
    if registry.lookup(kind).same_features and query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"Attention kind {kind!r} compares queries and keys directly, so their "
            f"feature sizes must match; got query {query.shape} and key "
            f"{key.shape}. Use a kind that projects them ('general', 'additive') "
            f"or project them first."
        )


def attend_heads(
    kind: str,
    options: Mapping[str, Any],
    implementation: str,
    query,
    key,
    value,
    *,
    mask=None,
    bias=None,
    is_causal: bool = False,
    dropout: nn.Dropout | None = None,
    deterministic: bool = True,
    query_offset=0,
):
    """The shared core: queries against keys, per head, any kind and implementation.

    Call inside a compact method: it creates the 'score' submodule that owns
    the kind's parameters.

    Args:
      query: `[batch, heads, q_len, q_features]`.
      key: `[batch, heads, k_len, k_features]`.
      value: `[batch, heads, k_len, v_features]`.
      implementation: already resolved (never 'auto').
      mask, bias: broadcastable to `[batch, heads, q_len, k_len]`.
      dropout: drops the weights when not deterministic (score kinds, 'xla').
      query_offset: the position of the first query among the keys (int or
        traced scalar; the cache index in decoding), for the mechanisms whose
        pattern depends on it (`Mechanism.takes_query_offset`).

    Returns:
      (context `[batch, heads, q_len, v_features]`, weights `[batch, heads,
      q_len, k_len]` or None where they are never formed).
    """
    spec = registry.lookup(kind)
    if spec.form == "score" and implementation == "xla":
        logits = Score(kind, options, name="score")(query, key)
        if is_causal:
            mask = masking.combine_masks(mask, masking.causal_mask(query.shape[-2], key.shape[-2]))
        weights = masking.attention_weights(logits, mask=mask, bias=bias)
        dropped = weights if dropout is None else dropout(weights, deterministic=deterministic)
        context = jnp.einsum("bhqk,bhkd->bhqd", dropped.astype(value.dtype), value)
        return context, weights
    if dropout is not None and dropout.rate > 0 and not deterministic:
        raise ValueError(
            f"attention dropout (dropout_rate={dropout.rate}) acts on the weights, which "
            f"implementation={implementation!r} never forms (kind {kind!r}); use "
            f"implementation='xla' with a score kind, dropout_rate=0 or deterministic=True."
        )
    attend = Attend(kind, options, implementation, name="score")
    context = attend(
        query, key, value, mask=mask, bias=bias, is_causal=is_causal, query_offset=query_offset
    )
    return context, None


def resolve_implementation(module, *, batch_heads, query, key, value, is_causal=False) -> str:
    """The implementation that runs: the module's, with 'auto' decided by shapes.

    query `[batch, heads, q_len, features]`, key and value likewise.
    """
    if module.implementation == "xla":
        registry.lookup(module.kind)
        return "xla"
    return implementations.resolve(
        module.implementation,
        module.kind,
        batch_heads=batch_heads,
        q_len=query.shape[-2],
        k_len=key.shape[-2],
        head_dim=query.shape[-1],
        value_dim=value.shape[-1],
        dtype=query.dtype,
        options=module.options,
        is_causal=is_causal,
    )


class Attention(nn.Module):
    """Single-head attention: context = softmax(score(query, key)) @ value.

    Attributes:
      kind: a registered kind (`attn.available()`).
      options: options of that kind, e.g. `{"features": 128}` for additive.
      dropout_rate: dropout on the attention weights when not deterministic
        (needs a 'dropout' rng).
      implementation: 'xla' (default), 'blockwise', 'pallas', 'cudnn', 'jax_nn'
        or 'auto' (see `attn.implementations`).

    Call with query `[batch, q_len, q_features]`, key `[batch, k_len,
    k_features]`, value `[batch, k_len, v_features]`, an optional boolean mask
    broadcastable to `[batch, q_len, k_len]` (True = attend) and an optional
    float bias of the same shape. Returns `(context [batch, q_len, v_features],
    weights [batch, q_len, k_len])`; weights are `None` where the kind and
    implementation that run never form them.
    """

    kind: str = "scaled_dot"
    options: Mapping[str, Any] = FrozenDict()
    dropout_rate: float = 0.0
    implementation: str = "xla"

    @nn.compact
    def __call__(self, query, key, value, mask=None, bias=None, *, deterministic: bool = True):
        check_ranks(self.kind, ("query", "key", "value"), query, key, value)
        _check_same_features(self.kind, query, key)
        logits_shape = (query.shape[0], query.shape[1], key.shape[1])
        desc = "[batch, q_len, k_len]"
        masking.check_mask(mask, logits_shape, target_desc=desc)
        masking.check_bias(bias, logits_shape, target_desc=desc)
        check_use(self.kind, mask=mask, bias=bias, cross=True)
        with_heads = lambda a: None if a is None else _as_3d(a)[:, None]
        q, k, v = query[:, None], key[:, None], value[:, None]
        name = resolve_implementation(self, batch_heads=query.shape[0], query=q, key=k, value=v)
        context, weights = attend_heads(
            self.kind,
            self.options,
            name,
            q,
            k,
            v,
            mask=with_heads(mask),
            bias=with_heads(bias),
            dropout=nn.Dropout(self.dropout_rate),
            deterministic=deterministic,
        )
        return context[:, 0], None if weights is None else weights[:, 0]


def get(name: str, **options) -> Attention:
    """The single-head attention module of kind `name`.

    `options` are the kind's options (see `attn.describe()`) and the
    `Attention` fields (`dropout_rate`, `implementation`). Unknown names or
    options raise ValueError listing the valid ones.
    """
    spec = registry.lookup(name)
    module_fields = {"dropout_rate", "implementation"}
    module_options = {k: options.pop(k) for k in list(options) if k in module_fields}
    spec.check_options(options)
    return Attention(kind=name, options=FrozenDict(options), **module_options)


def _as_3d(array):
    """A mask or bias broadcastable to `[batch, q_len, k_len]`, as 3-d."""
    array = jnp.asarray(array)
    return array.reshape((1,) * (3 - array.ndim) + array.shape)


__all__ = ["Attend", "Attention", "Score", "attend_heads", "check_use", "get"]
