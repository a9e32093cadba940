"""Pictures of attention weights.

Only matplotlib's object API is used (``Figure`` with an Agg canvas, never
``pyplot``), so making a picture touches no global state, needs no display
and leaves nothing open once the figure is dropped. This module depends on
numpy and matplotlib (and Pillow, which matplotlib needs) only, both imported
when a picture is made: `import attn` does not need them.

  * :func:`attention_heatmap` -- one weight matrix, annotated cell by cell.
  * :func:`attention_grid` -- a grid of matrices, e.g. layers x heads.
  * :func:`save_figure` -- write a figure as PNG.
  * :func:`figure_to_array` -- render to a uint8 [H, W, 3] image array.
  * :func:`save_and_render` -- both of the above, drawing the figure once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

_DPI = 100
_MISSING = "attn.viz draws with matplotlib: pip install attn[experiments] (or matplotlib)"


def _matplotlib():
    """matplotlib's (Figure, FigureCanvasAgg, Normalize), imported on first use."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_MISSING) from error
    return Figure, FigureCanvasAgg, Normalize


# Up to this many words per axis, cells keep their full size and can carry a
# readable "0.00" label; beyond it cells shrink and fonts shrink with them.
_MAX_WORDS_FULL_SIZE = 40
_CELL_INCHES = 0.5
_GRID_CELL_INCHES = 0.3
# Past 40 full-size cells the plot area stops growing (cells shrink instead),
# keeping images of long sentences at a size TensorBoard and viewers handle.
_MAX_AXIS_INCHES = _MAX_WORDS_FULL_SIZE * _CELL_INCHES
_LABEL_FONT_SIZE = 10.0
_MIN_FONT_SIZE = 4.0
_ANNOTATION_FONT_SIZE = 7.0
# Relative luminance above which a cell counts as light and gets dark text.
_LIGHT_CELL_LUMINANCE = 0.5


def _check_weights_and_labels(
    weights: np.ndarray, column_labels: Sequence[str], row_labels: Sequence[str]
) -> None:
    rows, cols = weights.shape[-2:]
    if len(column_labels) != cols or len(row_labels) != rows:
        raise ValueError(
            f"weights have shape {weights.shape} (rows={rows}, cols={cols}) but got "
            f"{len(row_labels)} row labels and {len(column_labels)} column labels"
        )


def _color_limits(weights: np.ndarray) -> tuple[float, float]:
    """Colour scale: fixed [0, 1] for probabilities so pictures compare."""
    low, high = float(np.nanmin(weights)), float(np.nanmax(weights))
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    if low == high:
        return low - 0.5, high + 0.5
    return low, high


def _font_size(num_words: int) -> float:
    if num_words <= _MAX_WORDS_FULL_SIZE:
        return _LABEL_FONT_SIZE
    return max(_MIN_FONT_SIZE, _LABEL_FONT_SIZE * _MAX_WORDS_FULL_SIZE / num_words)


def _axis_inches(num_cells: int, cell_inches: float) -> float:
    return min(_MAX_AXIS_INCHES, num_cells * cell_inches)


