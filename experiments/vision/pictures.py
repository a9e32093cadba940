"""Where attention looks, drawn over the image.

For chosen pixels of one image, one panel per (pixel, head): the image in
grey (or colour), the head's attention weights over the layer's feature map
laid over it (transparent where the weight is zero), and the pixel marked.
A local attention layer shows its k x k window (outlined, cut at the
image's borders); a global one (ViT) its weights over every patch.

Only matplotlib's object API is used, as in attn/viz.py; numpy and
matplotlib are the only dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_PANEL_INCHES = 1.6
_MAX_ALPHA = 0.9
_IMAGE_BRIGHTNESS = 0.6


def query_cell(pixel: tuple[int, int], image_size: tuple[int, int], grid: tuple[int, int]):
    """The feature-map cell `(row, col)` of a `grid`-sized layer covering image `pixel`."""
    return tuple(min(p * g // s, g - 1) for p, s, g in zip(pixel, image_size, grid))


def weights_on_grid(kind: str, weights: np.ndarray, grid: tuple[int, int], cell) -> np.ndarray:
    """One query's attention as a map over the layer's feature map: `[heads, rows, cols]`.

    Args:
      kind: "local" (weights `[heads, rows, cols, k * k]`, each position's
        k x k window, row-major) or "global" (weights `[heads, N, N]` over the
        N = rows * cols patches, row-major).
      weights: one image's weights of one layer.
      grid: the layer's (rows, cols).
      cell: the query's (row, col) on that grid.
    """
    rows, cols = grid
    i, j = cell
    if kind == "global":
        return np.asarray(weights[:, i * cols + j, :]).reshape(-1, rows, cols)
    heads, k = weights.shape[0], int(round(np.sqrt(weights.shape[-1])))
    window = np.asarray(weights[:, i, j, :]).reshape(heads, k, k)
    r = k // 2
    heat = np.zeros((heads, rows, cols), window.dtype)
    for a in range(k):
        for b in range(k):
            y, x = i + a - r, j + b - r
            if 0 <= y < rows and 0 <= x < cols:  # outside the image the weight is 0
                heat[:, y, x] = window[:, a, b]
    return heat


def attention_overlay(
    image: np.ndarray,
    pixels: Sequence[tuple[int, int]],
    heats: np.ndarray,
    *,
    window: int | None = None,
    title: str | None = None,
    cmap: str = "inferno",
) -> Figure:
    """Panels of attention over the image: a row per pixel, a column per head.

    Args:
      image: uint8 `[H, W, C]`, C 1 or 3.
      pixels: the P query pixels `(row, col)` in image coordinates.
      heats: `[P, heads, rows, cols]`, each pixel's attention per head over a
        feature map that covers the image (rows x cols cells, stretched).
      window: for a local layer, its k: the k x k window of cells around each
        pixel's cell is outlined (cut at the image's borders).
      title: optional figure title.
      cmap: matplotlib colormap of the weights.

    Returns:
      A Figure (Agg canvas attached) with one colour scale, [0, max weight].
    """
    image = np.asarray(image)
    heats = np.asarray(heats, np.float64)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"image must be [H, W, 1 or 3], got shape {image.shape}")
    if heats.ndim != 4 or len(heats) != len(pixels) or len(pixels) == 0:
        raise ValueError(
            f"heats must be [pixels, heads, rows, cols] for the {len(pixels)} pixels, got "
            f"shape {heats.shape}"
        )
    height, width = image.shape[:2]
    num_pixels, heads = heats.shape[:2]
    fig = Figure(
        figsize=(heads * _PANEL_INCHES + 1.0, num_pixels * _PANEL_INCHES + 0.6),
        dpi=100,
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(num_pixels, heads, squeeze=False)
    norm = Normalize(0.0, max(float(heats.max()), 1e-12))
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # cells stretched over the pixels
    # The image dimmed, so that the weights drawn over it stand out.
    shown = (image[..., 0] if image.shape[-1] == 1 else image) * _IMAGE_BRIGHTNESS
    rows, cols = heats.shape[2:]
    cell_height, cell_width = height / rows, width / cols
    mappable = None
    for p, (row, col) in enumerate(pixels):
        for h in range(heads):
            ax = axes[p, h]
            ax.imshow(
                shown.astype(np.uint8), cmap="gray", vmin=0, vmax=255, interpolation="nearest"
            )
            heat = heats[p, h]
            mappable = ax.imshow(
                heat,
                cmap=cmap,
                norm=norm,
                alpha=_MAX_ALPHA * np.sqrt(norm(heat).filled(0.0).clip(0, 1)),
                extent=extent,
                interpolation="nearest",
            )
            if window:
                i, j = query_cell((row, col), (height, width), (rows, cols))
                r = window // 2
                top, bottom = max(i - r, 0) * cell_height, min(i + r + 1, rows) * cell_height
                left, right = max(j - r, 0) * cell_width, min(j + r + 1, cols) * cell_width
                ax.add_patch(
                    Rectangle(
                        (left - 0.5, top - 0.5),
                        right - left,
                        bottom - top,
                        fill=False,
                        edgecolor="cyan",
                        linewidth=1.0,
                        linestyle="--",
                    )
                )
            ax.plot([col], [row], marker="+", color="cyan", markersize=9, markeredgewidth=2)
            ax.set_xticks([])
            ax.set_yticks([])
            if p == 0:
                ax.set_title(f"head {h}", fontsize=8)
            if h == 0:
                ax.set_ylabel(f"pixel ({row}, {col})", fontsize=8)
    fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


__all__ = ["attention_overlay", "query_cell", "weights_on_grid"]
