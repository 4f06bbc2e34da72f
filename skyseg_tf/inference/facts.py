"""Facts about the sky of one photo, from its probability map: one record per photo.

:func:`sky_facts` turns a full-resolution sky probability into what photographers,
photogrammetry and AR users ask of a sky mask without reading the mask:

* ``sky_fraction``: the share of pixels with probability ``>= threshold``;
* ``has_sky``: whether the photo shows sky at all: ``sky_fraction >= has_sky_fraction``, a
  threshold calibrated on photos with and without sky (:data:`DEFAULT_HAS_SKY_FRACTION`,
  ``benchmarks/calibrate_has_sky.py``, figures in docs/benchmarks.md);
* ``mean_confidence``: the mean over pixels of ``max(p, 1 - p)`` (0.5 = a coin toss everywhere,
  1 = every pixel certain); low values flag photos worth a look;
* ``skyline``: per column, the first non-sky row from the top (0 where the top pixel is not sky,
  the photo's height where the whole column is sky): the horizon profile photogrammetry and AR
  use to mask or align.

Example:
    >>> import numpy as np
    >>> probability = np.zeros((4, 3), np.float32); probability[:2] = 0.9; probability[2, 0] = 0.8
    >>> facts = sky_facts(probability)
    >>> facts["sky_fraction"], facts["has_sky"], facts["skyline"]
    (0.5833, True, [3, 2, 2])
"""

from __future__ import annotations

import numpy as np

from skyseg_tf import checks
from skyseg_tf.metrics import DEFAULT_THRESHOLD

DEFAULT_HAS_SKY_FRACTION = 0.0041
"""Sky fraction from which a photo is said to show sky (``has_sky``).

Calibrated with ``python benchmarks/calibrate_has_sky.py`` for the street-only model of
2026-11-30 and checked again for today's default (``sky_unet_efficientnet_lite0``) on the
validation parts of LabelMeFacade and MSRC-v2 (229 photos with sky), MSRC-v2's close-ups, the
interiors and scikit-image/synthetic photos (347 without): it misses 5.3% of LabelMeFacade's
photos with sky (none of MSRC's) and calls 7.6% of MSRC's close-ups, 0.5% of the interiors and
10% of the scikit-image/synthetic images "has sky"; the lowest balanced error, at 0.0021, is
0.040 against 0.044 here, too close to move the default (docs/benchmarks.md has the table).
Treat ``has_sky`` as a hint, and ``sky_fraction`` as the measurement."""

FACT_FIELDS = ("height", "width", "sky_fraction", "has_sky", "mean_confidence", "skyline_min",
               "skyline_mean", "skyline_max")
"""Scalar facts of :func:`sky_facts`, in the column order of the CSV record
(``skyline``, one value per column, goes to the JSON lines record only)."""


def sky_skyline(mask: np.ndarray) -> np.ndarray:
    """Per column, the first non-sky row from the top of a boolean sky mask ``[H, W]``.

    Example:
        >>> sky_skyline(np.array([[True, False], [True, False]])).tolist()
        [2, 0]
    """
    mask = np.asarray(mask, bool)
    not_sky = ~mask
    first = np.argmax(not_sky, axis=0)  # 0 where the column has no non-sky pixel at all
    return np.where(not_sky.any(axis=0), first, mask.shape[0]).astype(np.int64)


def sky_facts(probability: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
              has_sky_fraction: float = DEFAULT_HAS_SKY_FRACTION) -> dict:
    """Sky fraction, has_sky, mean confidence and skyline profile of a probability map.

    Args:
        probability: float ``[H, W]`` sky probabilities in ``[0, 1]`` (as
            :func:`~skyseg_tf.inference.predict_image` returns).
        threshold: Probability at or above which a pixel is sky.
        has_sky_fraction: Sky fraction at or above which ``has_sky`` is true.

    Returns:
        A JSON-ready dict: ``height``, ``width``, ``sky_fraction`` (4 decimals), ``has_sky``,
        ``mean_confidence`` (4 decimals), ``skyline`` (list of ``width`` ints) and its
        ``skyline_min``, ``skyline_mean`` (1 decimal), ``skyline_max``.

    Example:
        >>> sky_facts(np.full((2, 2), 0.25, np.float32))["mean_confidence"]
        0.75
    """
    probability = np.asarray(probability, np.float32)
    if probability.ndim != 2 or probability.size == 0:
        raise ValueError(f"probability: expected a non-empty [H, W] map, received shape {probability.shape}.")
    threshold = checks.probability("threshold", threshold)
    has_sky_fraction = checks.probability("has_sky_fraction", has_sky_fraction)
    mask = probability >= threshold
    fraction = float(np.count_nonzero(mask)) / mask.size
    confidence = float(np.mean(np.maximum(probability, 1.0 - probability), dtype=np.float64))
    skyline = sky_skyline(mask)
    return {
        "height": int(probability.shape[0]),
        "width": int(probability.shape[1]),
        "sky_fraction": round(fraction, 4),
        "has_sky": bool(fraction >= has_sky_fraction and fraction > 0),
        "mean_confidence": round(confidence, 4),
        "skyline_min": int(skyline.min()),
        "skyline_mean": round(float(skyline.mean()), 1),
        "skyline_max": int(skyline.max()),
        "skyline": skyline.tolist(),
    }


__all__ = ["DEFAULT_HAS_SKY_FRACTION", "FACT_FIELDS", "sky_facts", "sky_skyline"]
