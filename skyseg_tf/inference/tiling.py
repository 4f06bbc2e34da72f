"""Native-resolution prediction in overlapping tiles, blended with a raised-cosine window.

An image that fits in one ``tile_size`` square is predicted in one padded pass; a larger one is
cut into overlapping tiles, predicted ``batch_size`` tiles at a time and blended, so memory is
bounded by the batch of tiles, not the photo (``predict_image(..., mode="tile")``).

Example:
    >>> import numpy as np
    >>> from skyseg_tf.inference.predictor import as_predictor
    >>> predictor = as_predictor(lambda x: x[..., :1] / 255.0)
    >>> image = np.full((300, 200, 3), 255, np.uint8)
    >>> probability = predict_tiles(predictor, image, tile_size=128, overlap=32, batch_size=4)
    >>> probability.shape, round(float(probability.min()), 4)
    ((300, 200), 1.0)
"""

from __future__ import annotations

import numpy as np

from skyseg_tf.image_ops import pad_to_multiple
from skyseg_tf.inference.predictor import SkyPredictor

DEFAULT_TILE_SIZE = 512
"""Tile side of ``mode="tile"``, and the size up to which ``"auto"`` predicts at native resolution."""

DEFAULT_OVERLAP = 64
"""Pixels shared by neighbouring tiles."""

DEFAULT_BATCH_SIZE = 4
"""Tiles per forward pass."""


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D raised-cosine ramp over ``overlap`` pixels at each end, 1 in the middle, never 0."""
    index = np.arange(tile, dtype=np.float64) + 0.5
    if overlap <= 0:
        return np.ones(tile, np.float32)
    ramp = np.minimum(1.0, np.minimum(index, tile - index) / overlap)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


def predict_tiles(predictor: SkyPredictor, image: np.ndarray, tile_size: int = DEFAULT_TILE_SIZE,
                  overlap: int = DEFAULT_OVERLAP, batch_size: int = DEFAULT_BATCH_SIZE,
                  progress: bool = False) -> np.ndarray:
    """Sky probabilities of ``image`` (``uint8 [H, W, 3]``) at its own resolution, tile by tile.

    Options are not checked here: :func:`skyseg_tf.inference.predict_image` checks them.
    """
    height, width = image.shape[:2]
    stride = predictor.stride
    if height <= tile_size and width <= tile_size:
        return predictor(image[None].astype(np.float32))[0]
    # Tiles are tile_size squares; an axis shorter than a tile is covered by one tile as long as
    # the axis padded to the stride.
    tile_h = min(tile_size, -(-height // stride) * stride)
    tile_w = min(tile_size, -(-width // stride) * stride)
    canvas = image
    if tile_h > height or tile_w > width:
        canvas = pad_to_multiple(image[None], stride).numpy()[0]
    canvas_h, canvas_w = canvas.shape[:2]
    step = tile_size - overlap
    positions = [(top, left) for top in _tile_starts(canvas_h, tile_h, step)
                 for left in _tile_starts(canvas_w, tile_w, step)]
    window = np.outer(_blend_window(tile_h, overlap if canvas_h > tile_h else 0),
                      _blend_window(tile_w, overlap if canvas_w > tile_w else 0))
    total = np.zeros((canvas_h, canvas_w), np.float32)
    weight = np.zeros((canvas_h, canvas_w), np.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(positions), desc="tiles", unit="tile", leave=False)
    for first in range(0, len(positions), batch_size):
        chunk = positions[first:first + batch_size]
        tiles = np.stack([canvas[t:t + tile_h, l:l + tile_w] for t, l in chunk]).astype(np.float32)
        probabilities = predictor(tiles)
        for (top, left), probability in zip(chunk, probabilities):
            total[top:top + tile_h, left:left + tile_w] += probability * window
            weight[top:top + tile_h, left:left + tile_w] += window
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    total /= weight
    return total[:height, :width]

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_OVERLAP", "DEFAULT_TILE_SIZE", "predict_tiles"]
