"""Flax linen attention modules built on the registered score kinds.

- `Attention`: single-head attention of queries over a set of keys/values, the
  unit an RNN decoder uses (Bahdanau, Luong). No projections of its own beyond
  what the score needs; returns the context and the weights.
- `MultiHeadAttention`: projects queries, keys and values into heads, scores
  them with any registered kind, and projects the heads back. Self- or
  cross-attention, padding and causal masks, additive bias, attention dropout.

Both take `implementation` (see `attn.implementations`): the default 'xla'
forms the weights and returns them; 'blockwise', 'pallas', 'cudnn' and 'auto'
compute the same context without forming the `[.., q_len, k_len]` weights and
return `None` in their place, for the kinds they support (dot, scaled_dot,
and additive for blockwise/auto), with the same parameters. Attention dropout
needs the weights, so it is only available with 'xla'.
"""

from __future__ import annotations

import functools
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


def _check_rank(name: str, array: Array, layout: str) -> None:
    if getattr(array, "ndim", None) != layout.count(",") + 1:
        raise ValueError(
            f"{name} must be {layout}, got shape {getattr(array, 'shape', type(array).__name__)}."
        )


def _check_query_key_value(kind: str, query, key, value) -> None:
    """Trace-time checks of `[batch, length, features]` inputs."""
    _check_rank("query", query, "[batch, q_len, q_features]")
    _check_rank("key", key, "[batch, k_len, k_features]")
    _check_rank("value", value, "[batch, k_len, v_features]")
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        raise ValueError(
            f"query, key and value must share the batch size; got query "
            f"{query.shape}, key {key.shape}, value {value.shape}."
        )
    if key.shape[1] != value.shape[1]:
        raise ValueError(
            f"key and value must have the same length; got key {key.shape} and "
            f"value {value.shape} ([batch, k_len, features])."
        )
    if registry.lookup(kind).same_features and query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"Attention kind {kind!r} compares queries and keys directly, so their "
            f"feature sizes must match; got query {query.shape} and key "
            f"{key.shape}. Use a kind that projects them ('general', 'additive') "
            f"or project them first."
        )


class Attention(nn.Module):
    """Single-head attention: context = softmax(score(query, key)) @ value.

    Attributes:
      kind: a registered score kind (`attn.available()`).
      score_options: options of that score, e.g. `{"features": 128}` for
        additive.
      dropout_rate: dropout on the attention weights when not deterministic
        (needs a 'dropout' rng).

    Call with query `[batch, q_len, q_features]`, key `[batch, k_len,
    k_features]`, value `[batch, k_len, v_features]`, an optional boolean mask
    broadcastable to `[batch, q_len, k_len]` (True = attend) and an optional
    float bias of the same shape. Returns `(context [batch, q_len, v_features],
    weights [batch, q_len, k_len])`; weights are `None` unless the
    implementation that runs is 'xla'.

    implementation: 'xla' (default), 'blockwise', 'pallas', 'cudnn' or 'auto'
      (see `attn.implementations`).
    """

    kind: str = "scaled_dot"
    score_options: Mapping[str, Any] = FrozenDict()
    dropout_rate: float = 0.0
    implementation: str = "xla"

    @nn.compact
    def __call__(
        self,
        query: Array,
        key: Array,
        value: Array,
        mask=None,
        bias=None,
        *,
        deterministic: bool = True,
    ):
        _check_query_key_value(self.kind, query, key, value)
        logits_shape = (query.shape[0], query.shape[1], key.shape[1])
        desc = "[batch, q_len, k_len]"
        masking.check_mask(mask, logits_shape, target_desc=desc)
        masking.check_bias(bias, logits_shape, target_desc=desc)

        name = _resolve(self, batch_heads=query.shape[0], query=query, key=key, value=value)
        if name != "xla":
            _check_no_dropout(self.dropout_rate, deterministic, name)
            with_heads = lambda a: None if a is None else _as_3d(a)[:, None]
            context = implementations.module_attention(
                self.kind,
                self.score_options,
                query[:, None],
                key[:, None],
                value[:, None],
                implementation=name,
                mask=with_heads(mask),
                bias=with_heads(bias),
            )
            return context[:, 0], None

        logits = Score(self.kind, self.score_options, name="score")(query[:, None], key[:, None])[
            :, 0
        ]
        weights = masking.attention_weights(logits, mask=mask, bias=bias)
        dropped = nn.Dropout(self.dropout_rate)(weights, deterministic=deterministic)
        context = jnp.einsum("bqk,bkv->bqv", dropped.astype(value.dtype), value)
        return context, weights


