"""The shared trainer on a task of its own: a line fitted by least squares."""

import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.common import sections, trainer
from experiments.common.errors import ConfigError
from experiments.common.writers import read_metrics

SLOPE, OFFSET = 3.0, -1.0


class Batches:
    """Noisy points of y = 3x - 1, as many as asked, from a seeded position."""

    def __init__(self, seed):
        self.seed, self.position = seed, 0

    def __next__(self):
        rng = np.random.default_rng([self.seed, self.position])
        self.position += 1
        x = rng.normal(size=(8, 1)).astype(np.float32)
        return {"x": x, "y": SLOPE * x + OFFSET + 0.01 * rng.normal(size=(8, 1)).astype(np.float32)}

    def get_state(self):
        return {"position": self.position}

    def set_state(self, state):
        self.position = int(state["position"])


class LineTask(trainer.Task):
    fresh_starts = 0

    def __init__(self, config, workdir):
        if config.model.features != 1:
            raise ConfigError(f"model.features must be 1, got {config.model.features}")
        self.model = nn.Dense(config.model.features)
        self.train_iterator = Batches(config.seed)

    def init_params(self, seed_key):
        return self.model.init(seed_key, jnp.zeros((1, 1)))["params"]

    def after_init(self, params):
        LineTask.fresh_starts += 1
        return params

    def loss(self, params, batch, dropout_key):
        error = self.model.apply({"params": params}, batch["x"]) - batch["y"]
        return jnp.mean(error**2), {"abs_error": jnp.mean(jnp.abs(error))}

    def evaluate(self, step, params, writer):
        # Read on the host: indexing the device array would compile a small program
        # mid-run the first time a process does it (the compile-clock tests count those).
        writer.write_scalars(step, {"validation/slope": float(np.asarray(params["kernel"])[0, 0])})

    def final_evaluation(self, step, params, writer):
        return {
            "splits": {"test": {"slope": float(np.asarray(params["kernel"])[0, 0])}},
            "headline": ["test/slope"],
            "selection": "test/slope",
        }


def config(steps=120):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict(dict(features=1))
    c.train = sections.train_section(
        steps=steps,
        batch_size=8,
        learning_rate=0.15,
        schedule="constant",
        warmup_steps=1,
        log_every_steps=20,
    )
    c.eval = ml_collections.ConfigDict(dict(every_steps=40, batch_size=8))
    c.checkpoint = sections.checkpoint_section(every_steps=20, keep=2)
    return c


def test_a_task_trains_writes_its_workdir_and_resumes(tmp_path):
    LineTask.fresh_starts = 0
    workdir = tmp_path / "run"
    short = trainer.train_and_evaluate(LineTask, config(steps=40), str(workdir))
    assert short["steps"] == 40 and short["parameters"] == 2
    final = trainer.train_and_evaluate(LineTask, config(steps=120), str(workdir))
    assert LineTask.fresh_starts == 1  # the second call resumed from step 40's checkpoint
    assert final["steps"] == 120
    assert abs(final["splits"]["test"]["slope"] - SLOPE) < 0.1  # it learned the line
    assert json.loads((workdir / "eval.json").read_text())["splits"] == final["splits"]
    assert json.loads((workdir / "config.json").read_text())["train"]["steps"] == 120
    records = read_metrics(workdir)
    train_steps = [r["step"] for r in records if "train/loss" in r]
    assert train_steps == [20, 40, 60, 80, 100, 120]  # no step ran twice
    assert {"train/loss", "train/abs_error", "train/grad_norm"} <= set(records[0])
    # Step 40 was the first run's last (the final evaluation's); 120 is this one's.
    assert [r["step"] for r in records if "validation/slope" in r] == [80]

    # The same 120 steps in one go give the same parameters: the batches resumed too.
    whole = trainer.train_and_evaluate(LineTask, config(steps=120), str(tmp_path / "whole"))
    assert whole["splits"] == final["splits"]


def test_bad_input_stops_before_anything_is_written(tmp_path):
    bad = config()
    bad.model.features = 2
    with pytest.raises(ConfigError, match=r"^model.features must be 1, got 2$"):
        trainer.train_and_evaluate(LineTask, bad, str(tmp_path / "run"))
    assert list((tmp_path / "run").iterdir()) == []


class CheckedLayer(nn.Module):
    """A layer that checks its option when traced, as the attention mechanisms do."""

    width: int

    @nn.compact
    def __call__(self, x):
        if self.width < 1:
            raise ValueError(f"width must be a positive integer,\ngot {self.width}.")
        return nn.Dense(self.width)(x)


class CheckedLayerTask(LineTask):
    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        self.model = CheckedLayer(config.model.width)


