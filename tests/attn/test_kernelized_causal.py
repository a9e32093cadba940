"""The causal kernelised form's written backward pass against JAX's own derivative.

`attn.kernelized_causal` differentiates causal linear attention and Performer
by hand; `causal_backward="autodiff"` is the same forward pass differentiated
by JAX (itself held to finite differences and to the float64 references in
test_every_kind.py and test_mechanisms.py). The two must agree to float64
rounding on every input the form takes: padded keys, a length that is not a
multiple of the chunk, several batches and heads, and the constants the
feature maps close over (Performer's projection).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn import kernelized, linear_attention, performer

BATCH, HEADS, LENGTH, DIM = 2, 3, 11, 4


def inputs(seed, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    q, k = (jnp.asarray(rng.normal(size=(BATCH, HEADS, LENGTH, DIM)), dtype) for _ in "qk")
    v = jnp.asarray(rng.normal(size=(BATCH, HEADS, LENGTH, DIM + 1)), dtype)
    return q, k, v


def padding(lengths):
    """`[batch, 1, 1, LENGTH]`: keys at or after each row's length are padding."""
    return (np.arange(LENGTH) < np.asarray(lengths)[:, None])[:, None, None, :]


def performer_loss(backward, mask, chunk=3):
    def loss(q, k, v, projection):
        out = performer.favor_attention(
            q,
            k,
            v,
            projection,
            mask=mask,
            is_causal=True,
            chunk_size=chunk,
            causal_backward=backward,
        )
        # Weights that differ per output entry, so a wrong d_out routing shows.
        return jnp.sum(jnp.sin(out) * jnp.arange(out.size).reshape(out.shape) / out.size)

    return loss


def linear_loss(backward, mask, chunk=3):
    def loss(q, k, v):
        out = linear_attention.linear_attention(
            q, k, v, mask=mask, is_causal=True, chunk_size=chunk, causal_backward=backward
        )
        return jnp.sum(jnp.sin(out) * jnp.arange(out.size).reshape(out.shape) / out.size)

    return loss


# Chunks: uneven (the last one padded), even with padded keys, one chunk for all.
@pytest.mark.parametrize("chunk, lengths", [(3, None), (4, [LENGTH, 6]), (LENGTH, [LENGTH, 6])])
def test_performer_written_backward_equals_autodiff(chunk, lengths):
    mask = None if lengths is None else padding(lengths)
    with jax.enable_x64(True):
        q, k, v = inputs(0)
        projection = performer.random_projection(jax.random.key(1), 7, DIM).astype(jnp.float64)
        args = (q, k, v, projection)
        grad = lambda backward: jax.jit(
            jax.value_and_grad(performer_loss(backward, mask, chunk), argnums=(0, 1, 2, 3))
        )(*args)
        (value, written), (want_value, autodiff) = grad("written"), grad("autodiff")
        np.testing.assert_allclose(value, want_value, rtol=1e-12)
        for name, got, want in zip("qkvw", written, autodiff):
            assert np.abs(np.asarray(want)).max() > 1e-3, name  # a gradient to compare
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)


def test_linear_written_backward_equals_autodiff():
    mask = padding([LENGTH, 6])
    with jax.enable_x64(True):
        q, k, v = inputs(2)
        grad = lambda backward: jax.jit(jax.grad(linear_loss(backward, mask), argnums=(0, 1, 2)))(
            q, k, v
        )
        for name, got, want in zip("qkv", grad("written"), grad("autodiff")):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=name)


def test_padded_keys_get_no_gradient_and_a_query_that_sees_no_key_gives_no_nan():
    """Keys padded at the start: the first queries see no key (zero output, zero
    gradient), and the padded keys' values and keys get no gradient. (The query
    at position 4 sees one key, weighted 1 whatever the query: no gradient either.)"""
    mask = (np.arange(LENGTH) >= 4)[None, None, None, :]
    q, k, v = inputs(3, jnp.float32)
    with jax.debug_nans(True), jax.debug_infs(True):
        out = jax.jit(
            lambda q, k, v: linear_attention.linear_attention(
                q, k, v, mask=mask, is_causal=True, chunk_size=3
            )
        )(q, k, v)
        d_q, d_k, d_v = jax.jit(jax.grad(linear_loss("written", mask), argnums=(0, 1, 2)))(q, k, v)
    assert (np.asarray(out)[:, :, :4] == 0).all()
    assert (np.asarray(d_q)[:, :, :4] == 0).all() and np.abs(np.asarray(d_q)[:, :, 5:]).min() > 0
    assert (np.asarray(d_k)[:, :, :4] == 0).all() and (np.asarray(d_v)[:, :, :4] == 0).all()


def test_written_backward_composes_with_vmap_and_keeps_bfloat16_gradients():
    q, k, v = (a.astype(jnp.bfloat16) for a in inputs(4, jnp.float32))
    loss = linear_loss("written", None)
    grads = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1, 2))))(q[None], k[None], v[None])
    assert all(
        g.dtype == jnp.bfloat16 and g.shape == (1, *a.shape) for g, a in zip(grads, (q, k, v))
    )
    want = jax.grad(linear_loss("autodiff", None), argnums=(0, 1, 2))(q, k, v)
    for got, expected in zip(grads, want):
        np.testing.assert_allclose(
            np.asarray(got[0], np.float32), np.asarray(expected, np.float32), rtol=0.05, atol=0.02
        )


def test_forward_mode_needs_the_autodiff_backward():
    q, k, v = inputs(5, jnp.float32)
    f = lambda backward: (
        lambda q: linear_attention.linear_attention(
            q, k, v, is_causal=True, chunk_size=3, causal_backward=backward
        )
    )
    _, tangent = jax.jvp(f("autodiff"), (q,), (jnp.ones_like(q),))
    assert np.abs(np.asarray(tangent)).max() > 0
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(f("written"), (q,), (jnp.ones_like(q),))


def test_an_unknown_backward_is_refused_naming_the_valid_ones():
    q, k, v = inputs(6, jnp.float32)
    with pytest.raises(
        ValueError, match="^causal_backward must be one of written, autodiff; got 'x'"
    ):
        kernelized.kernel_attention(
            q, k, v, jax.nn.relu, jax.nn.relu, is_causal=True, causal_backward="x"
        )