def get(name: str, **options) -> Attention:
    """The single-head attention module of kind `name`.

    `options` are the kind's score options (see `attn.describe()`) and the
    `Attention` fields (`dropout_rate`, `implementation`). Unknown names or
    options raise ValueError listing the valid ones.
    """
    spec = registry.lookup(name)
    module_fields = {"dropout_rate", "implementation"}
    module_options = {k: options.pop(k) for k in list(options) if k in module_fields}
    spec.check_options(options)
    return Attention(kind=name, score_options=FrozenDict(options), **module_options)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with any registered score kind.

    Parameters are laid out as in `flax.linen.MultiHeadDotProductAttention`
    ('query', 'key', 'value', 'out' DenseGeneral layers), plus a 'score'
    submodule for kinds with parameters.

    Attributes:
      num_heads: number of heads; must divide `qkv_features`.
      kind: a registered score kind.
      score_options: options of that score.
      qkv_features: total size of the projected queries/keys/values (default:
        the query's feature size).
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
    """

    num_heads: int
    kind: str = "scaled_dot"
    score_options: Mapping[str, Any] = FrozenDict()
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
    ):
        """Attends from `inputs_q` to `inputs_k`/`inputs_v`.

        Args:
          inputs_q: `[batch, q_len, q_features]`.
          inputs_k: `[batch, k_len, k_features]`; default `inputs_q` (self-attention).
          inputs_v: `[batch, k_len, v_features]`; default `inputs_k`.
          mask: boolean, broadcastable to `[batch, heads, q_len, k_len]`, or
            `[batch, q_len, k_len]` (applied to every head). True = attend.
          bias: float, added to the logits; same shapes as `mask`.
          is_causal: also mask keys after each query (top-left aligned).
          deterministic: disables dropout; defaults to the module attribute.

        Returns:
          `(output [batch, q_len, out_features], weights [batch, heads, q_len,
          k_len])`; weights are `None` unless the implementation that runs is 'xla'.
        """
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        self._check(inputs_q, inputs_k, inputs_v)
        qkv_features = self.qkv_features or inputs_q.shape[-1]
        head_dim = qkv_features // self.num_heads
        batch, q_len, k_len = inputs_q.shape[0], inputs_q.shape[1], inputs_k.shape[1]
        logits_shape = (batch, self.num_heads, q_len, k_len)
        desc = "[batch, heads, q_len, k_len]"
        mask, bias = _with_head_axis(mask), _with_head_axis(bias)
        masking.check_mask(mask, logits_shape, target_desc=desc)
        masking.check_bias(bias, logits_shape, target_desc=desc)

        project = functools.partial(
            nn.DenseGeneral,
            features=(self.num_heads, head_dim),
            axis=-1,
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
        )
        # [batch, length, heads, head_dim] -> [batch, heads, length, head_dim]
        query = project(name="query")(inputs_q).transpose(0, 2, 1, 3)
        key = project(name="key")(inputs_k).transpose(0, 2, 1, 3)
        value = project(name="value")(inputs_v)

        if self.dropout_rate > 0:
            deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        else:
            deterministic = True
        name = _resolve(self, batch_heads=batch * self.num_heads, query=query, key=key, value=value)
        if name != "xla":
            _check_no_dropout(self.dropout_rate, deterministic, name)
            context = implementations.module_attention(
                self.kind,
                self.score_options,
                query,
                key,
                value.transpose(0, 2, 1, 3),
                implementation=name,
                mask=mask,
                bias=bias,
                is_causal=is_causal,
            ).transpose(0, 2, 1, 3)
            weights = None
        else:
            logits = Score(self.kind, self.score_options, name="score")(query, key)
            if is_causal:
                mask = masking.combine_masks(mask, masking.causal_mask(q_len, k_len))
            weights = masking.attention_weights(logits, mask=mask, bias=bias)
            dropout = nn.Dropout(
                self.dropout_rate, broadcast_dims=(0, 1) if self.broadcast_dropout else ()
            )
            dropped = dropout(weights, deterministic=deterministic)
            context = jnp.einsum("bhqk,bkhd->bqhd", dropped.astype(value.dtype), value)
        output = nn.DenseGeneral(
            features=self.out_features or inputs_q.shape[-1],
            axis=(-2, -1),
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            name="out",
        )(context)
        return output, weights

    def _check(self, inputs_q, inputs_k, inputs_v) -> None:
        registry.lookup(self.kind)
        _check_rank("inputs_q", inputs_q, "[batch, q_len, q_features]")
        _check_rank("inputs_k", inputs_k, "[batch, k_len, k_features]")
        _check_rank("inputs_v", inputs_v, "[batch, k_len, v_features]")
        if not inputs_q.shape[0] == inputs_k.shape[0] == inputs_v.shape[0]:
            raise ValueError(
                f"inputs_q, inputs_k and inputs_v must share the batch size; got "
                f"{inputs_q.shape}, {inputs_k.shape}, {inputs_v.shape}."
            )
        if inputs_k.shape[1] != inputs_v.shape[1]:
            raise ValueError(
                f"inputs_k and inputs_v must have the same length; got "
                f"{inputs_k.shape} and {inputs_v.shape}."
            )
        if not isinstance(self.num_heads, int) or self.num_heads < 1:
            raise ValueError(f"num_heads must be a positive integer, got {self.num_heads!r}.")
        qkv_features = self.qkv_features or inputs_q.shape[-1]
        if qkv_features % self.num_heads:
            divisors = [h for h in range(1, qkv_features + 1) if qkv_features % h == 0]
            raise ValueError(
                f"num_heads={self.num_heads} does not divide qkv_features="
                f"{qkv_features}; valid head counts for that size: {divisors}."
            )


def _resolve(module, *, batch_heads, query, key, value) -> str:
    """The implementation that runs: the module's, with 'auto' decided by shapes.

    query `[batch, (heads,) q_len, features]`, key and value likewise.
    """
    if module.implementation == "xla":
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
        features=module.score_options.get("features"),
    )


def _check_no_dropout(rate: float, deterministic: bool, implementation: str) -> None:
    if rate > 0 and not deterministic:
        raise ValueError(
            f"attention dropout (dropout_rate={rate}) acts on the weights, which "
            f"implementation={implementation!r} never forms; use implementation='xla', "
            f"dropout_rate=0 or deterministic=True."
        )


def _as_3d(array):
    """A mask or bias broadcastable to `[batch, q_len, k_len]`, as 3-d."""
    array = jnp.asarray(array)
    return array.reshape((1,) * (3 - array.ndim) + array.shape)


def _with_head_axis(array):
    """`[batch, q_len, k_len]` masks/biases apply to every head."""
    if array is not None and getattr(array, "ndim", 0) == 3:
        return array[:, None]
    return array


__all__ = ["Attention", "MultiHeadAttention", "Score", "get"]
