"""Flax linen attention modules built on the registered kinds.

- `Attention`: single-head attention of queries over a set of keys/values, the
  unit an RNN decoder uses (Bahdanau, Luong). No projections of its own beyond
  what the kind needs; returns the context and the weights.
- `MultiHeadAttention`: projects queries, keys and values into heads (with
  fewer key/value heads for multi- or grouped-query attention), runs any
  registered kind, and projects the heads back. Self- or cross-attention,
  padding and causal masks, additive bias, attention dropout, and cached
  decoding (`decode=True`, as `flax.linen.MultiHeadDotProductAttention`).

Both take `implementation` (see `attn.implementations`): the default 'xla'
runs the kind's plain form, which for a score kind forms the weights and
returns them; a kind's faster forms ('blockwise', 'pallas', 'cudnn') and
'auto' compute the same output without forming the `[.., q_len, k_len]`
weights and return `None` in their place, with the same parameters.
Mechanisms registered as attend functions never return weights. Attention
dropout needs the weights, so it runs only where they are formed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
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
    def __call__(self, query, key, value, *, mask=None, bias=None, is_causal=False):
        spec = registry.lookup(self.kind)
        spec.check_options(self.options)
        if self.implementation == "xla":
            extra = {} if bias is None else {"bias": bias}
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
        per_key = len(shape) < 2 or (shape[-2] == 1 and (len(shape) < 3 or shape[-3] == 1))
        needed.append("padding" if per_key else "mask")
    registry.check_capabilities(kind, needed, what="this call")


def _check_rank(name: str, array: Array, layout: str) -> None:
    if getattr(array, "ndim", None) != layout.count(",") + 1:
        raise ValueError(
            f"{name} must be {layout}, got shape {getattr(array, 'shape', type(array).__name__)}."
        )


def _check_inputs(kind: str, names, query, key, value) -> None:
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
    return attend(query, key, value, mask=mask, bias=bias, is_causal=is_causal), None


def _resolve(module, *, batch_heads, query, key, value) -> str:
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
    )


class Attention(nn.Module):
    """Single-head attention: context = softmax(score(query, key)) @ value.

    Attributes:
      kind: a registered kind (`attn.available()`).
      options: options of that kind, e.g. `{"features": 128}` for additive.
      dropout_rate: dropout on the attention weights when not deterministic
        (needs a 'dropout' rng).
      implementation: 'xla' (default), 'blockwise', 'pallas', 'cudnn' or 'auto'
        (see `attn.implementations`).

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
        _check_inputs(self.kind, ("query", "key", "value"), query, key, value)
        _check_same_features(self.kind, query, key)
        logits_shape = (query.shape[0], query.shape[1], key.shape[1])
        desc = "[batch, q_len, k_len]"
        masking.check_mask(mask, logits_shape, target_desc=desc)
        masking.check_bias(bias, logits_shape, target_desc=desc)
        check_use(self.kind, mask=mask, bias=bias, cross=True)
        with_heads = lambda a: None if a is None else _as_3d(a)[:, None]
        q, k, v = query[:, None], key[:, None], value[:, None]
        name = _resolve(self, batch_heads=query.shape[0], query=q, key=k, value=v)
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


