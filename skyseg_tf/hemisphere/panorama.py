"""Equirectangular 360-degree panoramas: pinhole views, stitching back, upward fisheyes.

Street-view studies of the sky (sky view factor, shade) start from equirectangular panoramas. A
segmentation model trained on ordinary photos sees such a panorama best through overlapping
pinhole *views* (:func:`panorama_views`, :func:`panorama_to_view`); its per-view sky
probabilities are projected back and blended on the panorama grid (:func:`stitch_views`,
:func:`predict_panorama`), and the upper hemisphere is then drawn as an upward fisheye
(:func:`panorama_to_fisheye`), as in Li, Ratti & Seiferling (2018), "Quantifying the shade
provision of street trees in urban landscape: A case study in Boston, USA, using Google Street
View" (Landscape and Urban Planning) and Gong et al. (2018), "Mapping sky, tree, and building view
factors of street canyons in a high-density urban environment" (Building and Environment).

Conventions (angles in degrees in the API):

* A panorama is ``[H, W]`` or ``[H, W, C]`` with ``W = 2 * H`` (one pixel either way is
  accepted). Pixel ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``.
* Column -> *yaw* (longitude): ``yaw = (col + 0.5) / W * 360 - 180``, in ``[-180, 180)``; yaw 0
  is the panorama's centre column (the camera's heading in a street-view image) and yaw grows
  to the right, i.e. turning right (clockwise seen from above: north 0, east 90). The left and
  right edges are the same meridian (yaw -180 = 180) and are joined when sampling.
* Row -> *latitude* (elevation): ``lat = 90 - (row + 0.5) / H * 180``, from +90 (zenith, top
  row) to -90 (nadir, bottom row); 0 is the horizon. Within half a row of a pole, sampling
  takes the first (last) row instead of interpolating across the pole.
* A :class:`PerspectiveView` is a pinhole camera with no roll looking at ``(yaw, pitch)``
  (pitch = latitude of its axis; +90 looks straight up), horizontal field of view ``fov`` and
  ``size = (height, width)`` pixels, square pixels, principal point at the image centre. Its
  image's "up" is towards the zenith (for a view looking straight up, towards ``yaw + 180``).
* Fisheyes follow :mod:`skyseg_tf.hemisphere.lens`: zenith at the centre, zenith angle
  ``90 - lat`` mapped by the lens projection, image azimuth 0 up in the image and growing
  clockwise. The top of the fisheye is yaw 0. With ``orientation="photo"`` (the default) the
  fisheye is what a camera on the ground pointing up records with its top edge towards yaw 0:
  looking up mirrors east and west, so yaw 90 (east when yaw 0 is north) is on the *left* and
  yaw grows counter-clockwise (image azimuth = ``-yaw``). ``orientation="map"`` mirrors it (as
  seen from above, like a map or a sky plot: yaw 90 on the right, image azimuth = ``yaw``).

Remap grids are computed once per view (or fisheye) and panorama shape and kept in small
caches; after that, each image costs one ``cv2.remap`` per view or fisheye.

Example:
    >>> panorama = np.zeros((64, 128), np.float32)
    >>> panorama[:32] = 1.0  # the upper hemisphere is sky
    >>> fisheye, circle = panorama_to_fisheye(panorama, size=32)
    >>> float(fisheye[16, 16]), float(fisheye[0, 0]), circle.radius
    (1.0, 0.0, 16.0)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Sequence

import cv2
import numpy as np

from skyseg_tf import checks
from skyseg_tf.hemisphere.lens import FisheyeLens, ImageCircle, polar_angles

VIEW_LAYOUTS = ("zenith", "horizon")
"""Values of :func:`panorama_views`'s ``layout``."""

DEFAULT_PREDICTION_FOV = 100.0
"""Field of view of the views :func:`predict_panorama` predicts (the ``"horizon"`` layout)."""

DEFAULT_VIEW_FOV = 90.0
"""Horizontal field of view (degrees) of the default pinhole views."""

DEFAULT_VIEW_SIZE = (512, 512)
"""``(height, width)`` of the default pinhole views."""

DEFAULT_OVERLAP = 10.0
"""Degrees by which neighbouring views of :func:`panorama_views` overlap at least."""

DEFAULT_MIN_LATITUDE = -30.0
"""Lowest latitude (degrees) the default views cover: the upper hemisphere and a band below the
horizon, which is what sky studies need (the sky never lies far below the horizon)."""

INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
"""Values of the ``interpolation`` arguments and the OpenCV flags they stand for."""

ORIENTATIONS = ("photo", "map")
"""Values of ``panorama_to_fisheye(orientation=...)`` (see the module docstring)."""

_REMAP_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


# ----------------------------------------------------------------------------------------------
# Checks


