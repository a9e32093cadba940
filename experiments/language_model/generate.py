"""Greedy continuation of prompts with the language model's key-value cache."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments.text.token_ids import BOS_ID, EOS_ID, PAD_ID


def greedy_tokens(model, params, prompts: np.ndarray, lengths: np.ndarray, steps: int):
    """Feeds each prompt, then its own argmax predictions, one position at a time.

    Args:
      prompts: int32 `[batch, P]`, BOS then the prompt's ids, PAD after.
      lengths: int32 `[batch]`, the real length of each prompt (BOS included).
      steps: positions to run in all, prompt included; at most model.max_length.

    Returns:
      int32 `[batch, steps]`: the token that follows each position, i.e. the
      prompt's own next id while inside it, the greedy prediction after.
    """
    prompts, lengths = jnp.asarray(prompts), jnp.asarray(lengths)
    last = prompts.shape[1] - 1

    def body(state, t):
        carry, cache, token = state
        (carry, logits), variables = model.apply(
            {**params, "cache": cache}, carry, token, method=model.decode_step, mutable=["cache"]
        )
        predicted = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        following = jnp.where(t + 1 < lengths, prompts[:, jnp.minimum(t + 1, last)], predicted)
        return (carry, variables["cache"], following), following

    carry, variables = model.apply(
        params, prompts.shape[0], method=model.init_cache, mutable=["cache"]
    )
    initial = (carry, variables["cache"], prompts[:, 0])
    _, outputs = jax.lax.scan(body, initial, jnp.arange(steps))
    return outputs.T


class Continuer:
    """Greedy continuations of fixed prompts, compiled once and rerun on new params.

    Args:
      prompts: space-separated words; each is cut from the left if the model's
        positions cannot hold it and `max_new_tokens` more.
      max_new_tokens: tokens generated at most per prompt; generation stops at EOS.
    """

    def __init__(self, model, tokenizer, prompts: Sequence[str], max_new_tokens: int):
        self.prompts, self.tokenizer = list(prompts), tokenizer
        room = model.max_length - 1  # positions left after BOS
        self.max_new_tokens = max(1, min(max_new_tokens, room - 1))
        keep = room - self.max_new_tokens
        encoded = [tokenizer.encode(text)[0][-keep:] for text in self.prompts]
        width = 1 + max((len(ids) for ids in encoded), default=0)
        self.tokens = np.full((len(encoded), width), PAD_ID, np.int32)
        for row, ids in enumerate(encoded):
            self.tokens[row, : 1 + len(ids)] = [BOS_ID, *ids]
        self.lengths = np.asarray([1 + len(ids) for ids in encoded], np.int32)
        steps = width - 1 + self.max_new_tokens
        self._run = jax.jit(lambda p, t, n: greedy_tokens(model, p, t, n, steps))

    def __call__(self, params) -> list[dict[str, str]]:
        """[{"prompt": ..., "continuation": ...}] for `params` ({"params": ...})."""
        if not self.prompts:
            return []
        generated = np.asarray(self._run(params, self.tokens, self.lengths))
        samples = []
        for row, text in enumerate(self.prompts):
            start = self.lengths[row] - 1
            new = list(generated[row, start : start + self.max_new_tokens])
            if EOS_ID in new:
                new = new[: new.index(EOS_ID)]
            samples.append({"prompt": text, "continuation": self.tokenizer.decode(new)})
        return samples


__all__ = ["Continuer", "greedy_tokens"]
