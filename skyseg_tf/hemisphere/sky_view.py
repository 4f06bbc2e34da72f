"""Figures of the sky hemisphere from the sky mask of an upward fisheye photo.

The *sky view factor* (SVF) of a horizontal surface is the share of the radiation it receives
from an isotropic sky that the visible sky sends it: with ``V(theta, phi) = 1`` where the
direction at zenith angle ``theta`` and azimuth ``phi`` is sky and 0 where it is blocked::

    SVF = (1 / pi) * integral over phi in [0, 2 pi], theta in [0, pi / 2] of
          V(theta, phi) * cos(theta) * sin(theta) dtheta dphi

:func:`sky_view_factor` uses the annulus method of Steyn (1980) and Johnson & Watson (1984):
the hemisphere is cut into ``n`` rings of equal zenith width, ring ``i`` spanning
``theta[i-1] .. theta[i]``; its sky share ``f[i]`` is the mean of the mask over the ring's
pixels, and since ``(1 / pi) * 2 pi * integral of cos(theta) sin(theta) dtheta`` over the ring
is ``sin(theta[i])**2 - sin(theta[i-1])**2``::

    SVF = sum over i = 1 .. n of f[i] * (sin(theta[i])**2 - sin(theta[i-1])**2)

which is exact for any mask whose sky share is constant across each ring. With
``theta[i] = i pi / (2 n)`` the weight equals ``sin(pi / (2 n)) * sin(pi (2 i - 1) / (2 n))``, so
with the ring's sky written as an angle ``alpha[i] = 2 pi f[i]`` the sum reads
``(1 / (2 pi)) * sin(pi / (2 n)) * sum of sin(pi (2 i - 1) / (2 n)) * alpha[i]``, the discrete form
in which the annulus method is usually quoted.

*Canopy openness*, as Gap Light Analyzer (Frazer, Canham & Lertzman 1999) defines it, is the sky
share of the hemisphere (or of the zenith angles up to ``max_zenith``) weighted by solid angle,
not by the cosine: ring weights ``cos(theta[i-1]) - cos(theta[i])``, normalised to sum to 1. The
*gap fraction* of a ring is its plain sky share ``f[i]``.

Rings are measured in zenith angle through the lens projection (:mod:`.lens`), so the figures
do not depend on the lens. Where the image circle runs past the frame, a ring's share comes from
its pixels inside the frame. Azimuths follow :mod:`.lens`: 0 up in the image, clockwise.

References:
    Steyn, D. G. (1980). The calculation of view factors from fisheye-lens photographs.
    Atmosphere-Ocean 18(3), 254-258.
    Johnson, G. T. and Watson, I. D. (1984). The determination of view-factors in urban
    canyons. Journal of Climate and Applied Meteorology 23(2), 329-335.
    Frazer, G. W., Canham, C. D. and Lertzman, K. P. (1999). Gap Light Analyzer (GLA) 2.0:
    users manual and program documentation.

Example:
    >>> sky = np.ones((200, 200), bool)
    >>> round(sky_view_factor(sky), 3), round(canopy_openness(sky), 3)
    (1.0, 1.0)
"""

from __future__ import annotations

import numbers

import numpy as np

from skyseg_tf import checks
from skyseg_tf.hemisphere.lens import FisheyeLens, ImageCircle, normalised_radius, polar_angles
from skyseg_tf.metrics import DEFAULT_THRESHOLD

DEFAULT_RINGS = 90
"""Rings of :func:`sky_view_factor` and :func:`canopy_openness`: 1 degree each over 0..90."""

DEFAULT_GAP_RINGS = 9
"""Rings of :func:`gap_fraction_by_ring`: 10 degrees each over 0..90."""

DEFAULT_SECTORS = 8
"""Azimuth sectors of :func:`sky_fraction_by_sector`: 45 degrees each."""

HEMISPHERE_DEGREES = 90.0
"""Zenith angle of the horizon, in degrees: the largest ``max_zenith``."""


