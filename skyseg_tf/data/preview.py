"""Contact sheets: a grid of images with their sky masks, to look at a data source.

Example:
    >>> import tempfile, os
    >>> from skyseg_tf.data.synthetic import synthetic_sky
    >>> path = contact_sheet(synthetic_sky(4, (64, 64)), os.path.join(tempfile.mkdtemp(), "s.png"))
    >>> path.name
    's.png'
"""

from __future__ import annotations

import itertools
import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from skyseg_tf import checks
from skyseg_tf.data import spec
from skyseg_tf.visualization import OVERLAY_ALPHA, OVERLAY_COLOR, overlay_sky

LAYOUTS = ("overlay", "pair")
"""``"overlay"``: one panel per element, sky tinted; ``"pair"``: the image and its mask side by side."""

_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
_CAPTION_INCHES = 0.28


def contact_sheet(
    source: tf.data.Dataset | Iterable,
    out_path: str | os.PathLike,
    num: int = 16,
    columns: int = 4,
    *,
    layout: str = "overlay",
    overlay_color: Sequence[int] = OVERLAY_COLOR,
    overlay_alpha: float = OVERLAY_ALPHA,
    panel_inches: float = 2.4,
    dpi: int = 100,
    title: str | None = None,
) -> pathlib.Path:
    """Writes a grid of the first ``num`` elements of a data source, with masks and captions.

    Each element shows its image with the sky tinted (``layout="overlay"``) or its image and
    black/white mask side by side (``layout="pair"``), captioned with the file name and the sky
    fraction. Nothing global changes: the figure is drawn by its own Agg canvas, not by pyplot.

    Args:
        source: a ``tf.data.Dataset`` or an iterable of elements. An element is a dict with
            ``"image"`` and optionally ``"segmentation_mask"``, ``"file_name"``,
            ``"sky_fraction"`` (see :mod:`skyseg_tf.data.spec`), or an ``(image, mask, ...)``
            tuple as fed to ``model.fit``; batched elements are split. Float images are read as
            ``[0, 255]``, or as ``[0, 1]`` when no value exceeds 1; a mask pixel is sky when
            above 0.5.
        out_path: file to write; its suffix picks the format (``.png``, ``.jpg``, ``.pdf``,
            ``.svg``). Missing parent directories are created.
        num: how many elements to show (fewer if the source is shorter).
        columns: elements per row.
        layout: ``"overlay"`` or ``"pair"``.
        overlay_color: RGB of the sky tint, each in ``[0, 255]``.
        overlay_alpha: opacity of the tint, in ``[0, 1]``.
        panel_inches: width and height of one panel.
        dpi: pixels per inch; a panel is about ``panel_inches * dpi`` pixels wide.
        title: optional line above the grid.

    Returns:
        ``out_path`` as a ``pathlib.Path``.

    Raises:
        ValueError: for a bad argument or a source without elements.
        TypeError: for an element that is neither a dict nor a tuple.

    Example:
        >>> import numpy as np, tempfile, os
        >>> element = {"image": np.zeros((8, 8, 3), np.uint8),
        ...            "segmentation_mask": np.ones((8, 8, 1), np.uint8)}
        >>> out = contact_sheet([element], os.path.join(tempfile.mkdtemp(), "one.png"))
        >>> out.exists()
        True
    """
    out_path = pathlib.Path(out_path)
    if out_path.suffix.lower() not in _FORMATS:
        raise ValueError(
            f"out_path: received {str(out_path)!r}; its suffix must be one of {_FORMATS}, "
            "e.g. 'preview.png'."
        )
    num, columns, dpi = (checks.positive_int(name, value)
                         for name, value in (("num", num), ("columns", columns), ("dpi", dpi)))
    checks.choice("layout", layout, LAYOUTS)
    checks.probability("overlay_alpha", overlay_alpha)
    tint = np.asarray(overlay_color, np.float32)
    if tint.shape != (3,) or tint.min() < 0 or tint.max() > 255:
        raise ValueError(
            f"overlay_color: received {overlay_color!r}; pass three ints in [0, 255], "
            "e.g. (255, 0, 200)."
        )
    checks.positive_float("panel_inches", panel_inches)

    items = list(itertools.islice(_elements(source), num))
    if not items:
        raise ValueError("source: it yielded no elements; pass a dataset or list with at least one.")

    panels = 2 if layout == "pair" else 1
    rows = math.ceil(len(items) / columns)
    cols = min(columns, len(items)) * panels
    top_inches = _CAPTION_INCHES + (0.35 if title else 0.0)
    fig_w = cols * panel_inches
    fig_h = rows * (panel_inches + _CAPTION_INCHES) + top_inches - _CAPTION_INCHES + 0.05
    figure = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=0.0, right=1.0, bottom=0.05 / fig_h, top=1.0 - top_inches / fig_h,
        wspace=0.04, hspace=_CAPTION_INCHES / panel_inches,
    )
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10, y=1.0 - 0.08 / fig_h, va="top")
    for k, (image, mask, caption) in enumerate(items):
        row, col = divmod(k, columns)
        ax = axes[row, col * panels]
        shown = image
        if mask is not None and layout == "overlay":
            shown = overlay_sky(image, mask, color=tint, alpha=overlay_alpha)
        ax.imshow(shown, interpolation="antialiased")
        ax.set_title(caption, fontsize=7, pad=2)
        if panels == 2:
            mask_ax = axes[row, col * panels + 1]
            if mask is None:
                mask_ax.text(0.5, 0.5, "no mask", ha="center", va="center", fontsize=8)
            else:
                mask_ax.imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="antialiased")
                mask_ax.set_title("mask (white = sky)", fontsize=7, pad=2)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=dpi)
    return out_path


