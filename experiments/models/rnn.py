"""RNN encoder-decoder with an attention unit between them.

The encoder reads the source into hidden vectors H `[batch, source_len,
encoder_features]`. At each target step the decoder (two recurrent layers)
updates its state s from the previous word (and, with input feeding, the
previous attentional vector), the attention unit scores every encoder state
against s, takes the context c = H w, and the next word is predicted from
tanh(W [s; c]) (Luong et al. 2015's attentional hidden state).

`attention="none"` is the control: a plain encoder-decoder whose context is
the final encoder state at every step.
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import attn
from experiments.text.token_ids import PAD_ID as PAD

NO_ATTENTION = "none"
MULTI_HEAD = "multihead"


def attention_variants() -> list[str]:
    """Every value `attention` accepts: the registered kinds that return weights
    and take keys from another sequence (the decoder reads its weights every
    step, for the pictures and the alignment metrics), multihead and none."""
    return sorted(attn.available("weights", "cross") + [MULTI_HEAD, NO_ATTENTION])


def _cell(kind: str, features: int, name: str, dtype=jnp.float32) -> nn.RNNCellBase:
    cells = {"gru": nn.GRUCell, "lstm": nn.LSTMCell}
    if kind not in cells:
        raise ValueError(f"Unknown RNN cell {kind!r}; valid cells: {sorted(cells)}.")
    return cells[kind](features=features, dtype=dtype, name=name)


def _hidden(cell_kind: str, carry):
    """The output half of a cell's carry (LSTM carries (c, h))."""
    return carry[1] if cell_kind == "lstm" else carry


class Encoder(nn.Module):
    """Embedding + (bi)directional RNN over the source."""

    vocab_size: int
    embedding_size: int
    hidden_size: int
    cell: str = "gru"
    bidirectional: bool = True
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, source, *, deterministic: bool):
        """source `[batch, source_len]` int ids (PAD=0 after EOS).

        Returns (states `[batch, source_len, encoder_features]`, final
        `[batch, encoder_features]`), encoder_features = hidden_size x directions.
        """
        lengths = jnp.sum(source != PAD, axis=-1)
        embedded = nn.Embed(self.vocab_size, self.embedding_size, dtype=self.dtype, name="embed")(
            source
        )
        embedded = nn.Dropout(self.dropout_rate)(embedded, deterministic=deterministic)
        forward = nn.RNN(
            _cell(self.cell, self.hidden_size, "forward_cell", self.dtype),
            return_carry=True,
            name="forward",
        )
        if not self.bidirectional:
            carry, states = forward(embedded, seq_lengths=lengths)
            return states, _hidden(self.cell, carry)
        backward = nn.RNN(
            _cell(self.cell, self.hidden_size, "backward_cell", self.dtype),
            return_carry=True,
            name="backward",
        )
        both = nn.Bidirectional(forward, backward, return_carry=True, name="bidirectional")
        (forward_carry, backward_carry), states = both(embedded, seq_lengths=lengths)
        final = jnp.concatenate(
            [_hidden(self.cell, forward_carry), _hidden(self.cell, backward_carry)], axis=-1
        )
        return states, final


