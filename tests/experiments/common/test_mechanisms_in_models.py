"""Every attend mechanism trains in every model that can run it, chosen by name in the config.

Parametrised over the registry: a mechanism registered later is trained here
with no edit. A model whose needs a mechanism lacks (the Transformer's cached
causal decoder, the language model's cached decoding) refuses it with a
one-line error naming the kinds that can.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import attn
from experiments.common.errors import ConfigError
from experiments.configs import language_model, vision
from experiments.configs import translation as translate
from experiments.language_model import train as lm_train
from experiments.models import vision as vision_models
from experiments.models.causal_lm import build_model as build_lm
from experiments.translation import train as translation_train
from experiments.vision import train as vision_train
from tests.kind_params import REPRESENTATIVES

MECHANISMS = [k for k in attn.available() if attn.lookup(k).form == "attend"]
# Small enough for the tiny models' sequences (5 to 16 positions).
OPTIONS = {
    "linformer": {"projected_length": 4, "max_length": 32},
    "nystrom": {"num_landmarks": 4},
    "performer": {"num_features": 16},
    "sliding_window": {"local_window_size": 3},
}
SOURCE = jnp.array([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]], jnp.int32)
TARGET_IN = jnp.array([[1, 5, 6, 7], [1, 8, 0, 0]], jnp.int32)
TOKENS = jnp.array([[1, 5, 6, 7, 8, 9, 2, 0], [1, 4, 4, 2, 0, 0, 0, 0]], jnp.int32)
IMAGES = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)), jnp.float32)


def configured(config, kind):
    config.model.attention = kind
    for name, value in OPTIONS.get(kind, {}).items():
        config.model.attention_options[name] = value
    return config


def transformer(kind):
    config = configured(translate.get_config("transformer,tiny"), kind)
    translation_train.validate_config(config)
    model = translation_train.build_model(config, 20, 20)
    loss = lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[:, :-1, 5:9])
    return model, (SOURCE, TARGET_IN), lambda out: loss(out[0])


def language(kind):
    config = configured(language_model.get_config("tiny"), kind)
    lm_train.validate_config(config)
    model = build_lm(config.model, 30)
    return model, (TOKENS,), lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[..., 7])


def vit(kind):
    config = configured(vision.get_config("vit,tiny"), kind)
    vision_train.validate_config(config)
    model = vision_models.build(config.model, num_classes=10)
    return model, (IMAGES,), lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[:, 3])


MODELS = {"transformer": transformer, "language_model": language, "vit": vit}
NEEDS = {
    "transformer": ("causal", "cross", "padding", "decode"),
    "language_model": ("causal", "padding", "decode"),
    "vit": (),
}


@pytest.mark.parametrize(
    "name, kind",
    [
        # The representatives in the Transformer in make test, the rest in the slow tier.
        pytest.param(
            name,
            kind,
            marks=[] if kind in REPRESENTATIVES and name == "transformer" else [pytest.mark.slow],
        )
        for kind in MECHANISMS
        for name in MODELS
    ],
)
def test_trains_a_few_steps_where_it_can_and_is_refused_where_not(name, kind):
    if not all(attn.lookup(kind).supports(c) for c in NEEDS[name]):
        with pytest.raises(ConfigError, match=f"attention kind '{kind}' cannot do") as error:
            MODELS[name](kind)
        assert "\n" not in str(error.value) and "kinds that can: " in str(error.value)
        return
    model, inputs, loss_of = MODELS[name](kind)
    params = jax.jit(model.init)(jax.random.key(0), *inputs)
    optimizer = optax.adam(3e-2)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(lambda p: loss_of(model.apply(p, *inputs)))(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    state, losses = optimizer.init(params), []
    for _ in range(4):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
