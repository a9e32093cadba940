"""Multi-head attention with any registered kind, and its decoding cache.

`MultiHeadAttention` projects queries, keys and values into heads (with
fewer key/value heads for multi- or grouped-query attention), runs any
registered kind through `attn.modules.attend_heads`, and projects the heads
back. Self- or cross-attention, padding and causal masks, additive bias,
attention dropout, and cached decoding (`decode=True`, as
`flax.linen.MultiHeadDotProductAttention`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import FrozenDict

from attn import masking
from attn.modules import attend_heads, check_ranks, check_use, resolve_implementation
from attn.positions import RelativePositionBias, alibi_bias, rotary

Array = Any


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
      implementation: 'xla' (default), 'blockwise', 'pallas', 'cudnn',
        'jax_nn' or 'auto' (see `attn.implementations`); all but 'xla' return `None` for
        the weights and need dropout_rate 0 or deterministic calls.
      decode: cached autoregressive decoding (see `__call__`).
      rotary: rotary position embeddings on the queries and keys of
        self-attention (Su et al. 2021; `attn.positions.rotary`), at their
        positions (in decoding: the cache slots).
      rotary_base: the rotary frequencies' base.
      alibi: ALiBi biases on the logits of self-attention (Press et al. 2022;
        `attn.positions.alibi_bias`); needs a kind that takes a bias.
      qk_norm: LayerNorm (no bias) on each head's queries and keys before the
        score (Dehghani et al. 2023), against growing logits.
      relative_buckets: with a positive number, T5's learned relative position
        bias on the logits of self-attention (Raffel et al. 2020;
        `attn.positions.RelativePositionBias`, a 'relative_bias' submodule),
        in that many buckets; bidirectional unless the call is causal or
        decodes. Needs a kind that takes a bias.
      relative_max_distance: the distance from which T5's buckets are shared.
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
    rotary: bool = False
    rotary_base: float = 10000.0
    alibi: bool = False
    qk_norm: bool = False
    relative_buckets: int = 0
    relative_max_distance: int = 128

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
        check_ranks(self.kind, ("inputs_q", "inputs_k", "inputs_v"), inputs_q, inputs_k, inputs_v)
        kv_heads, head_dim = self._heads(inputs_q)
        if cross and (self.rotary or self.alibi or self.relative_buckets):
            raise ValueError(
                "rotary, alibi and relative positions apply to self-attention (queries and keys "
                "of one sequence); this call has inputs_k (cross-attention): set rotary=False, "
                "alibi=False, relative_buckets=0."
            )
        asks_bias = bias is not None or self.alibi or bool(self.relative_buckets)
        check_use(
            self.kind,
            mask=mask,
            bias=asks_bias or None,
            is_causal=is_causal,
            cross=cross,
            decode=decode,
        )

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
        # Positions of this call's queries (and new keys): after the cache's filled slots.
        offset = 0
        if decode and not cross and self.has_variable("cache", "cache_index"):
            offset = self.get_variable("cache", "cache_index")
        positions = offset + jnp.arange(inputs_q.shape[1])
        norm = functools.partial(nn.LayerNorm, use_bias=False, dtype=self.dtype)
        query = dense(features=(self.num_heads, head_dim), name="query")(inputs_q)
        if self.qk_norm:
            query = norm(name="query_norm")(query)
        if self.rotary:
            query = rotary(query, positions, base=self.rotary_base)

        def project_key():
            key = dense(features=(kv_heads, head_dim), name="key")(inputs_k)
            if self.qk_norm:
                key = norm(name="key_norm")(key)
            if self.rotary:  # self-attention: the new keys sit at the queries' positions
                key = rotary(key, positions, base=self.rotary_base)
            return key

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
        if self.alibi:  # key slot j is position j, in decoding as in a full pass
            slopes = alibi_bias(self.num_heads, positions, jnp.arange(k_len))[None]
            bias = slopes if bias is None else bias + slopes
        if self.relative_buckets:  # likewise; causal and decoding calls see no later key
            relative = RelativePositionBias(
                self.num_heads,
                self.relative_max_distance,
                self.relative_buckets,
                bidirectional=not (is_causal or decode),
                name="relative_bias",
            )(positions, jnp.arange(k_len))[None]
            bias = relative if bias is None else bias + relative
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
        name = resolve_implementation(
            self,
            batch_heads=batch * self.num_heads,
            query=query,
            key=key,
            value=value,
            is_causal=is_causal,
        )
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
            query_offset=offset,
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


def _with_head_axis(array):
    """`[batch, q_len, k_len]` masks/biases apply to every head."""
    if array is not None and getattr(array, "ndim", 0) == 3:
        return array[:, None]
    return array


__all__ = ["MultiHeadAttention"]
