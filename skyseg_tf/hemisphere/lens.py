"""Fisheye lens geometry: how far from the image centre a direction at zenith angle theta lands.

A fisheye photo taken straight up images the sky hemisphere inside a circle (the *image circle*,
centre ``(cx, cy)`` and radius ``R`` in pixels). A pixel at distance ``r`` from the centre sees
the direction at zenith angle ``theta`` given by the lens *projection* (``rho = r / R`` and
``theta_max = fov / 2``):

================  ===============================================
projection         ``rho(theta)``
================  ===============================================
``equidistant``    ``theta / theta_max``  (most hemispherical lenses; "f-theta")
``equisolid``      ``sin(theta / 2) / sin(theta_max / 2)``  (equal-area, e.g. Sigma 4.5 mm)
``stereographic``  ``tan(theta / 2) / tan(theta_max / 2)``
``orthographic``   ``sin(theta) / sin(theta_max)``  (``fov <= 180``)
================  ===============================================

The azimuth of a pixel is its angle around the centre. In this library azimuth 0 points up in the
image (towards row 0) and grows clockwise, as on a compass seen from below with the photo's top
edge as north; pixels outside the circle are never sky.

Example:
    >>> lens = FisheyeLens("equidistant", 180.0)
    >>> round(float(lens.zenith_angle(0.5)) * 180 / np.pi, 6)
    45.0
    >>> round(float(lens.radius(np.pi / 2)), 6)
    1.0
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

PROJECTIONS = ("equidistant", "equisolid", "stereographic", "orthographic")
"""Lens projections :class:`FisheyeLens` knows (see the module docstring)."""

DEFAULT_PROJECTION = "equidistant"
DEFAULT_FOV = 180.0
"""Field of view in degrees of the default lens: a full hemisphere."""


@dataclasses.dataclass(frozen=True)
class FisheyeLens:
    """A fisheye lens: its projection and its field of view (degrees, across the image circle).

    Example:
        >>> FisheyeLens("equisolid", 180).to_dict()
        {'projection': 'equisolid', 'fov': 180.0}
    """

    projection: str = DEFAULT_PROJECTION
    fov: float = DEFAULT_FOV

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection: received {self.projection!r}; pass one of {PROJECTIONS}.")
        try:
            fov = float(self.fov)
        except (TypeError, ValueError):
            fov = float("nan")
        upper = 180.0 if self.projection == "orthographic" else 360.0
        if not 0.0 < fov <= upper or not math.isfinite(fov):
            raise ValueError(f"fov: received {self.fov!r}; pass the field of view in degrees, "
                             f"0 < fov <= {upper:g} for the {self.projection} projection.")
        if self.projection == "stereographic" and fov >= 360.0:
            raise ValueError(f"fov: received {self.fov!r}; a stereographic lens needs fov < 360.")
        object.__setattr__(self, "fov", fov)

    @property
    def max_zenith(self) -> float:
        """Zenith angle (radians) at the edge of the image circle: half the field of view."""
        return math.radians(self.fov) / 2.0

    def _forward(self, theta):
        if self.projection == "equidistant":
            return theta
        if self.projection == "equisolid":
            return np.sin(theta / 2.0)
        if self.projection == "stereographic":
            return np.tan(theta / 2.0)
        return np.sin(theta)

    def radius(self, theta) -> np.ndarray:
        """Normalised radius ``r / R`` at zenith angle ``theta`` (radians); 1 at the circle's edge.

        Example:
            >>> round(float(FisheyeLens("equisolid").radius(np.pi / 2)), 6)
            1.0
        """
        theta = np.asarray(theta, dtype=np.float64)
        return self._forward(theta) / self._forward(self.max_zenith)

    def zenith_angle(self, rho) -> np.ndarray:
        """Zenith angle (radians) at normalised radius ``rho = r / R`` (the inverse of :meth:`radius`).

        Radii above 1 (outside the circle) give angles beyond ``fov / 2``, or NaN where the
        projection has none.

        Example:
            >>> round(float(FisheyeLens("stereographic").zenith_angle(1.0)) * 180 / np.pi, 6)
            90.0
        """
        value = np.asarray(rho, dtype=np.float64) * self._forward(self.max_zenith)
        with np.errstate(invalid="ignore"):
            if self.projection == "equidistant":
                return value
            if self.projection == "equisolid":
                return 2.0 * np.arcsin(value)
            if self.projection == "stereographic":
                return 2.0 * np.arctan(value)
            return np.arcsin(value)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"projection": self.projection, "fov": self.fov}

    @classmethod
    def from_dict(cls, values: Any) -> "FisheyeLens":
        """Reads :meth:`to_dict`'s form, with a clear error for anything else."""
        if not isinstance(values, dict) or not set(values) <= {"projection", "fov"}:
            raise ValueError(f"lens record: received {values!r}; expected "
                             "{'projection': one of " f"{PROJECTIONS}, 'fov': degrees}}.")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ImageCircle:
    """Where the hemisphere is imaged: centre ``(cx, cy)`` and radius, in pixels.

    Pixel ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``, so the circle of a
    ``1000 x 1000`` photo that fills it is ``ImageCircle(500, 500, 500)``.

    Example:
        >>> ImageCircle.inscribed((600, 800))
        ImageCircle(cx=400.0, cy=300.0, radius=300.0)
    """

    cx: float
    cy: float
    radius: float

    def __post_init__(self):
        for name in ("cx", "cy", "radius"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(value)):
                raise ValueError(f"{name}: received {value!r}; pass a finite number of pixels.")
            object.__setattr__(self, name, float(value))
        if self.radius <= 0:
            raise ValueError(f"radius: received {self.radius!r}; pass a positive number of pixels.")

    @classmethod
    def inscribed(cls, shape: Sequence[int]) -> "ImageCircle":
        """The largest circle centred in an image of ``shape`` ``(height, width, ...)``."""
        height, width = int(shape[0]), int(shape[1])
        return cls(width / 2.0, height / 2.0, min(height, width) / 2.0)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"cx": self.cx, "cy": self.cy, "radius": self.radius}

    @classmethod
    def from_dict(cls, values: Any) -> "ImageCircle":
        """Reads :meth:`to_dict`'s form."""
        if not isinstance(values, dict) or set(values) != {"cx", "cy", "radius"}:
            raise ValueError(f"image circle: received {values!r}; expected {{'cx': ..., 'cy': ..., 'radius': ...}}.")
        return cls(**values)


