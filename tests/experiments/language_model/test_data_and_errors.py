"""Data loading and batching, and the one-line errors raised before anything compiles."""

import jax
import numpy as np
import pytest

import attn
from experiments.common.errors import ConfigError
from experiments.language_model import data
from experiments.language_model.train import train_and_evaluate
from experiments.text.tokenizers import BOS_ID, EOS_ID, PAD_ID, WordVocabulary


@pytest.fixture
def no_compiling(monkeypatch):
    """Makes any jax.jit call fail, so a test shows its error comes first."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the error")

    monkeypatch.setattr(jax, "jit", refuse)


def _raises(config, workdir, *needles):
    with pytest.raises(ConfigError) as caught:
        train_and_evaluate(config, str(workdir))
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not (workdir / "config.json").exists()
    return message


def test_missing_text_file_names_the_path(tiny_config, tmp_path, no_compiling):
    tiny_config.data.update(name="text", path=str(tmp_path / "absent.txt"))
    message = _raises(tiny_config, tmp_path / "run", "absent.txt")
    assert "not found" in message


def test_empty_text_file_names_the_path(tiny_config, tmp_path, no_compiling):
    path = tmp_path / "empty.txt"
    path.write_text("")
    tiny_config.data.update(name="text", path=str(path))
    assert "empty" in _raises(tiny_config, tmp_path / "run", str(path))


def test_text_file_without_a_usable_line_names_the_path(tiny_config, tmp_path, no_compiling):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n")
    tiny_config.data.update(name="text", path=str(path))
    assert "no usable line" in _raises(tiny_config, tmp_path / "run", str(path))


def test_d_model_not_divisible_by_heads(tiny_config, tmp_path, no_compiling):
    tiny_config.model.update(d_model=18, num_heads=4)
    _raises(tiny_config, tmp_path / "run", "d_model=18", "num_heads=4")


def test_unknown_attention_kind_lists_the_valid_ones(tiny_config, tmp_path, no_compiling):
    tiny_config.model.attention = "telepathic"
    # The kinds the language model can run: causal, padded, cached decoding.
    valid = ", ".join(attn.available("causal", "padding", "decode"))
    _raises(tiny_config, tmp_path / "run", "'telepathic'", valid)


def test_unknown_data_name(tiny_config, tmp_path, no_compiling):
    tiny_config.data.name = "wikipedia"
    _raises(tiny_config, tmp_path / "run", "'wikipedia'", "toy_french", "text")


def test_a_path_with_the_toy_corpus_is_refused(tiny_config, tmp_path, no_compiling):
    tiny_config.data.path = "novel.txt"
    _raises(tiny_config, tmp_path / "run", "novel.txt", "data.name=text")


def test_text_file_lines_are_tokenized_and_split(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("".join(f"Le chat n°{i} dort, l'ami!\n\n" for i in range(40)))
    sentences = data.read_text_file(str(path), "fr")
    assert len(sentences) == 40 and sentences[0] == "le chat n ° 0 dort , l' ami !"
    splits = data.split_sentences(sentences, seed=0, validation_size=100, test_size=2)
    assert [len(splits[s]) for s in data.SPLITS] == [34, 4, 2]
    assert sorted(sum(splits.values(), [])) == sorted(sentences)


def test_batches_shift_targets_mask_padding_and_resume_exactly():
    tokenizer = WordVocabulary(words=("<pad>", "<s>", "</s>", "<unk>", "a", "b"))
    encoded = data.encode(["a b a b a", "b", "a a"] * 4, tokenizer, max_length=4)
    assert encoded.truncated == 4
    np.testing.assert_array_equal(encoded.tokens[1], [BOS_ID, 5, EOS_ID, PAD_ID, PAD_ID])
    batch = data.make_batch(encoded.tokens[1:2])
    np.testing.assert_array_equal(batch["inputs"][0], [BOS_ID, 5, EOS_ID, PAD_ID])
    np.testing.assert_array_equal(batch["targets"][0], [5, EOS_ID, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(batch["mask"][0], [True, True, False, False])

    last = data.eval_batches(encoded, batch_size=5)[-1]
    assert last["inputs"].shape == (5, 4) and last["mask"][2:].sum() == 0

    iterator = data.TrainIterator(encoded, batch_size=5, seed=3)
    for _ in range(3):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator)["inputs"] for _ in range(3)]
    resumed = data.TrainIterator(encoded, batch_size=5, seed=3)
    resumed.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(next(resumed)["inputs"], want)
