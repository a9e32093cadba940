"""The one training skeleton every experiment runs: `train_and_evaluate(make_task, config, workdir)`.

An experiment supplies a `Task`: its data, its model, its loss and its
evaluation. Everything else is here, the same for every experiment:

  config.json        the full config, written before training
  metrics.jsonl      train/* scalars every `train.log_every_steps`, the task's
                     eval scalars every `eval.every_steps` (common/writers.py)
  tensorboard/       the same, plus the task's pictures and texts
  checkpoints/<step> orbax checkpoints (`checkpoint.keep` of them); a restarted
                     run resumes from the last (or `checkpoint.restore_step`)
  eval.json          the task's final evaluation, plus steps, parameters,
                     train_seconds, seconds_per_step, data_seconds_per_step
                     (the wait for batches), compile_seconds (the loop's
                     tracing and compiling), peak_rss_mb, and the processes
                     and devices it ran on

The optimizer and schedule come from `config.train` (common/optimizers.py),
the parameter sharding from `train.param_sharding`; the loop itself (logs,
divergence, SIGTERM, wall-clock budget) is common/loop.py.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from experiments.common import parallel
from experiments.common.checkpoints import Checkpointer, CheckpointError
from experiments.common.errors import ConfigError
from experiments.common.loop import loop_schedule, train_loop
from experiments.common.optimizers import make_optimizer
from experiments.common.writers import MetricWriter

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Task:
    """What an experiment gives the trainer. Subclasses set `model` and
    `train_iterator` in `__init__(config, workdir)`, which also checks every
    input (raising `ConfigError`) before anything compiles.

    Attributes:
      model: the Flax module; `model.apply` is the train state's apply_fn.
      train_iterator: batches, with `get_state()` / `set_state()` so a resumed
        run continues where its checkpoint left off.
    """

    model: Any
    train_iterator: Any

    def init_params(self, seed_key) -> Any:
        """The 'params' collection, from `jax.random.key(config.seed)`."""
        raise NotImplementedError

    def after_init(self, params) -> Any:
        """Fresh runs only, outside jit (e.g. pretrained embeddings from a file)."""
        return params

    def check_checkpoint(self, checkpointer: Checkpointer) -> None:
        """Raise ConfigError if the checkpoint to resume cannot fit this config."""

    def loss(self, params, batch, dropout_key) -> tuple[Any, dict]:
        """Traced in the train step: (scalar loss, {name: scalar metric})."""
        raise NotImplementedError

    def evaluate(self, step: int, params, writer: MetricWriter) -> None:
        """The periodic evaluation: writes its scalars (and pictures) at `step`."""

    def final_evaluation(self, step: int, params, writer: MetricWriter) -> dict:
        """The full evaluation after training: eval.json's task fields
        ("splits", "headline", "selection", ...)."""
        raise NotImplementedError


def train_step(state: train_state.TrainState, batch, dropout_key, *, loss_fn):
    """One optimizer step; the dropout key is folded with the step number, so a
    resumed run draws what the uninterrupted one would have."""
    key = jax.random.fold_in(dropout_key, state.step)
    (loss, metrics), grads = jax.value_and_grad(
        lambda params: loss_fn(params, batch, key), has_aux=True
    )(state.params)
    state = state.apply_gradients(grads=grads)
    return state, {"loss": loss, **metrics, "grad_norm": optax.global_norm(grads)}


def train_and_evaluate(
    make_task: Callable[[ml_collections.ConfigDict, str], Task],
    config: ml_collections.ConfigDict,
    workdir: str,
) -> dict[str, Any]:
    """Trains, evaluates and writes everything into `workdir`; returns eval.json's dict."""
    os.makedirs(workdir, exist_ok=True)
    task = make_task(config, workdir)  # every bad-input error surfaces here
    checkpointer = Checkpointer(workdir, keep=config.checkpoint.keep)
    try:
        task.check_checkpoint(checkpointer)
    except (ConfigError, CheckpointError):
        checkpointer.close()
        raise
    writes = parallel.is_writer()  # multi-host: process 0 writes files, all save checkpoints
    if writes:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))

    seed_key = jax.random.key(config.seed)
    dropout_key = jax.random.split(seed_key)[1]
    optimizer = make_optimizer(config.train)

    def create_state(params):
        return train_state.TrainState.create(apply_fn=task.model.apply, params=params, tx=optimizer)

    mesh = parallel.make_mesh()
    try:
        # Tracing the init runs every layer's own checks (an attention option out
        # of range, say) on the real shapes, before anything compiles.
        abstract = jax.eval_shape(lambda: create_state(task.init_params(seed_key)))
    except ValueError as error:
        checkpointer.close()
        message = " ".join(str(error).split())  # one line
        raise ConfigError(f"the model cannot be built from this config: {message}") from None
    shardings = parallel.state_shardings(
        abstract, mesh, config.train.param_sharding, config.train.min_shard_size
    )
    parameter_count = sum(x.size for x in jax.tree.leaves(abstract.params))

    elapsed_before = 0.0
    if checkpointer.latest_step() is not None:
        # Restoring needs only the shapes: nothing is initialised to be discarded.
        like = jax.tree.map(
            lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
            abstract,
            shardings,
        )
        state, extra = checkpointer.restore(like, config.checkpoint.restore_step)
        task.train_iterator.set_state(extra["iterator"])
        elapsed_before = extra.get("train_seconds", 0.0)
        print(f"Resumed from {checkpointer.directory}/{int(state.step)}")
    else:
        params = task.after_init(task.init_params(seed_key))
        state = jax.device_put(create_state(params), shardings)

    writer = MetricWriter(workdir, enabled=writes)
    step_fn = jax.jit(
        lambda s, b, k: train_step(s, b, k, loss_fn=task.loss),
        in_shardings=(shardings, parallel.batch_sharding(mesh), parallel.replicated(mesh)),
        out_shardings=(shardings, parallel.replicated(mesh)),
        donate_argnums=0,
    )
    run = train_loop(
        state,
        lambda state, batch: step_fn(state, batch, dropout_key),
        task.train_iterator,
        mesh,
        **loop_schedule(config),
        writer=writer,
        checkpointer=checkpointer,
        elapsed_before=elapsed_before,
        evaluate=lambda step, state: task.evaluate(step, state.params, writer),
        description=os.path.basename(os.path.abspath(workdir)),
    )
    step = int(run.state.step)
    final = task.final_evaluation(step, run.state.params, writer)
    final.update(
        steps=step,
        parameters=int(parameter_count),
        train_seconds=run.train_seconds,
        seconds_per_step=run.seconds_per_step,
        data_seconds_per_step=run.data_seconds_per_step,
        compile_seconds=run.compile_seconds,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        processes=jax.process_count(),
        devices=jax.device_count(),
    )
    if writes:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(final, f, indent=2, default=float)
    writer.close()
    return final


__all__ = ["COMPUTE_DTYPES", "Task", "train_and_evaluate", "train_step"]
