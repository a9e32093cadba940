"""A new kind is one function and one registration line: then it is everywhere.

Registers throwaway kinds (a score and an attend-form mechanism) and checks
that the library, the shared lists every experiment and benchmark reads, and
the capability checks pick them up with no other edit.
"""

import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import implementations


@pytest.fixture
def throwaway_score():
    @attn.register("negative_distance", same_features=True)
    def negative_distance(query, key):
        """Closer keys score higher."""
        return -jnp.sum((query[..., :, None, :] - key[..., None, :, :]) ** 2, -1)

    yield "negative_distance"
    attn.unregister("negative_distance")


@pytest.fixture
def throwaway_mechanism():
    @attn.register_mechanism("mean_of_values", capabilities=("padding", "cross"))
    def mean_of_values(query, key, value, *, mask=None, is_causal=False, scale=1.0):
        """Every query gets the mean of the valid values, times `scale`."""
        valid = jnp.ones(key.shape[:-1], value.dtype)[:, :, None, :]
        if mask is not None:
            valid = valid * jnp.broadcast_to(mask, valid.shape[:2] + mask.shape[-2:])
        weights = valid / jnp.maximum(valid.sum(-1, keepdims=True), 1.0)
        out = jnp.einsum("bhqk,bhkd->bhqd", weights, value) * scale
        return jnp.broadcast_to(out, query.shape[:3] + value.shape[-1:])

    yield "mean_of_values"
    attn.unregister("mean_of_values")


def test_a_registered_score_is_listed_described_and_runs_everywhere(throwaway_score):
    name = throwaway_score
    assert name in attn.available() and name in attn.available("causal", "decode", "weights")
    assert name in attn.describe()
    assert attn.available_implementations(name, "cpu") == ["xla", "auto"]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    mha = attn.MultiHeadAttention(2, name)
    params = mha.init(jax.random.key(0), x)
    out, weights = mha.apply(params, x, is_causal=True)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert (weights[:, :, 0, 1:] == 0).all()
    auto, _ = mha.clone(implementation="auto").apply(params, x, is_causal=True)
    np.testing.assert_allclose(auto, out, rtol=1e-6)


def test_an_attend_mechanism_runs_with_the_shared_projections(throwaway_mechanism):
    name = throwaway_mechanism
    spec = attn.lookup(name)
    assert spec.form == "attend" and spec.options == {"scale": 1.0}
    assert name in attn.available("padding") and name not in attn.available("causal")
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    memory = jnp.asarray(rng.normal(size=(2, 5, 4)), jnp.float32)
    mask = jnp.array([[True] * 5, [True, True, False, False, False]])[:, None, None, :]
    mha = attn.MultiHeadAttention(2, name, options={"scale": 2.0})
    params = mha.init(jax.random.key(0), x, memory, mask=mask)
    out, weights = mha.apply(params, x, memory, mask=mask)
    assert weights is None and out.shape == (2, 3, 4)
    # Padded memory positions change nothing.
    changed = memory.at[1, 2:].set(100.0)
    np.testing.assert_allclose(mha.apply(params, x, changed, mask=mask)[0], out, atol=1e-5)
    p = params["params"]
    v = jnp.einsum("bkf,fhd->bkhd", memory, p["value"]["kernel"]) + p["value"]["bias"]
    mean = jnp.stack([v[0].mean(0), v[1, :2].mean(0)]) * 2.0  # [batch, heads, head_dim]
    want = jnp.einsum("bhd,hdf->bf", mean, p["out"]["kernel"]) + p["out"]["bias"]
    np.testing.assert_allclose(out, jnp.broadcast_to(want[:, None], out.shape), atol=1e-5)


def test_asking_a_mechanism_for_what_it_lacks_names_the_kinds_that_can(throwaway_mechanism):
    x = jnp.ones((1, 3, 4))
    mha = attn.MultiHeadAttention(2, throwaway_mechanism)
    with pytest.raises(ValueError, match=r"cannot do causal masking.*kinds that can: .*scaled_dot"):
        mha.init(jax.random.key(0), x, is_causal=True)
    with pytest.raises(ValueError, match=r"cannot do cached decoding"):
        mha.clone(decode=True).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"cannot do any boolean mask"):
        mha.init(jax.random.key(0), x, mask=jnp.ones((1, 1, 3, 3), bool))
    with pytest.raises(ValueError, match=r"cannot do a float bias"):
        mha.init(jax.random.key(0), x, bias=jnp.zeros((1, 1, 3, 3)))


def test_capability_checks_name_the_unknown():
    with pytest.raises(ValueError, match=r"unknown capability 'telepathy'"):
        attn.check_capabilities("dot", ["telepathy"])
    with pytest.raises(ValueError, match=r"unknown capabilities \['sparse'\]"):
        attn.register_mechanism("bad", capabilities=("sparse",))(lambda q, k, v: v)


