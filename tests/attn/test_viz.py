"""Tests for attn.viz."""

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from attn import viz

SOURCE = ["i", "love", "you", "<eos>"]
TARGET = ["je", "t'", "aime"]
WEIGHTS = np.array(
    [
        [0.91, 0.03, 0.02, 0.04],
        [0.05, 0.10, 0.80, 0.05],
        [0.01, 0.87, 0.07, 0.05],
    ]
)


def _texts(fig):
    return [text.get_text() for ax in fig.axes for text in ax.texts]


def test_heatmap_returns_figure_with_labelled_axes():
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET, title="demo")
    assert isinstance(fig, Figure)
    heatmap_ax = fig.axes[0]
    fig.canvas.draw()  # tick labels are only filled in on draw
    assert [t.get_text() for t in heatmap_ax.get_xticklabels()] == SOURCE
    assert [t.get_text() for t in heatmap_ax.get_yticklabels()] == TARGET
    assert heatmap_ax.xaxis.get_ticks_position() == "top"
    # A colorbar adds a second axes.
    assert len(fig.axes) == 2
    assert fig.get_suptitle() == "demo"


def test_heatmap_annotates_each_cell_with_two_decimals():
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    texts = _texts(fig)
    assert len(texts) == WEIGHTS.size
    assert sorted(texts) == sorted(f"{w:.2f}" for w in WEIGHTS.ravel())
    assert "0.91" in texts and "0.87" in texts


def test_heatmap_text_colour_contrasts_with_cell():
    # viridis is dark at 0 and light (yellow) at 1.
    fig = viz.attention_heatmap(np.array([[0.0, 1.0]]), column_labels=["a", "b"], row_labels=["x"])
    colours = {text.get_text(): text.get_color() for text in fig.axes[0].texts}
    assert colours == {"0.00": "white", "1.00": "black"}


def test_heatmap_without_annotation():
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET, annotate=False)
    assert _texts(fig) == []


def test_heatmap_skips_annotation_and_shrinks_fonts_for_long_sentences():
    words = [f"w{i}" for i in range(60)]
    weights = np.full((60, 60), 1 / 60)
    fig = viz.attention_heatmap(weights, column_labels=words, row_labels=words)
    assert _texts(fig) == []
    label_size = fig.axes[0].get_xticklabels()[0].get_fontsize()
    short = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    assert label_size < short.axes[0].get_xticklabels()[0].get_fontsize()


def test_heatmap_size_grows_with_words():
    small = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    words = [f"w{i}" for i in range(12)]
    large = viz.attention_heatmap(np.full((12, 12), 1 / 12), column_labels=words, row_labels=words)
    small_w, small_h = small.get_size_inches()
    large_w, large_h = large.get_size_inches()
    assert large_w > small_w and large_h > small_h


def test_heatmap_label_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*3 row labels and 3 column labels"):
        viz.attention_heatmap(WEIGHTS, column_labels=SOURCE[:3], row_labels=TARGET)
    with pytest.raises(ValueError, match=r"\(3, 4\).*2 row labels and 4 column labels"):
        viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET[:2])
    with pytest.raises(ValueError, match=r"\(4,\)"):
        viz.attention_heatmap(np.ones(4), column_labels=SOURCE, row_labels=[])


def test_save_figure_writes_decodable_png(tmp_path):
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    path = tmp_path / "nested" / "dir" / "attention.png"
    written = viz.save_figure(fig, path)
    assert written == str(path)
    assert path.is_file()
    image = matplotlib.image.imread(path)
    width_px, height_px = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert image.shape[:2] == (height_px, width_px)
    assert image.shape[2] in (3, 4)


def test_save_figure_rejects_other_formats(tmp_path):
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    with pytest.raises(ValueError, match=r"'.png'.*attention\.pdf"):
        viz.save_figure(fig, tmp_path / "attention.pdf")


def test_figure_to_array_shape_and_dtype():
    fig = viz.attention_heatmap(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    image = viz.figure_to_array(fig)
    width_px, height_px = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert image.dtype == np.uint8
    assert image.shape == (height_px, width_px, 3)
    # Something was drawn: not a blank white canvas.
    assert image.min() < 200


def test_attention_grid_panels_and_titles():
    weights = np.stack([np.stack([WEIGHTS, WEIGHTS[:, ::-1], WEIGHTS])] * 2)  # [2, 3, 3, 4]
    titles = [[f"layer {layer} head {head}" for head in range(3)] for layer in range(2)]
    fig = viz.attention_grid(
        weights, column_labels=SOURCE, row_labels=TARGET, panel_titles=titles, title="grid"
    )
    assert isinstance(fig, Figure)
    # Six panels plus one shared colorbar.
    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes[:6]] == [t for row in titles for t in row]
    image = viz.figure_to_array(fig)
    assert image.ndim == 3 and image.shape[2] == 3


def test_attention_grid_default_titles_and_validation():
    weights = np.broadcast_to(WEIGHTS, (1, 2, 3, 4))
    fig = viz.attention_grid(weights, column_labels=SOURCE, row_labels=TARGET)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["(0, 0)", "(0, 1)"]
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        viz.attention_grid(WEIGHTS, column_labels=SOURCE, row_labels=TARGET)
    with pytest.raises(ValueError, match="1 rows of 2 titles"):
        viz.attention_grid(weights, column_labels=SOURCE, row_labels=TARGET, panel_titles=[["a"]])
    with pytest.raises(ValueError, match="2 row labels and 4 column labels"):
        viz.attention_grid(weights, column_labels=SOURCE, row_labels=TARGET[:2])


def test_save_and_render_writes_the_pixels_it_returns(tmp_path):
    weights = np.broadcast_to(WEIGHTS, (2, 3, 3, 4))
    fig = viz.attention_grid(weights, column_labels=SOURCE, row_labels=TARGET)
    path = tmp_path / "grid" / "attention.png"
    image = viz.save_and_render(fig, path)
    width_px, height_px = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert image.dtype == np.uint8 and image.shape == (height_px, width_px, 3)
    written = matplotlib.image.imread(path)
    np.testing.assert_array_equal((written[..., :3] * 255).round().astype(np.uint8), image)
    with pytest.raises(ValueError, match=r"'.png'.*attention\.svg"):
        viz.save_and_render(fig, tmp_path / "attention.svg")


def test_attention_grid_labels_only_the_outer_panels():
    weights = np.broadcast_to(WEIGHTS, (2, 2, 3, 4))
    fig = viz.attention_grid(weights, column_labels=SOURCE, row_labels=TARGET)
    fig.canvas.draw()
    top_left, top_right, bottom_left, _ = fig.axes[:4]
    assert [t.get_text() for t in top_left.get_xticklabels()] == SOURCE
    assert [t.get_text() for t in top_left.get_yticklabels()] == TARGET
    assert [t.get_text() for t in top_right.get_xticklabels()] == SOURCE
    assert not top_right.get_yticklabels() and not bottom_left.get_xticklabels()
    assert [t.get_text() for t in bottom_left.get_yticklabels()] == TARGET