def _sky_values(sky, threshold) -> np.ndarray:
    """``sky`` as float64 ``[H, W]`` in ``[0, 1]``: thresholded, or soft when ``threshold`` is None."""
    array = np.asarray(sky)
    if array.ndim != 2:
        raise ValueError(f"sky: received an array of shape {array.shape}; pass a 2-D [height, width] mask or "
                         "probability map (take one channel with sky[..., 0]).")
    if threshold is not None:
        threshold = checks.probability("threshold", threshold)
    if array.dtype == bool:
        return array.astype(np.float64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"sky: received an array of dtype {array.dtype}; pass a bool mask or numbers in [0, 1].")
    values = array.astype(np.float64)
    if values.size:
        low, high = float(values.min()), float(values.max())
        if not (0.0 <= low and high <= 1.0):  # NaN fails both comparisons
            raise ValueError(f"sky: received values from {low:g} to {high:g}; pass a mask or probability map "
                             "with values in [0, 1] (divide a 0/255 mask by 255).")
    if threshold is None:
        return values
    return (values >= threshold).astype(np.float64)


def _circle_and_lens(shape, circle, lens) -> tuple[ImageCircle, FisheyeLens]:
    if circle is None:
        circle = ImageCircle.inscribed(shape)
    elif not isinstance(circle, ImageCircle):
        raise TypeError(f"circle: received {circle!r}; pass an ImageCircle (or None for the circle inscribed "
                        "in the image).")
    if lens is None:
        lens = FisheyeLens()
    elif not isinstance(lens, FisheyeLens):
        raise TypeError(f"lens: received {lens!r}; pass a FisheyeLens (or None for an equidistant 180-degree lens).")
    return circle, lens


def _max_zenith(value, lens: FisheyeLens) -> float:
    """``max_zenith`` in degrees, checked against the horizon and the lens's field of view."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value <= HEMISPHERE_DEGREES:
        raise ValueError(f"max_zenith: received {value!r}; pass a zenith angle in degrees, "
                         f"0 < max_zenith <= {HEMISPHERE_DEGREES:g}.")
    value = float(value)
    if value > lens.fov / 2.0 + 1e-9:
        raise ValueError(f"max_zenith: received {value:g}; the lens ({lens.projection}, fov {lens.fov:g}) sees "
                         f"zenith angles up to {lens.fov / 2.0:g} degrees; pass max_zenith <= {lens.fov / 2.0:g} "
                         "or the lens the photo was taken with.")
    return value


def _ring_sums(values, rho, lens, rings, max_zenith) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring index per pixel, and per ring the pixel count and the sum of ``values``.

    ``rho`` is the normalised radius of every pixel (:func:`normalised_radius`). Ring ``i`` holds
    the pixels with zenith angle in ``(theta[i-1], theta[i]]`` (the zenith itself in the first);
    pixels beyond ``max_zenith`` or outside the image circle get index ``rings``.
    """
    edges = lens.radius(np.radians(_edges(rings, max_zenith)))  # the same edges as radii: one search per pixel
    edges[0] = -np.inf
    index = np.searchsorted(edges, rho.ravel()) - 1
    counts = np.bincount(index, minlength=rings + 1)[:rings]
    sums = np.bincount(index, weights=values.ravel(), minlength=rings + 1)[:rings]
    return index, counts, sums


def _ring_fractions(values, rho, circle, lens, rings, max_zenith) -> np.ndarray:
    """Sky share per ring, with a clear error where a ring has no pixel."""
    _, counts, sums = _ring_sums(values, rho, lens, rings, max_zenith)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        width = max_zenith / rings
        first = empty[0]
        raise ValueError(f"rings: received {rings}; {empty.size} ring(s), the first at zenith "
                         f"{first * width:g}-{(first + 1) * width:g} degrees, hold no pixel of the image "
                         f"(image circle radius {circle.radius:g} px, {values.shape[0]}x{values.shape[1]} image); "
                         "pass fewer rings or a larger image.")
    return sums / counts


def _edges(rings: int, max_zenith: float) -> np.ndarray:
    return np.linspace(0.0, max_zenith, rings + 1)


def _cosine_weights(rings: int) -> np.ndarray:
    """Exact cosine-weighted view of each of ``rings`` equal rings over 0..90 degrees (sums to 1)."""
    return np.diff(np.sin(np.radians(_edges(rings, HEMISPHERE_DEGREES))) ** 2)


def _solid_angle_weights(rings: int, max_zenith: float) -> np.ndarray:
    """Solid angle of each of ``rings`` equal rings over 0..max_zenith, normalised to sum to 1."""
    weights = -np.diff(np.cos(np.radians(_edges(rings, max_zenith))))
    return weights / weights.sum()


def _prepare(sky, circle, lens, threshold):
    values = _sky_values(sky, threshold)
    circle, lens = _circle_and_lens(values.shape, circle, lens)
    return values, circle, lens


