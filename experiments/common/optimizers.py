"""Optimizers and learning-rate schedules from a config's `train` section."""

from __future__ import annotations

import jax.numpy as jnp
import optax

SCHEDULES = ("cosine", "constant", "rsqrt")


def learning_rate_schedule(train_config) -> optax.Schedule:
    """Linear warmup to `learning_rate`, then the configured decay.

    cosine: down to 1% of the peak at `steps`; constant: stays at the peak;
    rsqrt: the Transformer paper's inverse square root of the step after warmup.
    """
    peak, warmup, steps = train_config.learning_rate, train_config.warmup_steps, train_config.steps
    if train_config.schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {train_config.schedule!r}; valid: {', '.join(SCHEDULES)}"
        )
    warmup = max(warmup, 1)
    if train_config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup, max(steps, warmup + 1), end_value=0.01 * peak
        )
    warm = optax.linear_schedule(0.0, peak, warmup)
    if train_config.schedule == "constant":
        return optax.join_schedules([warm, optax.constant_schedule(peak)], [warmup])
    # join_schedules passes steps counted from the boundary and evaluates every
    # piece, so `count + warmup` is the global step, guarded where it is masked out.
    return optax.join_schedules(
        [warm, lambda count: peak * jnp.sqrt(warmup / jnp.maximum(count + warmup, warmup))],
        [warmup],
    )


def make_optimizer(train_config) -> optax.GradientTransformation:
    """AdamW with global-norm gradient clipping and the configured schedule."""
    return optax.chain(
        optax.clip_by_global_norm(train_config.grad_clip_norm),
        optax.adamw(learning_rate_schedule(train_config), weight_decay=train_config.weight_decay),
    )
