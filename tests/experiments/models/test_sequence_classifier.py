"""The sequence classifier, alone and as a dual encoder of pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.models.sequence_classifier import SequenceClassifier

rng = np.random.default_rng(0)
FIRST = jnp.asarray(rng.integers(1, 20, (3, 7)), jnp.int32).at[0, 5:].set(0)
SECOND = jnp.asarray(rng.integers(1, 20, (3, 9)), jnp.int32).at[1, 4:].set(0)


def model():
    return SequenceClassifier(
        vocab_size=20, num_classes=2, d_model=8, num_heads=2, num_layers=1, d_ff=16
    )


@pytest.mark.slow  # 7 s; the retrieval task's tiny run in make test goes through the same pair
def test_a_pair_is_both_documents_through_one_encoder_then_u_v_product_difference():
    classifier = model()
    params = jax.jit(classifier.init)(jax.random.key(0), FIRST, SECOND)
    assert params["params"]["hidden"]["kernel"].shape == (4 * 8, 8)
    assert "layer_1" not in params["params"]  # one encoder, shared by both sides
    u = classifier.apply(params, FIRST, method=SequenceClassifier.encode)
    v = classifier.apply(params, SECOND, method=SequenceClassifier.encode)
    head = params["params"]
    features = jnp.concatenate([u, v, u * v, u - v], -1)
    hidden = jax.nn.gelu(features @ head["hidden"]["kernel"] + head["hidden"]["bias"])
    want = hidden @ head["classes"]["kernel"] + head["classes"]["bias"]
    np.testing.assert_allclose(classifier.apply(params, FIRST, SECOND), want, atol=1e-5)
    # Order matters (u - v), and each side's padding is its own.
    swapped = classifier.apply(params, SECOND, FIRST)
    assert not np.allclose(swapped, want, atol=1e-4)
    padded = jnp.pad(SECOND, ((0, 0), (0, 3)))
    np.testing.assert_allclose(classifier.apply(params, FIRST, padded), want, atol=1e-5)


@pytest.mark.slow  # 6 s; an option off by default, its config check is in make test
def test_max_pooling_is_each_features_maximum_over_the_valid_positions_only():
    classifier = SequenceClassifier(
        vocab_size=20, num_classes=2, d_model=8, num_heads=2, num_layers=1, d_ff=16, pooling="max"
    )
    params = classifier.init(jax.random.key(0), FIRST)
    pooled, state = classifier.apply(
        params, FIRST, method=SequenceClassifier.encode, capture_intermediates=True
    )
    encoded = np.asarray(state["intermediates"]["final_norm"]["__call__"][0])  # [3, 7, 8]
    valid = np.asarray(FIRST) != 0
    want = np.stack([encoded[i][valid[i]].max(0) for i in range(len(encoded))])
    np.testing.assert_allclose(pooled, want, atol=1e-6)
    # Padding added at the end changes nothing.
    padded = jnp.pad(FIRST, ((0, 0), (0, 4)))
    np.testing.assert_allclose(
        classifier.apply(params, padded), classifier.apply(params, FIRST), atol=1e-5
    )
