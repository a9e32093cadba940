"""The decoder-only model: causal, cached decoding equal to the full pass, tied embeddings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from experiments.models.causal_lm import CausalLM
from experiments.models.transformer import INSIDE_ATTENTION, POSITIONS
from tests.kind_params import model_kinds

VOCAB = 11
LENGTH = 6


def _model(**options):
    sizes = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32, max_length=8)
    return CausalLM(vocab_size=VOCAB, **{**sizes, **options})


def _tokens():
    return jnp.asarray([[1, 5, 6, 7, 8, 9], [1, 4, 4, 2, 0, 0]], jnp.int32)


@pytest.mark.parametrize("kind", model_kinds(attn.available("causal")))
def test_logits_at_t_do_not_depend_on_later_inputs(kind):
    model = _model(attention=kind)
    tokens = _tokens()
    params = model.init(jax.random.key(0), tokens)
    offset = jnp.zeros((2, LENGTH, 16))

    def logits(offset):
        return model.apply(params, tokens, embedding_offset=offset)[0]

    # jacobian[t, v, position, feature]: logit (t, v) of the first sentence
    # against the embedding at each position.
    jacobian = jax.jit(jax.jacrev(logits))(offset)[..., 0, :, :]
    influence = np.abs(np.asarray(jacobian)).sum(axis=(1, 3))  # [t, position]
    later = np.triu(np.ones((LENGTH, LENGTH), bool), k=1)
    assert np.all(influence[later] == 0.0)
    assert np.all(influence[~later] > 0.0)


def test_changing_later_tokens_leaves_earlier_logits_alone():
    model = _model(positions="relative")
    tokens = _tokens()
    params = model.init(jax.random.key(1), tokens)
    changed = tokens.at[:, 3:].set(10)
    before, after = model.apply(params, tokens), model.apply(params, changed)
    np.testing.assert_array_equal(np.asarray(before[:, :3]), np.asarray(after[:, :3]))
    assert not np.allclose(before[0, 3:], after[0, 3:])


@pytest.mark.parametrize(
    "positions",
    # Positions inside attention are the library's (tests/attn/test_positions.py): slow tier here.
    [pytest.param(p, marks=[pytest.mark.slow] if p in INSIDE_ATTENTION else []) for p in POSITIONS],
)
def test_cached_steps_give_the_teacher_forced_logits(positions):
    model = _model(positions=positions)
    tokens = _tokens()[:1]
    params = model.init(jax.random.key(2), tokens)
    full = model.apply(params, tokens)
    carry, variables = model.apply(params, 1, method=model.init_cache, mutable=["cache"])

    @jax.jit
    def step(carry, cache, token):
        (carry, logits), variables = model.apply(
            {**params, "cache": cache}, carry, token, method=model.decode_step, mutable=["cache"]
        )
        return carry, variables["cache"], logits

    cache = variables["cache"]
    for t in range(LENGTH):
        carry, cache, step_logits = step(carry, cache, tokens[:, t])
        np.testing.assert_allclose(step_logits, full[:, t], rtol=1e-4, atol=1e-5)


def test_tied_embeddings_share_the_table_and_untied_have_an_output_layer():
    tokens = _tokens()
    tied = _model(tie_embeddings=True).init(jax.random.key(0), tokens)["params"]
    untied = _model(tie_embeddings=False).init(jax.random.key(0), tokens)["params"]
    assert "logits" not in tied and "logits" in untied
    assert "cross_attention" not in tied["layer_0"]


@pytest.mark.parametrize("tie", [True, False])
def test_tied_logits_are_the_embedding_table_applied_to_the_output(tie):
    """Doubling the table row of a token absent from the input doubles its tied logit only."""
    tokens = _tokens()
    unused = VOCAB - 1
    assert not (tokens == unused).any()
    model = _model(tie_embeddings=tie)
    params = model.init(jax.random.key(0), tokens)
    logits = np.asarray(model.apply(params, tokens))
    table = params["params"]["embed"]["embedding"]
    changed = jax.tree.map(lambda x: x, params)
    changed["params"]["embed"]["embedding"] = table.at[unused].multiply(2.0)
    new_logits = np.asarray(model.apply(changed, tokens))
    np.testing.assert_array_equal(new_logits[..., :unused], logits[..., :unused])
    if tie:
        assert np.abs(logits[..., unused]).min() > 1e-4
        np.testing.assert_allclose(new_logits[..., unused], 2 * logits[..., unused], rtol=1e-5)
    else:
        np.testing.assert_array_equal(new_logits, logits)
