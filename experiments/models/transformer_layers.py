"""Layers of the translation Transformer, and their cached single-step forms.

Every self- and cross-attention is an `attn.MultiHeadAttention`, so any
registered score kind works in it. Autoregressive decoding reuses those same
parameters without going through the module: `cached_attention` projects the
new query, scores it against keys and values computed earlier (the cache, or
the encoder memory projected once per sentence) with the registered score of
that kind, and projects the heads back, exactly as `MultiHeadAttention` does.
It relies on the module's documented parameter layout: DenseGeneral layers
'query', 'key', 'value' (kernel `[features, heads, head_dim]`) and 'out'
(kernel `[heads, head_dim, out_features]`), plus 'score' for kinds with
parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

import attn
from attn.masking import attention_weights
from attn.modules import Score

Array = Any


def sinusoidal_table(length: int, features: int) -> np.ndarray:
    """Vaswani et al.'s fixed positions, `[length, features]` float32.

    Even columns hold sin(p / 10000^(2i / features)), odd columns the cosine
    at the same frequency, so each position is a set of phases.
    """
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = np.exp(-np.log(10000.0) * np.arange(0, features, 2) / features)
    table = np.zeros((length, features), np.float64)
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: features // 2])
    return table.astype(np.float32)


def token_embedding(vocab_size: int, d_model: int, dtype, name: str) -> nn.Embed:
    """Embeddings at scale d_model^-1/2, to be multiplied by sqrt(d_model).

    Inputs are then of unit scale and, when the table is also the output
    projection, initial logits are too.
    """
    return nn.Embed(
        vocab_size,
        d_model,
        embedding_init=nn.initializers.normal(d_model**-0.5),
        dtype=dtype,
        name=name,
    )


def position_embedding(kind: str, max_length: int, d_model: int, dtype, name: str):
    """`positions [...] -> [..., d_model]` for `kind` learned or sinusoidal; None for relative."""
    if kind == "learned":
        return nn.Embed(
            max_length, d_model, embedding_init=nn.initializers.normal(0.02), dtype=dtype, name=name
        )
    if kind == "sinusoidal":
        table = jnp.asarray(sinusoidal_table(max_length, d_model), dtype)
        return lambda ids: table[ids]
    return None


def embed_tokens(embed, positions_of, tokens, positions, *, d_model: int, max_length: int, dtype):
    """tokens and positions `[batch, ...]` -> `[batch, ..., d_model]`, before dropout."""
    x = embed(tokens) * jnp.asarray(math.sqrt(d_model), dtype)
    if positions_of is not None:
        x = x + positions_of(jnp.minimum(positions, max_length - 1))
    return x


class RelativeBias(nn.Module):
    """A learned per-head logit bias for each clipped distance key - query.

    Distances beyond `max_distance` share the bias of the last bucket, so the
    table is `[2 * max_distance + 1, heads]` whatever the sentence lengths.
    """

    num_heads: int
    max_distance: int

    @nn.compact
    def __call__(self, query_positions: Array, key_positions: Array) -> Array:
        """query_positions `[..., q]`, key_positions `[..., k]` -> `[..., heads, q, k]`."""
        table = self.param(
            "table",
            nn.initializers.normal(0.02),
            (2 * self.max_distance + 1, self.num_heads),
            jnp.float32,
        )
        distance = key_positions[..., None, :] - query_positions[..., :, None]
        index = jnp.clip(distance, -self.max_distance, self.max_distance) + self.max_distance
        return jnp.moveaxis(table[index], -1, -3)


def _dense(params: Mapping[str, Array], axis, dtype) -> nn.DenseGeneral:
    """A detached DenseGeneral shaped like the one `params` belong to."""
    features = params["kernel"].shape[1:] if axis == -1 else params["kernel"].shape[2:]
    return nn.DenseGeneral(
        features=features, axis=axis, use_bias="bias" in params, dtype=dtype, parent=None
    )


def project_heads(params: Mapping[str, Array], inputs: Array, dtype) -> Array:
    """`[batch, length, features]` -> `[batch, length, heads, head_dim]` with the
    parameters of a MultiHeadAttention's 'query', 'key' or 'value' layer."""
    return _dense(params, -1, dtype).apply({"params": params}, inputs)


