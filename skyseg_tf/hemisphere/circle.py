"""Finds the image circle of a fisheye photo: where the lens draws the hemisphere.

A circular fisheye draws the sky inside a circle and leaves a dark, near-uniform *surround*
outside it. :func:`find_image_circle` finds that circle in four steps:

1. **Surround colour.** A square patch in each corner of the frame (2% of the shorter side) is
   taken as surround if it is uniform (95% of its pixels within :data:`UNIFORM_SPREAD` levels
   of its median colour). The surround colour is the median of those patches. With no uniform
   corner there is no surround: see *Frames without a surround* below.
2. **Content.** A pixel is content where any channel differs from the surround colour by more
   than ``threshold`` levels. The default threshold is :data:`MIN_THRESHOLD` (20 of 255), or
   twice the surround's own noise (its 99th percentile deviation) where that is larger, at most
   :data:`MAX_THRESHOLD`, so JPEG noise in the surround is not content while dark but not black
   content (buildings, trees near the horizon) is. A morphological opening removes specks, a
   closing fills narrow notches, and the largest region is kept.
3. **Circle fit.** The outer boundary of that region, less its points on the frame's edge (where
   the frame, not the lens, cuts the circle), is fitted robustly: the circle through three of its
   points that most points lie near (RANSAC, seeded so results repeat), then least squares
   (geometric distances) on the points within the tolerance of step 4, repeated until that set
   settles, so a stretch of black content at the rim does not pull the circle in. The boundary runs through the centres of the outermost content pixels, on average
   :data:`EDGE_OFFSET` px inside the edge of a sharp circle, which is added back to the radius.
   A circle cut by the frame (the centre off the frame's centre, or a circle larger than the
   frame's shorter side) is fitted from the arcs that remain in the frame.
4. **Check.** At least half the boundary points must lie within ``max(2, (height + width) /
   1000)`` px of the circle, whose radius must not exceed the frame's diagonal; otherwise the
   bright region is not a circle.

*Frames without a surround.* When no corner is uniform, when the content covers the whole
frame (at least 99% of it), or when the uniform corners are not dark (median brightness above
:data:`DARK_SURROUND`, e.g. an overcast sky in the corner of a full-frame fisheye) and nothing
circular differs from them, the photo is taken as a full-frame ("diagonal") fisheye, whose image
circle passes through the frame's corners: the circle *circumscribing* the frame, centred on it,
with half its diagonal as radius. A dark surround around content that is not circular raises
``ValueError``, and so does a dark image with no content: pass ``threshold``, or give the
circle yourself.

Example:
    >>> yy, xx = np.mgrid[:120, :160] + 0.5
    >>> image = np.where((xx - 80) ** 2 + (yy - 60) ** 2 <= 50 ** 2, 200, 0).astype(np.uint8)
    >>> circle = find_image_circle(image)
    >>> round(circle.cx), round(circle.cy), round(circle.radius)
    (80, 60, 50)
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np

from skyseg_tf.hemisphere.lens import ImageCircle

MIN_THRESHOLD = 20.0
"""Smallest default content threshold: levels (of 255) above the surround colour."""

MAX_THRESHOLD = 64.0
"""Largest default content threshold, however noisy the surround."""

UNIFORM_SPREAD = 16.0
"""A corner patch is surround if 95% of its pixels are within this many levels of its median."""

DARK_SURROUND = 64.0
"""Surround colours up to this brightness (max over channels) are taken as a lens surround."""

EDGE_OFFSET = 0.45
"""Pixels from the centres of a sharp circle's outermost pixels to its edge, on average.

Measured on rasterised disks of radius 100 to 240 px at random sub-pixel centres
(0.454 +- 0.009 px)."""

_CORNER_SHARE = 0.02
_FULL_FRAME_SHARE = 0.99
_MIN_POINTS = 12
_MIN_INLIER_SHARE = 0.5
_RANSAC_TRIALS = 256
_TOLERANCE_SHARE = 0.001


def _brightness_image(image) -> np.ndarray:
    """``image`` as uint8 ``[H, W, C]`` (C = 1 or 3), with a clear error for anything else."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"image: received an array of shape {np.shape(image)}; pass an RGB image [height, width, 3] "
                         "or a grayscale image [height, width].")
    if array.dtype != np.uint8:
        raise ValueError(f"image: received an array of dtype {array.dtype}; pass uint8 (0..255); convert floats in "
                         "[0, 1] with (image * 255).round().astype(np.uint8).")
    if min(array.shape[:2]) < 8:
        raise ValueError(f"image: received an image of {array.shape[0]}x{array.shape[1]} pixels; pass one at least "
                         "8 pixels on each side.")
    return array


