"""Attention pictures over images: window weights placed on the image, the overlay figure."""

import numpy as np
import pytest

from experiments.vision import pictures


def test_window_weights_land_on_the_feature_map_cut_at_borders():
    k, heads = 3, 2
    weights = np.zeros((heads, 4, 5, k * k))
    weights[:, 0, 0] = np.arange(9) / 36.0  # corner query: 4 of 9 inside
    heat = pictures.weights_on_grid("local", weights, (4, 5), (0, 0))
    assert heat.shape == (heads, 4, 5)
    np.testing.assert_allclose(heat[0, :2, :2], np.array([[4, 5], [7, 8]]) / 36.0)
    assert heat[0].sum() == pytest.approx((4 + 5 + 7 + 8) / 36.0)
    global_weights = np.random.default_rng(0).random((heads, 6, 6))
    heat = pictures.weights_on_grid("global", global_weights, (2, 3), (1, 2))
    np.testing.assert_allclose(heat.reshape(heads, 6), global_weights[:, 5])
    assert pictures.query_cell((27, 0), (28, 28), (7, 7)) == (6, 0)


def test_overlay_picture_is_a_png(tmp_path):
    from attn import viz

    image = np.random.default_rng(0).integers(0, 256, (8, 8, 1), dtype=np.uint8)
    heats = np.random.default_rng(1).random((2, 3, 4, 4))
    figure = pictures.attention_overlay(image, [(1, 2), (6, 6)], heats, title="t")
    path = viz.save_figure(figure, tmp_path / "overlay.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(figure.axes) == 2 * 3 + 1  # panels and the colorbar
    with pytest.raises(ValueError, match="heats must be"):
        pictures.attention_overlay(image, [(1, 2)], heats)
