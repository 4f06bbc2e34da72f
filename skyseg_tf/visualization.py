"""Figures of predictions: image, ground truth, predicted mask and probability heat map per row.

These are the study's qualitative figures (examples on the test set, and the images the model
gets most wrong). Figures are drawn on their own Agg canvas (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``); pyplot and the global backend are never touched.

Example:
    >>> import numpy as np, tempfile, os
    >>> image = np.zeros((32, 48, 3), np.uint8)
    >>> mask = np.zeros((32, 48), np.float32); mask[:10] = 1
    >>> out = prediction_grid([image], [mask], [mask * 0.9],
    ...                       os.path.join(tempfile.mkdtemp(), "grid.png"))
    >>> out.name
    'grid.png'
"""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skyseg_tf.metrics import DEFAULT_THRESHOLD
from skyseg_tf.outputs import VOID_LABEL

OVERLAY_COLOR = (255, 0, 200)
"""RGB of the sky tint of overlays (magenta: no sky or landscape has it)."""

OVERLAY_ALPHA = 0.5
"""Opacity of the sky tint at probability 1."""

COLUMNS = ("image", "ground truth", "predicted mask", "sky probability")
"""Column titles of :func:`prediction_grid`."""

_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def overlay_sky(image: np.ndarray, probability: np.ndarray, color=OVERLAY_COLOR,
                alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Tints the sky of an image: each pixel moves towards ``color`` by ``alpha * probability``.

    Example:
        >>> overlay_sky(np.zeros((1, 2, 3), np.uint8), np.array([[0.0, 1.0]]), alpha=1.0)[0].tolist()
        [[0, 0, 0], [255, 0, 200]]
    """
    image = np.ascontiguousarray(image, np.uint8)
    weight = np.float32(alpha) * np.asarray(probability, np.float32)
    tint = np.empty_like(image)
    tint[...] = np.clip(np.round(np.asarray(color, np.float32)), 0, 255).astype(np.uint8)
    # OpenCV's per-pixel blend: (image * (1 - w) + tint * w), rounded, multithreaded.
    return cv2.blendLinear(image, tint, 1.0 - weight, weight)


def _as_map(value, name: str, index: int) -> np.ndarray:
    array = np.asarray(value, np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name}[{index}]: expected a [H, W] or [H, W, 1] map, received shape {array.shape}.")
    return array


def prediction_grid(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray] | None,
    probabilities: Sequence[np.ndarray],
    out_path: str | os.PathLike,
    captions: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    title: str | None = None,
    panel_inches: float = 2.0,
    dpi: int = 100,
    cmap: str = "magma",
) -> pathlib.Path:
    """Writes a grid with one row per image: image / ground truth / predicted mask / heat map.

    Args:
        images: RGB images, ``uint8`` ``[H, W, 3]`` (floats are read as ``[0, 255]``).
        masks: Ground-truth sky masks ``[H, W]`` or ``[H, W, 1]`` (sky where ``> 0.5``, void
            pixels, ``VOID_LABEL``, shown grey), or
            ``None`` to leave the column out.
        probabilities: Sky probabilities ``[H, W]`` or ``[H, W, 1]`` in ``[0, 1]``.
        out_path: File to write; the suffix picks the format (``.png``, ``.jpg``, ``.pdf``,
            ``.svg``). Parent folders are created.
        captions: Optional text per row, shown above the image (e.g. file name and IoU).
        threshold: Probability at or above which the predicted mask is sky.
        title: Optional line above the grid.
        panel_inches: Width of one panel in inches.
        dpi: Resolution.
        cmap: Matplotlib colour map of the heat map (0 = dark, 1 = bright).

    Returns:
        ``out_path`` as a ``pathlib.Path``.

    Raises:
        ValueError: For empty inputs, lengths that differ, or a bad suffix.

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
        >>> prediction_grid([np.zeros((8, 8, 3), np.uint8)], None, [p],
        ...                 os.path.join(tempfile.mkdtemp(), "g.png")).exists()
        True
    """
    out_path = pathlib.Path(out_path)
    if out_path.suffix.lower() not in _FORMATS:
        raise ValueError(f"out_path: received {str(out_path)!r}; its suffix must be one of {_FORMATS}.")
    images = list(images)
    probabilities = list(probabilities)
    masks = None if masks is None else list(masks)
    if not images:
        raise ValueError("images: received no images; pass at least one.")
    lengths = {"images": len(images), "probabilities": len(probabilities)}
    if masks is not None:
        lengths["masks"] = len(masks)
    if captions is not None:
        captions = list(captions)
        lengths["captions"] = len(captions)
    if len(set(lengths.values())) != 1:
        raise ValueError(f"prediction_grid: the inputs must have one entry per image; received lengths {lengths}.")

    columns = [c for c in COLUMNS if masks is not None or c != "ground truth"]
    rows = len(images)
    caption_inches = 0.25
    height_ratios = []
    for image in images:
        h, w = np.asarray(image).shape[:2]
        height_ratios.append(panel_inches * h / max(w, 1) + caption_inches)
    top_inches = 0.3 + (0.3 if title else 0.0)
    fig_w = panel_inches * len(columns)
    fig_h = sum(height_ratios) + top_inches
    figure = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(rows, len(columns), height_ratios=height_ratios, left=0.01, right=0.99,
                               bottom=0.005, top=1.0 - top_inches / fig_h, wspace=0.03, hspace=0.12)
    if title:
        figure.suptitle(title, fontsize=10, y=1.0 - 0.08 / fig_h, va="top")
    for row in range(rows):
        image = np.asarray(images[row])
        if image.dtype != np.uint8:
            image = np.clip(np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
        probability = _as_map(probabilities[row], "probabilities", row)
        panels = {
            "image": (image, {}),
            "predicted mask": (probability >= threshold, {"cmap": "gray", "vmin": 0, "vmax": 1}),
            "sky probability": (probability, {"cmap": cmap, "vmin": 0.0, "vmax": 1.0}),
        }
        if masks is not None:
            truth = _as_map(masks[row], "masks", row)
            # Sky white, other black, void (unlabelled, VOID_LABEL) mid-grey.
            truth = np.where(truth > 0.5 * (1 + VOID_LABEL), 0.5, (truth > 0.5).astype(np.float32))
            panels["ground truth"] = (truth, {"cmap": "gray", "vmin": 0, "vmax": 1})
        for col, name in enumerate(columns):
            ax = figure.add_subplot(grid[row, col])
            data, style = panels[name]
            ax.imshow(data, interpolation="nearest" if name != "image" else "antialiased", **style)
            ax.set_xticks([])
            ax.set_yticks([])
            label = name if row == 0 else ""
            if col == 0 and captions is not None:
                label = f"{captions[row]}" if not label else f"{label}\n{captions[row]}"
            if label:
                ax.set_title(label, fontsize=7, pad=2)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=dpi)
    return out_path


__all__ = ["COLUMNS", "OVERLAY_ALPHA", "OVERLAY_COLOR", "overlay_sky", "prediction_grid"]
