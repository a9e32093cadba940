"""Max pooling by index: the value of jnp.max, the whole gradient to one position."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.models.pooling import max_over_image, max_over_positions


def test_max_over_an_image_is_jnp_max_and_gives_the_maximum_the_whole_gradient():
    x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
    np.testing.assert_array_equal(max_over_image(x), jnp.max(x, axis=(1, 2)))
    grad = jax.grad(lambda x: max_over_image(x).sum())(x)
    np.testing.assert_array_equal(grad, (x == jnp.max(x, axis=(1, 2), keepdims=True)) * 1.0)


def test_padding_is_never_picked_even_where_it_holds_the_largest_value():
    x = jnp.array([[[1.0, -5.0], [9.0, 9.0], [2.0, -7.0]]])  # [1, 3 positions, 2 features]
    valid = jnp.array([[True, False, True]])
    np.testing.assert_array_equal(max_over_positions(x, valid), [[2.0, -5.0]])
    grad = jax.grad(lambda x: max_over_positions(x, valid).sum())(x)
    np.testing.assert_array_equal(grad, [[[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]])


def test_a_tie_sends_the_gradient_to_one_position_not_a_share_to_each():
    x = jnp.array([[[3.0], [3.0], [1.0]]])
    grad = jax.grad(lambda x: max_over_positions(x).sum())(x)
    assert float(grad.sum()) == 1.0 and int((grad > 0).sum()) == 1
