"""An encoder classifier over token sequences, from the shared Transformer layers.

Long Range Arena's classifier (Tay et al. 2021): token embeddings and
positions, `num_layers` encoder layers (self-attention of any registered
kind, then feed-forward), the valid positions mean-pooled (or the first
position's vector, `pooling="first"`, or each feature's maximum over them,
`pooling="max"`), then a hidden layer and the class
logits. Given a second sequence (LRA's Retrieval), both go through the same
encoder (a dual encoder with shared weights) and the head reads
[u, v, u * v, u - v] of their pooled vectors u and v. The encoder layers are `transformer_layers.EncoderLayer`, the
translation Transformer's own, so every kind, option, implementation,
key/value head count and position scheme reaches it from the config.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

from experiments.models import causal_lm
from experiments.models.pooling import max_over_positions
from experiments.models.transformer import INSIDE_ATTENTION, TABLES
from experiments.models.transformer_layers import (
    EncoderLayer,
    embed_tokens,
    position_embedding,
    token_embedding,
)

POOLINGS = ("mean", "first", "max")


def check_sizes(model_config) -> None:
    """Raises a one-line ValueError naming a bad model value and the valid ones:
    the decoder stack's checks (`causal_lm.check_sizes`), then the pooling."""
    causal_lm.check_sizes(model_config)
    if model_config.get("pooling", "mean") not in POOLINGS:
        raise ValueError(
            f"unknown model.pooling={model_config.get('pooling')!r}; valid: {', '.join(POOLINGS)}"
        )


class SequenceClassifier(nn.Module):
    """tokens `[batch, length]` (0 = padding), and optionally a second sequence
    `[batch, length2]` to match against -> class logits `[batch, num_classes]`."""

    vocab_size: int
    num_classes: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 128
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0
    attention: str = "scaled_dot"
    pre_layer_norm: bool = True
    positions: str = "sinusoidal"
    max_length: int = 2048
    max_relative_distance: int = 16
    pooling: str = "mean"
    attention_options: Any = ()  # (name, value) pairs of the kind's options
    implementation: str = "xla"
    num_kv_heads: int | None = None
    dtype: Any = jnp.float32

    def setup(self):
        self.embed = token_embedding(self.vocab_size, self.d_model, self.dtype, "embed")
        self.position_embed = position_embedding(
            self.positions, self.max_length, self.d_model, self.dtype, "position_embed"
        )
        self.layers = [
            EncoderLayer(
                d_model=self.d_model,
                num_heads=self.num_heads,
                d_ff=self.d_ff,
                dropout_rate=self.dropout_rate,
                attention_dropout_rate=self.attention_dropout_rate,
                attention=self.attention,
                pre_layer_norm=self.pre_layer_norm,
                relative_distance=self.max_relative_distance if self.positions == "relative" else 0,
                attention_positions=self.positions if self.positions in INSIDE_ATTENTION else "",
                dtype=self.dtype,
                attention_options=FrozenDict(self.attention_options),
                implementation=self.implementation,
                num_kv_heads=self.num_kv_heads,
                name=f"layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = nn.LayerNorm(dtype=self.dtype) if self.pre_layer_norm else None
        self.hidden = nn.Dense(self.d_model, dtype=self.dtype, name="hidden")
        self.classes = nn.Dense(self.num_classes, dtype=self.dtype, name="classes")
        self.dropout = nn.Dropout(self.dropout_rate)

    def __call__(self, tokens, second=None, *, deterministic: bool = True):
        pooled = self.encode(tokens, deterministic=deterministic)
        if second is not None:
            other = self.encode(second, deterministic=deterministic)
            pooled = jnp.concatenate([pooled, other, pooled * other, pooled - other], -1)
        hidden = nn.gelu(self.hidden(pooled))
        return self.classes(self.dropout(hidden, deterministic=deterministic))

    def encode(self, tokens, *, deterministic: bool = True):
        """tokens `[batch, length]` -> the pooled encoder output `[batch, d_model]`."""
        length = tokens.shape[1]
        if self.positions in TABLES and length > self.max_length:
            raise ValueError(
                f"sequence length {length} exceeds model.max_length={self.max_length}; "
                f"raise model.max_length"
            )
        valid = tokens != 0
        x = embed_tokens(
            self.embed,
            self.position_embed,
            tokens,
            jnp.arange(length)[None],
            d_model=self.d_model,
            max_length=self.max_length,
            dtype=self.dtype,
        )
        x = self.dropout(x, deterministic=deterministic)
        mask = valid[:, None, None, :]
        for layer in self.layers:
            x, _ = layer(x, mask, deterministic=deterministic)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if self.pooling == "first":
            return x[:, 0]
        if self.pooling == "max":  # each feature's largest value over the valid positions
            return max_over_positions(x, valid)
        weights = valid[..., None].astype(x.dtype)
        return (x * weights).sum(1) / jnp.maximum(weights.sum(1), 1)


__all__ = ["POOLINGS", "SequenceClassifier", "check_sizes"]
