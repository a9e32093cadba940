"""The translation Transformer: cached decoding, causality, padding, decoders, configs.

Most tests run eagerly: for models this small that is faster than compiling
each configuration.
"""

import zlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import attn
from experiments.models.transformer import (
    INSIDE_ATTENTION,
    POSITIONS,
    TRANSFORMER_PRESETS,
    Transformer,
    build_transformer,
    count_layers,
)
from experiments.text.token_ids import EOS_ID as EOS
from experiments.text.token_ids import PAD_ID as PAD
from experiments.translation import decode
from tests.kind_params import model_kinds

SOURCE = jnp.array([[5, 6, 7, 8, EOS, 0], [9, 5, EOS, 0, 0, 0], [4, EOS, 0, 0, 0, 0]], jnp.int32)
TARGET_IN = jnp.array([[1, 8, 9, 10, 11], [1, 12, 13, 0, 0], [1, 7, 0, 0, 0]], jnp.int32)
SOURCE_VOCAB, TARGET_VOCAB, MAX_LENGTH = 20, 24, 8


def tiny(**overrides) -> Transformer:
    options = dict(
        d_model=16,
        num_heads=4,
        num_encoder_layers=1,
        num_decoder_layers=2,
        d_ff=32,
        max_length=MAX_LENGTH,
        max_relative_distance=3,
    )
    options.update(overrides)
    return Transformer(SOURCE_VOCAB, TARGET_VOCAB, **options)


def init(model, seed=0):
    """Parameters, with relative-position tables drawn at unit scale so that a
    wrong distance in the cached path shows in the logits."""
    params = model.init(jax.random.key(seed), SOURCE, TARGET_IN)
    key = jax.random.key(seed + 100)

    def randomize(path, leaf):
        if any(getattr(p, "key", None) == "relative_bias" for p in path):
            return jax.random.normal(
                jax.random.fold_in(key, zlib.crc32(str(path).encode())), leaf.shape
            )
        return leaf

    return jax.tree_util.tree_map_with_path(randomize, params)


def step_through(model, params, source, target_input):
    """Cached decoding fed the teacher-forced inputs: logits `[batch, T, vocab]`,
    weights `[batch, T, S]`, and the final carry."""
    memory, carry = decode.start(model, params, source)
    logits, weights = [], []
    step = jax.jit(decode.step, static_argnums=0)  # one compiled step, not op by op
    for t in range(target_input.shape[1]):
        carry, (step_logits, step_weights) = step(model, params, carry, target_input[:, t], memory)
        logits.append(step_logits)
        weights.append(step_weights)
    return jnp.stack(logits, 1), jnp.stack(weights, 1), carry