def normalised_radius(shape: Sequence[int], circle: ImageCircle) -> np.ndarray:
    """``r / R`` at every pixel centre of an image of ``shape`` (float64 ``[H, W]``).

    Example:
        >>> normalised_radius((2, 2), ImageCircle(1, 1, 1)).round(3).tolist()
        [[0.707, 0.707], [0.707, 0.707]]
    """
    height, width = int(shape[0]), int(shape[1])
    x = (np.arange(width, dtype=np.float64) + 0.5 - circle.cx) / circle.radius
    y = (np.arange(height, dtype=np.float64) + 0.5 - circle.cy) / circle.radius
    return np.hypot(x[None, :], y[:, None])


def circle_mask(shape: Sequence[int], circle: ImageCircle) -> np.ndarray:
    """``bool [H, W]``: pixel centres inside the image circle (the only pixels that can be sky).

    Example:
        >>> int(circle_mask((4, 4), ImageCircle(2, 2, 2)).sum())
        12
    """
    return normalised_radius(shape, circle) <= 1.0


def polar_angles(shape: Sequence[int], circle: ImageCircle, lens: FisheyeLens) -> tuple[np.ndarray, np.ndarray]:
    """Zenith and azimuth angles (radians, float64 ``[H, W]``) of every pixel; NaN outside the circle.

    Azimuth 0 is up in the image (towards row 0), growing clockwise, in ``[0, 2 pi)``.

    Example:
        >>> zenith, azimuth = polar_angles((3, 3), ImageCircle(1.5, 1.5, 1.5), FisheyeLens())
        >>> round(float(zenith[1, 1]), 6), round(float(np.degrees(azimuth[1, 2])), 3)
        (0.0, 90.0)
    """
    height, width = int(shape[0]), int(shape[1])
    x = np.arange(width, dtype=np.float64)[None, :] + 0.5 - circle.cx
    y = np.arange(height, dtype=np.float64)[:, None] + 0.5 - circle.cy
    rho = np.hypot(x, y) / circle.radius
    inside = rho <= 1.0
    zenith = np.where(inside, lens.zenith_angle(np.minimum(rho, 1.0)), np.nan)
    azimuth = np.mod(np.arctan2(x, -y), 2.0 * np.pi)
    azimuth = np.where(inside, np.broadcast_to(azimuth, rho.shape), np.nan)
    return zenith, azimuth


__all__ = ["DEFAULT_FOV", "DEFAULT_PROJECTION", "FisheyeLens", "ImageCircle", "PROJECTIONS", "circle_mask",
           "normalised_radius", "polar_angles"]