def cached_attention(
    params: Mapping[str, Any],
    kind: str,
    inputs_q: Array,
    keys: Array,
    values: Array,
    *,
    mask: Array,
    bias: Array | None = None,
    dtype=None,
    score_options: Mapping[str, Any] = FrozenDict(),
    dropout_rate: float = 0.0,
    dropout_rng: Array | None = None,
) -> tuple[Array, Array]:
    """MultiHeadAttention's computation with keys and values already projected.

    Args:
      params: the 'params' of an `attn.MultiHeadAttention` of kind `kind`.
      inputs_q: `[batch, q_len, features]`, projected here.
      keys, values: `[batch, k_len, heads, head_dim]` from `project_heads`.
      mask: boolean, broadcastable to `[batch, heads, q_len, k_len]`.
      bias: float, added to the logits, same shapes as `mask`.
      dropout_rng: given with a positive `dropout_rate`, drops attention weights.

    Returns:
      `(output [batch, q_len, out_features], weights [batch, heads, q_len, k_len])`.
    """
    query = project_heads(params["query"], inputs_q, dtype).transpose(0, 2, 1, 3)
    score = Score(kind, FrozenDict(score_options), parent=None)
    score_variables = {"params": params["score"]} if "score" in params else {}
    logits = score.apply(score_variables, query, keys.transpose(0, 2, 1, 3))
    weights = attention_weights(logits, mask=mask, bias=bias)
    dropped = weights
    if dropout_rate > 0 and dropout_rng is not None:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
        dropped = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
    context = jnp.einsum("bhqk,bkhd->bqhd", dropped.astype(values.dtype), values)
    output = _dense(params["out"], (-2, -1), dtype).apply({"params": params["out"]}, context)
    return output, weights


class _Sublayers(nn.Module):
    """What encoder and decoder layers share: residual wiring and the feed-forward."""

    d_model: int
    num_heads: int
    d_ff: int
    dropout_rate: float
    attention_dropout_rate: float
    attention: str
    pre_layer_norm: bool
    relative_distance: int  # 0: no relative bias
    dtype: Any

    def _attention(self, name: str) -> attn.MultiHeadAttention:
        return attn.MultiHeadAttention(
            num_heads=self.num_heads,
            kind=self.attention,
            dropout_rate=self.attention_dropout_rate,
            dtype=self.dtype,
            name=name,
        )

    def _setup_shared(self):
        self.relative_bias = (
            RelativeBias(self.num_heads, self.relative_distance, name="relative_bias")
            if self.relative_distance
            else None
        )
        self.ff_hidden = nn.Dense(self.d_ff, dtype=self.dtype, name="ff_hidden")
        self.ff_output = nn.Dense(self.d_model, dtype=self.dtype, name="ff_output")
        self.ff_norm = nn.LayerNorm(dtype=self.dtype, name="ff_norm")
        self.dropout = nn.Dropout(self.dropout_rate)

    def _residual(self, norm, sublayer, x, deterministic: bool):
        """Post-LN: norm(x + f(x)); pre-LN: x + f(norm(x)). Returns (x, f's extra output)."""
        inputs = norm(x) if self.pre_layer_norm else x
        y, extra = sublayer(inputs)
        x = x + self.dropout(y, deterministic=deterministic)
        return (x if self.pre_layer_norm else norm(x)), extra

    def _feed_forward(self, x, deterministic: bool):
        def sublayer(h):
            return self.ff_output(nn.relu(self.ff_hidden(h))), None

        return self._residual(self.ff_norm, sublayer, x, deterministic)[0]

    def _self_bias(self, length: int):
        """`[1, heads, length, length]` relative bias of full self-attention, or None."""
        if self.relative_bias is None:
            return None
        positions = jnp.arange(length)
        return self.relative_bias(positions, positions)[None]


class EncoderLayer(_Sublayers):
    """Self-attention then feed-forward, each with a residual and LayerNorm."""

    def setup(self):
        self.self_attention = self._attention("self_attention")
        self.attention_norm = nn.LayerNorm(dtype=self.dtype, name="attention_norm")
        self._setup_shared()

    def __call__(self, x, mask, *, deterministic: bool):
        """x `[batch, S, d_model]`, mask `[batch, 1, 1, S]` (True on real tokens).

        Returns (x, self-attention weights `[batch, heads, S, S]`).
        """
        bias = self._self_bias(x.shape[1])
        x, weights = self._residual(
            self.attention_norm,
            lambda h: self.self_attention(h, mask=mask, bias=bias, deterministic=deterministic),
            x,
            deterministic,
        )
        return self._feed_forward(x, deterministic), weights


