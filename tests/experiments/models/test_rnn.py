"""The translation model and its decoders."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.models.rnn import (
    Seq2Seq,
    attention_variants,
    load_pretrained_embeddings,
)
from experiments.text.token_ids import EOS_ID as EOS
from experiments.translation import decode
from tests.kind_params import model_kinds

SOURCE = jnp.array([[5, 6, 7, 8, EOS, 0], [9, 5, EOS, 0, 0, 0], [4, EOS, 0, 0, 0, 0]], jnp.int32)
TARGET_IN = jnp.array([[1, 8, 9, 10, 11], [1, 12, 13, 0, 0], [1, 7, 0, 0, 0]], jnp.int32)


def small_model(attention="additive", **overrides):
    options = dict(embedding_size=8, encoder_size=16, decoder_sizes=(16, 12), attention=attention)
    options.update(overrides)
    return Seq2Seq(20, 30, **options)


@pytest.mark.parametrize("attention", model_kinds(attention_variants()))
def test_step_by_step_decoding_reproduces_teacher_forcing(attention):
    model = small_model(attention, cell="lstm", bidirectional=True)
    params = model.init(jax.random.key(0), SOURCE, TARGET_IN)
    logits, weights = model.apply(params, SOURCE, TARGET_IN)
    memory, carry = model.apply(params, SOURCE, method=Seq2Seq.encode)
    step = jax.jit(functools.partial(model.apply, method=Seq2Seq.decode_step))  # compiled once
    for t in range(TARGET_IN.shape[1]):
        carry, (step_logits, step_weights) = step(params, carry, TARGET_IN[:, t], memory)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
        np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)
    if attention != "none":
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        assert (weights[1, :, 3:] == 0).all()  # padding after EOS gets no attention


@pytest.mark.parametrize("attention", ["none", "additive", "multihead"])
def test_attention_changes_the_context_and_none_ignores_source_positions(attention):
    """New per-position encoder states, the same final state: only attention sees them."""
    model = small_model(attention)
    params = model.init(jax.random.key(0), SOURCE, TARGET_IN)
    memory, carry = model.apply(params, SOURCE, method=Seq2Seq.encode)
    rng = np.random.default_rng(0)
    moved = dict(memory)
    for name in ("states", "keys"):
        moved[name] = jnp.asarray(rng.normal(size=memory[name].shape), memory[name].dtype)
    token = TARGET_IN[:, 0]
    _, (logits, weights) = model.apply(params, carry, token, memory, method=Seq2Seq.decode_step)
    _, (moved_logits, moved_weights) = model.apply(
        params, carry, token, moved, method=Seq2Seq.decode_step
    )
    if attention == "none":
        assert (weights == 0).all() and (moved_weights == 0).all()
        np.testing.assert_array_equal(logits, moved_logits)
    else:
        assert np.abs(np.asarray(logits - moved_logits)).max() > 1e-3
        assert np.abs(np.asarray(weights - moved_weights)).max() > 1e-3


def test_beam_of_one_equals_greedy():
    model = small_model("general")
    params = model.init(jax.random.key(1), SOURCE, TARGET_IN)
    greedy, greedy_weights = decode.greedy_decode(model, params, SOURCE, max_steps=9)
    beam, beam_weights, _ = decode.beam_search(model, params, SOURCE, max_steps=9, beam_size=1)
    np.testing.assert_array_equal(greedy, beam)
    np.testing.assert_allclose(greedy_weights, beam_weights, atol=1e-6)


def sequence_log_prob(model, params, source, tokens):
    """Log-probability of decoding `tokens` (up to and including EOS)."""
    target_in = jnp.concatenate([jnp.ones((source.shape[0], 1), jnp.int32), tokens[:, :-1]], 1)
    logits, _ = model.apply(params, source, target_in)
    log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
    ended = jnp.cumsum(tokens == EOS, axis=1) - (tokens == EOS)  # positions after the first EOS
    return jnp.sum(jnp.where(ended > 0, 0.0, log_probs), axis=1)


def test_beam_search_scores_are_true_log_probs_and_beat_greedy():
    model = small_model("additive")
    params = model.init(jax.random.key(2), SOURCE, TARGET_IN)
    greedy, _ = decode.greedy_decode(model, params, SOURCE, max_steps=7)
    beam, _, scores = decode.beam_search(
        model, params, SOURCE, max_steps=7, beam_size=4, length_penalty=0.0
    )
    beam_log_prob = sequence_log_prob(model, params, SOURCE, beam)
    np.testing.assert_allclose(scores, beam_log_prob, atol=1e-4)
    assert (beam_log_prob >= sequence_log_prob(model, params, SOURCE, greedy) - 1e-5).all()


def test_strip_stops_at_eos():
    assert decode.strip(np.array([[5, 6, EOS, 7], [EOS, 0, 0, 0], [4, 4, 4, 4]])) == [
        [5, 6],
        [],
        [4, 4, 4, 4],
    ]


def test_unknown_variant_and_cell():
    with pytest.raises(ValueError, match="valid variants: .*additive.*none"):
        small_model("bahdanau").init(jax.random.key(0), SOURCE, TARGET_IN)
    with pytest.raises(ValueError, match="valid cells"):
        small_model(cell="rnn").init(jax.random.key(0), SOURCE, TARGET_IN)


class _Words:
    """A two-word vocabulary stand-in for pretrained-embedding loading."""

    vocab = {"love": 4, "you": 5}

    def encode(self, word, max_length=None):
        return [self.vocab.get(word, 3)], False


def test_pretrained_embeddings_from_a_text_file(tmp_path):
    model = small_model()
    params = model.init(jax.random.key(0), SOURCE, TARGET_IN)
    path = tmp_path / "vectors.txt"
    path.write_text(
        "3 8\nlove "
        + " ".join(["0.5"] * 8)
        + "\nyou "
        + " ".join(["-1"] * 8)
        + "\nunseen "
        + " ".join(["2"] * 8)
        + "\n"
    )
    new, found = load_pretrained_embeddings(params, str(path), _Words(), side="source")
    table = new["params"]["encoder"]["embed"]["embedding"]
    assert found == 2
    np.testing.assert_allclose(table[4], 0.5)
    np.testing.assert_allclose(table[5], -1.0)
    np.testing.assert_array_equal(table[6], params["params"]["encoder"]["embed"]["embedding"][6])
    path.write_text("love 1 2 3\n")
    with pytest.raises(ValueError, match="embedding size is 8"):
        load_pretrained_embeddings(params, str(path), _Words(), side="target")
    with pytest.raises(FileNotFoundError):
        load_pretrained_embeddings(params, str(tmp_path / "missing.txt"), _Words(), side="source")
