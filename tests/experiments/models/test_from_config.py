"""Models are their config section: unknown and missing fields are one-line errors."""

import ml_collections
import pytest

from experiments.configs import language_model
from experiments.configs import translation as translate
from experiments.models.causal_lm import CausalLM, build_model
from experiments.models.from_config import construct, model_fields
from experiments.models.transformer import Transformer
from experiments.translation import train as translation_train


def test_every_field_of_the_section_reaches_the_transformer():
    config = translate.get_config("transformer,tiny")
    config.model.transformer.update(d_model=24, num_heads=3, d_ff=40, positions="learned")
    model = translation_train.build_model(config, 30, 40)
    for name, value in config.model.transformer.items():
        assert getattr(model, name) == value, name
    assert (model.source_vocab_size, model.target_vocab_size) == (30, 40)


def test_every_field_of_the_section_reaches_the_language_model():
    config = language_model.get_config("tiny")
    config.model.update(d_model=24, num_heads=3, num_layers=2, tie_embeddings=False)
    config.model.attention_options.scale = 0.25
    model = build_model(config.model, 50)
    for name, value in config.model.items():
        if name not in ("attention_options", "num_kv_heads"):
            assert getattr(model, name) == value, name
    assert model.attention_options == (("scale", 0.25),) and model.num_kv_heads is None


def test_unknown_fields_are_named_with_the_valid_ones():
    config = translate.get_config("transformer,tiny")
    config.model.transformer.num_layer = 2
    with pytest.raises(ValueError) as error:
        translation_train.build_model(config, 20, 20)
    message = str(error.value)
    assert message.startswith(
        "model.transformer has num_layer, which Transformer does not take; valid fields: "
    )
    assert "num_decoder_layers" in message and "\n" not in message
    sizes = dict(language_model.get_config("tiny").model, heads=2)
    with pytest.raises(ValueError, match=r"^model has heads, which CausalLM does not take"):
        build_model(sizes, 20)


def test_missing_fields_are_named():
    sizes = dict(language_model.get_config("tiny").model)
    del sizes["d_ff"], sizes["positions"]
    with pytest.raises(ValueError, match=r"^model lacks d_ff, positions, which CausalLM needs$"):
        build_model(sizes, 20)
    section = ml_collections.ConfigDict(dict(d_model=16))
    with pytest.raises(ValueError, match=r"^model.transformer lacks attention, attention_dropout"):
        construct(
            Transformer,
            section,
            section_name="model.transformer",
            source_vocab_size=5,
            target_vocab_size=5,
        )


def test_fields_given_elsewhere_cannot_come_from_the_section():
    sizes = dict(language_model.get_config("tiny").model, vocab_size=7)
    with pytest.raises(ValueError, match=r"^model has vocab_size, which CausalLM does not take"):
        build_model(sizes, 20)
    assert "vocab_size" in model_fields(CausalLM) and "parent" not in model_fields(CausalLM)