def test_implementations_name_no_kind_and_forms_register_with_their_kinds():
    table = implementations.kinds_by_implementation()
    assert table["blockwise"] == ["additive", "cosine", "dot", "general", "scaled_dot"]
    assert table["pallas"] == table["cudnn"] == table["jax_nn"] == ["dot", "scaled_dot"]
    # No branch on a kind's name: no comparison with, or membership test of, one.
    tree = ast.parse(open(implementations.__file__).read())
    kinds = set(attn.available())
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                for leaf in ast.walk(side):
                    assert not (isinstance(leaf, ast.Constant) and leaf.value in kinds), (
                        f"implementations.py compares with kind {leaf.value!r} (line {node.lineno})"
                    )
    assert attn.lookup("scaled_dot").supports("linear_memory")
    assert attn.lookup("cosine").supports("linear_memory")  # its blockwise form
    assert not attn.lookup("sigmoid").supports("linear_memory")


def test_a_faster_form_registers_with_its_kind_and_auto_uses_its_table(throwaway_score):
    calls = []

    @attn.register_implementation(throwaway_score, "blockwise")
    def fast(query, key, value, *, mask=None, bias=None, is_causal=False):
        calls.append(query.shape)
        return jnp.zeros(query.shape[:3] + value.shape[-1:])

    attn.set_auto(throwaway_score, {"default": ((float("inf"), float("inf"), ("blockwise",)),)})
    assert attn.available_implementations(throwaway_score, "cpu") == ["xla", "blockwise", "auto"]
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 3, 4)), jnp.float32)
    mha = attn.MultiHeadAttention(2, throwaway_score, implementation="auto")
    params = mha.init(jax.random.key(0), x)
    out, weights = mha.apply(params, x)
    # auto ran the registered form (zeros through the output projection, whose bias is 0).
    assert calls and weights is None and (out == 0).all()
    plain, _ = mha.clone(implementation="xla").apply(params, x)
    assert not (plain == 0).all()
    with pytest.raises(ValueError, match="names unregistered"):
        attn.set_auto(throwaway_score, {"cpu": ((1, 1, ("pallas",)),)})


def test_readme_shows_the_registry_capability_table():
    """README's table of what every kind can do is the registry's, not a copy that drifts."""
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    assert attn.registry.capability_table() in readme


def test_registration_defaults_descriptions_and_options():
    """What a registration line leaves out: the defaults it gets, and what is read off `fn`."""

    def undocumented(query, key):
        return jnp.einsum("bhqd,bhkd->bhqk", query, key)

    def windowed(query, key, value, *, width=2, mask=None, is_causal=False):
        """First line of the description.

        More lines, not shown.
        """
        return value

    attn.register("undocumented")(undocumented)
    attn.register_mechanism("windowed", capabilities=("cross",))(windowed)
    try:
        score, mechanism = attn.lookup("undocumented"), attn.lookup("windowed")
        assert (score.same_features, score.has_params) == (False, False)
        assert (mechanism.same_features, mechanism.has_params) == (True, False)
        assert score.description == "undocumented"  # no docstring: the name
        assert mechanism.description == "First line of the description."
        # Options are the keyword-only parameters after the inputs, the reserved ones left out.
        assert mechanism.options == {"width": 2} and score.options == {}
        assert score.hidden_per_pair({}, 8) == 1  # a score forms one float per pair and head
        lines = {line.split()[0]: line for line in attn.describe().splitlines()}
        assert "params=no " in lines["undocumented"] and "options: -" in lines["undocumented"]
        assert "options: width=2" in lines["windowed"]
        assert "params=yes" in lines["additive"] and "options: features=None" in lines["additive"]
    finally:
        attn.unregister("undocumented")
        attn.unregister("windowed")


def test_registry_entries_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        attn.lookup("dot").has_params = True
    form = next(iter(attn.lookup("scaled_dot").implementations.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        form.backends = ("tpu",)


def test_implementations_run_where_they_say_and_reserved_names_are_refused():
    from attn.registry import Implementation

    anywhere = Implementation("anywhere", lambda *a, **k: None)
    gpu_only = Implementation("gpu_only", lambda *a, **k: None, backends=("gpu",))
    assert anywhere.runs_on("cpu") and anywhere.runs_on("tpu")
    assert gpu_only.runs_on("gpu") and not gpu_only.runs_on("cpu")
    existing = next(iter(attn.lookup("scaled_dot").implementations))
    for name in ("xla", "auto", existing):
        with pytest.raises(
            ValueError, match=f"implementation '{name}' of 'scaled_dot' is reserved"
        ):
            attn.register_implementation("scaled_dot", name)(lambda *a, **k: None)


def test_auto_rules_name_only_known_conditions(throwaway_score):
    rule = (float("inf"), float("inf"), ("xla",), {"causal": True, "length": 3})
    with pytest.raises(ValueError, match=r"unknown conditions \['length'\]; valid: causal, dtypes"):
        attn.set_auto(throwaway_score, {"cpu": (rule,)})