def _new_figure(width_inches: float, height_inches: float) -> Figure:
    Figure, FigureCanvasAgg, _ = _matplotlib()
    fig = Figure(figsize=(width_inches, height_inches), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _label_axes(ax, column_labels, row_labels, *, show_columns=True, show_rows=True) -> None:
    """Source words on top (columns), target words down the side (rows)."""
    column_font = _font_size(len(column_labels))
    row_font = _font_size(len(row_labels))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    # Ticks are invisible (length 0), so a panel without labels needs none:
    # every tick costs a text measurement when the layout is computed.
    if show_columns:
        ax.set_xticks(np.arange(len(column_labels)))
        ax.set_xticklabels(list(column_labels), rotation=60, ha="left", fontsize=column_font)
    else:
        ax.set_xticks([])
    if show_rows:
        ax.set_yticks(np.arange(len(row_labels)))
        ax.set_yticklabels(list(row_labels), fontsize=row_font)
    else:
        ax.set_yticks([])
    ax.tick_params(length=0)


def _text_color(cmap, norm: Normalize, value: float) -> str:
    red, green, blue, _ = cmap(norm(value))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > _LIGHT_CELL_LUMINANCE else "white"


def attention_heatmap(
    weights: np.ndarray,
    *,
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    title: str | None = None,
    annotate: bool = True,
    cmap: str = "viridis",
) -> Figure:
    """Heatmap of one attention matrix with word labels.

    Args:
      weights: float array [rows, cols]; row t is the attention of target
        word t over the source words.
      column_labels: ``cols`` source words, shown along the top.
      row_labels: ``rows`` target words, shown down the left side.
      title: optional figure title.
      annotate: write each cell's weight with two decimals, in black or
        white depending on how light the cell is. Skipped automatically when
        either side has more than 40 words, where cells are too small to read.
      cmap: a matplotlib colormap name.

    Returns:
      A ``matplotlib.figure.Figure`` (Agg canvas attached) whose size grows
      with the number of words. Weights within [0, 1] use a fixed [0, 1]
      colour scale so pictures are comparable; other values use their range.

    Raises:
      ValueError: if ``weights`` is not 2-D or the label counts do not match
        its shape.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a [rows, cols] array, got shape {weights.shape}")
    _check_weights_and_labels(weights, column_labels, row_labels)
    if weights.size == 0:
        raise ValueError(f"weights must hold at least one cell, got shape {weights.shape}")
    rows, cols = weights.shape
    width = _axis_inches(cols, _CELL_INCHES) + 2.5  # room for row labels and colorbar
    height = _axis_inches(rows, _CELL_INCHES) + 1.5  # room for rotated column labels
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    low, high = _color_limits(weights)
    norm = _matplotlib()[2](vmin=low, vmax=high)
    image = ax.imshow(weights, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    _label_axes(ax, column_labels, row_labels)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    if title is not None:
        fig.suptitle(title)

    readable = max(rows, cols) <= _MAX_WORDS_FULL_SIZE
    if annotate and readable:
        colormap = image.get_cmap()
        for row in range(rows):
            for col in range(cols):
                value = weights[row, col]
                ax.text(
                    col,
                    row,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=_ANNOTATION_FONT_SIZE,
                    color=_text_color(colormap, norm, value),
                )
    return fig


def attention_grid(
    weights: np.ndarray,
    *,
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    panel_titles: Sequence[Sequence[str]] | None = None,
    title: str | None = None,
    cmap: str = "viridis",
) -> Figure:
    """A grid of attention heatmaps sharing labels and one colour scale.

    Args:
      weights: float array [panel_rows, panel_cols, T, S], e.g. layers x
        heads x target words x source words.
      column_labels: S source words, shown on top of the first panel row.
      row_labels: T target words, shown left of the first panel column.
      panel_titles: optional [panel_rows][panel_cols] titles; defaults to
        ``"(r, c)"`` indices.
      title: optional figure title.
      cmap: a matplotlib colormap name.

    Returns:
      A ``matplotlib.figure.Figure`` with one shared colorbar.

    Raises:
      ValueError: if ``weights`` is not 4-D, or the label counts or panel
        titles do not match its shape.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 4:
        raise ValueError(
            f"weights must be a [panel_rows, panel_cols, T, S] array, got shape {weights.shape}"
        )
    _check_weights_and_labels(weights, column_labels, row_labels)
    panel_rows, panel_cols, rows, cols = weights.shape
    if weights.size == 0:
        raise ValueError(
            f"weights must hold at least one panel of one cell, got shape {weights.shape}"
        )
    if panel_titles is not None:
        title_shape = (len(panel_titles), tuple(len(row) for row in panel_titles))
        if title_shape != (panel_rows, (panel_cols,) * panel_rows):
            raise ValueError(
                f"panel_titles must be {panel_rows} rows of {panel_cols} titles to match weights "
                f"of shape {weights.shape}, got rows of lengths {list(title_shape[1])}"
            )

    panel_width = _axis_inches(cols, _GRID_CELL_INCHES) + 0.5
    panel_height = _axis_inches(rows, _GRID_CELL_INCHES) + 0.5
    fig = _new_figure(panel_cols * panel_width + 2.0, panel_rows * panel_height + 1.5)
    axes = fig.subplots(panel_rows, panel_cols, squeeze=False)
    low, high = _color_limits(weights)
    norm = _matplotlib()[2](vmin=low, vmax=high)
    image = None
    for r in range(panel_rows):
        for c in range(panel_cols):
            ax = axes[r, c]
            image = ax.imshow(
                weights[r, c], cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
            )
            _label_axes(ax, column_labels, row_labels, show_columns=(r == 0), show_rows=(c == 0))
            ax.set_title(
                panel_titles[r][c] if panel_titles is not None else f"({r}, {c})", fontsize=9
            )
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    if title is not None:
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> str:
    """Writes ``fig`` as a PNG file, creating parent directories.

    Args:
      fig: the figure.
      path: destination ending in ``.png``.

    Returns:
      The path written, as a string.

    Raises:
      ValueError: if ``path`` does not end in ``.png``.
    """
    path = _png_path(path)
    fig.savefig(path, format="png", dpi=fig.dpi)
    return path


def _png_path(path: str | os.PathLike) -> str:
    """``path`` as a string once it is known to end in .png, its directory created."""
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(
            f"pictures are written as PNG files; path must end in '.png', got {path!r}"
        )
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return path


def figure_to_array(fig: Figure) -> np.ndarray:
    """Renders ``fig`` to an RGB image, e.g. for TensorBoard.

    Args:
      fig: the figure.

    Returns:
      uint8 array [H, W, 3] with H, W the figure size in pixels.
    """
    FigureCanvasAgg = _matplotlib()[1]
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3]


def save_and_render(fig: Figure, path: str | os.PathLike) -> np.ndarray:
    """Writes ``fig`` as a PNG file and returns it as an RGB image.

    Drawing a figure of many panels costs far more than encoding the PNG, and
    :func:`save_figure` then :func:`figure_to_array` would draw it twice.

    Args:
      fig: the figure.
      path: destination ending in ``.png``; parent directories are created.

    Returns:
      uint8 array [H, W, 3], the pixels written.

    Raises:
      ValueError: if ``path`` does not end in ``.png``.
    """
    path = _png_path(path)
    image = figure_to_array(fig)
    import PIL.Image  # installed with matplotlib

    PIL.Image.fromarray(image).save(path, format="png")
    return image