class DecoderStep(nn.Module):
    """One target step: cells, attention, attentional hidden state, logits."""

    vocab_size: int
    embedding_size: int
    layer_sizes: tuple[int, ...]
    cell: str
    attention: str
    attention_options: Any
    num_heads: int
    input_feeding: bool
    dropout_rate: float
    dtype: Any = jnp.float32
    implementation: str = "xla"

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.embedding_size, dtype=self.dtype)
        self.cells = [
            _cell(self.cell, size, f"cell_{i}", self.dtype)
            for i, size in enumerate(self.layer_sizes)
        ]
        if self.attention == MULTI_HEAD:
            self.attention_unit = attn.MultiHeadAttention(
                num_heads=self.num_heads,
                kind="scaled_dot",
                options=dict(self.attention_options),
                implementation=self.implementation,
                dtype=self.dtype,
            )
        elif self.attention != NO_ATTENTION:
            self.attention_unit = attn.get(
                self.attention, **dict(self.attention_options), implementation=self.implementation
            )
        self.combine = nn.Dense(self.layer_sizes[-1], dtype=self.dtype, name="attentional_hidden")
        self.dropout = nn.Dropout(self.dropout_rate)
        self.output = nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")

    def __call__(self, carry, token, memory, *, deterministic: bool):
        """Advances one step.

        Args:
          carry: (cell carries per layer, previous attentional hidden `[batch, d]`).
          token: previous target word ids `[batch]`.
          memory: dict with "states" `[batch, S, k]` (what is attended), "keys"
            `[batch, S, q]` (states projected to the query size for dot kinds, else
            the states), "mask" `[batch, 1, S]`, "final" `[batch, k]`.

        Returns:
          (new carry, (logits `[batch, vocab]`, weights `[batch, S]`)).
        """
        cell_carries, previous_hidden = carry
        inputs = self.embed(token)
        if self.input_feeding:
            inputs = jnp.concatenate([inputs, previous_hidden], axis=-1)
        inputs = self.dropout(inputs, deterministic=deterministic)
        new_carries = []
        for cell, cell_carry in zip(self.cells, cell_carries):
            cell_carry, inputs = cell(cell_carry, inputs)
            new_carries.append(cell_carry)
        query = inputs  # the top layer's state, [batch, d]

        states = memory["states"]
        if self.attention == NO_ATTENTION:
            context = memory["final"]
            weights = jnp.zeros(states.shape[:2], states.dtype)
        elif self.attention == MULTI_HEAD:
            context, head_weights = self.attention_unit(
                query[:, None], memory["keys"], memory["states"], mask=memory["mask"]
            )
            context, weights = context[:, 0], head_weights[:, :, 0].mean(axis=1)
        else:
            context, weights = self.attention_unit(
                query[:, None], memory["keys"], states, mask=memory["mask"]
            )
            context, weights = context[:, 0], weights[:, 0]

        hidden = jnp.tanh(self.combine(jnp.concatenate([query, context], axis=-1)))
        logits = self.output(self.dropout(hidden, deterministic=deterministic))
        return (tuple(new_carries), hidden), (logits, weights)