def _svf(values, rho, circle, lens, rings) -> float:
    if lens.fov < 2.0 * HEMISPHERE_DEGREES:
        raise ValueError(f"lens: received {lens!r}; the sky view factor needs the whole hemisphere, so pass the "
                         "lens the photo was taken with if its fov >= 180, or use canopy_openness(..., "
                         f"max_zenith={lens.fov / 2.0:g}) for the part of the sky this lens sees.")
    fractions = _ring_fractions(values, rho, circle, lens, rings, HEMISPHERE_DEGREES)
    return float(np.dot(fractions, _cosine_weights(rings)))


def _openness(values, rho, circle, lens, rings, max_zenith) -> float:
    fractions = _ring_fractions(values, rho, circle, lens, rings, max_zenith)
    return float(np.dot(fractions, _solid_angle_weights(rings, max_zenith)))


def _sectors(values, rho, azimuth, lens, sectors, max_zenith) -> tuple[np.ndarray, np.ndarray]:
    rings = DEFAULT_RINGS
    index, counts, _ = _ring_sums(values, rho, lens, rings, max_zenith)
    # Each pixel stands for its ring's solid angle shared among the ring's pixels; the last entry
    # (index == rings) is for pixels outside the circle or beyond max_zenith and weighs nothing.
    per_pixel = np.zeros(rings + 1)
    np.divide(_solid_angle_weights(rings, max_zenith), counts, out=per_pixel[:rings], where=counts > 0)
    weight = per_pixel[index].reshape(values.shape)
    scaled = np.nan_to_num(azimuth) * (sectors / (2.0 * np.pi))
    sector = np.minimum(scaled.astype(np.intp), sectors - 1).ravel()
    totals = np.bincount(sector, weights=weight.ravel(), minlength=sectors)
    sky = np.bincount(sector, weights=(weight * values).ravel(), minlength=sectors)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        raise ValueError(f"sectors: received {sectors}; {empty.size} sector(s) hold no pixel of the image circle "
                         f"up to zenith {max_zenith:g} degrees; pass fewer sectors or a larger image.")
    return np.linspace(0.0, 360.0, sectors + 1), sky / totals


def sky_view_factor(sky, circle: ImageCircle | None = None, lens: FisheyeLens | None = None, *,
                    rings: int = DEFAULT_RINGS, threshold: float | None = DEFAULT_THRESHOLD) -> float:
    """Sky view factor of a horizontal surface, by the annulus method (see the module docstring).

    Args:
        sky: ``[H, W]`` bool mask (True = sky) or float sky probability / mask in ``[0, 1]`` of an
            upward fisheye photo.
        circle: Where the hemisphere is imaged; default the circle inscribed in the image.
        lens: The lens projection and field of view; default equidistant, 180 degrees. Its
            ``fov`` must be at least 180 degrees (only zenith angles up to 90 count).
        rings: Number of rings of equal zenith width over 0..90 degrees.
        threshold: Probability at or above which a pixel is sky; ``None`` averages the soft
            values as they are. Ignored for bool masks.

    Returns:
        The sky view factor, from 0 (no sky) to 1 (open sky).

    Raises:
        ValueError: For a mask that is not 2-D or has values outside ``[0, 1]``, ``rings < 1``, a
            ring without pixels (pass fewer rings), or a lens with ``fov < 180``.

    Example:
        >>> sky = np.zeros((200, 200), bool); sky[:, 100:] = True  # the right half of the sky
        >>> round(sky_view_factor(sky), 3)
        0.5
    """
    values, circle, lens = _prepare(sky, circle, lens, threshold)
    rings = checks.positive_int("rings", rings)
    return _svf(values, normalised_radius(values.shape, circle), circle, lens, rings)