def _elements(source):
    """Yields ``(image uint8 HxWx3, mask float HxW in {0, 0.5 (void), 1} or None, caption)`` per element."""
    if isinstance(source, tf.data.Dataset):
        source = source.as_numpy_iterator()
    elif isinstance(source, (Mapping, tuple)) or not isinstance(source, Iterable):
        raise TypeError(
            f"source: received {type(source).__name__}; pass a tf.data.Dataset or an iterable "
            "(e.g. a list) of elements."
        )
    for element in source:
        if isinstance(element, Mapping):
            if spec.IMAGE_KEY not in element:
                raise ValueError(
                    f"source: an element has keys {sorted(element)}; it needs {spec.IMAGE_KEY!r}."
                )
            images = _numpy(element[spec.IMAGE_KEY])
            masks = element.get(spec.MASK_KEY)
            names = element.get(spec.FILE_NAME_KEY)
        elif isinstance(element, (tuple, list)) and element:
            images = _numpy(element[0])
            masks = element[1] if len(element) > 1 else None
            names = None
        else:
            raise TypeError(
                f"source: received an element of type {type(element).__name__}; elements must be "
                "dicts with an 'image' key or (image, mask) tuples."
            )
        masks = None if masks is None else _numpy(masks)
        names = None if names is None else _numpy(names)
        batched = images.ndim == 4
        for k in range(images.shape[0] if batched else 1):
            image = images[k] if batched else images
            mask = None if masks is None else (masks[k] if batched else masks)
            name = None if names is None else (names[k] if batched else names)
            yield _prepare(image, mask, name)


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _prepare(image, mask, name):
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"source: an image has shape {image.shape}; expected [H, W, 3] (or a batch of them)."
        )
    image = image[..., :3]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        if image.size and image.max() <= 1.0:
            image = image * 255.0
        image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    captions = []
    if name is not None:
        name = name.item() if isinstance(name, np.ndarray) else name
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        captions.append(name if len(name) <= 30 else "…" + name[-29:])
    if mask is not None:
        values = np.asarray(mask, np.float32)
        values = values.reshape(values.shape[:2])
        void = values == spec.VOID_LABEL
        sky = (values > 0.5) & ~void
        labelled = int((~void).sum())
        # Sky 1, other 0, void (unlabelled) 0.5: grey in the mask panel, a faint tint in overlays.
        mask = np.where(void, 0.5, sky.astype(np.float32)).astype(np.float32)
        captions.append(f"sky {100 * sky.sum() / max(labelled, 1):.1f}%"
                        + (f" void {100 * void.mean():.0f}%" if void.any() else ""))
    return image, mask, "  ".join(captions)