class Seq2Seq(nn.Module):
    """Encoder-decoder translation model; see the module docstring."""

    source_vocab_size: int
    target_vocab_size: int
    embedding_size: int = 300
    encoder_size: int = 500
    decoder_sizes: tuple[int, ...] = (500, 300)
    cell: str = "gru"
    bidirectional: bool = False
    attention: str = "additive"
    attention_options: Any = ()
    num_heads: int = 4
    input_feeding: bool = True
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32  # computation; parameters stay float32
    implementation: str = "xla"  # how the attention unit runs (attn.implementations)

    def setup(self):
        if self.attention not in attention_variants():
            why = (
                "it never forms the weights the RNN decoder reads (use it in the Transformer)"
                if self.attention in attn.available()
                else "unknown"
            )
            raise ValueError(
                f"attention variant {self.attention!r} cannot run in the RNN: {why}; valid "
                f"variants: {', '.join(attention_variants())}."
            )
        self.encoder = Encoder(
            self.source_vocab_size,
            self.embedding_size,
            self.encoder_size,
            self.cell,
            self.bidirectional,
            self.dropout_rate,
            self.dtype,
        )
        encoder_features = self.encoder_size * (2 if self.bidirectional else 1)
        self.bridges = [
            nn.Dense(size, dtype=self.dtype, name=f"bridge_{i}")
            for i, size in enumerate(self.decoder_sizes)
        ]
        needs_key_projection = self.attention == MULTI_HEAD or (
            self.attention != NO_ATTENTION
            and attn.lookup(self.attention).same_features
            and encoder_features != self.decoder_sizes[-1]
        )
        # Dot-product scores compare query and key directly: when the encoder and
        # the decoder's top layer differ in size, keys are projected once per
        # sentence rather than once per step.
        self.key_projection = (
            nn.Dense(
                self.decoder_sizes[-1], use_bias=False, dtype=self.dtype, name="key_projection"
            )
            if needs_key_projection and self.attention != MULTI_HEAD
            else None
        )
        self.decoder = DecoderStep(
            self.target_vocab_size,
            self.embedding_size,
            tuple(self.decoder_sizes),
            self.cell,
            self.attention,
            tuple(self.attention_options),
            self.num_heads,
            self.input_feeding,
            self.dropout_rate,
            self.dtype,
            self.implementation,
        )

    def encode(self, source, *, deterministic: bool = True):
        """source `[batch, S]` -> (memory dict, initial decoder carry)."""
        states, final = self.encoder(source, deterministic=deterministic)
        keys = states if self.key_projection is None else self.key_projection(states)
        memory = {
            "states": states,
            "keys": keys,
            "final": final,
            "mask": (source != PAD)[:, None, :],
        }
        cell_carries = []
        for bridge in self.bridges:
            hidden = jnp.tanh(bridge(final))
            cell_carries.append((jnp.zeros_like(hidden), hidden) if self.cell == "lstm" else hidden)
        previous_hidden = jnp.zeros((source.shape[0], self.decoder_sizes[-1]), self.dtype)
        return memory, (tuple(cell_carries), previous_hidden)

    def decode_step(self, carry, token, memory, *, deterministic: bool = True):
        """One decoding step; see DecoderStep."""
        return self.decoder(carry, token, memory, deterministic=deterministic)

    def __call__(self, source, target_input, *, deterministic: bool = True):
        """Teacher-forced forward pass.

        Args:
          source: `[batch, S]` ids, EOS-terminated, PAD=0 after.
          target_input: `[batch, T]` ids, BOS first.

        Returns:
          (logits `[batch, T, target_vocab]`, attention weights `[batch, T, S]`).
        """
        memory, carry = self.encode(source, deterministic=deterministic)

        def step(module, carry, token):
            return module.decoder(carry, token, memory, deterministic=deterministic)

        scan = nn.scan(
            step,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=1,
            out_axes=1,
        )
        _, (logits, weights) = scan(self, carry, target_input)
        return logits, weights


def load_pretrained_embeddings(params, path: str, tokenizer, *, side: str):
    """Copies vectors from a GloVe / word2vec text file into an embedding table.

    Args:
      params: the model's params (the 'params' collection's parent dict).
      path: a text file of lines "word v1 v2 ..."; an optional word2vec header
        line "count dim" is skipped.
      tokenizer: the vocabulary of that side (needs `token_to_id`-like `encode`).
      side: "source" or "target".

    Returns:
      (new params, number of vocabulary words found in the file).
    """
    if side not in ("source", "target"):
        raise ValueError(f"side must be 'source' or 'target', got {side!r}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"Embeddings file not found: {path}")
    table_path = ("encoder", "embed") if side == "source" else ("decoder", "embed")
    table = np.array(params["params"][table_path[0]][table_path[1]]["embedding"])
    found = 0
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines):
            parts = line.rstrip().split(" ")
            if number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) != table.shape[1] + 1:
                if len(parts) > 2:
                    raise ValueError(
                        f"{path}:{number + 1}: vectors have {len(parts) - 1} values but the "
                        f"model's embedding size is {table.shape[1]}; set "
                        f"model.embedding_size={len(parts) - 1}."
                    )
                continue
            ids, _ = tokenizer.encode(parts[0])
            if len(ids) == 1 and ids[0] > 3:
                table[ids[0]] = np.asarray(parts[1:], np.float32)
                found += 1
    new = jax.tree.map(lambda x: x, params)
    new["params"][table_path[0]][table_path[1]]["embedding"] = jnp.asarray(table)
    return new, found
