"""The attend mechanisms against float64 NumPy references, and what only they have.

Every mechanism registered with `attn.register_mechanism` runs here, as the
single-head module `attn.get(kind)`, on fresh random float64 inputs, with
and without padding and, where it declares it, causally; its output must
match `mechanism_reference` (loops over the papers' formulas) to float64
rounding. The approximations (Performer, Nyström) are also held to the
softmax attention they approximate, with an error that must shrink as their
features or landmarks grow.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attn
from attn import block_sparse, performer
from tests.attn import mechanism_reference as ref

# Options small enough that the tiny test lengths exercise the blocks,
# chunks and windows: several causal chunks, windows narrower than the
# sequence, fewer landmarks and projected rows than keys.
TEST_OPTIONS = {
    # 5 blocks of 2: a window of 3, one global block and one random block each.
    "block_sparse": {"block_size": 2, "window_blocks": 3, "global_blocks": 1, "random_blocks": 1},
    "differential": {"lambda_init": 0.5},
    "linear": {"chunk_size": 3, "bidirectional_chunk_size": 3},
    "performer": {"num_features": 16, "chunk_size": 3, "bidirectional_chunk_size": 3},
    "sigmoid": {},
    "sliding_window": {"local_window_size": 2},
    "linformer": {"projected_length": 4, "max_length": 16},
    "nystrom": {"num_landmarks": 3, "pinv_iterations": 6},
}
LENGTH, DIM = 10, 4


def mechanisms():
    return [k for k in attn.available() if attn.lookup(k).form == "attend"]


def test_every_mechanism_has_a_reference_and_test_options():
    assert set(mechanisms()) == set(ref.MECHANISMS) == set(TEST_OPTIONS)


def inputs(seed, batch=2, q_len=LENGTH, k_len=LENGTH):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, q_len, DIM))
    k = rng.normal(size=(batch, k_len, DIM))
    v = rng.normal(size=(batch, k_len, DIM + 1))
    return q, k, v


def reference_options(kind, params, options):
    """What the reference needs of the module: its features or projections."""
    if kind == "performer":
        key = jax.random.key(options.get("feature_seed", 0))
        return {"projection": np.asarray(performer.random_projection(key, 16, DIM), np.float64)}
    if kind == "linformer":
        score = params["params"]["score"]
        return {
            "key_projection": np.asarray(score["key_projection"]["kernel"], np.float64),
            "value_projection": np.asarray(score["value_projection"]["kernel"], np.float64),
        }
    if kind == "block_sparse":
        pattern = block_sparse.block_pattern(
            -(-LENGTH // options["block_size"]),
            window_blocks=options["window_blocks"],
            global_blocks=options["global_blocks"],
            random_blocks=options["random_blocks"],
            seed=options.get("seed", 0),
        )
        return {"pattern": pattern, "block_size": options["block_size"]}
    if kind == "differential":
        score = params["params"]["score"]
        lambdas = {n: np.asarray(a, np.float64) for n, a in score["lambda"].items()}
        norm_scale = np.asarray(score["head_norm"]["scale"], np.float64)
        return {"lambdas": lambdas, "norm_scale": norm_scale, **options}
    if kind == "nystrom":
        iterations = options["pinv_iterations"]
        return {
            "num_landmarks": options["num_landmarks"],
            "pinv": lambda a: numpy_pinv(a, iterations),
        }
    return dict(options)


def numpy_pinv(a, iterations):
    """The Newton-Schulz iteration of Xiong et al. (2021), in float64 NumPy."""
    identity = np.eye(len(a))
    z = a.T / (np.abs(a).sum(1).max() * np.abs(a).sum(0).max())
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * identity - az @ (15 * identity - az @ (7 * identity - az)))
    return z


def run(kind, q, k, v, lengths=None, causal=False, options=None):
    """The mechanism as `MultiHeadAttention` runs it (the `Attend` module, a heads
    axis of one): `(context [batch, q_len, dv], params)`."""
    options = TEST_OPTIONS[kind] if options is None else options
    module = attn.modules.Attend(kind, options)
    heads = lambda a: jnp.asarray(a)[:, None]
    mask = None
    if lengths is not None:
        valid = attn.lengths_to_valid(jnp.asarray(lengths), k.shape[1])
        mask = attn.padding_mask(valid)[:, None]  # [batch, 1, 1, k_len]
    args = heads(q), heads(k), heads(v)
    init = lambda *a: module.init(jax.random.key(0), *a, mask=mask, is_causal=causal)
    params = jax.jit(init)(*args)
    # Compiled: op by op, every small op of the mechanism would compile on its own.
    context = jax.jit(lambda p, *a: module.apply(p, *a, mask=mask, is_causal=causal))(params, *args)
    return np.asarray(context)[:, 0], {"params": {"score": params.get("params", {})}}


@pytest.mark.parametrize("kind", sorted(TEST_OPTIONS))
def test_matches_the_float64_reference_with_and_without_padding(kind):
    lengths = [LENGTH, 6]
    with jax.enable_x64(True):
        q, k, v = inputs(11)
        for padded in (False, True):
            context, params = run(kind, q, k, v, lengths if padded else None)
            extra = reference_options(kind, params, TEST_OPTIONS[kind])
            for b in range(len(q)):
                valid = np.arange(LENGTH) < (lengths[b] if padded else LENGTH)
                want = ref.MECHANISMS[kind](q[b], k[b], v[b], valid, **extra)
                np.testing.assert_allclose(context[b], want, rtol=1e-9, atol=1e-11)
    if attn.lookup(kind).supports("cross"):  # the single-head module returns no weights
        assert (
            attn.get(kind, **TEST_OPTIONS[kind]).init_with_output(
                jax.random.key(0), *(jnp.asarray(a, jnp.float32) for a in (q, k, v))
            )[0][1]
            is None
        )


@pytest.mark.parametrize("kind", [k for k in mechanisms() if attn.lookup(k).supports("causal")])
def test_causal_form_matches_the_reference(kind):
    """is_causal (chunked prefix sums, windows) equals the reference's causal formula."""
    with jax.enable_x64(True):
        q, k, v = inputs(12)
        lengths = [LENGTH, 7]
        out, params = run(kind, q, k, v, lengths, causal=True)
        extra = reference_options(kind, params, TEST_OPTIONS[kind])
        for b, length in enumerate(lengths):
            valid = np.arange(LENGTH) < length
            want = ref.MECHANISMS[kind](q[b], k[b], v[b], valid, causal=True, **extra)
            np.testing.assert_allclose(out[b], want, rtol=1e-9, atol=1e-11)


