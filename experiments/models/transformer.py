"""Encoder-decoder Transformer (Vaswani et al. 2017) with any attention kind.

It has the interface of `experiments.models.rnn.Seq2Seq`, so the same
training loop, greedy and beam decoding and evaluation drive it:

- `__call__(source, target_input)` -> (logits `[batch, T, vocab]`, the last
  decoder layer's cross-attention weights averaged over heads `[batch, T, S]`);
- `encode(source)` -> (memory, carry) and `decode_step(carry, token, memory)`
  -> (carry, (logits `[batch, vocab]`, weights `[batch, S]`)).

Every self- and cross-attention is an `attn.MultiHeadAttention` of the kind
named by `attention`. Decoding keeps each decoder layer's self-attention keys
and values in a fixed-size cache (`max_length` slots), and projects the encoder
memory into cross-attention keys and values once per sentence, so a step costs
O(max_length) rather than re-running the whole prefix. Every carry and memory
leaf has the batch as its leading axis, as beam search requires.

Positions: "sinusoidal" (fixed, added to the embeddings), "learned" (an
embedding per position and side), or inside self-attention, with no absolute
positions: "relative" (each self-attention layer learns a per-head bias on
the logits for every clipped distance key - query), "rope" (rotary
embeddings of queries and keys), "alibi" (fixed linear biases) or "t5"
(T5's learned bias per log-spaced distance bucket), the last three from
`attn.MultiHeadAttention`. Cross-attention gets none of the last four,
source and target positions not being comparable.

Decoding more than `max_length` steps is not supported: the cache is full and
later steps return NaN logits rather than silently wrong ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax.core import FrozenDict

import attn
from experiments.models.from_config import construct
from experiments.models.transformer_layers import (
    DecoderLayer,
    EncoderLayer,
    embed_tokens,
    position_embedding,
    token_embedding,
)
from experiments.text.token_ids import PAD_ID as PAD

POSITIONS = ("alibi", "learned", "relative", "rope", "sinusoidal", "t5")
TABLES = ("learned", "sinusoidal")  # absolute positions, up to max_length
# attn.MultiHeadAttention's rotary / alibi / relative_buckets
INSIDE_ATTENTION = ("alibi", "rope", "t5")
BIASED = ("alibi", "relative", "t5")  # positions that add to the logits: kinds that take a bias

# The attention kind is the variant under comparison, so the config sets it
# (model.attention), not the preset. Embeddings are not shared by default:
# separate source and target vocabularies rarely have the same size.
TRANSFORMER_PRESETS = {
    # The paper's base model (post-LayerNorm, sinusoidal positions).
    "base": dict(
        d_model=512,
        num_heads=8,
        num_encoder_layers=6,
        num_decoder_layers=6,
        d_ff=2048,
        dropout_rate=0.1,
        attention_dropout_rate=0.0,
        pre_layer_norm=False,
        positions="sinusoidal",
        share_embeddings=False,
        tie_output_embedding=False,
        word_dropout_rate=0.0,
        max_length=256,
    ),
    # Trains on a 2-core CPU; pre-LayerNorm is forgiving of short warmups.
    "tiny": dict(
        d_model=64,
        num_heads=4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        d_ff=256,
        dropout_rate=0.1,
        attention_dropout_rate=0.0,
        pre_layer_norm=True,
        positions="sinusoidal",
        share_embeddings=False,
        tie_output_embedding=False,
        word_dropout_rate=0.0,
        max_length=256,
    ),
}


def validate(model: Transformer) -> None:
    """Raises a one-line ValueError naming the bad value and the valid ones."""
    for name in (
        "d_model",
        "num_heads",
        "num_encoder_layers",
        "num_decoder_layers",
        "d_ff",
        "max_length",
        "max_relative_distance",
    ):
        value = getattr(model, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    d_model, num_heads = model.d_model, model.num_heads
    if d_model % num_heads:
        divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(
            f"d_model={d_model} is not divisible by num_heads={num_heads}; "
            f"valid num_heads for d_model={d_model}: {divisors}."
        )
    if model.positions not in POSITIONS:
        raise ValueError(f"unknown positions {model.positions!r}; valid: {', '.join(POSITIONS)}.")
    if model.attention not in attn.available():
        raise ValueError(
            f"unknown attention kind {model.attention!r}; valid: {', '.join(attn.available())}."
        )
    if model.share_embeddings and model.source_vocab_size != model.target_vocab_size:
        raise ValueError(
            f"share_embeddings needs equal vocabularies, got source_vocab_size="
            f"{model.source_vocab_size} and target_vocab_size={model.target_vocab_size}; "
            f"use share_embeddings=False or one vocabulary for both sides."
        )


class Transformer(nn.Module):
    """Encoder-decoder Transformer; see the module docstring."""

    source_vocab_size: int
    target_vocab_size: int
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0
    attention: str = "scaled_dot"
    pre_layer_norm: bool = False
    positions: str = "sinusoidal"
    share_embeddings: bool = False
    # The output projection is the target embedding's transpose (Press & Wolf
    # 2017); implied by share_embeddings. Fewer parameters to fit on small corpora.
    tie_output_embedding: bool = False
    # In training, each input token's embedding (source and target) is dropped
    # whole with this probability, its position kept (Gal & Ghahramani 2016's
    # word dropout, which Sennrich & Zhang 2019 found to help low-resource NMT).
    word_dropout_rate: float = 0.0
    max_length: int = 256
    max_relative_distance: int = 16  # positions="relative": distances clipped to this
    dtype: Any = jnp.float32  # computation; parameters stay float32
    attention_options: Any = ()  # (name, value) pairs of the kind's options
    implementation: str = "xla"  # how every attention layer runs (attn.implementations)
    num_kv_heads: int | None = None  # key/value heads; None: one per head

    def setup(self):
        validate(self)
        embed = lambda vocab, name: token_embedding(vocab, self.d_model, self.dtype, name)
        if self.share_embeddings:
            self.shared_embed = embed(self.source_vocab_size, "shared_embed")
            self.source_embed = self.target_embed = self.shared_embed
            self.output = self.shared_embed.attend
        else:
            self.source_embed = embed(self.source_vocab_size, "source_embed")
            self.target_embed = embed(self.target_vocab_size, "target_embed")
            if self.tie_output_embedding:
                self.output = self.target_embed.attend
            else:
                self.output = nn.Dense(self.target_vocab_size, dtype=self.dtype, name="logits")
        positions = lambda name: position_embedding(
            self.positions, self.max_length, self.d_model, self.dtype, name
        )
        if self.positions == "learned":
            self.source_positions = positions("source_positions")
            self.target_positions = positions("target_positions")
        else:  # nothing to learn: both sides share the table (or have none)
            self.source_positions = self.target_positions = positions(None)
        layer_options = dict(
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
        )
        self.encoder_layers = [
            EncoderLayer(**layer_options, name=f"encoder_{i}")
            for i in range(self.num_encoder_layers)
        ]
        self.decoder_layers = [
            DecoderLayer(**layer_options, name=f"decoder_{i}")
            for i in range(self.num_decoder_layers)
        ]
        # Pre-LN leaves the residual stream unnormalised: one LayerNorm closes each stack.
        if self.pre_layer_norm:
            self.encoder_norm = nn.LayerNorm(dtype=self.dtype, name="encoder_norm")
            self.decoder_norm = nn.LayerNorm(dtype=self.dtype, name="decoder_norm")
        self.dropout = nn.Dropout(self.dropout_rate)
        # One draw per token, shared by its d_model features.
        self.word_dropout = nn.Dropout(self.word_dropout_rate, broadcast_dims=(-1,))

    # -- embeddings ---------------------------------------------------------------

    def _embed(self, embed, positions_of, tokens, positions, deterministic: bool = True):
        """tokens and positions `[batch, ...]` -> `[batch, ..., d_model]`, before dropout."""
        if self.word_dropout_rate and not deterministic:
            table = embed
            embed = lambda ids: self.word_dropout(table(ids), deterministic=False)
        return embed_tokens(
            embed,
            positions_of,
            tokens,
            positions,
            d_model=self.d_model,
            max_length=self.max_length,
            dtype=self.dtype,
        )

    def _check_length(self, name: str, length: int) -> None:
        if self.positions in TABLES and length > self.max_length:
            raise ValueError(
                f"{name} length {length} exceeds max_length={self.max_length} "
                f"(positions={self.positions!r}); raise max_length."
            )

    # -- teacher-forced pass ------------------------------------------------------

    def _encode_states(self, source, deterministic: bool):
        """source `[batch, S]` -> (states `[batch, S, d_model]`, mask `[batch, S]`,
        self-attention weights `[batch, layers, heads, S, S]`)."""
        self._check_length("source", source.shape[1])
        mask = source != PAD
        positions = jnp.arange(source.shape[1])[None]
        x = self._embed(self.source_embed, self.source_positions, source, positions, deterministic)
        x = self.dropout(x, deterministic=deterministic)
        weights = []
        for layer in self.encoder_layers:
            x, layer_weights = layer(x, mask[:, None, None, :], deterministic=deterministic)
            weights.append(layer_weights)
        if self.pre_layer_norm:
            x = self.encoder_norm(x)
        return x, mask, _stack_layers(weights)

    def forward(self, source, target_input, *, target_offset=None, deterministic: bool = True):
        """Teacher-forced pass returning every attention map.

        Args:
          source: `[batch, S]` ids, PAD=0 after EOS.
          target_input: `[batch, T]` ids, BOS first, PAD=0 after.
          target_offset: optional float `[batch, T, d_model]` added to the
            embedded target (token and position), e.g. to differentiate the
            outputs with respect to each input position.

        Returns:
          dict of "logits" `[batch, T, target_vocab]`, "cross" `[batch,
          decoder layers, heads, T, S]`, "decoder_self" `[batch, decoder layers,
          heads, T, T]` and "encoder_self" `[batch, encoder layers, heads, S, S]`.
        """
        memory, memory_mask, encoder_self = self._encode_states(source, deterministic)
        self._check_length("target", target_input.shape[1])
        positions = jnp.arange(target_input.shape[1])[None]
        x = self._embed(
            self.target_embed, self.target_positions, target_input, positions, deterministic
        )
        if target_offset is not None:
            x = x + target_offset.astype(x.dtype)
        x = self.dropout(x, deterministic=deterministic)
        target_valid = target_input != PAD
        self_weights, cross_weights = [], []
        for layer in self.decoder_layers:
            x, layer_self, layer_cross = layer(
                x, target_valid, memory, memory_mask, deterministic=deterministic
            )
            self_weights.append(layer_self)
            cross_weights.append(layer_cross)
        if self.pre_layer_norm:
            x = self.decoder_norm(x)
        return {
            "logits": self.output(x),
            "cross": _stack_layers(cross_weights),
            "decoder_self": _stack_layers(self_weights),
            "encoder_self": encoder_self,
        }

    def __call__(self, source, target_input, *, deterministic: bool = True):
        """source `[batch, S]`, target_input `[batch, T]` -> (logits `[batch, T,
        target_vocab]`, last layer's cross-attention averaged over heads `[batch, T, S]`)."""
        outputs = self.forward(source, target_input, deterministic=deterministic)
        cross = outputs["cross"]
        return outputs["logits"], None if cross is None else cross[:, -1].mean(axis=1)

    def attention_maps(self, source, target_input):
        """Cross-attention weights of every decoder layer and head,
        `[batch, layers, heads, T, S]` (deterministic)."""
        return self.forward(source, target_input)["cross"]

    def attention_rollout(self, source, target_input, *, through_encoder: bool = True):
        """Attention rollout (Abnar & Zuidema 2020) from each target position.

        Heads are averaged and each residual sublayer counts half, as in the
        paper: a decoder self-attention sublayer mixes the target positions'
        attributions by 0.5 A + 0.5 I, and a cross-attention sublayer keeps half
        of each row and moves the other half onto the source through the
        cross-attention weights. With `through_encoder`, the source part is then
        carried back through the encoder's self-attention rollout, from encoder
        outputs to source tokens.

        Returns:
          (to_source `[batch, T, S]`, to_target `[batch, T, T]`): how much of
          the last decoder layer's output at each target position traces back
          to each source token and each (earlier) target input. Rows of the two
          together sum to 1 where the source has a real token.
        """
        outputs = self.forward(source, target_input)
        decoder_self = outputs["decoder_self"].mean(axis=2)
        cross = outputs["cross"].mean(axis=2)
        batch, _, length, source_length = cross.shape
        eye = jnp.broadcast_to(jnp.eye(length, dtype=cross.dtype), (batch, length, length))
        to_target, to_source = eye, jnp.zeros_like(cross[:, 0])
        for layer in range(decoder_self.shape[1]):
            mix = 0.5 * decoder_self[:, layer] + 0.5 * eye
            to_target, to_source = mix @ to_target, mix @ to_source
            to_target, to_source = 0.5 * to_target, 0.5 * to_source + 0.5 * cross[:, layer]
        if through_encoder:
            encoder_self = outputs["encoder_self"].mean(axis=2)
            source_eye = jnp.eye(source_length, dtype=cross.dtype)
            rollout = jnp.broadcast_to(source_eye, (batch, source_length, source_length))
            for layer in range(encoder_self.shape[1]):
                rollout = (0.5 * encoder_self[:, layer] + 0.5 * source_eye) @ rollout
            to_source = to_source @ rollout
        return to_source, to_target

    # -- autoregressive decoding --------------------------------------------------

    def encode(self, source, *, deterministic: bool = True):
        """source `[batch, S]` -> (memory, carry) for `decode_step`.

        Call with the 'cache' collection mutable: each decoder layer's
        attention cache is created here (`DecoderLayer.start_decoding`), with
        the cross-attention keys and values of the encoder output projected
        once per sentence. memory: "states" `[batch, S, d_model]` and "mask"
        `[batch, S]`. carry: "position" `[batch]` and "valid" `[batch,
        max_length]` (filled, non-PAD slots). Parameters must already exist
        (initialise through `__call__`).
        """
        states, mask, _ = self._encode_states(source, deterministic)
        batch = source.shape[0]
        placeholder = jnp.zeros((batch, self.max_length, self.d_model), self.dtype)
        for layer in self.decoder_layers:
            layer.start_decoding(placeholder, states, mask)
        memory = {"states": states, "mask": mask}
        carry = {
            "position": jnp.zeros((batch,), jnp.int32),
            "valid": jnp.zeros((batch, self.max_length), bool),
        }
        return memory, carry

    def decode_step(self, carry, token, memory, *, deterministic: bool = True):
        """Feeds `token` `[batch]` at the carry's position (the 'cache'
        collection mutable, as `encode` left it).

        Returns (carry, (logits `[batch, target_vocab]`, last layer's
        cross-attention averaged over heads `[batch, S]`)); the logits equal
        the teacher-forced ones at that position.
        """
        position = carry["position"]
        slot = jnp.arange(self.max_length)[None, :] == position[:, None]
        valid = carry["valid"] | (slot & (token != PAD)[:, None])
        x = self._embed(self.target_embed, self.target_positions, token[:, None], position[:, None])
        x = self.dropout(x, deterministic=deterministic)
        for layer in self.decoder_layers:
            x, cross_weights = layer.step(
                x, valid, position, memory["states"], memory["mask"], deterministic=deterministic
            )
        if self.pre_layer_norm:
            x = self.decoder_norm(x)
        logits = self.output(x[:, 0])
        logits = jnp.where((position < self.max_length)[:, None], logits, jnp.nan)
        new_carry = {"position": position + 1, "valid": valid}
        if cross_weights is None:  # kinds that never form weights
            cross_weights = jnp.zeros((token.shape[0], 1, 1, memory["mask"].shape[1]))
        return new_carry, (logits, cross_weights[:, :, 0].mean(axis=1))


def _stack_layers(weights):
    """Per-layer weights `[batch, heads, q, k]` -> `[batch, layers, heads, q, k]`;
    None where the implementation that ran formed none."""
    if any(w is None for w in weights):
        return None
    return jnp.stack(weights, axis=1)


def count_layers(params: Mapping[str, Any]) -> dict[str, int]:
    """{"encoder": n, "decoder": m}: the layers a Transformer's parameters (or
    any tree with the same top-level names, e.g. checkpoint metadata) hold."""
    counts = {"encoder": 0, "decoder": 0}
    for name in params:
        match = re.fullmatch(r"(encoder|decoder)_(\d+)", name)
        if match:
            counts[match[1]] = max(counts[match[1]], int(match[2]) + 1)
    return counts


def build_transformer(
    model_config, source_vocab_size: int, target_vocab_size: int, dtype=jnp.float32
) -> Transformer:
    """`Transformer(**model_config)`: `config.model.transformer` with the attention
    fields of `config.model` (attention_options, implementation, num_kv_heads).

    Every field of the section is a field of the Transformer; max_relative_distance
    and the attention fields may be left to its defaults. Unknown or missing
    fields and bad values raise a one-line ValueError, before anything is traced.
    """
    model = construct(
        Transformer,
        model_config,
        section_name="model.transformer",
        optional=(
            "max_relative_distance",
            "attention_options",
            "implementation",
            "num_kv_heads",
            "tie_output_embedding",  # runs saved before these existed
            "word_dropout_rate",
        ),
        source_vocab_size=source_vocab_size,
        target_vocab_size=target_vocab_size,
        dtype=dtype,
    )
    validate(model)
    return model


__all__ = [
    "INSIDE_ATTENTION",
    "BIASED",
    "POSITIONS",
    "TABLES",
    "TRANSFORMER_PRESETS",
    "Transformer",
    "build_transformer",
    "count_layers",
    "validate",
]
