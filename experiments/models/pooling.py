"""Pooling a set of positions into one vector per example, for the classifiers."""

from __future__ import annotations

import jax.numpy as jnp


def max_over_positions(x, valid=None):
    """Each feature's largest value over the positions: `[batch, positions, features]`
    (and optionally `valid` `[batch, positions]`, False where padding) -> `[batch, features]`.

    Picked by index, so the gradient goes to that one position. `jnp.max`'s
    gradient divides by the count of positions equal to the maximum, and a
    compiled program that computes the operand twice with different rounding
    can find none equal: 0 / 0, NaN (seen on CPU at XLA's optimisation level 0).
    """
    if valid is not None:
        lowest = jnp.finfo(x.dtype).min  # finite: no inf under jax.debug_infs
        x = jnp.where(valid[..., None], x, lowest)
    index = jnp.argmax(x, axis=1)
    return jnp.take_along_axis(x, index[:, None, :], axis=1)[:, 0]


def max_over_image(x):
    """`[batch, H, W, features]` -> `[batch, features]`, as `max_over_positions`."""
    return max_over_positions(x.reshape(x.shape[0], -1, x.shape[-1]))


__all__ = ["max_over_image", "max_over_positions"]