def test_sliding_window_equals_jax_nn_local_window_size():
    rng = np.random.default_rng(3)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 37, 2, 8)), jnp.float32) for _ in range(3))
    for window, causal in ((5, False), (5, True), (20, False), (0, False)):
        want = jax.nn.dot_product_attention(
            q, k, v, is_causal=causal, local_window_size=(window, 0 if causal else window)
        )
        to_heads = lambda a: a.transpose(0, 2, 1, 3)
        got = attn.sliding_window.sliding_window_attention(
            to_heads(q), to_heads(k), to_heads(v), is_causal=causal, local_window_size=window
        )
        np.testing.assert_allclose(to_heads(got), want, atol=2e-6)


def test_sliding_window_queries_placed_by_offset_match_the_full_pass_and_reference():
    """Decoding's form: queries at `query_offset + i` against every key, dense."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(11)
        q, k, v = (rng.normal(size=(1, 2, 12, 4)) for _ in range(3))
        window = attn.sliding_window.sliding_window_attention
        full = np.asarray(window(q, k, v, is_causal=True, local_window_size=3))
        for start, stop in ((0, 1), (4, 5), (7, 12)):
            got = window(q[:, :, start:stop], k, v, query_offset=start, local_window_size=(3, 0))
            np.testing.assert_allclose(got, full[:, :, start:stop], rtol=1e-12, atol=1e-12)
        # Against the float64 loops, row by row, with the window really cutting keys.
        for h in range(2):
            want = ref.sliding_window(q[0, h], k[0, h], v[0, h], np.ones(12, bool), True, 3)
            np.testing.assert_allclose(full[0, h], want, rtol=1e-9, atol=1e-11)
        wide = np.asarray(window(q, k, v, is_causal=True, local_window_size=12))
        assert np.abs(wide[:, :, 4:] - full[:, :, 4:]).min() > 1e-6
        with pytest.raises(
            ValueError, match=r"positions 10\.\.12 need that many keys; got k_len 12"
        ):
            window(q[:, :, :3], k, v, query_offset=10)


@pytest.mark.slow  # 6 s; test_decode_and_heads.py decodes every kind, this one too
def test_sliding_window_decodes_with_the_cache_as_its_causal_pass():
    rng = np.random.default_rng(12)
    x = jnp.asarray(rng.normal(size=(2, 9, 8)), jnp.float32)
    mha = attn.MultiHeadAttention(2, "sliding_window", options={"local_window_size": 2})
    params = mha.init(jax.random.key(0), x)
    want, _ = mha.apply(params, x, is_causal=True)
    decoder = mha.clone(decode=True)
    _, cache = decoder.apply(params, jnp.zeros_like(x), is_causal=True, mutable=["cache"])
    outputs = []
    for start, stop in ((0, 1), (1, 2), (2, 6), (6, 9)):  # single steps and chunks
        (out, _), cache = decoder.apply({**params, **cache}, x[:, start:stop], mutable=["cache"])
        outputs.append(out)
    np.testing.assert_allclose(jnp.concatenate(outputs, 1), want, atol=2e-5, rtol=2e-5)
    unwindowed, _ = mha.clone(options={"local_window_size": 9}).apply(params, x, is_causal=True)
    assert np.abs(np.asarray(unwindowed - want))[:, 3:].max() > 1e-3


@pytest.mark.slow  # 7 s of random-feature draws (make test-slow, CI)
def test_performer_approaches_softmax_attention_as_features_grow():
    """FAVOR+ is an estimate of softmax attention: its error shrinks with m."""
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(size=(1, 1, 32, 8)) * 0.5 for _ in range(3))
    want = ref.softmax_attention(q[0, 0], k[0, 0], v[0, 0], np.ones(32, bool))
    errors = []
    for m in (8, 64, 1024):
        trials = []
        for seed in range(4):
            projection = performer.random_projection(jax.random.key(seed), m, 8)
            got = performer.favor_attention(q, k, v, projection)
            trials.append(np.abs(np.asarray(got)[0, 0] - want).mean())
        errors.append(np.mean(trials))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.02, errors  # 1024 features: within 2% of softmax on average


@pytest.mark.parametrize("kind", ["linear", "performer"])
def test_kernelised_cross_attention_in_uneven_chunks_matches_the_reference(kind):
    """Queries and keys of different lengths, neither a multiple of the chunk, padded keys."""
    options = {**TEST_OPTIONS[kind], "bidirectional_chunk_size": 4}
    with jax.enable_x64(True):
        q, k, v = inputs(13, q_len=7, k_len=13)
        lengths = [13, 5]
        context, params = run(kind, q, k, v, lengths, options=options)
        extra = reference_options(kind, params, options)
        for b, length in enumerate(lengths):
            want = ref.MECHANISMS[kind](q[b], k[b], v[b], np.arange(13) < length, **extra)
            np.testing.assert_allclose(context[b], want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["linear", "performer"])
@pytest.mark.parametrize("bad", [0, -2, 2.5])
def test_kernelised_chunk_sizes_must_be_positive_integers(kind, bad):
    q, k, v = (jnp.asarray(a, jnp.float32) for a in inputs(15))
    for option in ("chunk_size", "bidirectional_chunk_size"):
        with pytest.raises(ValueError, match=f"^{option} must be a positive integer, got {bad}"):
            attn.get(kind, **{option: bad}).init(jax.random.key(0), q, k, v)


@pytest.mark.parametrize("is_causal", [False, True])
def test_performer_keeps_no_whole_feature_array_for_its_backward_pass(is_causal):
    """The features are formed a chunk at a time, forward and backward: the
    compiled gradient's temporaries stay below two `[length, features]` arrays
    (forming them whole took 5 and 8)."""
    batch, heads, length, dim, features = 1, 2, 1024, 16, 128
    rng = np.random.default_rng(14)
    q, k, v = (
        jnp.asarray(rng.normal(size=(batch, heads, length, dim)), jnp.float32) for _ in "qkv"
    )
    projection = performer.random_projection(jax.random.key(0), features, dim)
    loss = lambda q, k, v: performer.favor_attention(
        q, k, v, projection, is_causal=is_causal, chunk_size=64, bidirectional_chunk_size=64
    ).sum()
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(q, k, v).compile()
    one_feature_array = batch * heads * length * features * 4
    assert compiled.memory_analysis().temp_size_in_bytes < 2 * one_feature_array


def test_random_features_are_orthogonal_within_a_block_and_redrawn_by_key():
    w = np.asarray(performer.random_projection(jax.random.key(0), 12, 8))
    block = w[:8] / np.linalg.norm(w[:8], axis=1, keepdims=True)
    np.testing.assert_allclose(block @ block.T, np.eye(8), atol=1e-5)
    other = np.asarray(performer.random_projection(jax.random.key(1), 12, 8))
    assert not np.allclose(w, other)
    # In a module: the 'features' rng redraws them; without it the seed decides.
    q, k, v = (jnp.asarray(a, jnp.float32) for a in inputs(1))
    module = attn.get("performer", num_features=8)
    first = module.apply({}, q, k, v)[0]
    np.testing.assert_array_equal(first, module.apply({}, q, k, v)[0])
    redrawn = module.apply({}, q, k, v, rngs={"features": jax.random.key(7)})[0]
    assert not np.allclose(first, redrawn)


def test_nystrom_is_softmax_attention_with_a_landmark_per_position():
    with jax.enable_x64(True):
        q, k, v = inputs(6, q_len=8, k_len=8)
        got, _ = run("nystrom", q, k, v, options={"num_landmarks": 8, "pinv_iterations": 40})
        for b in range(len(q)):
            want = ref.softmax_attention(q[b], k[b], v[b], np.ones(8, bool))
            np.testing.assert_allclose(got[b], want, atol=1e-6)
        # Fewer landmarks: an approximation whose error falls as they grow, on
        # smooth sequences (neighbours alike, as segment means assume), 3 seeds.
        errors = {m: [] for m in (4, 8, 16, 32)}
        for seed in range(3):
            q, k, v = inputs(seed, batch=1, q_len=32, k_len=32)
            q, k = np.cumsum(q, 1) / 4, np.cumsum(k, 1) / 4
            want = ref.softmax_attention(q[0], k[0], v[0], np.ones(32, bool))
            for m, found in errors.items():
                options = {"num_landmarks": m, "pinv_iterations": 20}
                found.append(np.abs(run("nystrom", q, k, v, options=options)[0][0] - want).mean())
    mean = [np.mean(errors[m]) for m in sorted(errors)]
    # Seen over 5 seeds: 0.028, 0.0047, 0.0004, 1.1e-6 (20 pinv steps, not yet converged).
    assert mean[0] > mean[1] > mean[2] > mean[3] and mean[3] < 1e-5, mean


@pytest.mark.parametrize("kind", ["linformer", "nystrom"])
def test_non_causal_mechanisms_refuse_causal_with_one_line(kind):
    with pytest.raises(ValueError, match=f"attention kind '{kind}' cannot do causal") as info:
        attn.MultiHeadAttention(num_heads=2, kind=kind).init(
            jax.random.key(0), jnp.ones((1, 4, 8)), is_causal=True
        )
    assert "\n" not in str(info.value) and "linear" in str(info.value)


def test_linformer_names_max_length_when_the_keys_are_longer():
    module = attn.get("linformer", projected_length=2, max_length=4)
    x = jnp.ones((1, 6, 4))
    with pytest.raises(ValueError, match="max_length=4 keys; got 6"):
        module.init(jax.random.key(0), x, x, x)


@pytest.mark.parametrize("option, bad", [("projected_length", 0), ("max_length", -4)])
def test_linformer_sizes_must_be_positive_integers(option, bad):
    """A zero-row projection would train (on nothing) and then fail to checkpoint."""
    x = jnp.ones((1, 6, 4))
    with pytest.raises(ValueError, match=f"^linformer's {option} must be a positive integer"):
        attn.get("linformer", **{option: bad}).init(jax.random.key(0), x, x, x)


def test_sigmoid_weights_are_not_normalised():
    """A single key: softmax would give weight 1; sigmoid gives sigmoid(q.k/sqrt(d) - log 1)."""
    q, k, v = jnp.ones((1, 1, 4)), jnp.ones((1, 1, 4)), jnp.full((1, 1, 1), 3.0)
    context, _ = attn.get("sigmoid").apply({}, q, k, v)
    np.testing.assert_allclose(context[0, 0, 0], 3.0 * jax.nn.sigmoid(2.0), rtol=1e-6)


def test_dot_product_attention_takes_local_window_size_like_jax_nn():
    rng = np.random.default_rng(4)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 19, 4, 8)), jnp.float32) for _ in range(3))
    for window, causal in ((3, False), ((1, 4), False), (6, True)):
        sides = window if isinstance(window, tuple) else (window, 0 if causal else window)
        want = jax.nn.dot_product_attention(q, k, v, is_causal=causal, local_window_size=sides)
        for implementation in ("xla", "blockwise"):
            got = attn.dot_product_attention(
                q, k, v, is_causal=causal, local_window_size=window, implementation=implementation
            )
            np.testing.assert_allclose(got, want, atol=2e-6)
    with pytest.raises(ValueError, match="local_window_size must be a non-negative int"):
        attn.dot_product_attention(q, k, v, local_window_size=-1)


def test_block_pattern_has_its_window_global_and_random_blocks():
    pattern = block_sparse.block_pattern(
        12, window_blocks=3, global_blocks=2, random_blocks=2, seed=4
    )
    assert pattern[:2].all() and pattern[:, :2].all()  # global rows and columns
    for i in range(2, 12):
        window = set(range(i - 1, min(i + 2, 12)))
        assert all(pattern[i, j] for j in window)
        others = set(np.flatnonzero(pattern[i])) - window - {0, 1}
        assert len(others) == 2, (i, others)  # exactly the random blocks
    again = block_sparse.block_pattern(
        12, window_blocks=3, global_blocks=2, random_blocks=2, seed=4
    )
    other = block_sparse.block_pattern(
        12, window_blocks=3, global_blocks=2, random_blocks=2, seed=5
    )
    np.testing.assert_array_equal(pattern, again)
    assert (pattern != other).any()
    # Too few blocks left for the random ones: every block, no error.
    assert block_sparse.block_pattern(
        4, window_blocks=3, global_blocks=1, random_blocks=5, seed=0
    ).all()


def test_block_sparse_equals_masked_softmax_and_never_forms_the_full_logits():
    """Against `attn.dot_product_attention` given the pattern as a dense mask, with a
    partial last block and padding; its program holds no `[length, length]` array."""
    rng = np.random.default_rng(8)
    length, block = 100, 8
    q, k, v = (jnp.asarray(rng.normal(size=(2, 4, length, 16)), jnp.float32) for _ in range(3))
    options = dict(block_size=block, window_blocks=3, global_blocks=1, random_blocks=2, seed=3)
    valid = attn.lengths_to_valid(jnp.asarray([length, 61]), length)
    mask = valid[:, None, None, :]
    got = block_sparse.block_sparse_attention(q, k, v, mask=mask, **options)
    pattern = block_sparse.block_pattern(
        -(-length // block), window_blocks=3, global_blocks=1, random_blocks=2, seed=3
    )
    blocks = np.arange(length) // block
    dense = jnp.asarray(pattern[blocks[:, None], blocks[None, :]])[None, None] & mask
    to_jax_nn = lambda a: a.transpose(0, 2, 1, 3)
    want = attn.dot_product_attention(*(to_jax_nn(a) for a in (q, k, v)), mask=dense)
    np.testing.assert_allclose(to_jax_nn(got), want, atol=2e-6)
    jaxpr = jax.make_jaxpr(
        lambda q, k, v: block_sparse.block_sparse_attention(q, k, v, mask=mask, **options)
    )(q, k, v)
    # The dense form has an array with two axes of the length; this has none.
    long_axes = [
        sum(size >= length for size in var.aval.shape) for eqn in jaxpr.eqns for var in eqn.outvars
    ]
    assert max(long_axes) == 1
    dense_jaxpr = jax.make_jaxpr(lambda q, k: attn.scores.dot(q, k))(q, k)
    assert sum(size >= length for size in dense_jaxpr.eqns[-1].outvars[0].aval.shape) == 2


def test_differential_cancels_what_both_maps_share():
    """Both halves alike and lambda = lambda_init (its vectors zero): the output is
    the normalised softmax attention of one half, times 1 - lambda_init."""
    rng = np.random.default_rng(9)
    half = rng.normal(size=(1, 1, 6, 4))
    q, k = (jnp.asarray(np.concatenate([a, a], -1), jnp.float32) for a in (half, half[:, :, ::-1]))
    v = jnp.asarray(rng.normal(size=(1, 1, 6, 3)), jnp.float32)
    module = attn.modules.Attend("differential", {"lambda_init": 0.3})
    params = module.init(jax.random.key(0), q, k, v)
    params = jax.tree.map(jnp.zeros_like, params)
    params["params"]["head_norm"]["scale"] = jnp.ones(3)
    out = module.apply(params, q, k, v)
    one = (
        ref.softmax_attention(
            np.asarray(q[0, 0, :, :4]),
            np.asarray(k[0, 0, :, :4]),
            np.asarray(v[0, 0]),
            np.ones(6, bool),
            scale=0.5,
        )
        * 0.7
    )  # the two maps' difference, (1 - 0.3) softmax
    want = one / np.sqrt((one**2).mean(1, keepdims=True) + 1e-5) * 0.7
    np.testing.assert_allclose(np.asarray(out)[0, 0], want, rtol=1e-5, atol=1e-6)
