"""The `implementation` option: names, errors, auto's choice, functional and module routing."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import dot_product_forms, implementations


def qkv(rng, batch=2, q_len=9, k_len=11, heads=2, head_dim=8):
    q = rng.normal(size=(batch, q_len, heads, head_dim)).astype(np.float32)
    k = rng.normal(size=(batch, k_len, heads, head_dim)).astype(np.float32)
    v = rng.normal(size=(batch, k_len, heads, head_dim)).astype(np.float32)
    return q, k, v


def test_what_runs_on_cpu_and_gpu():
    assert attn.available_implementations("scaled_dot", "cpu") == [
        "xla",
        "jax_nn",
        "blockwise",
        "auto",
    ]
    assert attn.available_implementations("additive", "cpu") == ["xla", "blockwise", "auto"]
    assert attn.available_implementations("general", "gpu") == ["xla", "blockwise", "auto"]
    assert attn.available_implementations("sigmoid", "gpu") == ["xla", "auto"]
    assert attn.available_implementations("dot", "gpu") == [
        "xla",
        "cudnn",
        "jax_nn",
        "blockwise",
        "pallas",
        "auto",
    ]


def test_errors_list_the_valid_names():
    q, k, v = qkv(np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"Unknown attention implementation 'flash'.*xla"):
        attn.dot_product_attention(q, k, v, implementation="flash")
    with pytest.raises(
        ValueError, match=r"'pallas' needs a gpu backend.*cpu.*xla, jax_nn, blockwise"
    ):
        implementations.check("pallas", "scaled_dot", "cpu")
    with pytest.raises(ValueError, match=r"'cudnn' needs a gpu backend"):
        implementations.check("cudnn", "dot", "cpu")
    with pytest.raises(
        ValueError, match=r"cannot run attention kind 'cosine'.*pallas: dot, scaled_dot"
    ):
        attn.MultiHeadAttention(2, "cosine", implementation="pallas").init(
            jax.random.key(0), jnp.ones((1, 3, 4))
        )


def test_auto_choices():
    def choose(kind, n, backend, head_dim=64, **kw):
        return implementations.choose(
            kind,
            batch_heads=kw.pop("batch_heads", 8),
            q_len=n,
            k_len=n,
            head_dim=head_dim,
            value_dim=kw.pop("value_dim", head_dim),
            dtype=kw.pop("dtype", jnp.float32),
            backend=backend,
            **kw,
        )

    assert choose("scaled_dot", 4096, "cpu") == "blockwise"
    assert choose("scaled_dot", 128, "cpu") == "blockwise"
    # Head size 128, float32, no causal mask: jax.nn's path from 128 x 128 ...
    assert choose("scaled_dot", 128, "cpu", head_dim=128) == "jax_nn"
    assert choose("scaled_dot", 128, "cpu", head_dim=128, is_causal=True) == "blockwise"
    assert choose("scaled_dot", 128, "cpu", head_dim=128, dtype=jnp.bfloat16) == "blockwise"
    assert choose("scaled_dot", 256, "cpu") == "jax_nn"
    assert choose("scaled_dot", 512, "cpu") == "blockwise"
    # ... up to 1024 x 1024 ...
    assert choose("scaled_dot", 512, "cpu", head_dim=128) == "jax_nn"
    assert choose("scaled_dot", 1024, "cpu", head_dim=128) == "jax_nn"
    assert choose("scaled_dot", 2048, "cpu", head_dim=128) == "blockwise"
    # ... but blockwise where causal or bfloat16 (the rule's conditions).
    assert choose("scaled_dot", 512, "cpu", head_dim=128, is_causal=True) == "blockwise"
    assert choose("scaled_dot", 512, "cpu", head_dim=128, dtype=jnp.bfloat16) == "blockwise"
    # jax.nn takes one size for keys and values; past the memory limit neither
    # materialising form is chosen.
    assert choose("scaled_dot", 256, "cpu", value_dim=32) == "xla"
    assert choose("scaled_dot", 256, "cpu", batch_heads=2**15) == "blockwise"
    assert choose("additive", 64, "cpu", features=16) == "xla"
    assert choose("additive", 1024, "cpu", features=16) == "blockwise"
    # Past the memory limit the materialising form is never chosen.
    assert choose("additive", 64, "cpu", features=2**20) == "blockwise"
    assert choose("scaled_dot", 8192, "gpu", dtype=jnp.bfloat16) == "cudnn"
    assert choose("scaled_dot", 8192, "gpu") == "pallas"  # float32: not cuDNN's
    assert choose("scaled_dot", 8192, "gpu", head_dim=72) == "blockwise"
    # general and cosine take the same table, without the jax.nn path they lack.
    assert choose("general", 256, "cpu") == choose("cosine", 256, "cpu") == "xla"
    assert choose("cosine", 512, "cpu", head_dim=128, is_causal=True) == "blockwise"


def test_functional_implementations_agree_and_default_is_unchanged():
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng)
    mask = rng.random((2, 1, 9, 11)) < 0.6
    mask[1, 0, 2] = False
    kwargs = dict(mask=mask, is_causal=True, key_value_seq_lengths=np.array([11, 4], np.int32))
    default = attn.dot_product_attention(q, k, v, **kwargs)
    np.testing.assert_array_equal(
        attn.dot_product_attention(q, k, v, **kwargs, implementation="xla"), default
    )

    def grads(impl):
        loss = lambda q, k, v: (
            attn.dot_product_attention(q, k, v, **kwargs, implementation=impl) ** 2
        ).sum()
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)

    want = grads("xla")
    for impl in ("blockwise", "auto"):
        got = attn.dot_product_attention(q, k, v, **kwargs, implementation=impl)
        np.testing.assert_allclose(got, default, atol=2e-5, rtol=2e-5)
    for g, w in zip(grads("blockwise"), want):
        np.testing.assert_allclose(g, w, atol=5e-5, rtol=5e-5)


def test_jax_nn_wrapper_zeroes_queries_with_no_key():
    """The cuDNN route's fix-up, checked with jax.nn's XLA path on CPU."""
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng)
    mask = np.ones((2, 2, 9, 11), bool)
    mask[0, 1, 4] = False
    kv_lens = np.array([11, 0], np.int32)
    for kwargs in (dict(mask=mask, is_causal=True), dict(key_value_seq_lengths=kv_lens)):
        got = dot_product_forms.jax_nn_attention(q, k, v, implementation="xla", **kwargs)
        want = attn.dot_product_attention(q, k, v, **kwargs)
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    assert (np.asarray(got)[1] == 0).all()


@pytest.mark.parametrize("kind", ["scaled_dot", "dot"])
def test_modules_route_and_return_no_weights(kind):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(2, 9, 8)), jnp.float32)
    mha = attn.MultiHeadAttention(2, kind, implementation="xla")
    params = mha.init(jax.random.key(0), x)
    want, weights = mha.apply(params, x, is_causal=True)
    fast = attn.MultiHeadAttention(2, kind, implementation="blockwise")
    got, none = jax.jit(lambda p, x: fast.apply(p, x, is_causal=True))(params, x)
    assert none is None and weights.shape == (2, 2, 9, 9)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)

    q, k, v = (
        jnp.asarray(rng.normal(size=(2, n, d)), jnp.float32) for n, d in ((3, 8), (7, 8), (7, 5))
    )
    mask = attn.padding_mask(attn.lengths_to_valid(jnp.array([7, 2]), 7))
    want, _ = attn.get(kind).apply({}, q, k, v, mask=mask)
    got, none = attn.get(kind, implementation="auto").apply({}, q, k, v, mask=mask)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)


def test_dropout_needs_the_xla_implementation():
    x = jnp.ones((1, 4, 8))
    mha = attn.MultiHeadAttention(2, dropout_rate=0.1, implementation="blockwise")
    params = mha.init(jax.random.key(0), x, deterministic=True)
    out, _ = mha.apply(params, x, deterministic=True)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match=r"dropout_rate=0.1.*'blockwise' never forms"):
        mha.apply(params, x, deterministic=False, rngs={"dropout": jax.random.key(1)})


def _faster_forms():
    """(kind, implementation) for every registered form that runs here."""
    backend = jax.default_backend()
    return [
        (kind, name)
        for kind in attn.available()
        for name, impl in attn.lookup(kind).implementations.items()
        if impl.runs_on(backend)
    ]


@pytest.mark.parametrize("kind, implementation", _faster_forms())
def test_every_faster_form_equals_the_plain_one_with_its_parameters(kind, implementation):
    """Output and gradients (of the inputs and the kind's parameters) of each
    registered form equal the plain form's, under a padding mask, causal
    masking and a bias, with the parameters the plain form created."""
    rng = np.random.default_rng(13)
    x = jnp.asarray(rng.normal(size=(2, 7, 8)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(2, 9, 8)), jnp.float32)
    mask = attn.padding_mask(attn.lengths_to_valid(jnp.array([9, 4]), 9))
    bias = jnp.asarray(rng.normal(size=(1, 2, 7, 9)), jnp.float32)
    plain = attn.MultiHeadAttention(2, kind)
    fast = attn.MultiHeadAttention(2, kind, implementation=implementation)
    params = plain.init(jax.random.key(0), x, y, mask=mask)

    def loss(module, params, x, y, causal):
        out, _ = module.apply(params, x, y, mask=mask, bias=bias, is_causal=causal)
        return (out**2).sum(), out

    for causal in (False, True):
        grads = {}
        for name, module in (("plain", plain), ("fast", fast)):
            f = jax.jit(
                jax.value_and_grad(loss, argnums=(1, 2, 3), has_aux=True), static_argnums=(0, 4)
            )
            grads[name] = f(module, params, x, y, causal)
        (_, want), want_grads = grads["plain"]
        (_, got), got_grads = grads["fast"]
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
        for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
            np.testing.assert_allclose(a, b, atol=5e-5, rtol=5e-5)
    assert jax.tree.structure(got_grads[0]) == jax.tree.structure(params)


def _program_text(fn, *args) -> str:
    """The optimised HLO of `fn`'s forward+backward, without names and source locations."""
    grad = jax.jit(jax.grad(lambda *a: fn(*a).sum(), argnums=(0, 1, 2)))
    text = grad.lower(*args).compile().as_text()
    text = re.sub(r"HloModule \S+", "HloModule program", text)
    text = re.sub(r",?\s*(metadata=\{[^}]*\}|stack_frame_id=\d+)", "", text)
    debug_info = r"^(\d+ |FileNames|FunctionNames|FileLocations|StackFrames)"
    return "\n".join(line for line in text.splitlines() if not re.match(debug_info, line))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU rules of the auto table")
@pytest.mark.parametrize(
    "n, head_dim, causal", [(128, 128, False), (256, 64, True), (1024, 128, False)]
)
def test_where_auto_takes_jax_nn_it_compiles_to_jax_nn_s_own_program(n, head_dim, causal):
    # Parity by construction where the table picks jax.nn's path: the same
    # compiled forward+backward, not only the same numbers.
    q = jax.random.normal(jax.random.key(0), (1, n, 1, head_dim))
    ours = lambda q, k, v: attn.dot_product_attention(
        q, k, v, is_causal=causal, implementation="auto"
    )
    peer = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal)
    assert _program_text(ours, q, q, q) == _program_text(peer, q, q, q)