# Every position scheme and both LayerNorm placements; every kind is the next test's.
@pytest.mark.parametrize(
    "positions, pre_layer_norm",
    [
        # Positions inside attention are the library's, tested in tests/attn/test_positions.py;
        # here they run in the slow tier.
        # "learned" too (7 s): the sinusoidal row keeps the cache's path in make test.
        pytest.param(
            p,
            i % 2 == 1,
            marks=[pytest.mark.slow] if p in (*INSIDE_ATTENTION, "learned") else [],
        )
        for i, p in enumerate(POSITIONS)
    ],
)
def test_cached_decoding_reproduces_teacher_forcing(positions, pre_layer_norm):
    model = tiny(attention="scaled_dot", positions=positions, pre_layer_norm=pre_layer_norm)
    params = init(model)
    logits, weights = jax.jit(model.apply)(params, SOURCE, TARGET_IN)
    step_logits, step_weights, _ = step_through(model, params, SOURCE, TARGET_IN)
    assert logits.shape == (3, 5, TARGET_VOCAB) and weights.shape == (3, 5, 6)
    for t in range(TARGET_IN.shape[1]):
        np.testing.assert_allclose(step_logits[:, t], logits[:, t], atol=1e-4)
        np.testing.assert_allclose(step_weights[:, t], weights[:, t], atol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert (weights[1, :, 3:] == 0).all()  # source padding gets no attention


@pytest.mark.parametrize("attention", model_kinds(attn.available("causal", "decode", "cross")))
def test_every_registered_kind_decodes_like_teacher_forcing(attention):
    # Relative positions are a bias on the logits: for the kinds that take one.
    positions = "relative" if attn.lookup(attention).supports("bias") else "sinusoidal"
    model = tiny(attention=attention, positions=positions, pre_layer_norm=True)
    params = init(model)
    logits, _ = jax.jit(model.apply)(params, SOURCE, TARGET_IN)
    step_logits, _, _ = step_through(model, params, SOURCE, TARGET_IN)
    np.testing.assert_allclose(step_logits, logits, atol=1e-4)


def test_carry_is_batch_major_and_steps_past_the_cache_are_flagged():
    model = tiny()
    params = init(model)
    memory, carry = decode.start(model, params, SOURCE)
    for leaf in jax.tree.leaves((memory, carry)):
        assert leaf.ndim == 0 or leaf.shape[0] == SOURCE.shape[0]
    self_cache = carry["cache"]["decoder_0"]["self_attention"]
    assert self_cache["cached_key"].shape == (3, MAX_LENGTH, 4, 4)
    # The encoder memory's keys and values are projected once, into the cache.
    cross_cache = carry["cache"]["decoder_0"]["cross_attention"]
    assert cross_cache["cached_key"].shape == (3, SOURCE.shape[1], 4, 4)
    tokens = jnp.full((3,), 7, jnp.int32)
    for _ in range(MAX_LENGTH):
        carry, (logits, _) = decode.step(model, params, carry, tokens, memory)
        assert jnp.isfinite(logits).all()
    assert int(carry["cache"]["decoder_0"]["self_attention"]["cache_index"]) == MAX_LENGTH
    _, (logits, _) = decode.step(model, params, carry, tokens, memory)
    assert jnp.isnan(logits).all()  # the cache is full: no silently wrong logits


@pytest.mark.parametrize(
    "options", [dict(positions="relative"), dict(positions="learned", pre_layer_norm=True)]
)
def test_no_output_depends_on_later_target_inputs(options):
    """d(output t) / d(embedded input s) is zero exactly when s > t, or s < t is padding.

    Each derivative is a Jacobian-vector product along a random direction at
    one input position: zero where the Jacobian block is, and almost surely
    not elsewhere.
    """
    model = tiny(**options)
    params = init(model)
    projection = jax.random.normal(jax.random.key(3), (TARGET_VOCAB,))

    def outputs(offset):
        logits = model.apply(
            params, SOURCE, TARGET_IN, target_offset=offset, method=Transformer.forward
        )["logits"]
        return logits @ projection  # [batch, T]

    batch, length = TARGET_IN.shape
    offset = jnp.zeros((batch, length, 16))
    real = np.asarray(TARGET_IN) != PAD
    directions = jnp.stack(
        [
            offset.at[:, s].set(jax.random.normal(jax.random.key(s), (batch, 16)))
            for s in range(length)
        ]
    )
    # One compiled program for every input position, not one eager pass each.
    derivatives = jax.jit(jax.vmap(lambda d: jax.jvp(outputs, (offset,), (d,))[1]))(directions)
    for s, derivative in enumerate(np.asarray(derivatives)):  # [batch, T] each
        t = np.arange(length)[None, :]
        expected = (t == s) | ((t > s) & real[:, s : s + 1])
        assert (derivative[~expected] == 0).all(), s
        assert (derivative[expected] != 0).all(), s


@pytest.mark.parametrize(
    "options", [dict(positions="relative", attention="additive"), dict(positions="sinusoidal")]
)
def test_source_padding_changes_nothing(options):
    model = tiny(**options)
    params = init(model)
    short, padded = SOURCE[:, :5], SOURCE  # every sentence ends by position 5
    logits, weights = model.apply(params, short, TARGET_IN)
    padded_logits, padded_weights = model.apply(params, padded, TARGET_IN)
    np.testing.assert_allclose(padded_logits, logits, atol=1e-5)
    np.testing.assert_allclose(padded_weights[..., :5], weights, atol=1e-6)
    assert (padded_weights[..., 5] == 0).all()


def sequence_log_prob(model, params, source, tokens):
    """Teacher-forced log-probability of `tokens` up to and including the first EOS."""
    target_in = jnp.concatenate([jnp.ones((source.shape[0], 1), jnp.int32), tokens[:, :-1]], 1)
    logits, _ = model.apply(params, source, target_in)
    log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
    ended = jnp.cumsum(tokens == EOS, axis=1) - (tokens == EOS)
    return jnp.sum(jnp.where(ended > 0, 0.0, log_probs), axis=1)


# Beam search itself is also checked on the RNN in make test (test_rnn.py); here it reorders
# the Transformer's cache: the slow tier.
@pytest.mark.slow
def test_greedy_and_beam_search_run_on_the_cache():
    decoders = decode
    # One layer each keeps the three compilations short.
    model = tiny(attention="general", positions="relative", num_decoder_layers=1)
    params = init(model, seed=1)
    steps = MAX_LENGTH - 1
    greedy, greedy_weights = decoders.greedy_decode(model, params, SOURCE, max_steps=steps)
    beam, beam_weights, _ = decoders.beam_search(
        model, params, SOURCE, max_steps=steps, beam_size=1
    )
    np.testing.assert_array_equal(greedy, beam)
    np.testing.assert_allclose(greedy_weights, beam_weights, atol=1e-6)
    # Greedy picks the argmax of the teacher-forced logits on its own output.
    target_in = jnp.concatenate([jnp.ones((3, 1), jnp.int32), greedy[:, :-1]], 1)
    logits, weights = model.apply(params, SOURCE, target_in)
    live = (jnp.cumsum(greedy == EOS, axis=1) - (greedy == EOS)) == 0
    assert (jnp.argmax(logits, -1) == greedy)[live].all()
    np.testing.assert_allclose(greedy_weights[live], weights[live], atol=1e-5)
    # Beams are reordered every step, so the cache must follow its hypothesis.
    beam, _, scores = decoders.beam_search(
        model, params, SOURCE, max_steps=steps, beam_size=3, length_penalty=0.0
    )
    beam_log_prob = sequence_log_prob(model, params, SOURCE, beam)
    np.testing.assert_allclose(scores, beam_log_prob, atol=1e-4)
    assert (beam_log_prob >= sequence_log_prob(model, params, SOURCE, greedy) - 1e-5).all()


def test_attention_maps_and_rollout():
    model = tiny(num_encoder_layers=2)
    params = init(model)
    _, weights = jax.jit(model.apply)(params, SOURCE, TARGET_IN)
    maps = model.apply(params, SOURCE, TARGET_IN, method=Transformer.attention_maps)
    assert maps.shape == (3, 2, 4, 5, 6)  # [batch, layers, heads, T, S]
    np.testing.assert_allclose(maps[:, -1].mean(1), weights, atol=1e-6)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    for through_encoder in (False, True):
        to_source, to_target = model.apply(
            params,
            SOURCE,
            TARGET_IN,
            through_encoder=through_encoder,
            method=Transformer.attention_rollout,
        )
        assert to_source.shape == (3, 5, 6) and to_target.shape == (3, 5, 5)
        np.testing.assert_allclose(to_source.sum(-1) + to_target.sum(-1), 1.0, rtol=1e-5)
        assert (to_source[1, :, 3:] == 0).all() and (to_source[2, :, 2:] == 0).all()
        assert (jnp.triu(to_target, 1) == 0).all()  # only earlier target inputs
        assert (to_source > 0).any(-1).all()


def test_count_layers_reads_the_parameter_names():
    model = tiny(num_encoder_layers=3, num_decoder_layers=2, pre_layer_norm=True)
    shapes = jax.eval_shape(model.init, jax.random.key(0), SOURCE, TARGET_IN)
    assert count_layers(shapes["params"]) == {"encoder": 3, "decoder": 2}
    assert count_layers({"encoder_norm": 0, "embed": 0}) == {"encoder": 0, "decoder": 0}


def test_shared_embeddings_tie_source_target_and_output():
    model = Transformer(
        SOURCE_VOCAB, SOURCE_VOCAB, d_model=16, num_heads=4, num_encoder_layers=1,
        num_decoder_layers=1, d_ff=32, max_length=MAX_LENGTH, share_embeddings=True,
    )  # fmt: skip
    params = init(model)
    names = set(params["params"])
    assert "shared_embed" in names
    assert not names & {"source_embed", "target_embed", "logits"}
    logits, _ = model.apply(params, SOURCE, TARGET_IN)  # compared exactly with eager calls
    table = params["params"]["shared_embed"]["embedding"]

    def with_row(token):
        new = jax.tree.map(lambda x: x, params)
        # A random direction: a constant one would vanish against post-LN outputs,
        # which have zero mean.
        direction = jax.random.normal(jax.random.key(token), table.shape[1:])
        new["params"]["shared_embed"]["embedding"] = table.at[token].add(direction)
        return model.apply(new, SOURCE, TARGET_IN)[0]

    unused = 19  # in neither sentence: only its output column moves
    changed = with_row(unused)
    assert not np.allclose(changed[..., unused], logits[..., unused])
    np.testing.assert_allclose(np.delete(changed, unused, -1), np.delete(logits, unused, -1))
    source_only = 4  # the encoder reads the same table
    changed = np.delete(with_row(source_only), source_only, -1)
    assert not np.allclose(changed[2], np.delete(logits, source_only, -1)[2])
    target_only = 13  # target input of sentence 1 at position 2, and the decoder too
    changed = np.delete(with_row(target_only), target_only, -1)
    np.testing.assert_allclose(changed[1, :2], np.delete(logits, target_only, -1)[1, :2])
    assert not np.allclose(changed[1, 2:], np.delete(logits, target_only, -1)[1, 2:])


def test_tied_output_is_the_target_embedding_transpose_and_decodes():
    # With attention dropout too, which once broke decoding: the cache was made
    # without the deterministic flag the dropout needs.
    dropout = dict(attention_dropout_rate=0.1, dropout_rate=0.1)
    untied = tiny(**dropout)
    params = init(untied)
    tied = tiny(tie_output_embedding=True, **dropout)
    tied_params = {"params": {k: v for k, v in params["params"].items() if k != "logits"}}
    # The tied model's tree is the untied one's without the output projection.
    assert jax.tree.structure(init(tied)) == jax.tree.structure(tied_params)
    table = params["params"]["target_embed"]["embedding"]  # [vocab, d_model]
    params["params"]["logits"] = {"kernel": table.T, "bias": jnp.zeros(TARGET_VOCAB)}
    want, _ = untied.apply(params, SOURCE, TARGET_IN)
    got, _ = tied.apply(tied_params, SOURCE, TARGET_IN)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Cached decoding goes through the same projection.
    stepped, _, _ = step_through(tied, tied_params, SOURCE, TARGET_IN)
    valid = np.asarray(TARGET_IN != PAD)
    np.testing.assert_allclose(np.asarray(stepped)[valid], np.asarray(got)[valid], atol=1e-5)


def test_word_dropout_drops_whole_tokens_in_training_only():
    rate = 0.5
    model = tiny(word_dropout_rate=rate, dropout_rate=0.0)
    params = init(model)
    plain, _ = tiny().apply(params, SOURCE, TARGET_IN)
    evaluated, _ = model.apply(params, SOURCE, TARGET_IN)
    np.testing.assert_array_equal(evaluated, plain)  # off when deterministic

    source = jnp.tile(SOURCE, (40, 1))
    target_in = jnp.tile(TARGET_IN, (40, 1))
    _, state = model.apply(
        params, source, target_in, deterministic=False,
        rngs={"dropout": jax.random.key(3)}, capture_intermediates=True,
    )  # fmt: skip
    dropped = state["intermediates"]["word_dropout"]["__call__"]
    assert len(dropped) == 2  # source, then target
    for kept, tokens, table in zip(dropped, (source, target_in), ("source_embed", "target_embed")):
        rows = params["params"][table]["embedding"][tokens] / (1 - rate)  # inverted dropout
        zero = np.all(np.asarray(kept) == 0, axis=-1)
        np.testing.assert_allclose(np.asarray(kept)[~zero], np.asarray(rows)[~zero], rtol=1e-6)
        assert 0.4 < zero.mean() < 0.6  # each token with probability 0.5
    # Dropped tokens keep their positions: what the first layer reads, less the
    # kept token embedding, is the sinusoid of its position in every row.
    layer_input = np.asarray(state["intermediates"]["dropout"]["__call__"][0])  # rate 0: identity
    positions = layer_input - np.asarray(dropped[0]) * np.sqrt(16)
    np.testing.assert_allclose(
        positions, np.broadcast_to(positions[:1], positions.shape), atol=1e-5
    )
    assert np.all(np.abs(positions[0, 1:]).max(-1) > 0.1)


def config(**overrides):
    fields = dict(TRANSFORMER_PRESETS["tiny"], attention="scaled_dot")
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(d_model=30),
            r"d_model=30 is not divisible by num_heads=4; valid num_heads .*\[1, 2,",
        ),
        (
            dict(positions="rotary"),
            r"unknown positions 'rotary'; valid: alibi, learned, relative, rope, sin",
        ),
        (dict(attention="bahdanau"), r"unknown attention kind 'bahdanau'; valid: .*additive"),
        (dict(share_embeddings=True), r"share_embeddings needs equal vocabularies.*20.*24"),
        (dict(num_decoder_layers=0), r"num_decoder_layers must be a positive integer, got 0"),
    ],
)
def test_bad_configs_raise_one_line(overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        build_transformer(config(**overrides), SOURCE_VOCAB, TARGET_VOCAB)
    assert "\n" not in str(error.value)
    fields = {k: v for k, v in config(**overrides).items()}
    with pytest.raises(ValueError, match=message):  # also when built directly
        jax.eval_shape(
            Transformer(SOURCE_VOCAB, TARGET_VOCAB, **fields).init,
            jax.random.key(0),
            SOURCE,
            TARGET_IN,
        )


def test_presets_build_and_base_has_the_papers_size():
    tiny_model = build_transformer(config(), SOURCE_VOCAB, TARGET_VOCAB, jnp.bfloat16)
    assert tiny_model.d_model == 64 and tiny_model.dtype == jnp.bfloat16
    base = dict(TRANSFORMER_PRESETS["base"], attention="scaled_dot", share_embeddings=True)
    model = build_transformer(ml_collections.ConfigDict(base), 37000, 37000)
    shapes = jax.eval_shape(model.init, jax.random.key(0), SOURCE, TARGET_IN)
    count = sum(x.size for x in jax.tree.leaves(shapes))
    assert 60e6 < count < 66e6  # the paper reports 65M with a 37k shared vocabulary


def test_bfloat16_computation_keeps_float32_parameters():
    # Shapes and dtypes only: tracing checks the plumbing without compiling.
    model = tiny(dtype=jnp.bfloat16)
    params = jax.eval_shape(model.init, jax.random.key(0), SOURCE, TARGET_IN)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    logits, weights = jax.eval_shape(model.apply, params, SOURCE, TARGET_IN)
    assert logits.dtype == jnp.bfloat16 and weights.shape == (3, 5, 6)
    memory, carry = jax.eval_shape(lambda p: decode.start(model, p, SOURCE), params)
    new_carry, (step_logits, _) = jax.eval_shape(
        lambda p, c, m: decode.step(model, p, c, TARGET_IN[:, 0], m), params, carry, memory
    )
    assert step_logits.dtype == jnp.bfloat16
    assert jax.tree.map(lambda x: (x.shape, x.dtype), new_carry) == jax.tree.map(
        lambda x: (x.shape, x.dtype), carry
    )  # a scan carry must keep its type
