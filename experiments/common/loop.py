"""The training loop every experiment shares: steps, logs, evaluations, checkpoints, stops."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import tqdm

from experiments.common import parallel
from experiments.common.errors import Diverged, Interrupted
from experiments.common.preemption import StopOnSigterm


@dataclasses.dataclass
class LoopResult:
    """What the loop leaves behind.

    Attributes:
      state: the train state after the last step run.
      train_seconds: training wall clock, this run and the runs it resumed.
      seconds_per_step: median seconds per step between logs, or None when no
        interval was clean of compilation, evaluation and checkpointing.
      data_seconds_per_step: mean seconds the loop waited for a batch (the
        iterator's next batch, placed on the devices), over this run's steps.
      compile_seconds: seconds this run's thread spent tracing, lowering and
        compiling (evaluation included): a batch of a new shape compiles the
        step again, which a pipeline with many shapes pays for.
    """

    state: Any
    train_seconds: float
    seconds_per_step: float | None
    data_seconds_per_step: float | None = None
    compile_seconds: float = 0.0


# JAX's events for the three stages of making a program (jax/_src/dispatch.py).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class CompileClock:
    """Sums the seconds JAX reports spending on making programs in this thread.

    A context manager: the listener is registered on entry and removed on exit;
    other threads' compilations (a sweep's other trials) are not counted.
    """

    def __init__(self):
        self.seconds = 0.0
        self._thread = threading.get_ident()

    def _listen(self, event: str, duration: float, **_):
        if event in COMPILE_EVENTS and threading.get_ident() == self._thread:
            self.seconds += duration

    def __enter__(self):
        self._thread = threading.get_ident()
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)


def loop_schedule(config) -> dict:
    """The `train_loop` arguments every experiment's config sets the same way."""
    return dict(
        total_steps=config.train.steps,
        log_every=config.train.log_every_steps,
        eval_every=config.eval.every_steps,
        checkpoint_every=config.checkpoint.every_steps,
        max_seconds=config.train.max_seconds,
    )


def train_loop(
    state,
    step_fn: Callable[[Any, Any], tuple[Any, dict]],
    iterator,
    mesh,
    *,
    total_steps: int,
    log_every: int,
    eval_every: int,
    checkpoint_every: int,
    writer,
    checkpointer,
    elapsed_before: float = 0.0,
    max_seconds: float = 0.0,
    evaluate: Callable[[int, Any], None] | None = None,
    checkpoint_extra: dict | None = None,
    description: str = "",
) -> LoopResult:
    """Runs steps `state.step + 1 .. total_steps` of `state, metrics = step_fn(state, batch)`.

    Batches come from the checkpointable data `iterator`, sharded over `mesh`.

    Every `log_every` steps (and at the last) writes `train/*` scalars (the
    step's metrics, and `train/data_wait_seconds`: the mean wait for a batch
    per step since the last log) and raises `Diverged` on a non-finite loss;
    every `eval_every` steps but the last calls `evaluate(step, state)`;
    saves a checkpoint (with the data iterator's position and the training
    seconds so far) every `checkpoint_every` steps, at the last, on SIGTERM
    (then raises `Interrupted`) and when `max_seconds` (0: no limit) of
    training have passed (then stops early). Logs also hold
    `train/compile_seconds`, the compilation since the last log; an interval
    that compiled is left out of `seconds_per_step`.
    """
    start_step = int(state.step)
    # Seconds per step, from the wall clock between logs: with asynchronous
    # dispatch only a blocking read marks when a step really ended. Intervals
    # that include compilation, evaluation or checkpointing are left out.
    step_times, last_log, interval_clean = [], (time.time(), start_step), False
    # The host's wait for each batch: when it nears the step time, the input
    # pipeline, not the model, sets the pace.
    data_wait, data_wait_total = 0.0, 0.0
    train_start = time.time()
    seconds = lambda: elapsed_before + time.time() - train_start
    progress = tqdm.tqdm(
        total=total_steps,
        initial=start_step,
        desc=description,
        dynamic_ncols=True,
        mininterval=1.0,
    )
    compiled_at_log = 0.0
    with StopOnSigterm() as stop, CompileClock() as compiling:
        for step in range(start_step + 1, total_steps + 1):
            asked = time.perf_counter()
            batch = parallel.shard_batch(next(iterator), mesh)
            waited = time.perf_counter() - asked
            data_wait, data_wait_total = data_wait + waited, data_wait_total + waited
            state, step_metrics = step_fn(state, batch)
            if step % log_every == 0 or step == total_steps:
                step_metrics = jax.device_get(step_metrics)
                now = time.time()
                compiled, compiled_at_log = compiling.seconds - compiled_at_log, compiling.seconds
                if interval_clean and not compiled:
                    step_times.append((now - last_log[0]) / (step - last_log[1]))
                scalars = {f"train/{k}": float(v) for k, v in step_metrics.items()}
                scalars["train/data_wait_seconds"] = data_wait / (step - last_log[1])
                scalars["train/compile_seconds"] = compiled
                last_log, interval_clean, data_wait = (now, step), True, 0.0
                writer.write_scalars(step, scalars)
                progress.set_postfix(loss=f"{float(step_metrics['loss']):.3f}")
                if not np.isfinite(step_metrics["loss"]):
                    writer.close()
                    raise Diverged(step, float(step_metrics["loss"]))
            progress.update(1)
            if evaluate is not None and step % eval_every == 0 and step != total_steps:
                evaluate(step, state)
                interval_clean = False
            out_of_time = bool(max_seconds) and seconds() >= max_seconds
            if step % checkpoint_every == 0 or step == total_steps or stop.requested or out_of_time:
                extra = {"iterator": iterator.get_state(), "train_seconds": seconds()}
                checkpointer.save(step, state, {**extra, **(checkpoint_extra or {})})
                interval_clean = False
            if stop.requested:
                checkpointer.close()
                writer.close()
                raise Interrupted(step)
            if out_of_time:
                break
    progress.close()
    train_seconds = seconds()
    checkpointer.close()
    steps_run = int(state.step) - start_step
    return LoopResult(
        state=state,
        train_seconds=train_seconds,
        seconds_per_step=float(np.median(step_times)) if step_times else None,
        data_seconds_per_step=data_wait_total / steps_run if steps_run else None,
        compile_seconds=compiling.seconds,
    )
