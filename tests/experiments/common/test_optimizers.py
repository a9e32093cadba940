"""Learning-rate schedules."""

import ml_collections
import numpy as np
import pytest

from experiments.common.optimizers import learning_rate_schedule


def schedule(name, **overrides):
    config = ml_collections.ConfigDict(
        dict(learning_rate=1.0, warmup_steps=10, steps=100, schedule=name)
    )
    config.update(overrides)
    return learning_rate_schedule(config)


def test_warmup_then_decay():
    for name in ("cosine", "constant", "rsqrt"):
        lr = schedule(name)
        assert lr(0) == 0.0
        np.testing.assert_allclose(lr(5), 0.5, rtol=1e-6)
        np.testing.assert_allclose(lr(10), 1.0, rtol=1e-6)
    np.testing.assert_allclose(schedule("constant")(90), 1.0)
    np.testing.assert_allclose(schedule("cosine")(100), 0.01, rtol=1e-5)
    # rsqrt: peak * sqrt(warmup / step) after warmup
    np.testing.assert_allclose(schedule("rsqrt")(40), np.sqrt(10 / 40), rtol=1e-6)


def test_unknown_schedule():
    with pytest.raises(
        ValueError, match="unknown schedule 'linear'; valid: cosine, constant, rsqrt"
    ):
        schedule("linear")
