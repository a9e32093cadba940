"""Every experiment reaches every kind, option and implementation from its config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from experiments.common import attention_config
from experiments.common.errors import ConfigError
from experiments.configs import language_model, long_range, vision
from experiments.configs import translation as translate
from experiments.language_model import generate
from experiments.language_model import train as lm_train
from experiments.long_range import train as long_range_train
from experiments.models.causal_lm import build_model
from experiments.translation import decode
from experiments.translation import train as translation_train
from experiments.vision import train as vision_train

SOURCE = jnp.array([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]], jnp.int32)
TARGET_IN = jnp.array([[1, 5, 6, 7], [1, 8, 0, 0]], jnp.int32)


def configs():
    return {
        "rnn": translate.get_config("additive,tiny"),
        "transformer": translate.get_config("transformer,tiny"),
        "language_model": language_model.get_config("tiny"),
        "vit": vision.get_config("vit,tiny"),
        "long_range": long_range.get_config("tiny"),
    }


VALIDATE = {
    "rnn": translation_train.validate_config,
    "transformer": translation_train.validate_config,
    "language_model": lm_train.validate_config,
    "vit": vision_train.validate_config,
    "long_range": long_range_train.validate_config,
}


@pytest.fixture
def throwaway_kind():
    @attn.register("negative_distance", same_features=True)
    def negative_distance(query, key, *, sharpness=1.0):
        """Closer keys score higher."""
        return -sharpness * jnp.sum((query[..., :, None, :] - key[..., None, :, :]) ** 2, -1)

    yield "negative_distance"
    attn.unregister("negative_distance")


@pytest.mark.parametrize("name", list(VALIDATE))
def test_every_experiment_has_the_attention_fields(name):
    model = configs()[name].model
    every = {option for kind in attn.available() for option in attn.lookup(kind).options}
    assert set(model.attention_options) == every
    assert model.implementation == "xla" and model.num_kv_heads == 0
    VALIDATE[name](configs()[name])  # the defaults are valid


@pytest.mark.parametrize("name", list(VALIDATE))
@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"attention_options.features": 8, "attention": "cosine"},
            r"attention_options.features=8 is not an option of 'cosine'; its options: eps, scale$",
        ),
        ({"implementation": "flash"}, r"Unknown attention implementation 'flash'; valid on cpu"),
        (
            {"implementation": "pallas", "attention": "scaled_dot"},
            r"'pallas' needs a gpu backend.*valid here",
        ),
        ({"implementation": "pallas", "attention": "additive"}, r"cannot run attention kind"),
        ({"attention": "bahdanau"}, r"unknown model.attention 'bahdanau'; valid: additive"),
        # What the command line could not read as a number arrives as a string.
        (
            {"attention": "scaled_dot", "attention_options.scale": "inf"},
            r"attention_options.scale='inf' is not a number; valid: a number$",
        ),
        (
            {"attention": "scaled_dot", "attention_options.scale": float("nan")},
            r"attention_options.scale=nan; valid: a finite number$",
        ),
    ],
)
def test_bad_attention_settings_are_one_line_errors(name, overrides, message):
    config = configs()[name]
    for field, value in overrides.items():
        section, _, leaf = field.rpartition(".")
        (config.model[section] if section else config.model)[leaf] = value
    with pytest.raises(ConfigError, match=message) as error:
        VALIDATE[name](config)
    assert "\n" not in str(error.value)


def test_kv_heads_must_divide_the_heads():
    config = configs()["transformer"]
    config.model.num_kv_heads = 3
    with pytest.raises(ConfigError, match=r"num_kv_heads=3 does not divide num_heads=2; valid: 0"):
        translation_train.validate_config(config)


def test_a_new_kind_and_its_options_reach_every_sweep_and_config(throwaway_kind):
    assert throwaway_kind in translate.get_sweeps()["variants"]["grid"]["model.attention"]
    assert throwaway_kind in language_model.get_sweeps()["attention"]["grid"]["model.attention"]
    config = translate.get_config("transformer,tiny")
    assert "sharpness" in config.model.attention_options
    config.model.attention = throwaway_kind
    config.model.attention_options.sharpness = 3.0
    translation_train.validate_config(config)
    model = translation_train.build_model(config, 20, 20)
    assert dict(model.attention_options) == {"sharpness": 3.0}


def _transformer(**overrides):
    config = translate.get_config("transformer,tiny")
    config.model.attention = "additive"
    config.model.attention_options.features = 5
    for field, value in overrides.items():
        config.model[field] = value
    translation_train.validate_config(config)
    return translation_train.build_model(config, 20, 20)


def test_options_and_heads_reach_the_transformer_layers():
    model = _transformer(num_kv_heads=1)
    params = jax.eval_shape(model.init, jax.random.key(0), SOURCE, TARGET_IN)["params"]
    layer = params["encoder_0"]["self_attention"]
    assert layer["score"]["query_proj"]["kernel"].shape[-1] == 5  # features=5
    assert layer["key"]["kernel"].shape[1] == 1  # one key/value head
    assert params["decoder_0"]["cross_attention"]["query"]["kernel"].shape[1] == 2


@pytest.mark.slow  # make test decodes the language model with blockwise below
def test_blockwise_trains_and_decodes_the_transformer_like_xla():
    xla, fast = _transformer(), _transformer(implementation="blockwise")
    params = jax.jit(xla.init)(jax.random.key(0), SOURCE, TARGET_IN)

    def loss(model, params):
        logits, _ = model.apply(params, SOURCE, TARGET_IN)
        return jnp.mean(jax.nn.log_softmax(logits)[..., 3])

    # Compiled: tracing the model once beats running its many small ops one by one.
    value_and_grad = {
        m: jax.jit(jax.value_and_grad(lambda p, m=m: loss(m, p))) for m in (xla, fast)
    }
    (want_loss, want), (got_loss, got) = value_and_grad[xla](params), value_and_grad[fast](params)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, atol=1e-5), got, want)
    tokens, _ = decode.greedy_decode(xla, params, SOURCE, max_steps=5)
    fast_tokens, _ = decode.greedy_decode(fast, params, SOURCE, max_steps=5)
    np.testing.assert_array_equal(fast_tokens, tokens)


def test_blockwise_decodes_the_language_model_like_xla():
    config = language_model.get_config("tiny")
    config.model.attention_options.scale = 0.5
    lm_train.validate_config(config)
    xla = build_model(config.model, 30)
    config.model.implementation = "blockwise"
    fast = build_model(config.model, 30)
    assert dict(fast.attention_options) == {"scale": 0.5}
    tokens = jnp.array([[1, 5, 6, 7, 8, 9]], jnp.int32)
    params = xla.init(jax.random.key(0), tokens)
    np.testing.assert_allclose(fast.apply(params, tokens), xla.apply(params, tokens), atol=1e-5)
    lengths = np.array([3], np.int32)
    want = generate.greedy_tokens(xla, params, np.asarray(tokens), lengths, 10)
    got = generate.greedy_tokens(fast, params, np.asarray(tokens), lengths, 10)
    np.testing.assert_array_equal(got, want)


def test_options_leave_out_the_unset():
    config = translate.get_config("additive,tiny")
    assert attention_config.options(config.model) == {}
    config.model.attention_options.features = 4
    assert attention_config.options(config.model) == {"features": 4}


def test_options_heads_and_implementation_reach_the_vit():
    from experiments.models import vision as vision_models

    config = vision.get_config("vit,tiny")
    config.model.update(attention="additive", implementation="blockwise", num_kv_heads=1)
    config.model.attention_options.features = 3
    vision_train.validate_config(config)
    model = vision_models.build(config.model, num_classes=10)
    images = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)), jnp.float32)
    params = jax.jit(model.init)(jax.random.key(0), images)
    layer = params["params"]["block0_attention"]
    assert layer["score"]["query_proj"]["kernel"].shape[-1] == 3
    assert layer["key"]["kernel"].shape[1] == 1
    plain = model.clone(implementation="xla")
    np.testing.assert_allclose(
        jax.jit(model.apply)(params, images), jax.jit(plain.apply)(params, images), atol=1e-5
    )
