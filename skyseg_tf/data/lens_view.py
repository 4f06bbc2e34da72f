"""Ordinary photos seen through a fisheye lens: a training view for hemispherical sky models.

A sky model trained on ordinary photos has learned that sky is at the top of the frame and
calls the blank surround of a fisheye photo sky. :func:`fisheye_view` re-images a training crop
as an upward fisheye camera would see the same scene: the crop is taken as a pinhole photo with a
random field of view, its pixels are moved to where a random fisheye lens
(:class:`~skyseg_tf.hemisphere.lens.FisheyeLens`: equidistant, equisolid, stereographic or
orthographic) would put them, the result is rotated by any angle, and everything outside a
random image circle is blank and labelled "not sky". The circle is mostly inside the frame with
a dark surround, sometimes larger than the frame (full-frame fisheye lenses).

In a mix, a source spec takes ``"view": "fisheye"`` to train on it this way (see
:func:`skyseg_tf.data.make_dataset`); ``"photo"`` (the default) leaves it as it is.

Example:
    >>> rng = np.random.default_rng(0)
    >>> image = np.full((64, 64, 3), 200, np.uint8)
    >>> mask = np.ones((64, 64, 1), np.uint8)
    >>> warped, warped_mask = fisheye_view(image, mask, rng)
    >>> warped.shape, warped_mask.shape, int(warped_mask[0, 0, 0])  # a corner: outside the circle
    ((64, 64, 3), (64, 64, 1), 0)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from skyseg_tf.hemisphere.lens import PROJECTIONS, FisheyeLens

VIEWS = ("photo", "fisheye")
"""Values of a source spec's ``"view"``: ``"photo"`` as it is, ``"fisheye"`` through
:func:`fisheye_view`."""

_PROJECTION_SHARES = (0.45, 0.3, 0.15, 0.1)  # equidistant, equisolid, stereographic, orthographic
_PHOTO_FOV = (60.0, 120.0)  # the crop's field of view across its short side, degrees
_FULL_FRAME_PROBABILITY = 0.2
_CIRCLE_SCALE = (0.82, 1.0)  # circle diameter / short side, circle inside the frame
_FULL_FRAME_SCALE = (1.0, 1.45)  # ... and larger than the frame (cropped circle)


def fisheye_view(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random fisheye view of a photo and its mask, at the same size.

    Args:
        image: ``uint8 [H, W, 3]``, a training crop.
        mask: ``uint8 [H, W, 1]`` (or ``[H, W]``), 0 = not sky, 1 = sky, 2 = void.
        rng: draws the lens, the photo's field of view, the rotation and the circle.

    Returns:
        ``(image, mask)`` of the input shapes: the fisheye view, and its mask with 0 outside the
        image circle (never sky) and the mask's own labels inside.

    Raises:
        ValueError: for images that are not ``[H, W, 3]`` or masks of another size.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> sky_top = np.zeros((32, 32, 1), np.uint8); sky_top[:16] = 1
        >>> _, view = fisheye_view(np.zeros((32, 32, 3), np.uint8), sky_top, rng)
        >>> 0 < int((view == 1).sum()) < 32 * 32
        True
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: received shape {image.shape}; pass an RGB array [H, W, 3].")
    if mask.shape[:2] != image.shape[:2] or mask.ndim not in (2, 3):
        raise ValueError(f"mask: received shape {mask.shape} for an image of {image.shape[:2]}; "
                         "pass [H, W] or [H, W, 1] of the image's size.")
    height, width = image.shape[:2]
    half = min(height, width) / 2.0

    projection = PROJECTIONS[int(rng.choice(len(PROJECTIONS), p=_PROJECTION_SHARES))]
    photo_fov = math.radians(rng.uniform(*_PHOTO_FOV))
    # The lens images at most the photo's field (the circle never reaches past the photo); an
    # orthographic lens at most a hemisphere.
    lens = FisheyeLens(projection, min(math.degrees(photo_fov) * rng.uniform(0.85, 1.0), 180.0))
    focal = half / math.tan(photo_fov / 2.0)  # the pinhole photo's focal length, pixels

    if rng.random() < _FULL_FRAME_PROBABILITY:
        radius = half * rng.uniform(*_FULL_FRAME_SCALE)
    else:
        radius = half * rng.uniform(*_CIRCLE_SCALE)
    cx = width / 2.0 + rng.uniform(-0.03, 0.03) * width
    cy = height / 2.0 + rng.uniform(-0.03, 0.03) * height
    rotation = rng.uniform(0.0, 2.0 * math.pi)

    x = np.arange(width, dtype=np.float64)[None, :] + 0.5 - cx
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5 - cy
    rho = np.hypot(x, y) / radius
    inside = rho <= 1.0
    theta = lens.zenith_angle(np.minimum(rho, 1.0))
    photo_radius = focal * np.tan(np.minimum(theta, photo_fov / 2.0))
    angle = np.arctan2(y, x) + rotation
    map_x = (width / 2.0 + photo_radius * np.cos(angle) - 0.5).astype(np.float32)
    map_y = (height / 2.0 + photo_radius * np.sin(angle) - 0.5).astype(np.float32)

    warped = cv2.remap(np.ascontiguousarray(image), map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT_101)
    labels = cv2.remap(np.ascontiguousarray(mask.reshape(height, width)), map_x, map_y, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REFLECT_101)
    surround = np.clip(rng.normal(rng.uniform(0, 6), rng.uniform(0, 3), (height, width, 1)), 0, 255)
    warped = np.where(inside[..., None], warped, surround.astype(np.uint8))
    labels = np.where(inside, labels, 0).astype(np.uint8)
    return warped.astype(np.uint8), labels.reshape(mask.shape)


def fisheye_view_seeded(image: np.ndarray, mask: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fisheye_view` with a generator made from ``seed`` (an int or ints): for ``tf.numpy_function``."""
    words = [int(v) & 0xFFFFFFFFFFFFFFFF for v in np.asarray(seed, dtype=np.int64).reshape(-1)]
    return fisheye_view(image, mask, np.random.default_rng(words))


__all__ = ["VIEWS", "fisheye_view", "fisheye_view_seeded"]