class MultiHeadAttention(nn.Module):
    """Multi-head attention with any registered kind.

    Parameters are laid out as in `flax.linen.MultiHeadDotProductAttention`
    ('query', 'key', 'value', 'out' DenseGeneral layers), plus a 'score'
    submodule for kinds with parameters.

    Attributes:
      num_heads: number of query heads; must divide `qkv_features`.
      kind: a registered kind (`attn.available()`).
      options: options of that kind (`attn.describe()`).
      num_kv_heads: key/value heads (default `num_heads`); each is shared by
        `num_heads // num_kv_heads` query heads: 1 is multi-query attention
        (Shazeer 2019), between 1 and `num_heads` grouped-query attention
        (Ainslie et al. 2023). The decoding cache holds only these heads.
      qkv_features: total size of the projected queries (default: the
        query's feature size); keys and values get `num_kv_heads` heads of
        the same head size.
      out_features: output size (default: the query's feature size).
      dropout_rate: dropout on the attention weights.
      broadcast_dropout: share the dropout mask across batch and heads.
      use_bias: biases in the projections.
      deterministic: default for `__call__`'s `deterministic`.
      dtype: computation dtype (default: inferred from inputs and params).
      param_dtype: parameter dtype.
      implementation: 'xla' (default), 'blockwise', 'pallas', 'cudnn' or
        'auto' (see `attn.implementations`); all but 'xla' return `None` for
        the weights and need dropout_rate 0 or deterministic calls.
      decode: cached autoregressive decoding (see `__call__`).
    """

    num_heads: int
    kind: str = "scaled_dot"
    options: Mapping[str, Any] = FrozenDict()
    num_kv_heads: int | None = None
    qkv_features: int | None = None
    out_features: int | None = None
    dropout_rate: float = 0.0
    broadcast_dropout: bool = False
    use_bias: bool = True
    deterministic: bool | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    implementation: str = "xla"
    decode: bool = False

    @nn.compact
    def __call__(
        self,
        inputs_q: Array,
        inputs_k: Array | None = None,
        inputs_v: Array | None = None,
        *,
        mask=None,
        bias=None,
        is_causal: bool = False,
        deterministic: bool | None = None,
        decode: bool | None = None,
    ):
        """Attends from `inputs_q` to `inputs_k`/`inputs_v`.

        Args:
          inputs_q: `[batch, q_len, q_features]`.
          inputs_k: `[batch, k_len, k_features]`; default `inputs_q` (self-attention).
          inputs_v: `[batch, k_len, v_features]`; default `inputs_k`. Needs
            `inputs_k`.
          mask: boolean, broadcastable to `[batch, heads, q_len, k_len]`, or
            `[batch, q_len, k_len]` (applied to every head). True = attend.
          bias: float, added to the logits; same shapes as `mask`.
          is_causal: also mask keys after each query (top-left aligned).
          deterministic: disables dropout; defaults to the module attribute.
          decode: overrides the module's `decode` for this call.

        With `decode=True` the module keeps a 'cache' collection:
          - self-attention (`inputs_k` None): the first call creates an empty
            cache as long as `inputs_q` (the longest sequence to decode) and
            attends as usual; each later call appends its `q_len` keys and
            values at the cache index and attends over the cache, each query
            to the slots up to its own position. `mask` and `bias` then
            broadcast to `[batch, heads, q_len, cache_len]`.
          - cross-attention (`inputs_k` given): the first call projects the
            keys and values of `inputs_k`/`inputs_v` into the cache, once per
            sequence; later calls reuse them (their `inputs_k` is not read).
          Start a new sequence from a fresh cache (apply with no 'cache').

        Returns:
          `(output [batch, q_len, out_features], weights [batch, heads, q_len,
          k_len])`; weights are `None` where the kind and implementation that
          run never form them.
        """
        if inputs_v is not None and inputs_k is None:
            raise ValueError(
                "inputs_v was given without inputs_k; pass inputs_k too (for "
                "self-attention pass neither)."
            )
        decode = self.decode if decode is None else decode
        cross = inputs_k is not None
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        _check_inputs(self.kind, ("inputs_q", "inputs_k", "inputs_v"), inputs_q, inputs_k, inputs_v)
        kv_heads, head_dim = self._heads(inputs_q)
        check_use(self.kind, mask=mask, bias=bias, is_causal=is_causal, cross=cross, decode=decode)

        dense = functools.partial(
            nn.DenseGeneral,
            axis=-1,
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
        )
        # [batch, length, heads, head_dim]
        query = dense(features=(self.num_heads, head_dim), name="query")(inputs_q)
        project_key = lambda: dense(features=(kv_heads, head_dim), name="key")(inputs_k)
        project_value = lambda: dense(features=(kv_heads, head_dim), name="value")(inputs_v)

        if decode and cross:
            key, value = self._cached_memory(project_key, project_value)
        elif decode:
            key, value, mask, is_causal = self._cached_step(
                query, project_key(), project_value(), mask, is_causal
            )
        else:
            key, value = project_key(), project_value()

        batch, q_len, k_len = query.shape[0], query.shape[1], key.shape[1]
        logits_shape = (batch, self.num_heads, q_len, k_len)
        desc = "[batch, heads, q_len, k_len]"
        mask, bias = _with_head_axis(mask), _with_head_axis(bias)
        masking.check_mask(mask, logits_shape, target_desc=desc)
        masking.check_bias(bias, logits_shape, target_desc=desc)

        # [batch, length, heads, head_dim] -> [batch, heads, length, head_dim],
        # each key/value head shared by its group of query heads.
        group = self.num_heads // kv_heads
        to_heads = lambda a, n: (
            jnp.repeat(a.transpose(0, 2, 1, 3), n, axis=1) if n > 1 else (a.transpose(0, 2, 1, 3))
        )
        query, key, value = to_heads(query, 1), to_heads(key, group), to_heads(value, group)

        if self.dropout_rate > 0:
            deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        else:
            deterministic = True
        name = _resolve(self, batch_heads=batch * self.num_heads, query=query, key=key, value=value)
        context, weights = attend_heads(
            self.kind,
            self.options,
            name,
            query,
            key,
            value,
            mask=mask,
            bias=bias,
            is_causal=is_causal,
            dropout=nn.Dropout(
                self.dropout_rate, broadcast_dims=(0, 1) if self.broadcast_dropout else ()
            ),
            deterministic=deterministic,
        )
        output = nn.DenseGeneral(
            features=self.out_features or inputs_q.shape[-1],
            axis=(-2, -1),
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            name="out",
        )(context.transpose(0, 2, 1, 3))
        return output, weights

    def _heads(self, inputs_q) -> tuple[int, int]:
        """(kv_heads, head_dim), checked."""
        if not isinstance(self.num_heads, int) or self.num_heads < 1:
            raise ValueError(f"num_heads must be a positive integer, got {self.num_heads!r}.")
        qkv_features = self.qkv_features or inputs_q.shape[-1]
        if qkv_features % self.num_heads:
            divisors = [h for h in range(1, qkv_features + 1) if qkv_features % h == 0]
            raise ValueError(
                f"num_heads={self.num_heads} does not divide qkv_features="
                f"{qkv_features}; valid head counts for that size: {divisors}."
            )
        kv_heads = self.num_heads if self.num_kv_heads is None else self.num_kv_heads
        if not isinstance(kv_heads, int) or kv_heads < 1 or self.num_heads % kv_heads:
            valid = [h for h in range(1, self.num_heads + 1) if self.num_heads % h == 0]
            raise ValueError(
                f"num_kv_heads={kv_heads!r} must divide num_heads={self.num_heads}; valid: {valid}."
            )
        return kv_heads, qkv_features // self.num_heads

    def _cached_memory(self, project_key, project_value):
        """Cross-attention keys and values, projected once per sequence."""
        key = self.variable("cache", "cached_key", project_key)
        value = self.variable("cache", "cached_value", project_value)
        return key.value, value.value

    def _cached_step(self, query, key, value, mask, is_causal):
        """Self-attention keys and values with the cache; see `__call__`.

        query, key, value `[batch, q_len, (kv_)heads, head_dim]` -> (keys,
        values `[batch, cache_len, kv_heads, head_dim]`, mask, is_causal).
        """
        fresh = not self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        if fresh:  # the cache is being created: attend over the inputs themselves
            return key, value, mask, is_causal
        q_len, cache_len = query.shape[1], cached_key.value.shape[1]
        start = index.value
        at = (0, start, 0, 0)
        cached_key.value = jax.lax.dynamic_update_slice(
            cached_key.value, key.astype(cached_key.value.dtype), at
        )
        cached_value.value = jax.lax.dynamic_update_slice(
            cached_value.value, value.astype(cached_value.value.dtype), at
        )
        index.value = start + q_len
        # Query i (at position start + i) sees the slots up to its own.
        seen = jnp.arange(cache_len)[None, :] <= start + jnp.arange(q_len)[:, None]
        mask = masking.combine_masks(_with_head_axis(mask), seen[None, None])
        return cached_key.value, cached_value.value, mask, False


def _as_3d(array):
    """A mask or bias broadcastable to `[batch, q_len, k_len]`, as 3-d."""
    array = jnp.asarray(array)
    return array.reshape((1,) * (3 - array.ndim) + array.shape)


def _with_head_axis(array):
    """`[batch, q_len, k_len]` masks/biases apply to every head."""
    if array is not None and getattr(array, "ndim", 0) == 3:
        return array[:, None]
    return array


__all__ = ["Attend", "Attention", "MultiHeadAttention", "Score", "attend_heads", "check_use", "get"]