def canopy_openness(sky, circle: ImageCircle | None = None, lens: FisheyeLens | None = None, *,
                    rings: int = DEFAULT_RINGS, max_zenith: float = HEMISPHERE_DEGREES,
                    threshold: float | None = DEFAULT_THRESHOLD) -> float:
    """Sky share of the hemisphere up to ``max_zenith``, weighted by solid angle (Gap Light Analyzer).

    Args:
        sky: ``[H, W]`` bool mask or float sky probability / mask in ``[0, 1]``.
        circle: Where the hemisphere is imaged; default the circle inscribed in the image.
        lens: The lens; default equidistant, 180 degrees. It must see ``max_zenith``.
        rings: Number of rings of equal zenith width over ``0 .. max_zenith``.
        max_zenith: Largest zenith angle counted, degrees in ``(0, 90]``.
        threshold: Probability at or above which a pixel is sky; ``None`` uses the soft values.

    Returns:
        The canopy openness, from 0 to 1.

    Example:
        >>> sky = np.zeros((200, 200), bool); sky[:, 100:] = True  # the right half of the sky
        >>> round(canopy_openness(sky, rings=30, max_zenith=60), 3)
        0.5
    """
    values, circle, lens = _prepare(sky, circle, lens, threshold)
    rings = checks.positive_int("rings", rings)
    max_zenith = _max_zenith(max_zenith, lens)
    return _openness(values, normalised_radius(values.shape, circle), circle, lens, rings, max_zenith)