def _threshold(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 255:
        raise ValueError(f"threshold: received {value!r}; pass the content threshold in levels, 0 <= threshold < 255 "
                         "(or None to choose it from the surround).")
    return float(value)


def _circumscribed(height: int, width: int) -> ImageCircle:
    """The circle through the frame's corners: the image circle of a full-frame fisheye."""
    return ImageCircle(width / 2.0, height / 2.0, float(np.hypot(width, height)) / 2.0)


def _surround(array: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Median colour of the uniform corner patches and their pixels, or None without one."""
    height, width = array.shape[:2]
    size = max(2, int(round(_CORNER_SHARE * min(height, width))))
    patches = []
    for rows in (slice(0, size), slice(height - size, height)):
        for cols in (slice(0, size), slice(width - size, width)):
            patch = array[rows, cols].reshape(-1, array.shape[2]).astype(np.float64)
            spread = np.abs(patch - np.median(patch, axis=0)).max(axis=1)
            if np.percentile(spread, 95) <= UNIFORM_SPREAD:
                patches.append(patch)
    if not patches:
        return None
    pixels = np.concatenate(patches)
    return np.median(pixels, axis=0), pixels


def _fit_algebraic(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares circle ``x^2 + y^2 + D x + E y + F = 0`` (Kasa), on centred coordinates."""
    mean = points.mean(axis=0)
    centred = points - mean
    design = np.column_stack([centred, np.ones(len(centred))])
    solution = np.linalg.lstsq(design, (centred ** 2).sum(axis=1), rcond=None)[0]
    centre = solution[:2] / 2.0
    return centre + mean, float(np.sqrt(max(solution[2] + centre @ centre, 0.0)))


def _fit_geometric(points: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
    """Gauss-Newton refinement of the sum of squared distances to the circle."""
    for _ in range(20):
        offset = points - centre
        distance = np.maximum(np.hypot(offset[:, 0], offset[:, 1]), 1e-12)
        jacobian = np.column_stack([-offset / distance[:, None], -np.ones(len(points))])
        step = np.linalg.lstsq(jacobian, radius - distance, rcond=None)[0]
        centre, radius = centre + step[:2], radius + float(step[2])
        if np.abs(step).max() < 1e-6:
            break
    return centre, radius


def _circles_through(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``[K, 2]`` and radii ``[K]`` of the circles through K triples of points (NaN if collinear)."""
    (ax, ay), (bx, by), (cx, cy) = a.T, b.T, c.T
    d = 2.0 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(np.abs(d) < 1e-9, np.nan, d)
        a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
        ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / d
        uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / d
    centres = np.column_stack([ux, uy])
    return centres, np.hypot(ax - ux, ay - uy)


def _fit_robust(points: np.ndarray, tolerance: float, max_radius: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Circle fitted to the points that agree with it; returns centre, radius and all residuals.

    A RANSAC start (the circle through three boundary points that most points lie near, seeded
    so results repeat) then least squares on the points near it, repeated as the set settles.
    """
    rng = np.random.default_rng(0)
    triples = rng.integers(0, len(points), size=(_RANSAC_TRIALS, 3))
    centres, radii = _circles_through(points[triples[:, 0]], points[triples[:, 1]], points[triples[:, 2]])
    sample = points if len(points) <= 4000 else points[rng.choice(len(points), 4000, replace=False)]
    distance = np.hypot(sample[None, :, 0] - centres[:, 0, None], sample[None, :, 1] - centres[:, 1, None])
    with np.errstate(invalid="ignore"):
        votes = (np.abs(distance - radii[:, None]) <= tolerance).sum(axis=1)
        votes[~(radii <= max_radius)] = -1  # also NaN: collinear triples
    best = int(np.argmax(votes))
    centre, radius = centres[best], float(radii[best])
    if not np.isfinite(radius):
        centre, radius = _fit_algebraic(points)
    keep = None
    for _ in range(10):
        residual = np.hypot(*(points - centre).T) - radius
        new_keep = np.abs(residual) <= tolerance
        if new_keep.sum() < _MIN_POINTS or (keep is not None and np.array_equal(new_keep, keep)):
            break
        keep = new_keep
        centre, radius = _fit_geometric(points[keep], centre, radius)
    return centre, radius, np.hypot(*(points - centre).T) - radius


def find_image_circle(image, *, threshold: float | None = None) -> ImageCircle:
    """The image circle of a fisheye photo, from the dark surround outside it.

    See the module docstring for the method and for the rule on frames without a surround
    (full-frame fisheyes get the circle through the frame's corners).

    Args:
        image: uint8 RGB ``[H, W, 3]`` or grayscale ``[H, W]`` photo.
        threshold: Levels (of 255, in any channel) by which a pixel must differ from the
            surround colour to count as content; ``None`` chooses it from the surround's noise
            (20 levels for a clean black surround).

    Returns:
        The :class:`~skyseg_tf.hemisphere.lens.ImageCircle` in pixels (pixel ``(row, col)`` has
        its centre at ``(col + 0.5, row + 0.5)``); it may extend past the frame.

    Raises:
        ValueError: For an image of the wrong shape or dtype, a bad ``threshold``, an image with
            no content against its surround, or content against a dark surround that is not
            circular.

    Example:
        >>> find_image_circle(np.full((60, 80, 3), 128, np.uint8))  # no surround: a full-frame fisheye
        ImageCircle(cx=40.0, cy=30.0, radius=50.0)
    """
    array = _brightness_image(image)
    threshold = _threshold(threshold)
    height, width = array.shape[:2]
    surround = _surround(array)
    if surround is None:
        return _circumscribed(height, width)
    colour, pixels = surround
    if threshold is None:
        noise = float(np.percentile(np.abs(pixels - colour).max(axis=1), 99))
        threshold = min(max(MIN_THRESHOLD, 2.0 * noise), MAX_THRESHOLD)
    level = np.round(colour).astype(np.uint8)
    difference = np.abs(array.astype(np.int16) - level.astype(np.int16)).max(axis=2)
    content = (difference > threshold).astype(np.uint8)

    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    content = cv2.morphologyEx(content, cv2.MORPH_OPEN, small)
    size = max(3, (min(height, width) // 100) | 1)
    content = cv2.morphologyEx(content, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    if content.mean() >= _FULL_FRAME_SHARE:
        return _circumscribed(height, width)
    dark = float(colour.max()) <= DARK_SURROUND
    contours, _ = cv2.findContours(content, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours and not dark:
        return _circumscribed(height, width)
    if not contours:
        raise ValueError(f"image: found no content differing from the surround colour {level.tolist()} by more than "
                         f"{threshold:g} levels; pass a lower threshold, or give the image circle yourself "
                         f"(predict_image(..., circle=(cx, cy, radius)), skyseg predict --circle CX,CY,RADIUS).")
    # The rim is the outline of the content's convex hull: dark content at the rim (tree crowns,
    # unlit facades, a night sky) cuts notches into the content but not into its hull, whose
    # vertices stay on the circle where the content reaches it.
    largest = max(cv2.contourArea(contour) for contour in contours)
    kept = [contour for contour in contours if cv2.contourArea(contour) >= 0.01 * largest]
    points = cv2.convexHull(np.concatenate(kept)).reshape(-1, 2)
    inner = (points[:, 0] > 0) & (points[:, 0] < width - 1) & (points[:, 1] > 0) & (points[:, 1] < height - 1)
    points = points[inner].astype(np.float64) + 0.5  # pixel centres in ImageCircle coordinates

    circular = len(points) >= _MIN_POINTS
    if circular:
        tolerance = max(2.0, _TOLERANCE_SHARE * (height + width))
        diagonal = float(np.hypot(height, width))
        centre, radius, residual = _fit_robust(points, tolerance, diagonal)
        circular = 0 < radius <= diagonal and np.mean(np.abs(residual) <= tolerance) >= _MIN_INLIER_SHARE
    if not circular:
        if not dark:
            return _circumscribed(height, width)
        raise ValueError(f"image: the region differing from the surround colour {level.tolist()} by more than "
                         f"{threshold:g} levels is not a circle (a dark rim of trees or buildings, or a night photo?); "
                         "pass another threshold, or give the image circle yourself (predict_image(..., "
                         "circle=(cx, cy, radius)), skyseg predict --circle CX,CY,RADIUS).")
    return ImageCircle(float(centre[0]), float(centre[1]), radius + EDGE_OFFSET)


__all__ = ["DARK_SURROUND", "EDGE_OFFSET", "MAX_THRESHOLD", "MIN_THRESHOLD", "UNIFORM_SPREAD", "find_image_circle"]