class DecoderLayer(_Sublayers):
    """Causal self-attention, cross-attention over the encoder, feed-forward.

    With `with_cross_attention=False` the layer has no cross-attention (a
    decoder-only language model): `memory`, `memory_mask` and `cross` are then
    ignored (pass None) and the cross weights returned are None.
    """

    with_cross_attention: bool = True

    def setup(self):
        self.self_attention = self._attention("self_attention")
        self.self_norm = nn.LayerNorm(dtype=self.dtype, name="self_norm")
        if self.with_cross_attention:
            self.cross_attention = self._attention("cross_attention")
            self.cross_norm = nn.LayerNorm(dtype=self.dtype, name="cross_norm")
        self._setup_shared()

    def __call__(self, x, target_valid, memory, memory_mask, *, deterministic: bool):
        """Teacher-forced pass over the whole target.

        Args:
          x: `[batch, T, d_model]`.
          target_valid: `[batch, T]`, False on target padding (never attended).
          memory: encoder output `[batch, S, d_model]`.
          memory_mask: `[batch, S]`, True on real source tokens.

        Returns:
          (x, self weights `[batch, heads, T, T]`, cross weights `[batch, heads, T, S]`).
        """
        bias = self._self_bias(x.shape[1])
        x, self_weights = self._residual(
            self.self_norm,
            lambda h: self.self_attention(
                h,
                mask=target_valid[:, None, None, :],
                bias=bias,
                is_causal=True,
                deterministic=deterministic,
            ),
            x,
            deterministic,
        )
        cross_weights = None
        if self.with_cross_attention:
            x, cross_weights = self._residual(
                self.cross_norm,
                lambda h: self.cross_attention(
                    h, memory, mask=memory_mask[:, None, None, :], deterministic=deterministic
                ),
                x,
                deterministic,
            )
        return self._feed_forward(x, deterministic), self_weights, cross_weights

    def memory_keys_values(self, memory):
        """memory `[batch, S, d_model]` -> cross-attention (keys, values), each
        `[batch, S, heads, head_dim]`: projected once per sentence, not per step."""
        params = self.cross_attention.variables["params"]
        return (
            project_heads(params["key"], memory, self.dtype),
            project_heads(params["value"], memory, self.dtype),
        )

    def step(self, x, cache, slot, valid, position, cross, memory_mask, *, deterministic: bool):
        """One target position against the cache of earlier ones.

        Args:
          x: `[batch, 1, d_model]`, the current position's input to this layer.
          cache: (keys, values) of this layer's self-attention, each `[batch,
            max_length, heads, head_dim]`.
          slot: `[batch, max_length]`, True at the slot this position fills.
          valid: `[batch, max_length]`, True on filled, non-padding slots
            (the current one included).
          position: `[batch]` int, the current position.
          cross: memory (keys, values) from `memory_keys_values`; None without
            cross-attention.
          memory_mask: `[batch, S]`; None without cross-attention.

        Returns:
          (x `[batch, 1, d_model]`, new cache, cross weights `[batch, heads, 1, S]`
          or None).
        """
        rate = self.attention_dropout_rate
        needs_rng = rate > 0 and not deterministic
        rng = (lambda: self.make_rng("dropout")) if needs_rng else (lambda: None)
        self_params = self.self_attention.variables["params"]
        new_cache = []

        def self_sublayer(h):
            # The new key and value go into this position's slot; the slots not
            # yet filled are masked out by `valid`.
            for name, stored in zip(("key", "value"), cache):
                fresh = project_heads(self_params[name], h, self.dtype)
                new_cache.append(jnp.where(slot[:, :, None, None], fresh, stored))
            bias = None
            if self.relative_bias is not None:
                key_positions = jnp.arange(slot.shape[1])[None]
                bias = self.relative_bias(position[:, None], key_positions)
            return cached_attention(
                self_params,
                self.attention,
                h,
                *new_cache,
                mask=valid[:, None, None, :],
                bias=bias,
                dtype=self.dtype,
                dropout_rate=rate,
                dropout_rng=rng(),
            )

        def cross_sublayer(h):
            return cached_attention(
                self.cross_attention.variables["params"],
                self.attention,
                h,
                *cross,
                mask=memory_mask[:, None, None, :],
                dtype=self.dtype,
                dropout_rate=rate,
                dropout_rng=rng(),
            )

        x, _ = self._residual(self.self_norm, self_sublayer, x, deterministic)
        cross_weights = None
        if self.with_cross_attention:
            x, cross_weights = self._residual(self.cross_norm, cross_sublayer, x, deterministic)
        return self._feed_forward(x, deterministic), tuple(new_cache), cross_weights
