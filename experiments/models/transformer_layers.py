"""Layers of the Transformer, and their cached single-step forms.

Every self- and cross-attention is an `attn.MultiHeadAttention`, so any
registered kind, its options and any implementation work in it. Decoding goes
through the same modules with `decode=True`: the library keeps each layer's
self-attention keys and values in the 'cache' collection, and the
cross-attention keys and values of the encoder memory, projected once per
sentence (`DecoderLayer.start_decoding`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

import attn

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
    """`positions [...] -> [..., d_model]` for `kind` learned or sinusoidal; None for the
    kinds that put positions inside attention (relative, rope, alibi)."""
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


T5_BUCKETS = 32  # T5's relative-position buckets (up to its default distance, 128)


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
    attention_options: Mapping[str, Any] = FrozenDict()
    implementation: str = "xla"
    num_kv_heads: int | None = None
    attention_positions: str = ""  # "rope", "alibi" or "t5": positions inside self-attention

    def _attention(self, name: str) -> attn.MultiHeadAttention:
        inside = self.attention_positions if name == "self_attention" else ""
        return attn.MultiHeadAttention(
            num_heads=self.num_heads,
            kind=self.attention,
            options=FrozenDict(self.attention_options),
            num_kv_heads=self.num_kv_heads,
            implementation=self.implementation,
            dropout_rate=self.attention_dropout_rate,
            dtype=self.dtype,
            rotary=inside == "rope",
            alibi=inside == "alibi",
            relative_buckets=T5_BUCKETS if inside == "t5" else 0,
            name=name,
        )

    def _setup_shared(self):
        self.relative_bias = (
            # one bias per clipped distance, per layer
            attn.positions.RelativePositionBias(
                self.num_heads, self.relative_distance, num_buckets=None, name="relative_bias"
            )
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

    def start_decoding(self, placeholder, memory=None, memory_mask=None):
        """Creates this layer's decoding cache (call with the 'cache' collection mutable).

        Args:
          placeholder: `[batch, max_length, d_model]`; its length sets the
            self-attention cache's (its values are not kept).
          memory: encoder output `[batch, S, d_model]`, whose cross-attention
            keys and values are projected here, once per sentence; None
            without cross-attention.
          memory_mask: `[batch, S]`, True on real source tokens.
        """
        # Deterministic: no weights are formed here, and a layer with attention
        # dropout needs the flag given.
        self.self_attention(placeholder, is_causal=True, decode=True, deterministic=True)
        if self.with_cross_attention:
            self.cross_attention(
                placeholder[:, :1],
                memory,
                mask=memory_mask[:, None, None, :],
                decode=True,
                deterministic=True,
            )

    def step(self, x, valid, position, memory, memory_mask, *, deterministic: bool):
        """One target position against the cache of earlier ones.

        Args:
          x: `[batch, 1, d_model]`, the current position's input to this layer.
          valid: `[batch, max_length]`, True on filled, non-padding slots
            (the current one included).
          position: `[batch]` int, the current position.
          memory: encoder output `[batch, S, d_model]` (its keys and values
            come from the cache); None without cross-attention.
          memory_mask: `[batch, S]`; None without cross-attention.

        Returns:
          (x `[batch, 1, d_model]`, cross weights `[batch, heads, 1, S]` or None).
        """
        bias = None
        if self.relative_bias is not None:
            key_positions = jnp.arange(valid.shape[1])[None]
            bias = self.relative_bias(position[:, None], key_positions)

        def self_sublayer(h):
            return self.self_attention(
                h, mask=valid[:, None, None, :], bias=bias, decode=True, deterministic=deterministic
            )

        def cross_sublayer(h):
            return self.cross_attention(
                h,
                memory,
                mask=memory_mask[:, None, None, :],
                decode=True,
                deterministic=deterministic,
            )

        x, _ = self._residual(self.self_norm, self_sublayer, x, deterministic)
        cross_weights = None
        if self.with_cross_attention:
            x, cross_weights = self._residual(self.cross_norm, cross_sublayer, x, deterministic)
        return self._feed_forward(x, deterministic), cross_weights
