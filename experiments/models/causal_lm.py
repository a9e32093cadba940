"""Decoder-only causal Transformer language model with any attention kind.

The layers are the translation Transformer's `DecoderLayer`s without
cross-attention: causal self-attention (an `attn.MultiHeadAttention` of the
kind named by `attention`) and a feed-forward, each with a residual and
LayerNorm. Padding tokens (PAD=0) are never attended to.

- `__call__(tokens)` -> logits `[batch, length, vocab]`, the logits at
  position t predicting token t + 1 from tokens 0..t only;
- `init_cache(batch)` and `decode_step(carry, token)` -> (carry, logits
  `[batch, vocab]`): the same logits one position at a time, with each layer's
  keys and values kept in a `max_length`-slot cache.

Positions are "sinusoidal", "learned", "relative" (a learned per-head bias
on the self-attention logits for each clipped distance), "rope", "alibi" or "t5",
as in experiments/models/transformer.py. With `tie_embeddings` the token
embedding table is also the output projection.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

import attn
from experiments.models.from_config import construct
from experiments.models.transformer import INSIDE_ATTENTION, POSITIONS, TABLES
from experiments.models.transformer_layers import (
    DecoderLayer,
    embed_tokens,
    position_embedding,
    token_embedding,
)
from experiments.text.token_ids import PAD_ID

# The fields of the config's `model` section the model is built from.


def check_sizes(model_config) -> None:
    """Raises a one-line ValueError naming a bad model value and the valid ones."""
    for name in ("d_model", "num_heads", "num_layers", "d_ff", "max_length"):
        value = model_config[name]
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
    d_model, num_heads = model_config["d_model"], model_config["num_heads"]
    if d_model % num_heads:
        divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(
            f"model.d_model={d_model} is not divisible by model.num_heads={num_heads}; "
            f"valid num_heads for d_model={d_model}: {divisors}"
        )
    if model_config["attention"] not in attn.available():
        raise ValueError(
            f"unknown attention kind model.attention={model_config['attention']!r}; "
            f"valid: {', '.join(attn.available())}"
        )
    if model_config["positions"] not in POSITIONS:
        raise ValueError(
            f"unknown model.positions={model_config['positions']!r}; valid: {', '.join(POSITIONS)}"
        )


class CausalLM(nn.Module):
    """Decoder-only Transformer language model; see the module docstring."""

    vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    attention: str = "scaled_dot"
    pre_layer_norm: bool = True
    positions: str = "sinusoidal"
    tie_embeddings: bool = True
    max_length: int = 64
    max_relative_distance: int = 16
    attention_options: Any = ()  # (name, value) pairs of the kind's options
    implementation: str = "xla"  # how every attention layer runs (attn.implementations)
    num_kv_heads: int | None = None  # key/value heads; None: one per head
    dtype: Any = jnp.float32  # computation; parameters stay float32

    def setup(self):
        self.embed = token_embedding(self.vocab_size, self.d_model, self.dtype, "embed")
        self.output = (
            self.embed.attend
            if self.tie_embeddings
            else nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")
        )
        self.position_embed = position_embedding(
            self.positions, self.max_length, self.d_model, self.dtype, "position_embed"
        )
        self.layers = [
            DecoderLayer(
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
                with_cross_attention=False,
                attention_options=FrozenDict(self.attention_options),
                implementation=self.implementation,
                num_kv_heads=self.num_kv_heads,
                name=f"layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        # Pre-LN leaves the residual stream unnormalised: one LayerNorm closes the stack.
        self.final_norm = nn.LayerNorm(dtype=self.dtype) if self.pre_layer_norm else None
        self.dropout = nn.Dropout(self.dropout_rate)

    def _embed(self, tokens, positions):
        """tokens and positions `[batch, length]` -> `[batch, length, d_model]`."""
        return embed_tokens(
            self.embed,
            self.position_embed,
            tokens,
            positions,
            d_model=self.d_model,
            max_length=self.max_length,
            dtype=self.dtype,
        )

    def _logits(self, x):
        if self.final_norm is not None:
            x = self.final_norm(x)
        return self.output(x)

    def __call__(self, tokens, *, deterministic: bool = True, embedding_offset=None):
        """Teacher-forced pass.

        Args:
          tokens: `[batch, length]` ids, BOS first, PAD=0 on padding.
          embedding_offset: optional float `[batch, length, d_model]` added to
            the embedded tokens, e.g. to differentiate the logits with respect
            to each input position.

        Returns:
          logits `[batch, length, vocab]`.
        """
        length = tokens.shape[1]
        if self.positions in TABLES and length > self.max_length:
            raise ValueError(
                f"sequence length {length} exceeds model.max_length={self.max_length}; "
                f"raise model.max_length"
            )
        x = self._embed(tokens, jnp.arange(length)[None])
        if embedding_offset is not None:
            x = x + embedding_offset.astype(x.dtype)
        x = self.dropout(x, deterministic=deterministic)
        valid = tokens != PAD_ID
        for layer in self.layers:
            x, _, _ = layer(x, valid, None, None, deterministic=deterministic)
        return self._logits(x)

    def init_cache(self, batch: int) -> dict[str, Any]:
        """An empty decoding carry: "position" `[batch]` and "valid" `[batch,
        max_length]` (filled, non-PAD slots). Call with the 'cache' collection
        mutable: each layer's attention cache (keys and values `[batch,
        max_length, heads, head_dim]`) is created there."""
        placeholder = jnp.zeros((batch, self.max_length, self.d_model), self.dtype)
        for layer in self.layers:
            layer.start_decoding(placeholder)
        return {
            "position": jnp.zeros((batch,), jnp.int32),
            "valid": jnp.zeros((batch, self.max_length), bool),
        }

    def decode_step(self, carry, token, *, deterministic: bool = True):
        """Feeds `token` `[batch]` at the carry's position (the 'cache'
        collection mutable, as `init_cache` left it).

        Returns (carry, logits `[batch, vocab]`), the logits equal to the
        teacher-forced ones at that position; NaN once the cache is full.
        """
        position = carry["position"]
        slot = jnp.arange(self.max_length)[None, :] == position[:, None]
        valid = carry["valid"] | (slot & (token != PAD_ID)[:, None])
        x = self._embed(token[:, None], position[:, None])
        x = self.dropout(x, deterministic=deterministic)
        for layer in self.layers:
            x, _ = layer.step(x, valid, position, None, None, deterministic=deterministic)
        logits = self._logits(x[:, 0])
        logits = jnp.where((position < self.max_length)[:, None], logits, jnp.nan)
        return {"position": position + 1, "valid": valid}, logits


def build_model(model_config, vocab_size: int, dtype=jnp.float32) -> CausalLM:
    """`CausalLM(**config.model)`: every field of the section is a field of the model.

    Raises:
      ValueError: an unknown or missing field, or a bad value, in one line,
        before anything is traced.
    """
    values = dict(model_config)
    if "attention_options" in values:  # unset options (None) keep the kind's defaults
        given = dict(values["attention_options"] or {})
        values["attention_options"] = tuple(
            sorted((k, v) for k, v in given.items() if v is not None)
        )
    if "num_kv_heads" in values:
        values["num_kv_heads"] = values["num_kv_heads"] or None  # 0: one per head
    model = construct(CausalLM, values, section_name="model", vocab_size=vocab_size, dtype=dtype)
    check_sizes(model_config)
    return model


__all__ = ["CausalLM", "build_model", "check_sizes"]