def gap_fraction_by_ring(sky, circle: ImageCircle | None = None, lens: FisheyeLens | None = None, *,
                         rings: int = DEFAULT_GAP_RINGS, max_zenith: float = HEMISPHERE_DEGREES,
                         threshold: float | None = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Sky share (gap fraction) of each ring of equal zenith width, unweighted within the ring.

    Args:
        sky: ``[H, W]`` bool mask or float sky probability / mask in ``[0, 1]``.
        circle: Where the hemisphere is imaged; default the circle inscribed in the image.
        lens: The lens; default equidistant, 180 degrees. It must see ``max_zenith``.
        rings: Number of rings over ``0 .. max_zenith``.
        max_zenith: Zenith angle of the outer edge of the last ring, degrees in ``(0, 90]``.
        threshold: Probability at or above which a pixel is sky; ``None`` uses the soft values.

    Returns:
        ``(edges, fractions)``: the ``rings + 1`` ring edges in degrees of zenith angle, and the
        ``rings`` gap fractions (float64 arrays).

    Example:
        >>> sky = np.ones((200, 200), bool)
        >>> edges, fractions = gap_fraction_by_ring(sky, rings=3)
        >>> edges.tolist(), fractions.tolist()
        ([0.0, 30.0, 60.0, 90.0], [1.0, 1.0, 1.0])
    """
    values, circle, lens = _prepare(sky, circle, lens, threshold)
    rings = checks.positive_int("rings", rings)
    max_zenith = _max_zenith(max_zenith, lens)
    fractions = _ring_fractions(values, normalised_radius(values.shape, circle), circle, lens, rings, max_zenith)
    return _edges(rings, max_zenith), fractions


def sky_fraction_by_sector(sky, circle: ImageCircle | None = None, lens: FisheyeLens | None = None, *,
                           sectors: int = DEFAULT_SECTORS, max_zenith: float = HEMISPHERE_DEGREES,
                           threshold: float | None = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Sky share of each azimuth sector up to ``max_zenith``, weighted by solid angle.

    Sector ``k`` spans azimuths ``k * 360 / sectors`` to ``(k + 1) * 360 / sectors`` degrees
    (azimuth 0 up in the image, clockwise). Within a sector each pixel stands for the solid
    angle of its zenith ring (:data:`DEFAULT_RINGS` rings over ``0 .. max_zenith``) shared among
    the ring's pixels, so a sector's share is its canopy openness and does not depend on the lens
    projection; rings without pixels (tiny images) are left out.

    Args:
        sky: ``[H, W]`` bool mask or float sky probability / mask in ``[0, 1]``.
        circle: Where the hemisphere is imaged; default the circle inscribed in the image.
        lens: The lens; default equidistant, 180 degrees. It must see ``max_zenith``.
        sectors: Number of sectors of equal azimuth width.
        max_zenith: Largest zenith angle counted, degrees in ``(0, 90]``.
        threshold: Probability at or above which a pixel is sky; ``None`` uses the soft values.

    Returns:
        ``(edges, fractions)``: the ``sectors + 1`` sector edges in degrees of azimuth, and the
        ``sectors`` sky shares (float64 arrays).

    Example:
        >>> sky = np.zeros((200, 200), bool); sky[:, 100:] = True  # sky on the right: azimuth 0..180
        >>> edges, fractions = sky_fraction_by_sector(sky, sectors=4)
        >>> edges.tolist(), fractions.round(3).tolist()
        ([0.0, 90.0, 180.0, 270.0, 360.0], [1.0, 1.0, 0.0, 0.0])
    """
    values, circle, lens = _prepare(sky, circle, lens, threshold)
    sectors = checks.positive_int("sectors", sectors)
    max_zenith = _max_zenith(max_zenith, lens)
    _, azimuth = polar_angles(values.shape, circle, lens)
    return _sectors(values, normalised_radius(values.shape, circle), azimuth, lens, sectors, max_zenith)


def hemisphere_figures(sky, circle: ImageCircle | None = None, lens: FisheyeLens | None = None, *,
                       rings: int = DEFAULT_RINGS, gap_rings: int = DEFAULT_GAP_RINGS,
                       sectors: int = DEFAULT_SECTORS, max_zenith: float = HEMISPHERE_DEGREES,
                       threshold: float | None = DEFAULT_THRESHOLD) -> dict:
    """All figures of this module for one sky mask, as one JSON-ready dict.

    Args:
        sky: ``[H, W]`` bool mask or float sky probability / mask in ``[0, 1]``.
        circle: Where the hemisphere is imaged; default the circle inscribed in the image.
        lens: The lens; default equidistant, 180 degrees; ``fov >= 180`` (for the SVF).
        rings: Rings of the sky view factor and of the canopy openness.
        gap_rings: Rings of the gap fractions.
        sectors: Azimuth sectors.
        max_zenith: Largest zenith angle of the canopy openness, the gap fractions and the
            sectors (the SVF always covers 0..90 degrees).
        threshold: Probability at or above which a pixel is sky; ``None`` uses the soft values.

    Returns:
        ``{"svf", "canopy_openness", "gap_fraction_by_ring": [{"zenith_from", "zenith_to",
        "gap_fraction"}, ...], "sky_fraction_by_sector": [{"azimuth_from", "azimuth_to",
        "sky_fraction"}, ...], "circle": ImageCircle.to_dict(), "lens": FisheyeLens.to_dict(),
        "options": {"rings", "gap_rings", "sectors", "max_zenith", "threshold"}}``; angles in
        degrees.

    Example:
        >>> sky = np.ones((200, 200), bool)
        >>> figures = hemisphere_figures(sky, gap_rings=2, sectors=2)
        >>> figures["svf"], figures["gap_fraction_by_ring"][0]
        (1.0, {'zenith_from': 0.0, 'zenith_to': 45.0, 'gap_fraction': 1.0})
        >>> figures["circle"], figures["lens"]
        ({'cx': 100.0, 'cy': 100.0, 'radius': 100.0}, {'projection': 'equidistant', 'fov': 180.0})
    """
    values, circle, lens = _prepare(sky, circle, lens, threshold)
    rings = checks.positive_int("rings", rings)
    gap_rings = checks.positive_int("gap_rings", gap_rings)
    sectors = checks.positive_int("sectors", sectors)
    max_zenith = _max_zenith(max_zenith, lens)
    rho = normalised_radius(values.shape, circle)
    _, azimuth = polar_angles(values.shape, circle, lens)
    svf = _svf(values, rho, circle, lens, rings)
    openness = _openness(values, rho, circle, lens, rings, max_zenith)
    gap_edges = _edges(gap_rings, max_zenith)
    gaps = _ring_fractions(values, rho, circle, lens, gap_rings, max_zenith)
    sector_edges, shares = _sectors(values, rho, azimuth, lens, sectors, max_zenith)
    return {
        "svf": svf,
        "canopy_openness": openness,
        "gap_fraction_by_ring": [
            {"zenith_from": float(gap_edges[i]), "zenith_to": float(gap_edges[i + 1]), "gap_fraction": float(gaps[i])}
            for i in range(gap_rings)],
        "sky_fraction_by_sector": [
            {"azimuth_from": float(sector_edges[k]), "azimuth_to": float(sector_edges[k + 1]),
             "sky_fraction": float(shares[k])}
            for k in range(sectors)],
        "circle": circle.to_dict(),
        "lens": lens.to_dict(),
        "options": {"rings": rings, "gap_rings": gap_rings, "sectors": sectors, "max_zenith": max_zenith,
                    "threshold": None if threshold is None else float(threshold)},
    }


__all__ = ["DEFAULT_GAP_RINGS", "DEFAULT_RINGS", "DEFAULT_SECTORS", "HEMISPHERE_DEGREES", "canopy_openness",
           "gap_fraction_by_ring", "hemisphere_figures", "sky_fraction_by_sector", "sky_view_factor"]