def test_a_layer_refusing_its_option_at_init_is_one_config_error_before_compiling(tmp_path):
    bad = config()
    bad.model.width = -1
    compiled = []
    listen = lambda event, duration, **_: compiled.append(event)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        with pytest.raises(ConfigError) as raised:
            trainer.train_and_evaluate(CheckedLayerTask, bad, str(tmp_path / "run"))
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert str(raised.value) == (
        "the model cannot be built from this config: width must be a positive integer, got -1."
    )
    assert "/jax/core/compile/backend_compile_duration" not in compiled  # traced only
    assert not list((tmp_path / "run").glob("checkpoints/*"))


def test_a_non_finite_loss_stops_the_run(tmp_path):
    from experiments.common.errors import Diverged

    class Diverging(LineTask):
        def loss(self, params, batch, dropout_key):
            value, metrics = super().loss(params, batch, dropout_key)
            return value * jnp.inf, metrics

    with pytest.raises(Diverged):
        trainer.train_and_evaluate(Diverging, config(steps=20), str(tmp_path / "run"))


def test_the_shared_train_checks_name_the_field_and_the_valid_values():
    for field, value, message in [
        ("schedule", "linear", "unknown train.schedule 'linear'; valid: cosine, constant, rsqrt"),
        ("compute_dtype", "fp16", "unknown train.compute_dtype 'fp16'; valid: float32, bfloat16"),
        ("param_sharding", "zero3", "unknown train.param_sharding 'zero3'; valid: replicate"),
    ]:
        c = config()
        c.train[field] = value
        with pytest.raises(ConfigError, match=f"^{message}"):
            sections.check_train(c)
    sections.check_train(config())


class SlowBatches(Batches):
    """Batches that keep the loop waiting `delay` seconds each."""

    delay = 0.05

    def __next__(self):
        time.sleep(self.delay)
        return super().__next__()


class SlowLineTask(LineTask):
    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        self.train_iterator = SlowBatches(config.seed)


def test_the_wait_for_batches_is_logged_per_step_and_summed_in_eval_json(tmp_path):
    fast = trainer.train_and_evaluate(LineTask, config(steps=40), str(tmp_path / "fast"))
    slow = trainer.train_and_evaluate(SlowLineTask, config(steps=40), str(tmp_path / "slow"))
    logged = {
        name: [
            m["train/data_wait_seconds"] for m in read_metrics(tmp_path / name) if "train/loss" in m
        ]
        for name in ("fast", "slow")
    }
    # One value per log (steps 20 and 40), each the mean over its 20 steps.
    assert [len(v) for v in logged.values()] == [2, 2]
    assert min(logged["slow"]) >= SlowBatches.delay
    assert max(logged["fast"]) < SlowBatches.delay
    assert slow["data_seconds_per_step"] == pytest.approx(np.mean(logged["slow"]), rel=1e-6)
    assert fast["data_seconds_per_step"] == pytest.approx(np.mean(logged["fast"]), rel=1e-6)
    # The wait does not change what is learnt.
    assert slow["splits"] == fast["splits"]


class GrowingBatches(Batches):
    """Batches of 8 points, then of 16 from step 31 on: a new shape mid-run."""

    def __next__(self):
        batch = super().__next__()
        if self.position <= 30:
            return batch
        return {k: np.concatenate([v, v]) for k, v in batch.items()}


class GrowingLineTask(LineTask):
    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        self.train_iterator = GrowingBatches(config.seed)


def test_a_new_batch_shape_is_logged_as_compilation_and_kept_out_of_the_step_time(tmp_path):
    runs = {"same": LineTask, "growing": GrowingLineTask}
    results, logged = {}, {}
    for name, task in runs.items():
        results[name] = trainer.train_and_evaluate(task, config(steps=60), str(tmp_path / name))
        logged[name] = [
            m["train/compile_seconds"] for m in read_metrics(tmp_path / name) if "train/loss" in m
        ]
    # Logs at steps 20, 40, 60: the first interval compiles the step (the
    # first run of this test process, or a cached program's loading); only the
    # growing run's second interval, where 16-point batches start, compiles again.
    assert logged["same"][1:] == [0.0, 0.0]
    assert logged["growing"][1] > 0 and logged["growing"][2] == 0.0
    for name in runs:
        assert results[name]["compile_seconds"] == pytest.approx(sum(logged[name]), rel=1e-6)
    assert results["growing"]["compile_seconds"] >= logged["growing"][1]


def test_the_compile_clock_counts_its_own_thread_while_open():
    import threading

    import jax

    from experiments.common.loop import CompileClock

    def fresh_program(scale):  # a new constant each call: a new program to compile
        return jax.jit(lambda x: x * scale + 1.0)(jnp.ones(3))

    with CompileClock() as clock:
        other = threading.Thread(target=fresh_program, args=(7.5,))
        other.start()
        other.join()
        assert clock.seconds == 0.0  # another thread's compilation
        fresh_program(2.5)
        inside = clock.seconds
    assert inside > 0
    fresh_program(3.5)
    assert clock.seconds == inside  # closed: no longer listening
