"""Guided-filter refinement of full-resolution sky probabilities (He et al., 2010).

``predict_image(..., refine="guided")`` runs :func:`refine_probability` on the probabilities
upsampled to the photo's resolution, guided by the photo's grayscale, so the sky edge follows
the photo's own edges (``benchmarks/bench_refinement.py`` measures when this helps).

Example:
    >>> import numpy as np
    >>> refine_probability(np.zeros((6, 6, 3), np.uint8), np.full((6, 6), 0.7), 2).shape
    (6, 6)
"""

from __future__ import annotations

import cv2
import numpy as np

from skyseg_tf import checks

REFINE_METHODS = (None, "guided")
"""Values of ``predict_image(refine=...)``."""

DEFAULT_GUIDED_EPS = 1e-4
"""Regularisation of the guided filter, for a guide in [0, 1]: edges of contrast well above
``sqrt(eps)`` = 0.01 are followed (chosen with ``benchmarks/bench_refinement.py``)."""


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int,
                  eps: float = DEFAULT_GUIDED_EPS) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` that follows the edges of ``guide`` (He et al.).

    In every ``(2 radius + 1)`` square window the output is a linear function of the guide,
    ``a * guide + b``, fitted to ``source`` by least squares with ridge ``eps`` on ``a``; the
    window fits are averaged. Where the guide has an edge the output takes that edge; where the
    guide is flat the output is a local mean of ``source``. Box means come from
    ``cv2.boxFilter`` (O(1) per pixel whatever the radius; ``cv2.ximgproc`` is not in the
    headless OpenCV builds).

    Args:
        guide: ``[H, W]`` float image in ``[0, 1]`` (grayscale).
        source: ``[H, W]`` float map to filter (a sky probability).
        radius: Window radius in pixels, ``>= 1``.
        eps: Ridge regularisation, in squared guide units.

    Returns:
        float32 ``[H, W]``.

    Example:
        >>> guide = np.zeros((8, 8), np.float32); guide[:, 4:] = 1.0
        >>> blurry = np.clip(np.linspace(-0.5, 1.5, 8, dtype=np.float32), 0, 1)[None].repeat(8, 0)
        >>> sharp = guided_filter(guide, blurry, radius=2, eps=1e-4)
        >>> bool(sharp[0, 3] < blurry[0, 3] and sharp[0, 4] > blurry[0, 4])
        True
    """
    guide = np.asarray(guide, np.float32)
    source = np.asarray(source, np.float32)
    if guide.shape != source.shape or guide.ndim != 2:
        raise ValueError(
            f"guided_filter: guide and source must be 2-D maps of the same shape; received "
            f"{guide.shape} and {source.shape}."
        )
    kernel = (2 * checks.positive_int("radius", radius) + 1,) * 2

    def box(x):
        return cv2.boxFilter(x, -1, kernel, normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_guide = box(guide)
    mean_source = box(source)
    a = box(guide * source)
    a -= mean_guide * mean_source  # covariance of guide and source
    variance = box(guide * guide)
    variance -= mean_guide * mean_guide
    variance += np.float32(eps)
    a /= variance
    del variance
    b = mean_source
    b -= a * mean_guide
    del mean_guide
    out = box(a)
    out *= guide
    out += box(b)
    return out


def default_guided_radius(scale: float) -> int:
    """Guided-filter radius for probabilities upsampled by ``scale``: ``max(2, round(2 * scale))``.

    The bilinear ramp of an upsampled edge is about ``scale`` pixels wide on each side; a window
    twice that wide reaches across it to the image's edge. Chosen with
    ``benchmarks/bench_refinement.py``: radius ``scale`` gave a lower boundary F, ``4 * scale`` a
    slightly higher boundary F but a lower IoU.

    Example:
        >>> default_guided_radius(7.8)
        16
    """
    return max(2, int(round(2 * scale)))


def refine_probability(image: np.ndarray, probability: np.ndarray, radius: int,
                       eps: float = DEFAULT_GUIDED_EPS) -> np.ndarray:
    """Guided-filter refinement of a full-resolution probability map by its RGB image.

    Args:
        image: ``uint8`` ``[H, W, 3]`` RGB.
        probability: ``[H, W]`` sky probability.
        radius: Guided-filter radius in pixels.
        eps: Guided-filter regularisation (guide in ``[0, 1]``).

    Returns:
        float32 ``[H, W]`` in ``[0, 1]``.

    Example:
        >>> refine_probability(np.zeros((6, 6, 3), np.uint8), np.full((6, 6), 0.7), 2).shape
        (6, 6)
    """
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray *= np.float32(1.0 / 255.0)
    refined = guided_filter(gray, probability, radius, eps)
    return np.clip(refined, 0.0, 1.0, out=refined)



__all__ = ["DEFAULT_GUIDED_EPS", "REFINE_METHODS", "default_guided_radius", "guided_filter", "refine_probability"]