def _real(name: str, value, valid: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: received {value!r}; pass {valid}.")
    return float(value)


def _check_fov(value) -> float:
    fov = _real("fov", value, "a horizontal field of view in degrees, 0 < fov < 180")
    if not 0.0 < fov < 180.0:
        raise ValueError(f"fov: received {value!r}; pass a horizontal field of view in degrees, 0 < fov < 180 "
                         "(a pinhole view cannot see 180 degrees or more).")
    return fov


def _panorama_size(shape, name: str = "panorama") -> tuple[int, int]:
    """``(H, W)`` of a panorama shape, checking the 2:1 equirectangular aspect ratio."""
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: received {shape!r}; pass a panorama shape (H, W) or (H, W, C).") from None
    if len(shape) not in (2, 3) or min(shape[:2] or (0,)) < 1 or (len(shape) == 3 and shape[2] < 1):
        raise ValueError(f"{name}: received shape {shape}; pass a non-empty equirectangular panorama "
                         "[H, W] or [H, W, C] with W = 2 * H.")
    height, width = shape[:2]
    if abs(width - 2 * height) > 1:
        raise ValueError(
            f"{name}: received shape {shape}, a {width}x{height} image; pass an equirectangular panorama "
            f"with width = 2 * height (1 pixel either way is accepted), spanning 360 degrees across and "
            f"180 down. Resize a full panorama to 2:1 (e.g. cv2.resize(panorama, ({2 * height}, {height}))); "
            "pad one that stops short of the zenith or nadir with rows until it spans 180 degrees.")
    return height, width


def _as_remappable(array: np.ndarray) -> np.ndarray:
    if array.dtype.type in _REMAP_DTYPES:
        return array
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"panorama: received dtype {array.dtype}; pass numbers (uint8, uint16, int16 or floats).")
    return array.astype(np.float32)


def _check_panorama(panorama, name: str = "panorama") -> np.ndarray:
    array = np.asarray(panorama)
    _panorama_size(array.shape, name)
    return np.ascontiguousarray(_as_remappable(array))


def _interpolation(value) -> int:
    checks.choice("interpolation", value, tuple(INTERPOLATIONS))
    return INTERPOLATIONS[value]


def _remap(image: np.ndarray, maps, flag: int, border: int) -> np.ndarray:
    """``cv2.remap`` for any number of channels (OpenCV handles at most 4 at once)."""
    if image.ndim == 3 and image.shape[2] > 4:
        return np.stack([_remap(image[..., k], maps, flag, border) for k in range(image.shape[2])], axis=-1)
    out = cv2.remap(image, maps[0], maps[1], flag, borderMode=border)
    if image.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _fixed_point(map_x: np.ndarray, map_y: np.ndarray, nearest: bool):
    """OpenCV's fixed-point form of float maps (what ``cv2.remap`` converts float maps to anyway)."""
    return cv2.convertMaps(map_x.astype(np.float32), map_y.astype(np.float32), cv2.CV_16SC2,
                           nninterpolation=nearest)


# ----------------------------------------------------------------------------------------------
# Geometry


@dataclasses.dataclass(frozen=True)
class PerspectiveView:
    """A pinhole camera inside the panorama sphere, with no roll.

    Attributes:
        yaw: Longitude of the view's axis in degrees (0 = the panorama's centre column, growing
            to the right).
        pitch: Latitude of the axis in degrees, ``-90 <= pitch <= 90`` (90 looks at the zenith).
        fov: Horizontal field of view in degrees, ``0 < fov < 180``; the vertical one follows
            from ``size`` (square pixels).
        size: ``(height, width)`` of the view's image in pixels (one int for a square).

    Example:
        >>> view = PerspectiveView(yaw=90, pitch=0, fov=90, size=(480, 640))
        >>> round(view.vertical_fov, 2), round(view.focal_length, 1)
        (73.74, 320.0)
    """

    yaw: float = 0.0
    pitch: float = 0.0
    fov: float = DEFAULT_VIEW_FOV
    size: tuple[int, int] = DEFAULT_VIEW_SIZE

    def __post_init__(self):
        yaw = _real("yaw", self.yaw, "a finite angle in degrees")
        pitch = _real("pitch", self.pitch, "an angle in degrees, -90 <= pitch <= 90")
        if not -90.0 <= pitch <= 90.0:
            raise ValueError(f"pitch: received {self.pitch!r}; pass an angle in degrees, -90 <= pitch <= 90.")
        object.__setattr__(self, "yaw", yaw)
        object.__setattr__(self, "pitch", pitch)
        object.__setattr__(self, "fov", _check_fov(self.fov))
        object.__setattr__(self, "size", checks.size_pair("size", self.size))

    @property
    def focal_length(self) -> float:
        """Focal length in pixels: ``width / 2 / tan(fov / 2)``."""
        return self.size[1] / 2.0 / math.tan(math.radians(self.fov) / 2.0)

    @property
    def vertical_fov(self) -> float:
        """Vertical field of view in degrees."""
        return math.degrees(2.0 * math.atan(self.size[0] / 2.0 / self.focal_length))

    def basis(self) -> np.ndarray:
        """Rows ``right, up, forward``: the camera's axes as unit vectors in panorama coordinates
        (``x`` towards yaw 90, ``y`` to the zenith, ``z`` towards yaw 0 on the horizon).

        Example:
            >>> (PerspectiveView(yaw=90, pitch=0).basis().round(3) + 0.0).tolist()
            [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        """
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        sy, cy, sp, cp = math.sin(yaw), math.cos(yaw), math.sin(pitch), math.cos(pitch)
        return np.array([[cy, 0.0, -sy], [-sp * sy, cp, -sp * cy], [cp * sy, sp, cp * cy]])


