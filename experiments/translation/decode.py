"""Batched greedy and beam-search decoding, compiled with jit.

Both run a fixed number of steps (`max_steps`, static) with `lax.scan`, so one
compilation serves every batch of the same shape; finished sentences keep
emitting PAD. Both return the attention weights of the chosen words.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.text.token_ids import BOS_ID as BOS
from experiments.text.token_ids import EOS_ID as EOS
from experiments.text.token_ids import PAD_ID as PAD


def start(model, params, source):
    """(memory, carry) of `model.encode`; the carry holds the model's state and
    its 'cache' collection (empty for models that keep no cache)."""
    (memory, state), variables = model.apply(params, source, method="encode", mutable=["cache"])
    return memory, {"state": state, "cache": variables.get("cache", {})}


def step(model, params, carry, token, memory):
    """One `model.decode_step` on the carry of `start`: (carry, outputs)."""
    variables = {**params, "cache": carry["cache"]} if carry["cache"] else params
    (state, outputs), updated = model.apply(
        variables, carry["state"], token, memory, method="decode_step", mutable=["cache"]
    )
    return {"state": state, "cache": updated.get("cache", {})}, outputs


@functools.partial(jax.jit, static_argnames=("model", "max_steps"))
def greedy_decode(model, params, source, *, max_steps: int):
    """Greedy decoding.

    Args:
      model: a translation model with `encode` and `decode_step` methods (static).
      params: its variables.
      source: `[batch, S]` ids.
      max_steps: number of target tokens to produce (EOS included).

    Returns:
      (tokens `[batch, max_steps]` (PAD after EOS), weights `[batch, max_steps, S]`).
    """
    memory, carry = start(model, params, source)
    batch = source.shape[0]

    def body(state, _):
        carry, token, finished = state
        carry, (logits, weights) = step(model, params, carry, token, memory)
        next_token = jnp.where(finished, PAD, jnp.argmax(logits, -1)).astype(jnp.int32)
        finished = finished | (next_token == EOS)
        return (carry, next_token, finished), (next_token, weights)

    initial = (carry, jnp.full((batch,), BOS, jnp.int32), jnp.zeros((batch,), bool))
    _, (tokens, weights) = jax.lax.scan(body, initial, None, length=max_steps)
    return tokens.T, weights.transpose(1, 0, 2)


def _gather_beams(tree, indices, batch, beams):
    """Selects beams: tree leaves `[batch * beams, ...]`, indices `[batch, beams]`;
    scalar leaves (a cache index, the same for every beam) stay as they are."""

    def gather(x):
        if x.ndim == 0:
            return x
        x = x.reshape(batch, beams, *x.shape[1:])
        x = jnp.take_along_axis(x, indices.reshape(batch, beams, *([1] * (x.ndim - 2))), 1)
        return x.reshape(batch * beams, *x.shape[2:])

    return jax.tree.map(gather, tree)


@functools.partial(jax.jit, static_argnames=("model", "max_steps", "beam_size"))
def beam_search(
    model, params, source, *, max_steps: int, beam_size: int, length_penalty: float = 0.0
):
    """Beam search.

    Hypotheses are ranked by log-probability / length**length_penalty (0: plain
    log-probability). With beam_size 1 this is greedy decoding.

    Returns:
      (tokens `[batch, max_steps]`, weights `[batch, max_steps, S]`, scores `[batch]`)
      of the best hypothesis per sentence.
    """
    batch, source_len = source.shape
    memory, carry = start(model, params, source)
    repeat = lambda x: x if x.ndim == 0 else jnp.repeat(x, beam_size, axis=0)
    memory, carry = jax.tree.map(repeat, memory), jax.tree.map(repeat, carry)

    # Only the first beam is live at the start, so beams do not duplicate.
    log_probs = jnp.tile(jnp.array([0.0] + [-jnp.inf] * (beam_size - 1)), (batch, 1))
    state = dict(
        carry=carry,
        token=jnp.full((batch * beam_size,), BOS, jnp.int32),
        log_probs=log_probs,
        finished=jnp.zeros((batch, beam_size), bool),
        lengths=jnp.zeros((batch, beam_size), jnp.int32),
        tokens=jnp.zeros((batch, beam_size, max_steps), jnp.int32),
        weights=jnp.zeros((batch, beam_size, max_steps, source_len), jnp.float32),
    )

    def body(state, t):
        carry, (logits, weights) = step(model, params, state["carry"], state["token"], memory)
        vocab = logits.shape[-1]
        step_log_probs = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(
            batch, beam_size, vocab
        )
        # A finished hypothesis can only continue with PAD, at no cost.
        pad_only = jnp.full((vocab,), -jnp.inf).at[PAD].set(0.0)
        step_log_probs = jnp.where(state["finished"][..., None], pad_only, step_log_probs)
        candidates = (state["log_probs"][..., None] + step_log_probs).reshape(batch, -1)
        new_log_probs, flat = jax.lax.top_k(candidates, beam_size)
        beam, token = flat // vocab, (flat % vocab).astype(jnp.int32)

        pick = lambda x: jnp.take_along_axis(x, beam, axis=1)
        pick_rows = lambda x: jnp.take_along_axis(
            x, beam.reshape(batch, beam_size, *([1] * (x.ndim - 2))), axis=1
        )
        was_finished = pick(state["finished"])
        tokens = pick_rows(state["tokens"]).at[:, :, t].set(token)
        all_weights = (
            pick_rows(state["weights"])
            .at[:, :, t]
            .set(pick_rows(weights.reshape(batch, beam_size, source_len)))
        )
        return dict(
            carry=_gather_beams(carry, beam, batch, beam_size),
            token=token.reshape(-1),
            log_probs=new_log_probs,
            finished=was_finished | (token == EOS),
            lengths=pick(state["lengths"]) + (~was_finished).astype(jnp.int32),
            tokens=tokens,
            weights=all_weights,
        ), None

    state, _ = jax.lax.scan(body, state, jnp.arange(max_steps))
    scores = state["log_probs"] / jnp.maximum(state["lengths"], 1) ** length_penalty
    best = jnp.argmax(scores, axis=1)
    take = lambda x: jnp.take_along_axis(x, best.reshape(batch, 1, *([1] * (x.ndim - 2))), axis=1)[
        :, 0
    ]
    return take(state["tokens"]), take(state["weights"]), take(scores[..., None])[:, 0]


def max_decode_steps(source_width: int, max_length: int) -> int:
    """A target budget for a batch: generous for reordering, capped by max_length."""
    return int(min(max_length + 1, 2 * source_width + 8))


def strip(tokens: np.ndarray) -> list[list[int]]:
    """`[batch, T]` ids -> per sentence, the ids before the first EOS."""
    sentences = []
    for row in np.asarray(tokens):
        ids = []
        for token in row:
            if token in (EOS, PAD):
                break
            ids.append(int(token))
        sentences.append(ids)
    return sentences