def _directions(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors ``[..., 3]`` of latitudes and longitudes (radians)."""
    cos_lat = np.cos(lat)
    return np.stack(np.broadcast_arrays(cos_lat * np.sin(lon), np.sin(lat), cos_lat * np.cos(lon)), axis=-1)


def _panorama_coordinates(directions: np.ndarray, height: int, width: int):
    """Panorama map coordinates ``(u, v)`` (pixel-index space) of unit vectors ``[..., 3]``."""
    lon = np.arctan2(directions[..., 0], directions[..., 2])
    lat = np.arctan2(directions[..., 1], np.hypot(directions[..., 0], directions[..., 2]))
    u = (lon + np.pi) / (2.0 * np.pi) * width - 0.5
    v = (np.pi / 2.0 - lat) / np.pi * height - 0.5
    return u, np.clip(v, 0.0, height - 1.0)


def _view_coordinates(view: PerspectiveView, directions: np.ndarray):
    """View map coordinates ``(col, row)`` and the forward component ``z`` of unit vectors."""
    right, up, forward = view.basis()
    x, y, z = directions @ right, directions @ up, directions @ forward
    f = view.focal_length
    with np.errstate(divide="ignore", invalid="ignore"):
        col = f * x / z + view.size[1] / 2.0 - 0.5
        row = -f * y / z + view.size[0] / 2.0 - 0.5
    return col, row, z


def _inside(view: PerspectiveView, col, row, z) -> np.ndarray:
    height, width = view.size
    return (z > 0) & (col >= -0.5) & (col <= width - 0.5) & (row >= -0.5) & (row <= height - 0.5)


def _pixel_directions(view: PerspectiveView) -> np.ndarray:
    height, width = view.size
    f = view.focal_length
    x = (np.arange(width, dtype=np.float64) + 0.5 - width / 2.0) / f
    y = -(np.arange(height, dtype=np.float64) + 0.5 - height / 2.0) / f
    rays = x[None, :, None] * view.basis()[0] + y[:, None, None] * view.basis()[1] + view.basis()[2]
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# Views


def _ring_covers(pitch: np.ndarray, lat: np.ndarray, n: int, tan_h: float, tan_v: float) -> np.ndarray:
    """``bool [P, L]``: whether a ring of ``n`` views at each of the pitches ``[P]`` sees each of
    the latitudes ``[L]`` (radians) at every yaw."""
    pitch = pitch[:, None, None]
    delta = np.radians(np.linspace(0.0, 180.0 / n, 17))[None, :, None]  # yaw off a view's axis, up to the seam
    lat = lat[None, None, :]
    horizontal, sin_lat = np.cos(lat) * np.cos(delta), np.sin(lat)
    x = np.cos(lat) * np.sin(delta)
    z = np.cos(pitch) * horizontal + np.sin(pitch) * sin_lat
    y = -np.sin(pitch) * horizontal + np.cos(pitch) * sin_lat
    return ((z > 1e-9) & (np.abs(x) <= tan_h * z) & (np.abs(y) <= tan_v * z)).all(axis=1)


def _ring_band(lat_top: float, n: int, tan_h: float, tan_v: float, half_v: float):
    """``(pitch, lowest)``: the pitch (degrees) at which a ring of ``n`` views covers latitude
    ``lat_top`` and everything down to the lowest latitude it can; ``None`` if no pitch covers
    ``lat_top``. Lower pitches reach lower, so the lowest pitches that cover ``lat_top`` are tried."""
    top = math.radians(lat_top)
    pitches = np.radians(np.arange(min(90.0, lat_top + half_v), max(-90.0, lat_top - half_v - 1.0), -0.25))
    feasible = pitches[_ring_covers(pitches, np.array([top]), n, tan_h, tan_v)[:, 0]]
    if not feasible.size:
        return None
    pitches = np.sort(feasible)[:8]
    lats = np.radians(np.arange(lat_top, max(-90.0, lat_top - 2 * half_v - 5.0) - 0.25, -0.25))
    covered = _ring_covers(pitches, lats, n, tan_h, tan_v)  # descending latitude
    depth = np.where(covered.all(axis=1), covered.shape[1], np.argmin(covered, axis=1)) - 1
    best = int(np.argmax(depth))
    return float(np.degrees(pitches[best])), float(np.degrees(lats[depth[best]]))


@functools.lru_cache(maxsize=32)
def _views(fov: float, size: tuple[int, int], overlap: float, min_latitude: float) -> tuple:
    probe = PerspectiveView(0.0, 90.0, fov, size)
    half_h, half_v = fov / 2.0 - overlap / 2.0, probe.vertical_fov / 2.0 - overlap / 2.0
    tan_h, tan_v = math.tan(math.radians(half_h)), math.tan(math.radians(half_v))
    cap = min(half_h, half_v)  # a view at a pole covers the cone of this half-angle around it
    nadir = min_latitude < -(90.0 - cap)
    floor = -(90.0 - cap) if nadir else min_latitude
    largest = max(8, 3 * math.ceil(360.0 / (2 * half_h)))
    # Fewest views: a search over the rings' sizes from the zenith cap down, where a ring of n
    # views is tried only if it reaches lower than every smaller ring from the same latitude.
    plans: dict = {}

    def plan(lat_top: float):
        """``(views, rings)`` covering ``lat_top`` down to ``floor``; rings as ``(n, pitch)``."""
        key = round(lat_top, 6)
        if lat_top <= floor:
            return 0, ()
        if key not in plans:
            best, reach = None, lat_top
            for n in range(3, largest + 1):
                band = _ring_band(lat_top, n, tan_h, tan_v, half_v)
                if band is None or band[1] >= min(reach, lat_top - 0.5):
                    continue
                reach = band[1]
                count, rings = plan(band[1])
                if best is None or n + count < best[0]:
                    best = (n + count, ((n, band[0]),) + rings)
                if band[1] <= floor:
                    break
            if best is None:  # pragma: no cover - every fov in (0, 180) has a covering ring
                raise RuntimeError(f"no ring of views covers latitude {lat_top:.2f}; please report the arguments.")
            plans[key] = best
        return plans[key]

    views = [probe]
    for ring, (n, pitch) in enumerate(plan(90.0 - cap)[1]):
        offset = 180.0 / n if ring % 2 else 0.0
        for k in range(n):
            views.append(PerspectiveView((offset + 360.0 * k / n + 180.0) % 360.0 - 180.0, pitch, fov, size))
    if nadir:
        views.append(PerspectiveView(0.0, -90.0, fov, size))
    return tuple(views)


def _covers(views, lat_low: float, lat_high: float, overlap: float, step: float = 1.0) -> bool:
    """Whether the views, each narrowed by ``overlap`` degrees, see every direction of the band."""
    lat = np.radians(np.arange(lat_low, lat_high + 1e-9, step))
    lon = np.radians(np.arange(-180.0, 180.0, step))
    lat, lon = np.meshgrid(lat, lon, indexing="ij")
    directions = np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], axis=-1)
    seen = np.zeros(lat.shape, bool)
    for view in views:
        x, y, z = np.moveaxis(directions @ view.basis().T, -1, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ax = np.where(z > 0, np.degrees(np.arctan(np.abs(x) / z)), np.inf)
            ay = np.where(z > 0, np.degrees(np.arctan(np.abs(y) / z)), np.inf)
        seen |= (ax <= (view.fov - overlap) / 2.0) & (ay <= (view.vertical_fov - overlap) / 2.0)
    return bool(seen.all())


@functools.lru_cache(maxsize=32)
def _horizon_views(fov: float, size: tuple[int, int], overlap: float, min_latitude: float) -> tuple:
    """Rings of views that each keep the horizon in frame: the top ring looks up so that its
    (narrowed) upper edge passes the zenith; lower rings follow down to ``min_latitude``."""
    vertical = PerspectiveView(0.0, 0.0, fov, size).vertical_fov
    reach = (vertical - overlap) / 2.0  # half of the narrowed vertical field
    if reach <= 2.5:
        raise ValueError(f"overlap: received {overlap!r}; with fov={fov:g} the views are too narrow for the "
                         "'horizon' layout; pass a smaller overlap or a wider fov.")
    pitch = 92.5 - reach  # the narrowed top edge 2.5 degrees past the zenith
    views: list = []
    top = 90.0
    while True:
        # The narrowed bottom edge is lowest at its middle; the band each ring must close ends a
        # little above it, and the next ring starts there.
        bottom = max(pitch - 0.7 * reach, -90.0)
        for count in range(3, 64):
            offset = 180.0 / count if len(views) and len(views) % 2 else 0.0
            ring = [PerspectiveView((offset + 360.0 * k / count + 180.0) % 360.0 - 180.0, pitch, fov, size)
                    for k in range(count)]
            if _covers(views + ring, max(bottom, min_latitude), top, overlap):
                break
        else:  # pragma: no cover - a ring of 63 views covers any band its field spans
            raise RuntimeError(f"no ring covers latitudes {bottom:.1f}..{top:.1f}; please report the arguments.")
        views += ring
        if bottom <= min_latitude:
            return tuple(views)
        top = bottom
        pitch = bottom - 0.6 * reach
        if pitch - 0.7 * reach <= -90.0:  # the rest is a cap around the nadir: one view closes it
            nadir = PerspectiveView(0.0, -90.0, fov, size)
            if not _covers(views + [nadir], min_latitude, top, overlap):  # pragma: no cover - geometry
                raise RuntimeError(f"no view covers latitudes {min_latitude:.1f}..{top:.1f}; please report the "
                                   "arguments.")
            return tuple(views + [nadir])


def panorama_views(*, fov: float = DEFAULT_VIEW_FOV, size: int | Sequence[int] = DEFAULT_VIEW_SIZE,
                   overlap: float = DEFAULT_OVERLAP,
                   min_latitude: float = DEFAULT_MIN_LATITUDE, layout: str = "zenith") -> list[PerspectiveView]:
    """Overlapping pinhole views that together see every direction from the zenith down to
    ``min_latitude``.

    ``layout="horizon"`` (what :func:`predict_panorama` uses): no view looks straight up; the top
    ring is tilted up just enough to see past the zenith, and with a vertical field of view of at
    least ``92.5 + overlap / 2`` degrees (:func:`predict_panorama`'s 100, with the default overlap
    of 10) each of its views also sees the horizon, as a photo of a building taken from the street does.
    A model trained on ordinary photos has never seen a photo of nothing but sky, and calls the
    sky of a straight-up view "not sky". On a procedural
    street panorama the default preset's sky view factor was 0.468 with a zenith view and 0.778
    with these views (exact 0.777; ``examples/sky_view_factor.py``).

    ``layout="zenith"``: one view looks at the zenith; rings of views at equal yaw steps follow downwards, their
    number, pitches and sizes chosen for the fewest views such that the rings would still cover
    every direction if each view's field were narrowed by ``overlap`` degrees; neighbouring
    views thus share at least about ``overlap`` degrees, where :func:`stitch_views` blends them. ``min_latitude=-90`` covers the whole sphere (a view at the
    nadir closes it). The result is cached per argument set.

    Args:
        fov: Horizontal field of view of each view in degrees, ``0 < fov < 180``.
        size: ``(height, width)`` of each view (one int for a square); sets the vertical field.
        overlap: Degrees shared by neighbouring views, ``0 <= overlap < half the narrower field``.
        min_latitude: Lowest latitude to cover, degrees in ``[-90, 90)`` (0 is the horizon).
        layout: ``"zenith"`` or ``"horizon"`` (see above).

    Returns:
        A list of :class:`PerspectiveView`, from the top ring (``"zenith"``: the zenith view)
        downwards.

    Raises:
        ValueError: For an argument out of range (the message says which and why).

    Example:
        >>> views = panorama_views()
        >>> len(views), sorted({round(v.pitch) for v in views})  # a zenith view and two rings
        (10, [-8, 21, 90])
    """
    fov = _check_fov(fov)
    size = checks.size_pair("size", size)
    vertical = PerspectiveView(0.0, 0.0, fov, size).vertical_fov
    overlap_value = _real("overlap", overlap, "degrees >= 0")
    if not 0.0 <= overlap_value < min(fov, vertical) / 2.0:
        raise ValueError(f"overlap: received {overlap!r}; pass degrees with 0 <= overlap < "
                         f"{min(fov, vertical) / 2.0:g} (half the views' narrower field of view).")
    low = _real("min_latitude", min_latitude, "degrees in [-90, 90)")
    if not -90.0 <= low < 90.0:
        raise ValueError(f"min_latitude: received {min_latitude!r}; pass degrees in [-90, 90) "
                         "(0 is the horizon, -90 covers the whole sphere).")
    checks.choice("layout", layout, VIEW_LAYOUTS)
    if layout == "horizon":
        return list(_horizon_views(fov, size, overlap_value, low))
    return list(_views(fov, size, overlap_value, low))


# ----------------------------------------------------------------------------------------------
# Panorama -> view


@functools.lru_cache(maxsize=64)
def _view_maps(view: PerspectiveView, height: int, width: int, nearest: bool):
    u, v = _panorama_coordinates(_pixel_directions(view), height, width)
    return _fixed_point(u, v, nearest)


def panorama_to_view(panorama, view: PerspectiveView, *, interpolation: str = "linear") -> np.ndarray:
    """Renders a pinhole view of an equirectangular panorama.

    Longitudes wrap around the panorama's left and right edges; see the module docstring for the
    conventions. The remap grid is cached per view and panorama shape.

    Args:
        panorama: ``[H, W]`` or ``[H, W, C]`` with ``W = 2 * H``. uint8, uint16, int16, float32
            and float64 keep their dtype; other numbers (bool, ints) are read as float32.
        view: The :class:`PerspectiveView` to render.
        interpolation: ``"nearest"``, ``"linear"`` or ``"cubic"``.

    Returns:
        The view's image, ``view.size`` plus the panorama's channels.

    Raises:
        ValueError: For a panorama that is empty or not 2:1, or an unknown interpolation.

    Example:
        >>> panorama = np.tile(np.arange(8, dtype=np.float32), (4, 1))  # column index
        >>> float(panorama_to_view(panorama, PerspectiveView(yaw=90, pitch=0, fov=10, size=1))[0, 0])
        5.5
    """
    panorama = _check_panorama(panorama)
    if not isinstance(view, PerspectiveView):
        raise ValueError(f"view: received {type(view).__name__}; pass a PerspectiveView.")
    flag = _interpolation(interpolation)
    maps = _view_maps(view, panorama.shape[0], panorama.shape[1], flag == cv2.INTER_NEAREST)
    return _remap(panorama, maps, flag, cv2.BORDER_WRAP)


# ----------------------------------------------------------------------------------------------
# Views -> panorama


def _hann(t: np.ndarray) -> np.ndarray:
    """Raised cosine on ``t`` in ``[0, 1]``: 1 at 0.5, 0 at the ends."""
    return np.square(np.sin(np.pi * np.clip(t, 0.0, 1.0)))


def _widened_hits(view: PerspectiveView, directions: np.ndarray, delta: float) -> np.ndarray:
    """Whether unit vectors fall in the view's field widened by ``delta`` radians on every side."""
    right, up, forward = view.basis()
    x, y, z = directions @ right, directions @ up, directions @ forward
    limit = math.radians(89.9)
    tan_h = math.tan(min(math.radians(view.fov) / 2.0 + delta, limit))
    tan_v = math.tan(min(math.radians(view.vertical_fov) / 2.0 + delta, limit))
    return (z > 0) & (np.abs(x) <= tan_h * z) & (np.abs(y) <= tan_v * z)


def _footprint_block(view: PerspectiveView, height: int, width: int) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` (``c1`` may pass ``width``: those columns wrap) of
    a panorama block holding every pixel the view sees.

    Found on a coarse grid (step ``s`` pixels) tested against the field widened by more than the
    grid's angular step: every pixel of the footprint has a grid point within ``s`` rows and
    columns that passes, so the passing grid points' range widened by ``2 s`` holds it.
    """
    step = max(1, min(height, width) // 128)
    rows, cols = np.arange(0, height, step), np.arange(0, width, step)
    lat = np.pi / 2.0 - (rows + 0.5) / height * np.pi
    lon = (cols + 0.5) / width * 2.0 * np.pi - np.pi
    hit = _widened_hits(view, _directions(lat[:, None], lon[None, :]), 2.0 * step * np.pi / height)
    hit_rows, hit_cols = np.flatnonzero(hit.any(axis=1)), hit.any(axis=0)
    if not hit_rows.size:  # pragma: no cover - a view always sees some direction
        return 0, height, 0, width
    r0, r1 = max(0, int(rows[hit_rows[0]]) - 2 * step), min(height, int(rows[hit_rows[-1]]) + 2 * step + 1)
    if hit_cols.all():
        return r0, r1, 0, width
    # The hit columns are the circular complement of the longest run of misses.
    count = len(cols)
    miss = np.concatenate([~hit_cols, ~hit_cols])
    run = longest = gap_end = 0
    for k, missed in enumerate(miss):
        run = run + 1 if missed else 0
        if run > longest:
            longest, gap_end = run, k
    first = (gap_end + 1) % count
    last = (first + count - min(longest, count) - 1) % count
    start = int(cols[first]) - 2 * step
    end = int(cols[last]) + (width if cols[last] < cols[first] else 0) + 2 * step + 1
    if end - start >= width:
        return r0, r1, 0, width
    c0 = start % width
    return r0, r1, c0, c0 + end - start


@functools.lru_cache(maxsize=32)
def _stitch_maps(view: PerspectiveView, height: int, width: int):
    """Where ``view`` lands on a ``height x width`` panorama: its block (:func:`_footprint_block`),
    fixed-point maps from the block into the view, and blend weights (0 where it sees nothing)."""
    r0, r1, c0, c1 = _footprint_block(view, height, width)
    lat = np.pi / 2.0 - (np.arange(r0, r1) + 0.5) / height * np.pi
    lon = (np.arange(c0, c1) % width + 0.5) / width * 2.0 * np.pi - np.pi
    col, row, z = _view_coordinates(view, _directions(lat[:, None], lon[None, :]))
    inside = _inside(view, col, row, z)
    h, w = view.size
    weight = _hann((col + 0.5) / w) * _hann((row + 0.5) / h)
    weight = np.where(inside, np.maximum(weight, 1e-6), 0.0).astype(np.float32)
    col = np.where(inside, col, -1.0)
    row = np.where(inside, row, -1.0)
    return (r0, r1, c0, c1), _fixed_point(col, row, False), weight


def _add_wrapped(target: np.ndarray, block: tuple, values: np.ndarray):
    r0, r1, c0, c1 = block
    width = target.shape[1]
    first = min(c1, width) - c0
    target[r0:r1, c0:c0 + first] += values[:, :first]
    if c1 > width:
        target[r0:r1, :c1 - width] += values[:, first:]


def stitch_views(views_data: Sequence, views: Sequence[PerspectiveView], panorama_shape: Sequence[int], *,
                 fill_value: float = np.nan) -> np.ndarray:
    """Projects per-view maps back onto the panorama grid and blends them where views overlap.

    Each panorama pixel takes the weighted mean of the views that see it, the weight of a view
    falling off towards its image edges as a raised cosine in each image axis
    (``sin^2(pi * (col + 0.5) / width) * sin^2(pi * (row + 0.5) / height)``), so seams between
    views fade in and out instead of jumping.

    Args:
        views_data: One float map per view, ``view.size`` (``[h, w]``) or ``[h, w, C]``, e.g. sky
            probabilities from :func:`skyseg_tf.inference.predict_image`.
        views: The :class:`PerspectiveView` of each map.
        panorama_shape: ``(H, W)`` (or ``(H, W, C)``) of the panorama, ``W = 2 * H``.
        fill_value: Value of the pixels that no view sees (``NaN`` by default).

    Returns:
        float32 ``[H, W]`` (``[H, W, C]`` for C-channel maps).

    Raises:
        ValueError: If the maps and views do not match, or the panorama shape is not 2:1.

    Example:
        >>> views = panorama_views(fov=90, size=16)
        >>> sky = stitch_views([np.ones((16, 16))] * len(views), views, (32, 64))
        >>> float(sky[0].min()), bool(np.isnan(sky[-1]).all())
        (1.0, True)
    """
    height, width = _panorama_size(panorama_shape, "panorama_shape")
    views = list(views)
    views_data = list(views_data)
    if len(views_data) != len(views) or not views:
        raise ValueError(f"views_data: received {len(views_data)} maps for {len(views)} views; pass one map "
                         "per view (and at least one view).")
    channels = None
    numerator = denominator = None
    for index, (data, view) in enumerate(zip(views_data, views)):
        if not isinstance(view, PerspectiveView):
            raise ValueError(f"views[{index}]: received {type(view).__name__}; pass a PerspectiveView.")
        data = np.ascontiguousarray(data, dtype=np.float32)
        extra = data.shape[2:]
        if data.shape[:2] != view.size or data.ndim not in (2, 3) or (channels is not None and extra != channels):
            raise ValueError(f"views_data[{index}]: received shape {data.shape}; pass a map of the view's size "
                             f"{view.size} ([h, w] or [h, w, C], the same C for every view).")
        if channels is None:
            channels = extra
            numerator = np.zeros((height, width) + extra, np.float32)
            denominator = np.zeros((height, width), np.float32)
        block, maps, weight = _stitch_maps(view, height, width)
        sampled = _remap(data, maps, cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
        sampled *= weight[..., None] if extra else weight
        _add_wrapped(numerator, block, sampled)
        _add_wrapped(denominator, block, weight)
    seen = denominator > 0
    if channels:
        denominator, seen = denominator[..., None], seen[..., None]
    result = np.divide(numerator, denominator, out=np.full_like(numerator, fill_value), where=seen)
    return result


# ----------------------------------------------------------------------------------------------
# Panorama -> fisheye


@functools.lru_cache(maxsize=8)
def _fisheye_maps(size: int, lens: FisheyeLens, height: int, width: int, orientation: str, nearest: bool):
    circle = ImageCircle.inscribed((size, size))
    zenith, azimuth = polar_angles((size, size), circle, lens)
    inside = ~np.isnan(zenith)
    zenith, azimuth = np.where(inside, zenith, 0.0), np.where(inside, azimuth, 0.0)
    yaw = -azimuth if orientation == "photo" else azimuth
    u = np.mod(yaw + np.pi, 2.0 * np.pi) / (2.0 * np.pi) * width - 0.5
    v = np.clip(zenith / np.pi * height - 0.5, 0.0, height - 1.0)
    # Directions above the horizon read rows above it only, so sky never bleeds up from below.
    v = np.where(zenith <= np.pi / 2.0, np.minimum(v, math.ceil(height / 2.0) - 1.0), v)
    return circle, _fixed_point(u, v, nearest), ~inside


def panorama_to_fisheye(panorama, *, size: int = 1024, lens: FisheyeLens = FisheyeLens(),
                        orientation: str = "photo",
                        interpolation: str = "linear") -> tuple[np.ndarray, ImageCircle]:
    """The sky hemisphere of a panorama as an upward fisheye image, as street-view sky view
    factor studies draw it.

    The zenith lands at the image centre and zenith angle ``90 - latitude`` at the lens's radius
    (the horizon at the circle's edge for the default 180-degree lens); yaw 0 (the panorama's
    centre column) is at the top. ``orientation="photo"`` puts yaw 90 on the left, as an upward
    camera sees it; ``"map"`` on the right (see the module docstring).

    Args:
        panorama: ``[H, W]`` or ``[H, W, C]`` equirectangular panorama, ``W = 2 * H``; uint8,
            uint16, int16 and floats keep their dtype, other numbers become float32.
        size: Side of the square fisheye image in pixels; its image circle is inscribed.
        lens: The :class:`~skyseg_tf.hemisphere.lens.FisheyeLens` (projection and field of view).
        orientation: ``"photo"`` or ``"map"``.
        interpolation: ``"nearest"``, ``"linear"`` or ``"cubic"``.

    Returns:
        ``(fisheye, circle)``: the ``[size, size]`` (plus channels) image, 0 outside the circle,
        and its :class:`~skyseg_tf.hemisphere.lens.ImageCircle`.

    Raises:
        ValueError: For a panorama that is empty or not 2:1, or an invalid option.

    Example:
        >>> panorama = np.zeros((16, 32), np.uint8)
        >>> panorama[:, 24] = 255  # the column at yaw 90
        >>> fisheye, circle = panorama_to_fisheye(panorama, size=9, interpolation="nearest")
        >>> fisheye[4].tolist()  # the middle row: yaw 90 is on the left, as seen from below
        [255, 255, 255, 255, 0, 0, 0, 0, 0]
    """
    panorama = _check_panorama(panorama)
    size = checks.positive_int("size", size)
    if not isinstance(lens, FisheyeLens):
        raise ValueError(f"lens: received {type(lens).__name__}; pass a skyseg_tf.hemisphere.lens.FisheyeLens.")
    checks.choice("orientation", orientation, ORIENTATIONS)
    flag = _interpolation(interpolation)
    circle, maps, outside = _fisheye_maps(size, lens, panorama.shape[0], panorama.shape[1], orientation,
                                          flag == cv2.INTER_NEAREST)
    fisheye = _remap(panorama, maps, flag, cv2.BORDER_WRAP)
    fisheye[outside] = 0
    return fisheye, circle


# ----------------------------------------------------------------------------------------------
# Prediction


def default_view_size(panorama_width: int, fov: float = DEFAULT_VIEW_FOV) -> int:
    """Side of square views whose pixels match a panorama's angular resolution on average.

    ``fov / 360 * panorama_width`` pixels, rounded to a multiple of 32 (the models' stride) and
    kept within ``[64, 1024]``.

    Example:
        >>> default_view_size(2048), default_view_size(8192), default_view_size(100)
        (512, 1024, 64)
    """
    width = checks.positive_int("panorama_width", panorama_width)
    return int(min(1024, max(64, 32 * round(_check_fov(fov) / 360.0 * width / 32))))


def predict_panorama(model, panorama, *, fov: float = DEFAULT_PREDICTION_FOV,
                     view_size: int | Sequence[int] | None = None, view_overlap: float = DEFAULT_OVERLAP,
                     min_latitude: float = DEFAULT_MIN_LATITUDE, layout: str = "horizon", progress: bool = False,
                     **predict_kwargs) -> np.ndarray:
    """Sky probabilities of every pixel of an equirectangular panorama.

    Renders the :func:`panorama_views` (``layout="horizon"``: every view keeps the horizon in
    frame, as the photos a sky model learns from do), predicts each with
    :func:`skyseg_tf.inference.predict_image` (at the model's own scale unless ``predict_kwargs``
    say otherwise) and blends the predictions back with :func:`stitch_views`.

    Args:
        model: Anything :func:`skyseg_tf.inference.predict_image` takes (a keras model, a path, a
            predictor, a callable; ``None`` for the pretrained model).
        panorama: RGB ``uint8`` ``[H, W, 3]`` with ``W = 2 * H`` (grayscale, RGBA and floats in
            ``[0, 255]`` are converted).
        fov: Horizontal field of view of the views in degrees.
        view_size: Views' ``(height, width)`` or side; default :func:`default_view_size` of
            the panorama's width.
        view_overlap: Degrees shared by neighbouring views (:func:`panorama_views`'s ``overlap``;
            ``predict_image``'s ``overlap``, pixels shared by tiles, goes in ``predict_kwargs``).
        min_latitude: Lowest latitude predicted; pixels below it are NaN (-90 for all).
        layout: ``"horizon"`` or ``"zenith"`` (see :func:`panorama_views`).
        progress: Show a progress bar over the views.
        **predict_kwargs: Passed to ``predict_image`` (``mode``, ``input_size``, ``refine``...).

    Returns:
        float32 ``[H, W]`` sky probabilities, NaN below ``min_latitude``.

    Raises:
        ValueError: For a panorama that is empty or not 2:1, or an invalid option.

    Example:
        >>> bright = lambda x: x[..., :1] / 255.0  # a stand-in model: sky = brightness
        >>> panorama = np.zeros((64, 128, 3), np.uint8)
        >>> panorama[:32] = 255
        >>> sky = predict_panorama(bright, panorama, view_size=32)
        >>> float(sky[:28].min()), float(np.nanmax(sky[36:])), bool(np.isnan(sky[-1]).all())
        (1.0, 0.0, True)
    """
    from skyseg_tf.inference import predict_image
    from skyseg_tf.inference.predict import as_rgb

    height, width = _panorama_size(np.shape(panorama))
    rgb = as_rgb(panorama)
    fov = _check_fov(fov)
    size = checks.size_pair("view_size", view_size if view_size is not None else default_view_size(width, fov))
    views = panorama_views(fov=fov, size=size, overlap=view_overlap, min_latitude=min_latitude, layout=layout)
    checks.boolean("progress", progress)
    iterator = views
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(views, desc="views", unit="view", leave=False)
    predictions = [predict_image(model, panorama_to_view(rgb, view), **predict_kwargs) for view in iterator]
    return stitch_views(predictions, views, (height, width))


__all__ = ["DEFAULT_MIN_LATITUDE", "DEFAULT_OVERLAP", "DEFAULT_VIEW_FOV", "DEFAULT_VIEW_SIZE", "INTERPOLATIONS",
           "ORIENTATIONS", "PerspectiveView", "default_view_size", "panorama_to_fisheye", "panorama_to_view",
           "panorama_views", "predict_panorama", "stitch_views"]
