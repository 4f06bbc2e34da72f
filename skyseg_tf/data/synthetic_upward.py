"""Procedural upward-looking fisheye scenes with exact sky masks.

Hemispherical photos taken straight up (urban sky view factor, forest canopy openness, GNSS line
of sight) see the sky as a disc ringed by whatever stands around the camera: facades whose straight
roof lines bend into arcs, street trees hanging over, wires crossing the zenith. This module paints
such scenes in the *direction* domain: every pixel inside the image circle has a zenith angle and an
azimuth (:func:`skyseg_tf.hemisphere.lens.polar_angles`), and each element of the scene decides
per direction whether it covers it, so the mask is exact by construction:

* walls, trunks and poles are vertical faces in a 3-D layout around the camera; a ray at azimuth
  ``phi`` meets a wall at horizontal distance ``d / cos(phi - phi0)`` and passes over it above the
  elevation ``atan(h cos(phi - phi0) / d)``; the nearest face the ray does not pass over is seen
  (so corners, overhanging eaves and street canyons come out right);
* crowns are noisy blobs around a 3-D centre, a forest canopy is a noisy layer over the camera,
  both with holes through which the sky shows (labelled sky);
* bare branches, wires, lamp arms, traffic lights and signs are drawn along projected 3-D curves;
* glass facades mirror the sky (the hard case: bright, sky-coloured and not sky), and the sun's
  glare and lens flare are added after everything else, so they do not change the mask.

Camera effects (exposure, tint, vignetting, blur, chromatic aberration, noise, JPEG) change the
image only. Pixels outside the image circle are a dark surround and never sky.

Example:
    >>> import numpy as np
    >>> image, mask = render_upward_scene(np.random.default_rng(0), 64, 64, kind="street")
    >>> image.shape, image.dtype.name, mask.shape, sorted(np.unique(mask).tolist())
    ((64, 64, 3), 'uint8', (64, 64, 1), [0, 1])
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from skyseg_tf.data.synthetic import (
    _LIGHT,
    TIMES_OF_DAY,
    _branch_segments,
    _color,
    _draw_segments,
    _noise,
)
from skyseg_tf.hemisphere.lens import PROJECTIONS, FisheyeLens, ImageCircle, polar_angles

UPWARD_SCENE_KINDS = ("street", "canyon", "courtyard", "park", "forest")
"""Layouts :func:`render_upward_scene` can paint.

``street``: two rows of buildings (sometimes a crossing street), street trees, poles, lamps, wires,
traffic lights and signs. ``canyon``: a narrow street between tall walls, often glass. ``courtyard``:
walls on four sides. ``park``: open sky over a tree line, distant buildings, a few trees and lamps.
``forest``: trunks rising towards the centre under a canopy with gaps (or bare winter branches).
"""

_KIND_PROBABILITIES = (0.32, 0.16, 0.14, 0.18, 0.20)
_TIME_PROBABILITIES = {"day": 0.45, "dusk": 0.12, "overcast": 0.30, "night": 0.13}
_PROJECTION_PROBABILITIES = {"equidistant": 0.5, "equisolid": 0.32, "stereographic": 0.1,
                             "orthographic": 0.08}
_MIN_SIDE = 16

# Sky colours seen from below: (zenith low, zenith high), (horizon low, horizon high). An overcast
# sky is brightest at the zenith (about three times the horizon, as in the CIE overcast sky).
_SKY = {
    "day": (((25, 75, 165), (115, 170, 240)), ((175, 200, 228), (238, 243, 252))),
    "dusk": (((28, 32, 82), (110, 100, 170)), ((150, 120, 150), (215, 170, 175))),
    "overcast": (((190, 194, 200), (255, 255, 255)), ((150, 155, 162), (235, 236, 238))),
    "night": (((3, 5, 14), (22, 30, 62)), ((22, 24, 40), (95, 78, 68))),
}
_CLOUDS = {  # (lit, shadow) colour ranges of cloud bases seen from below
    "day": (((225, 228, 235), (255, 255, 255)), ((140, 148, 165), (200, 204, 212))),
    "dusk": (((230, 150, 110), (255, 200, 160)), ((80, 60, 95), (140, 105, 130))),
    "overcast": (((220, 222, 226), (255, 255, 255)), ((145, 150, 160), (205, 208, 214))),
    "night": (((55, 50, 55), (105, 90, 85)), ((12, 13, 22), (35, 34, 45))),
}
_FACADES = (  # colour range, share
    (((140, 140, 140), (210, 208, 200)), 0.3),  # concrete
    (((110, 50, 38), (175, 100, 78)), 0.2),  # brick
    (((180, 160, 120), (235, 220, 185)), 0.18),  # stucco, sandstone
    (((55, 55, 60), (115, 115, 120)), 0.14),  # dark stone, metal
    (((205, 205, 200), (248, 248, 244)), 0.18),  # white render: as bright as an overcast sky
)
_GLASS_TINTS = ((0.72, 0.88, 1.0), (0.78, 1.0, 0.92), (1.0, 0.88, 0.72), (0.95, 0.95, 0.95),
                (0.6, 0.7, 0.8))
_LEAVES = (
    ((25, 50, 18), (85, 120, 50)),  # summer green
    ((45, 60, 20), (120, 135, 55)),  # light green
    ((120, 70, 20), (210, 150, 50)),  # autumn
)
_BARK = ((30, 25, 20), (95, 85, 72))
_GROUNDS = (((55, 55, 58), (110, 108, 105)), ((50, 80, 30), (105, 140, 60)),
            ((120, 110, 95), (175, 165, 150)))
_WALL, _GLASS, _CYLINDER = 0, 1, 2


def sample_upward_lens_and_circle(rng: np.random.Generator, height: int,
                                  width: int) -> tuple[FisheyeLens, ImageCircle]:
    """Draws a fisheye lens and where its image circle lies in a ``height x width`` frame.

    Projections are mostly equidistant and equisolid; three lenses in four see 180-200 degrees,
    the others 160-180 (an orthographic lens at most 180). Four circles in five lie inside the
    frame with a blank surround (radius 0.40-0.50 of the short side, centre off by up to 3%);
    the others are larger than the frame, from a cropped circle to a full-frame fisheye.

    Args:
        rng: the generator to draw from.
        height: frame height in pixels (at least 16).
        width: frame width in pixels (at least 16).

    Returns:
        ``(lens, circle)``.

    Raises:
        ValueError: for a side that is not an int of at least 16.

    Example:
        >>> import numpy as np
        >>> lens, circle = sample_upward_lens_and_circle(np.random.default_rng(0), 96, 128)
        >>> lens.projection in PROJECTIONS, 160 <= lens.fov <= 200, circle.radius >= 0.4 * 96
        (True, True, True)
    """
    height, width = _check_side("height", height), _check_side("width", width)
    projection = PROJECTIONS[int(rng.choice(len(PROJECTIONS), p=[_PROJECTION_PROBABILITIES[p]
                                                                  for p in PROJECTIONS]))]
    fov = rng.uniform(180.0, 200.0) if rng.random() < 0.75 else rng.uniform(160.0, 180.0)
    if projection == "orthographic":
        fov = min(fov, rng.uniform(160.0, 180.0))
    short = min(height, width)
    if rng.random() < 0.8:
        radius = rng.uniform(0.40, 0.50) * short
        jitter = 0.03
    else:
        radius = rng.uniform(0.55 * short, 0.55 * math.hypot(height, width))
        jitter = 0.02
    cx = width / 2 + rng.uniform(-jitter, jitter) * short
    cy = height / 2 + rng.uniform(-jitter, jitter) * short
    return FisheyeLens(projection, float(fov)), ImageCircle(cx, cy, radius)


def render_upward_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    lens: FisheyeLens | None = None,
    circle: ImageCircle | None = None,
    kind: str | None = None,
    time_of_day: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders one upward-looking fisheye scene and its exact sky mask.

    Args:
        rng: the generator that decides everything about the scene; the same generator state
            and arguments give the same pixels.
        height: image height in pixels (at least 16).
        width: image width in pixels (at least 16).
        lens: the fisheye lens; ``None`` draws one with :func:`sample_upward_lens_and_circle`.
        circle: the image circle in this frame; ``None`` draws one with the lens.
        kind: one of :data:`UPWARD_SCENE_KINDS`, or ``None`` to draw one.
        time_of_day: one of :data:`skyseg_tf.data.synthetic.TIMES_OF_DAY` (``"day"``,
            ``"dusk"``, ``"overcast"``, ``"night"``), or ``None`` to draw one.

    Returns:
        ``(image, mask)``: ``uint8`` arrays ``[height, width, 3]`` (RGB) and
        ``[height, width, 1]`` with ``1`` for sky and ``0`` elsewhere (always ``0`` outside
        the image circle).

    Raises:
        ValueError: for a side below 16, an unknown ``kind`` or ``time_of_day``.
        TypeError: for a ``lens`` or ``circle`` of the wrong type.

    Example:
        >>> import numpy as np
        >>> from skyseg_tf.hemisphere.lens import FisheyeLens, ImageCircle
        >>> image, mask = render_upward_scene(np.random.default_rng(1), 48, 48, kind="canyon",
        ...                                   lens=FisheyeLens(), circle=ImageCircle(24, 24, 20))
        >>> int(mask[0, 0, 0]), int(mask[24, 24, 0])  # a corner outside the circle; the zenith
        (0, 1)
    """
    height, width = _check_side("height", height), _check_side("width", width)
    if kind is not None and kind not in UPWARD_SCENE_KINDS:
        raise ValueError(f"kind: received {kind!r}; pass one of {UPWARD_SCENE_KINDS} or None.")
    if time_of_day is not None and time_of_day not in TIMES_OF_DAY:
        raise ValueError(f"time_of_day: received {time_of_day!r}; pass one of {TIMES_OF_DAY} or None.")
    if lens is not None and not isinstance(lens, FisheyeLens):
        raise TypeError(f"lens: received {lens!r}; pass a FisheyeLens or None.")
    if circle is not None and not isinstance(circle, ImageCircle):
        raise TypeError(f"circle: received {circle!r}; pass an ImageCircle or None.")
    if kind is None:
        kind = UPWARD_SCENE_KINDS[int(rng.choice(len(UPWARD_SCENE_KINDS), p=_KIND_PROBABILITIES))]
    if time_of_day is None:
        time_of_day = TIMES_OF_DAY[int(rng.choice(len(TIMES_OF_DAY), p=[_TIME_PROBABILITIES[t]
                                                                         for t in TIMES_OF_DAY]))]
    if lens is None or circle is None:
        drawn_lens, drawn_circle = sample_upward_lens_and_circle(rng, height, width)
        lens = drawn_lens if lens is None else lens
        circle = drawn_circle if circle is None else circle
    scene = _UpwardScene(rng, height, width, lens, circle, time_of_day)
    getattr(scene, kind)()
    scene.render()
    image = scene.camera()
    mask = (scene.sky & scene.inside).astype(np.uint8)[..., None]
    return image, mask


def _check_side(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < _MIN_SIDE:
        raise ValueError(f"{name}: received {value!r}; pass an int of at least {_MIN_SIDE} pixels.")
    return int(value)


def _sample(texture, u, v, border=cv2.BORDER_REFLECT_101):
    """Bilinear samples of a float32 2-D ``texture`` at texel coordinates ``u`` (across), ``v``.

    Any shape of ``u`` and ``v``; long 1-D inputs are folded into rows for ``cv2.remap``.
    """
    shape = np.shape(u)
    u = np.asarray(u, np.float32).ravel()
    v = np.asarray(v, np.float32).ravel()
    n = u.size
    if n == 0:
        return np.zeros(shape, np.float32)
    cols = min(n, 4096)
    rows = -(-n // cols)
    pad = rows * cols - n
    if pad:
        u = np.concatenate([u, np.zeros(pad, np.float32)])
        v = np.concatenate([v, np.zeros(pad, np.float32)])
    out = cv2.remap(texture, u.reshape(rows, cols), v.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=border)
    return out.ravel()[:n].reshape(shape)


def _plane_radius(theta):
    """Where a ray at zenith angle ``theta`` meets a layer over the camera (clouds, a canopy).

    ``tan(theta)`` (units of the layer's height) up to 60 degrees, then growing linearly with the
    same slope, so the layer shrinks towards the horizon like a plane in perspective but stays
    finite (and free of radial streaks) down to the rim of a 200-degree lens (about 4.5).
    """
    knee = np.float32(math.pi / 3)
    return np.where(theta < knee, np.tan(np.minimum(theta, knee)),
                    np.float32(math.tan(math.pi / 3)) + (theta - knee) * np.float32(4.0))


def _cell_random(column, row, face):
    """A number in ``[0, 1)`` for each cell of a facade grid: a hash of its indices."""
    cell = (column.astype(np.int64) * 73856093) ^ (row.astype(np.int64) * 19349663) ^ (face * 83492791)
    return (cell % 1009).astype(np.float32) / np.float32(1009.0)


def _pick(rng, table):
    """A colour from a table of ``(range, share)`` rows."""
    shares = np.array([share for _, share in table])
    return _color(rng, *table[int(rng.choice(len(table), p=shares / shares.sum()))][0])


def _rotate_segments(segments, x, y, angle):
    """Moves branch segments grown at the origin pointing up to root ``(x, y)``, turned by ``angle``.

    ``angle`` is counter-clockwise in the image as seen (rows grow downwards).
    """
    c, s = math.cos(angle), math.sin(angle)
    out = segments.copy()
    for i in (0, 2):
        px, py = segments[:, i], segments[:, i + 1]
        out[:, i] = x + c * px + s * py
        out[:, i + 1] = y - s * px + c * py
    return out


class _UpwardScene:
    """One scene while it is being painted: the view geometry, the 3-D layout and the canvas.

    World coordinates are metres from the camera: ``x`` east, ``y`` north, ``z`` up; the ground
    is at ``z = -camera_height``. World azimuth is the image azimuth plus a random rotation.
    """

    def __init__(self, rng, height, width, lens, circle, time):
        self.rng, self.h, self.w = rng, height, width
        self.lens, self.circle, self.time = lens, circle, time
        zenith, azimuth = polar_angles((height, width), circle, lens)
        self.inside = np.isfinite(zenith)
        self.theta_max = lens.max_zenith
        self.rotation = rng.uniform(0.0, 2 * math.pi)
        th = np.where(self.inside, zenith, min(self.theta_max, math.pi / 2)).astype(np.float32)
        ph = np.mod(np.nan_to_num(azimuth) + self.rotation, 2 * math.pi).astype(np.float32)
        self.th, self.ph = th, ph
        self.elevation = np.float32(math.pi / 2) - th
        self.sth, self.cth = np.sin(th), np.cos(th)
        self.sph, self.cph = np.sin(ph), np.cos(ph)
        self.tan_e = self.cth / np.maximum(self.sth, np.float32(1e-4))
        self.bins = int(min(16384, max(1024, 2 ** math.ceil(math.log2(8 * circle.radius)))))
        self.bin = (ph * np.float32(self.bins / (2 * math.pi))).astype(np.int64) % self.bins
        self.camera_height = rng.uniform(0.4, 1.8)
        self.image = np.zeros((height, width, 3), np.float32)
        self.sky = self.inside & (self.elevation >= 0)
        self.depth = np.full((height, width), np.inf, np.float32)
        self.faces = []
        self.crowns = []  # (centre, radius, leaf colour), painted far to near
        self.offset = 0.0  # where the camera stands across a street
        self.treeline = False
        self.canopy = None
        self.lamps = []  # pixel (x, y) and radius of lamps glowing at night
        self.branches = []  # segment arrays in pixels
        self.lines = []  # (pixel polylines, thickness, colour)
        self.shapes = []  # (pixel polygon, colour)
        self.palette(rng)

    # -- geometry ------------------------------------------------------------------------

    def project(self, points):
        """Pixel coordinates (cv2 convention: pixel centres at integers) of world points."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        theta = np.arctan2(np.hypot(p[:, 0], p[:, 1]), p[:, 2])
        phi = np.arctan2(p[:, 0], p[:, 1]) - self.rotation
        limit = self.theta_max + 0.05
        if self.lens.projection == "orthographic":
            limit = min(limit, math.pi / 2)
        ok = theta <= limit
        r = self.circle.radius * self.lens.radius(np.minimum(theta, limit))
        x = self.circle.cx - 0.5 + r * np.sin(phi)
        y = self.circle.cy - 0.5 - r * np.cos(phi)
        return x, y, ok

    def pixel_scale(self, distance):
        """About how many pixels one metre spans at ``distance`` metres near the horizon."""
        return self.circle.radius / self.theta_max / max(distance, 0.1)

    def cone_box(self, centre, e1, e2, reach):
        """Rows and columns ``(r0, r1, c0, c1)`` that hold every direction of a cone, or None."""
        g = np.linspace(-reach, reach, 9)
        gx, gy = np.meshgrid(g, g)
        dirs = centre[None, :] + gx.reshape(-1, 1) * e1[None, :] + gy.reshape(-1, 1) * e2[None, :]
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        theta = np.minimum(np.arccos(np.clip(dirs[:, 2], -1, 1)), self.theta_max)
        keep = dirs[:, 2] > -0.5
        if not keep.any():
            return None
        dirs, theta = dirs[keep], theta[keep]  # directions past the rim move onto it
        horizontal = np.maximum(np.hypot(dirs[:, 0], dirs[:, 1]), 1e-9)[:, None]
        clamped = np.concatenate([np.sin(theta)[:, None] * dirs[:, :2] / horizontal,
                                  np.cos(theta)[:, None]], axis=1)
        x, y, _ = self.project(clamped)
        zenith_angle = math.acos(float(np.clip(centre[2], -1, 1)))
        if zenith_angle < math.atan(reach * 1.5):
            x = np.append(x, self.circle.cx)
            y = np.append(y, self.circle.cy)
        c0, c1 = int(max(0, np.floor(x.min()) - 4)), int(min(self.w, np.ceil(x.max()) + 5))
        r0, r1 = int(max(0, np.floor(y.min()) - 4)), int(min(self.h, np.ceil(y.max()) + 5))
        if r0 >= r1 or c0 >= c1:
            return None
        return r0, r1, c0, c1

    def points_box(self, x, y, margin):
        """The rows and columns ``(r0, r1, c0, c1)`` around pixel points, in the frame, or None."""
        margin = int(math.ceil(margin)) + 2
        c0 = max(0, int(np.floor(np.min(x))) - margin)
        c1 = min(self.w, int(np.ceil(np.max(x))) + margin + 1)
        r0 = max(0, int(np.floor(np.min(y))) - margin)
        r1 = min(self.h, int(np.ceil(np.max(y))) + margin + 1)
        return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None

    def paint(self, region, color, box=None):
        """Paints ``color`` (RGB or an array) on ``region`` (inside ``box``) and unmarks its sky."""
        r0, r1, c0, c1 = box if box is not None else (0, self.h, 0, self.w)
        np.copyto(self.image[r0:r1, c0:c1], np.asarray(color, np.float32), where=region[..., None])
        self.sky[r0:r1, c0:c1] &= ~region

    # -- sky -----------------------------------------------------------------------------

    def palette(self, rng):
        time = self.time
        zenith, horizon = _SKY[time]
        self.zenith, self.horizon = _color(rng, *zenith), _color(rng, *horizon)
        self.gamma = rng.uniform(1.6, 3.2)
        self.light = _LIGHT[time] * rng.uniform(0.85, 1.15)
        # Exposed for the bright sky, things around it are often dark silhouettes.
        self.backlight = rng.uniform(0.35, 1.0) if time in ("day", "overcast") else rng.uniform(0.7, 1.1)
        self.ambient = 0.5 * (self.zenith + self.horizon) / 255.0
        self.sun = None
        if time == "day" and rng.random() < 0.55 or time == "dusk":
            elevation = rng.uniform(0.2, 1.4) if time == "day" else rng.uniform(0.0, 0.25)
            azimuth = rng.uniform(0, 2 * math.pi)
            self.sun = np.array([math.cos(elevation) * math.sin(azimuth),
                                 math.cos(elevation) * math.cos(azimuth), math.sin(elevation)])
            self.sun_radius = math.radians(rng.uniform(0.8, 2.0))
        self.warm = None
        if time == "dusk":
            self.warm = _color(rng, (225, 110, 50), (255, 190, 120))
        self.cloud_texture = None
        if time == "overcast" or rng.random() < {"day": 0.6, "dusk": 0.6, "night": 0.35}.get(time, 0):
            cells = rng.uniform(8, 24)
            self.cloud_texture = _noise(rng, 384, 384, cells, cells * rng.uniform(0.6, 1.6),
                                        octaves=5, persistence=0.55)
            if time == "overcast":
                self.cloud_cover = rng.uniform(-0.2, 0.35)
                self.cloud_soft = rng.uniform(0.3, 0.8)
                self.cloud_strength = rng.uniform(0.3, 0.9)
            elif time == "day":
                self.cloud_cover = rng.uniform(0.35, 0.65)
                self.cloud_soft = rng.uniform(0.05, 0.2)
                self.cloud_strength = rng.uniform(0.75, 1.0)
            else:  # dusk and night: soft, thin clouds
                self.cloud_cover = rng.uniform(0.4, 0.7)
                self.cloud_soft = rng.uniform(0.15, 0.4)
                self.cloud_strength = rng.uniform(0.4, 0.85)
            lit, shadow = _CLOUDS[time]
            self.cloud_lit, self.cloud_shadow = _color(rng, *lit), _color(rng, *shadow)

    def sky_rgb(self, th, sth, cth, ux, uy, stars=False):
        """Sky colour ``[..., 3]`` in the directions ``(th, ux, uy)`` (zenith, horizontal unit)."""
        t = np.clip(th * np.float32(2 / math.pi), 0, 1) ** np.float32(self.gamma)
        color = self.zenith + t[..., None] * (self.horizon - self.zenith)
        if self.warm is not None:  # dusk: the horizon glows on the side of the sun
            sx, sy = self.sun[0], self.sun[1]
            norm = math.hypot(sx, sy) + 1e-9
            side = np.clip(0.5 + 0.5 * (ux * np.float32(sx / norm) + uy * np.float32(sy / norm)), 0, 1)
            glow = (side**2 * t)[..., None]
            color = color + glow * (self.warm - color)
        if self.sun is not None:
            sx, sy, sz = (np.float32(v) for v in self.sun)
            cosd = cth * sz + sth * (ux * sx + uy * sy)
            glow = np.exp((cosd - 1) * np.float32(8.0))[..., None]
            color = color + glow * (np.float32(250.0) - color) * np.float32(0.6)
            disc = cosd > np.float32(math.cos(self.sun_radius))
            color = np.where(disc[..., None], np.float32(255.0), color)
        if self.cloud_texture is not None:
            span = np.float32(4.6)
            q = _plane_radius(th)
            n = self.cloud_texture.shape[0] - 1
            u = (q * ux / span + 1) * np.float32(0.5 * n)
            v = (1 - q * uy / span) * np.float32(0.5 * n)
            density = _sample(self.cloud_texture, u, v)
            fade = np.clip((np.float32(4.3) - q) / np.float32(1.3), 0, 1)  # into the haze
            alpha = np.clip((density - self.cloud_cover) / self.cloud_soft, 0, 1)
            alpha *= fade * np.float32(self.cloud_strength)
            thick = np.clip((density - self.cloud_cover) / np.float32(0.35), 0, 1)[..., None]
            cloud = self.cloud_lit + thick * (self.cloud_shadow - self.cloud_lit)
            color = color + alpha[..., None] * (cloud - color)
        if stars:
            twinkle = self.rng.random(th.shape, dtype=np.float32) < self.rng.uniform(0.0005, 0.003)
            color = color + twinkle[..., None] * self.rng.uniform(60, 160)
        return color

    def sky_layer(self):
        """Colours the pixels that are still sky once everything else is painted."""
        stars = self.time == "night" and self.rng.random() < 0.5
        idx = np.flatnonzero(self.sky)
        th, ux, uy = self.th.ravel()[idx], self.sph.ravel()[idx], self.cph.ravel()[idx]
        self.image.reshape(-1, 3)[idx] = self.sky_rgb(th, np.sin(th), np.cos(th), ux, uy, stars=stars)

    def ground(self):
        """Below the horizon (lenses over 180 degrees): pavement, grass or gravel."""
        below = self.inside & (self.elevation < 0)
        if not below.any():
            return
        color = self.lit(_color(self.rng, *_GROUNDS[int(self.rng.integers(len(_GROUNDS)))]))
        self.paint(below, color * 0.7)

    def lit(self, color):
        """A surface colour under this scene's light, exposed for the sky."""
        return np.asarray(color, np.float32) * self.light * self.backlight * (0.6 + 0.6 * self.ambient)

    # -- faces: walls, trunks and poles ----------------------------------------------------

    def face(self, p0, p1, height, kind=_WALL, color=(128, 128, 128), **params):
        """Adds a vertical face from the ground to ``height`` (above ground) along ``p0 -> p1``.

        Faces are one-sided: the camera must be on the right of ``p0 -> p1`` seen from above
        (the face runs clockwise around the camera); faces turned away are hidden behind their
        own building and are dropped. Cylinders face the camera by construction.
        """
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        if kind != _CYLINDER and p0[0] * p1[1] - p0[1] * p1[0] >= 0:
            return
        if np.hypot(*(p1 - p0)) < 1e-3:
            return
        self.faces.append(dict(p0=p0, p1=p1, top=height - self.camera_height, kind=kind,
                               color=np.asarray(color, np.float32), **params))

    def cylinder(self, x, y, radius, height, color, taper=0.0):
        """A trunk or a pole: a face across the line of sight at ``(x, y)``, as wide as it.

        ``taper`` narrows it upwards: at the top it is ``1 - taper`` as wide as at the foot.
        """
        distance = math.hypot(x, y)
        if distance < radius * 1.5:
            return
        px, py = y / distance * radius, -x / distance * radius  # clockwise across the view
        self.face((x - px, y - py), (x + px, y + py), height, kind=_CYLINDER, color=color, taper=taper)

    def building(self, a, b, back, height, depth, rng, glass=None):
        """A box building: its front is ``a - b`` and it extends ``depth`` metres along ``back``."""
        a, b, back = (np.asarray(v, np.float64) for v in (a, b, back))
        back = back / np.linalg.norm(back)
        along = b - a
        if along[0] * back[1] - along[1] * back[0] < 0:  # walk the footprint with it on the left
            a, b = b, a
            along = -along
        along = along / np.linalg.norm(along)
        if glass is None:
            glass = rng.random() < 0.2
        params = self.facade(rng, glass, height)
        side = dict(params, color=params["color"] * rng.uniform(0.75, 1.1))
        front_a, front_b = a, b
        if not glass and rng.random() < 0.22:
            # An eave hides the top of the wall behind a nearer edge: the face moves towards the
            # camera by ``eave`` and its texture is read on the wall behind it.
            eave = rng.uniform(0.4, 1.5)
            distance = abs(float(along[0] * a[1] - along[1] * a[0]))
            if distance > eave + 1.0:
                shrink = (distance - eave) / distance
                front_a, front_b = a * shrink, b * shrink
                params.update(scale=1.0 / shrink, fascia=rng.uniform(0.2, 0.5))
        c, d = b + back * depth, a + back * depth
        self.face(front_a, front_b, height, **params)
        self.face(b, c, height, **side)
        self.face(c, d, height, **side)
        self.face(d, a, height, **side)

    def facade(self, rng, glass, height):
        """Colour and window parameters of one building."""
        night = self.time == "night"
        if glass:
            tint = np.array(_GLASS_TINTS[int(rng.integers(len(_GLASS_TINTS)))], np.float32)
            return dict(kind=_GLASS, color=self.lit(_color(rng, (40, 45, 50), (120, 125, 130))),
                        tint=tint * rng.uniform(0.85, 1.0), reflect=rng.uniform(0.55, 1.0),
                        pitch_s=rng.uniform(1.2, 2.2), pitch_z=rng.uniform(3.0, 4.2),
                        spandrel=rng.uniform(0.0, 0.35) if rng.random() < 0.6 else 0.0,
                        lit=rng.uniform(0.2, 0.6) if night else 0.0)
        color = self.lit(_pick(rng, _FACADES))
        if self.sun is not None:
            color = color * rng.uniform(1.0, 1.5)  # some walls face the sun
        windows = rng.random() < 0.9
        return dict(kind=_WALL, color=color, windows=float(windows),
                    pitch_s=rng.uniform(2.2, 4.5), pitch_z=rng.uniform(2.8, 3.8),
                    fill_s=rng.uniform(0.3, 0.7), fill_z=rng.uniform(0.35, 0.65),
                    offset_s=rng.uniform(0, 3), ground=rng.uniform(3.0, 5.0),
                    balconies=float(rng.random() < 0.2 and height > 8),
                    lit=rng.uniform(0.15, 0.6) if night else 0.0,
                    texture=rng.uniform(0.05, 0.25))

    def render_faces(self):
        """The nearest face each ray does not pass over, shaded, painted and in the depth buffer."""
        if not self.faces:
            return
        defaults = dict(scale=1.0, fascia=0.0, windows=0.0, pitch_s=3.0, pitch_z=3.0, fill_s=0.5,
                        fill_z=0.5, offset_s=0.0, ground=4.0, balconies=0.0, lit=0.0, texture=0.15,
                        reflect=0.8, spandrel=0.0, taper=0.0, tint=np.ones(3, np.float32))
        faces = self.faces
        arr = {k: np.array([f.get(k, v) for f in faces], np.float32) for k, v in defaults.items()}
        p0 = np.array([f["p0"] for f in faces])
        p1 = np.array([f["p1"] for f in faces])
        top = np.array([f["top"] for f in faces], np.float32)
        kinds = np.array([f["kind"] for f in faces])
        colors = np.array([f["color"] for f in faces], np.float32)
        bins = self.bins
        # The azimuth bins each face spans (clockwise from p0 to p1, less than half a turn).
        per_radian = bins / (2 * math.pi)
        start = np.mod(np.arctan2(p0[:, 0], p0[:, 1]), 2 * math.pi)
        span = np.mod(np.arctan2(p1[:, 0], p1[:, 1]) - start, 2 * math.pi)
        first = np.ceil(start * per_radian - 0.5).astype(np.int64)
        count = np.maximum(np.floor((start + span) * per_radian - 0.5).astype(np.int64) - first + 1, 0)
        face_index = np.repeat(np.arange(len(faces)), count)
        bin_index = (np.arange(face_index.size) - np.repeat(np.cumsum(count) - count, count)
                     + np.repeat(first, count)) % bins
        phi = (bin_index + 0.5) / per_radian
        ux, uy = np.sin(phi), np.cos(phi)
        q0, d = p0[face_index], (p1 - p0)[face_index]
        with np.errstate(divide="ignore", invalid="ignore"):
            den = ux * d[:, 1] - uy * d[:, 0]
            t = (q0[:, 0] * d[:, 1] - q0[:, 1] * d[:, 0]) / den
            a = (q0[:, 0] * uy - q0[:, 1] * ux) / den
        valid = (t > 0.05) & (a >= -1e-6) & (a <= 1 + 1e-6) & np.isfinite(t)
        if not valid.any():
            return
        face_index, bin_index = face_index[valid], bin_index[valid]
        t_valid, a_valid = t[valid], np.clip(a[valid], 0, 1)
        order = np.lexsort((t_valid, bin_index))
        face_index, bin_index = face_index[order], bin_index[order]
        t_valid, a_valid = t_valid[order], a_valid[order]
        # Elevation of each face's top, and its running maximum over nearer faces of the bin: a
        # ray at elevation e sees the first face (by distance) whose running maximum reaches e.
        top_elevation = np.arctan2(top[face_index], t_valid)
        running = np.maximum.accumulate(top_elevation + 8.0 * bin_index) - 8.0 * bin_index
        per_bin = np.bincount(bin_index, minlength=bins)
        start = np.cumsum(per_bin) - per_bin
        slot = np.arange(face_index.size) - np.repeat(start, per_bin)
        depth = 1 << int(per_bin.max() - 1).bit_length()  # a power of two for the search below
        table_e = np.full((bins, depth), np.inf, np.float32)
        table_e[bin_index, slot] = running
        table_f = np.zeros((bins, depth), np.int64)
        table_f[bin_index, slot] = face_index
        table_t = np.zeros((bins, depth), np.float32)
        table_t[bin_index, slot] = t_valid
        table_a = np.zeros((bins, depth), np.float32)
        table_a[bin_index, slot] = a_valid
        highest = float(running.max())
        candidates = np.flatnonzero(self.inside.ravel() & (self.elevation.ravel() <= highest + 1e-3))
        if candidates.size == 0:
            return
        b = self.bin.ravel()[candidates]
        e = self.elevation.ravel()[candidates]
        # Per pixel, how many running maxima of its bin lie below its elevation (binary search).
        flat_e = table_e.ravel()
        k = b * depth
        step = depth // 2
        while step:
            k += np.where(flat_e[k + (step - 1)] < e, step, 0)
            step //= 2
        k += flat_e[k] < e
        k -= b * depth
        hit = k < per_bin[b]
        idx, b, k, e = candidates[hit], b[hit], k[hit], e[hit]
        f = table_f[b, k]
        t_hit = table_t[b, k]
        a_hit = table_a[b, k]
        keep = np.ones(idx.size, bool)
        below = np.flatnonzero(e < 0)  # steep rays below the horizon may meet the ground first
        keep[below] = self.camera_height / np.tan(np.maximum(-e[below], 1e-6)) >= t_hit[below]
        # A tapering trunk leaves the sides of its face to the sky (not to a face behind it).
        cyl = np.flatnonzero(kinds[f] == _CYLINDER)
        fc = f[cyl]
        height = np.clip((t_hit[cyl] * self.tan_e.ravel()[idx[cyl]] + self.camera_height)
                         / (top[fc] + self.camera_height), 0, 1)
        keep[cyl] &= np.abs(2 * a_hit[cyl] - 1) <= 1 - arr["taper"][fc] * height
        if not keep.all():
            idx, f, t_hit, a_hit = idx[keep], f[keep], t_hit[keep], a_hit[keep]
        length = np.hypot(*(p1 - p0).T).astype(np.float32)
        normal = (p1 - p0)[:, ::-1] * [1, -1] / np.maximum(length, 1e-9)[:, None]  # towards the camera
        arr["normal_x"] = normal[:, 0].astype(np.float32)
        arr["normal_y"] = normal[:, 1].astype(np.float32)
        rgb = self.shade_faces(idx, f, t_hit, a_hit, arr, kinds, colors, length, top)
        self.image.reshape(-1, 3)[idx] = rgb
        self.sky.ravel()[idx] = False
        self.depth.ravel()[idx] = t_hit

    def shade_faces(self, idx, f, t, a, arr, kinds, colors, length, top):
        """Colours of the face pixels ``idx`` (face ``f``, distance ``t``, position ``a`` across)."""
        z_face = t * self.tan_e.ravel()[idx]  # height over the camera where the ray meets the face
        rgb = colors[f]
        kind = kinds[f]
        warm = _color(self.rng, (210, 160, 80), (255, 230, 170))  # lit windows at night
        blind = self.lit(_color(self.rng, (150, 140, 120), (235, 230, 215)))
        for code, shader in ((_WALL, self.shade_walls), (_GLASS, self.shade_glass),
                             (_CYLINDER, self.shade_cylinders)):
            sel = kind == code
            if sel.all():
                return shader(idx, f, z_face, a, rgb, arr, length, top, warm, blind)
            sel = np.flatnonzero(sel)
            if sel.size:
                rgb[sel] = shader(idx[sel], f[sel], z_face[sel], a[sel], rgb[sel], arr, length, top,
                                  warm, blind)
        return rgb

    def shade_walls(self, idx, f, z_face, a, base, arr, length, top, warm, blind):
        """Walls: weathering, punched windows, shop fronts, balconies, eaves."""
        camera = np.float32(self.camera_height)
        scale = arr["scale"][f]
        z = z_face * scale + camera  # height over the ground on the wall (behind any eave)
        top_g = top[f] + camera
        span = length[f] * scale
        s = a * span
        texture = _sample(self.facade_texture, np.mod(s * 3.0 + f * 37.0, 256.0), np.mod(z * 3.0, 256.0),
                          cv2.BORDER_WRAP)
        shade = (0.72 + 0.38 * np.clip(z / np.maximum(top_g, 1.0), 0, 1)) * (
            1 + arr["texture"][f] * (texture - 0.5) * 2)
        rgb = base * shade[:, None]
        ground = arr["ground"][f]
        u = (s - arr["offset_s"][f]) / arr["pitch_s"][f]
        v = (z - ground) / arr["pitch_z"][f]
        cu, cv = np.floor(u), np.floor(v)
        fu, fv = u - cu, v - cv
        rand = _cell_random(cu, cv, f)
        has = arr["windows"][f] > 0
        window = (has & (fu < arr["fill_s"][f]) & (np.abs(fv - 0.5) < arr["fill_z"][f] / 2) & (v >= 0)
                  & (z < top_g - 0.6) & (s > 0.6) & (s < span - 0.6))
        window |= has & (z > 0.4) & (z < ground - 0.8) & (fu < 0.85)  # shop fronts
        m = np.flatnonzero(window)
        if m.size:  # dark glass with a dim mirror image of the sky
            r = rand[m]
            sky = self.mirrored_sky(idx[m], f[m], r, arr)
            rgb[m] = sky * (0.24 + 0.24 * r)[:, None] + self.lit(np.float32(40)) * (0.5 + r)[:, None]
            rgb[m[r > 0.88]] = blind
            lit = m[r < arr["lit"][f[m]]]
            rgb[lit] = warm * (0.7 + 0.3 * rand[lit])[:, None]
        balcony = (arr["balconies"][f] > 0) & (v >= 1) & (z < top_g - 1)
        slab = np.flatnonzero(balcony & (fv < 0.06))
        rail = np.flatnonzero(balcony & (fv >= 0.06) & (fv < 0.3) & (fu > 0.05) & (fu < 0.95))
        rgb[slab] = base[slab] * 0.35
        rgb[rail] = rgb[rail] * 0.5 + base[rail] * 0.3
        eave = scale > 1
        if eave.any():  # the eave's front board, then its underside
            front = eave & (z_face + camera > top_g - arr["fascia"][f])
            soffit = eave & ~front & (z > top_g)
            rgb[front] = base[front] * 0.9
            rgb[soffit] = base[soffit] * 0.35
        return rgb

    def shade_glass(self, idx, f, z_face, a, base, arr, length, top, warm, blind):
        """Curtain walls: mullions, spandrels and panes that mirror the sky (not sky)."""
        camera = np.float32(self.camera_height)
        z = z_face + camera
        u = a * length[f] / arr["pitch_s"][f]
        v = z / arr["pitch_z"][f]
        cu, cv = np.floor(u), np.floor(v)
        fu, fv = u - cu, v - cv
        rand = _cell_random(cu, cv, f)
        mullion = (fu < 0.045) | (fv < 0.035) | (z > top[f] + camera - 0.5)
        spandrel = ~mullion & (fv < 0.035 + arr["spandrel"][f])
        rgb = base * np.where(mullion, np.float32(0.55), np.float32(0.8))[:, None]
        m = np.flatnonzero(~mullion & ~spandrel)
        if m.size:
            r, fm = rand[m], f[m]
            sky = self.mirrored_sky(idx[m], fm, r, arr)
            reflect = arr["reflect"][fm]
            gain = (0.85 + 0.3 * r) * reflect
            rgb[m] = sky * arr["tint"][fm] * gain[:, None] + ((1 - reflect) * 25.0)[:, None]
            lit = m[r < arr["lit"][fm]]
            rgb[lit] = warm * (0.7 + 0.3 * rand[lit])[:, None]
        return rgb

    def shade_cylinders(self, idx, f, z_face, a, base, arr, length, top, warm, blind):
        """Trunks and poles: rounded by the light across them, with bark streaks."""
        z = z_face + np.float32(self.camera_height)
        texture = _sample(self.facade_texture, np.mod(a * 20.0 + f * 37.0, 256.0),
                          np.mod(z * 0.8, 256.0), cv2.BORDER_WRAP)
        light = (0.45 + 0.7 * np.sqrt(np.sin(np.float32(np.pi) * a))) * (0.8 + 0.4 * texture)
        return base * light[:, None]

    def mirrored_sky(self, idx, f, rand, arr):
        """The sky that pixels ``idx`` of faces ``f`` mirror; each pane tilts a little (``rand``)."""
        nx, ny = arr["normal_x"][f], arr["normal_y"][f]
        ux, uy = self.sph.ravel()[idx], self.cph.ravel()[idx]
        dot = ux * nx + uy * ny
        mx, my = ux - 2 * dot * nx, uy - 2 * dot * ny
        wobble = (rand - 0.5) * 0.12
        mx, my = mx - wobble * my, my + wobble * mx
        th = self.th.ravel()[idx] + (rand - 0.5) * 0.06
        return self.sky_rgb(th, np.sin(th), np.cos(th), mx, my)

    # -- vegetation ------------------------------------------------------------------------

    def crown(self, centre, radius, leaf, holes=0.75, density=0.0):
        """A crown: a noisy blob around ``centre`` seen against the sky, with gaps showing sky."""
        rng = self.rng
        centre = np.asarray(centre, np.float64)
        distance = float(np.linalg.norm(centre))
        if distance < radius * 1.15:
            radius = distance / 1.15
        c = centre / distance
        e1 = np.cross(c, [0.0, 0.0, 1.0])
        if np.linalg.norm(e1) < 1e-6:
            e1 = np.array([1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(e1, c)
        tan_a = math.tan(math.asin(radius / distance))
        reach = 1.6 * tan_a
        box = self.cone_box(c, e1, e2, reach)
        lumps_tex = _noise(rng, 96, 96, 6, 6, octaves=4, persistence=0.6)
        clusters_tex = _noise(rng, 128, 128, 16, 16, octaves=2)
        leaves_tex = _noise(rng, 192, 192, 60, 60, octaves=2, persistence=0.6)
        if box is None:
            return
        r0, r1, c0, c1 = box
        sth, cth = self.sth[r0:r1, c0:c1], self.cth[r0:r1, c0:c1]
        vx, vy, vz = sth * self.sph[r0:r1, c0:c1], sth * self.cph[r0:r1, c0:c1], cth
        c32, e1f, e2f = (np.asarray(v, np.float32) for v in (c, e1, e2))
        dc = vx * c32[0] + vy * c32[1] + vz * c32[2]
        ok = (dc > 0.1) & self.inside[r0:r1, c0:c1]
        dc = np.maximum(dc, np.float32(0.1))
        xi = (vx * e1f[0] + vy * e1f[1] + vz * e1f[2]) / dc / np.float32(tan_a)
        eta = (vx * e2f[0] + vy * e2f[1] + vz * e2f[2]) / dc / np.float32(tan_a)
        gx, gy = (xi / 1.6 + 1) * 0.5, (eta / 1.6 + 1) * 0.5
        lumps = _sample(lumps_tex, gx * 95, gy * 95)
        clusters = _sample(clusters_tex, gx * 127, gy * 127)
        leaves = _sample(leaves_tex, gx * 191, gy * 191)
        field = 1 - xi * xi - eta * eta + 1.4 * (lumps - 0.5) + 0.6 * (clusters - 0.5) + density
        gaps = ((leaves > holes) & (field < 0.8)) | ((clusters < 0.3) & (field < 0.5))
        region = ok & (field + 0.3 * (leaves - 0.5) > 0) & ~gaps
        region &= self.depth[r0:r1, c0:c1] > math.hypot(centre[0], centre[1]) - radius
        if not region.any():
            return
        shade = (0.45 + 0.6 * leaves + 0.5 * clusters - 0.35 * np.clip(field, 0, 1)
                 + np.clip(0.25 - field, 0, 0.25))
        self.paint(region, leaf * shade[..., None], box)

    def tree(self, x, y, size, trunk, radius, stem_share, winter_radius, winter, leaf, bark):
        """A street or park tree: a trunk of ``radius`` up to ``trunk + stem_share * size``; in winter
        bare branches (from a trunk of ``winter_radius``), else a leafy crown of ``size`` over
        branches."""
        self.cylinder(x, y, radius, trunk + size * stem_share, bark)
        if winter:
            self.bare_tree(x, y, trunk, winter_radius, size * 2.5, bark * 0.8)
        else:
            self.crowns.append(((x, y, trunk + size - self.camera_height), size, leaf))
            self.bare_tree(x, y, trunk, 0.2, size * 1.6, bark * 0.6, max_segments=150)

    def bare_tree(self, x, y, trunk_top, trunk_radius, reach, bark, max_segments=1500, twigs=0):
        """Leafless branches from a trunk's top, spreading over the sky.

        They grow towards the zenith from a tree off to the side; from a tree whose top is near
        the zenith, a few limbs spread all around.
        """
        rng = self.rng
        rx, ry, ok = self.project([x, y, trunk_top - self.camera_height])
        if not ok[0]:
            return
        rx, ry = float(rx[0]), float(ry[0])
        dx, dy = self.circle.cx - 0.5 - rx, self.circle.cy - 0.5 - ry
        towards = math.hypot(dx, dy)
        scale = self.pixel_scale(math.hypot(math.hypot(x, y), trunk_top))
        length = min(reach * scale * 0.7, 0.65 * towards + 0.1 * self.circle.radius)
        width = max(1.5, 2 * trunk_radius * scale)
        if towards < 0.3 * self.circle.radius:  # overhead: limbs in every direction
            angles = rng.uniform(0, 2 * math.pi) + np.arange(int(rng.integers(3, 5))) * 2 * math.pi / 4
            angles = list(angles + rng.normal(0, 0.3, angles.size))
            length = min(reach * scale * 0.8, 0.6 * self.circle.radius)
            width = max(1.5, width * 0.6)
        else:
            angles = [math.atan2(dx, -dy)]  # towards the centre
        if length < 4:
            return
        levels = int(np.clip(math.log(width) / -math.log(0.63) + rng.integers(2, 4) + twigs, 4, 11))
        for angle in angles:
            segments = _branch_segments(rng, 0.0, 0.0, math.pi / 2 + rng.normal(0, 0.15), length * 0.45,
                                        width, levels, spread=rng.uniform(0.4, 0.7),
                                        max_segments=max_segments // len(angles))
            self.branches.append((_rotate_segments(segments, rx, ry, -angle), bark))

    # -- thin things ---------------------------------------------------------------------------

    def line3d(self, a, b, thickness, color, sag=0.0):
        """A straight or sagging cable from ``a`` to ``b`` (world points)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        n = int(np.clip(np.linalg.norm(b - a) / 0.08, 32, 3000))
        t = np.linspace(0.0, 1.0, n)[:, None]
        points = a + t * (b - a)
        points[:, 2] -= sag * 4 * t[:, 0] * (1 - t[:, 0])
        self.polyline(points, thickness, color)

    def polyline(self, points, thickness, color):
        x, y, ok = self.project(points)
        runs = np.split(np.arange(ok.size), np.flatnonzero(np.diff(ok.astype(np.int8))) + 1)
        polys = [np.stack([x[r], y[r]], 1) for r in runs if ok[r[0]] and r.size > 1]
        if polys:
            self.lines.append((polys, int(thickness), np.asarray(color, np.float32)))

    def box3d(self, centre, size, color):
        """A small box (lamp head, traffic light, sign) as the hull of its projected corners."""
        c = np.asarray(centre, np.float64)
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        points = c + corners * np.asarray(size, np.float64) / 2
        x, y, ok = self.project(points)
        if ok.all():
            self.shapes.append((np.stack([x, y], 1), np.asarray(color, np.float32)))

    def pole(self, x, y, height, rng, lamp_towards=None, lamp=True):
        """A utility or lamp pole; with ``lamp_towards`` an arm reaching out to a lamp head."""
        radius = rng.uniform(0.08, 0.18)
        color = self.lit(_color(rng, (45, 45, 45), (140, 140, 135)))
        self.cylinder(x, y, radius, height, color)
        top = height - self.camera_height
        if lamp and lamp_towards is not None:
            direction = np.asarray(lamp_towards, np.float64)
            direction /= np.linalg.norm(direction)
            reach = rng.uniform(1.2, 3.0)
            end = np.array([x, y, top]) + np.append(direction * reach, rng.uniform(0.0, 0.5))
            thick = max(1, int(round(0.1 * self.pixel_scale(math.hypot(x, y) + 2))))
            self.line3d([x, y, top - 0.3], end, thick, color * 0.9)
            self.box3d(end - [0, 0, 0.1], (0.6, 0.6, 0.2), color * 0.8)
            if self.time in ("night", "dusk"):
                px, py, ok = self.project(end[None, :] - [0, 0, 0.2])
                if ok[0]:
                    radius = 0.8 * self.pixel_scale(float(np.linalg.norm(end)))
                    self.lamps.append((float(px[0]), float(py[0]), radius))
        return np.array([x, y, top])

    def wires_between(self, a, b, rng, count, spread=0.4, sag=(0.3, 1.2)):
        color = np.full(3, rng.uniform(10, 45), np.float32) * min(1.0, self.light + 0.3)
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        across = np.array([-(b - a)[1], (b - a)[0], 0.0])
        across /= np.linalg.norm(across) + 1e-9
        for _ in range(count):
            offset = across * rng.uniform(-spread, spread) + [0, 0, rng.uniform(-0.3, 0.3)]
            thick = 2 if rng.random() < 0.15 else 1
            self.line3d(a + offset, b + offset, thick, color, sag=rng.uniform(*sag))

    # -- layouts -----------------------------------------------------------------------------

    def street_rows(self, half_width, typical, glass_share, length, crossing):
        """Building rows on both sides of a street along ``y`` (camera at ``x = offset``)."""
        rng = self.rng
        for side in (-1, 1):
            x_face = side * half_width[int(side > 0)] - self.offset
            pos = -length
            while pos < length:
                width = rng.uniform(7, 32)
                if crossing is not None and pos + width > crossing[0] and pos < crossing[1]:
                    pos = crossing[1]
                    continue
                if rng.random() < 0.07:
                    pos += rng.uniform(3, 8)
                    continue
                height = max(4.0, typical * rng.uniform(0.55, 1.5))
                y0, y1 = pos, min(pos + width, length)
                self.building((x_face, y0), (x_face, y1), (side, 0), height, rng.uniform(10, 25), rng,
                              glass=rng.random() < glass_share)
                pos += width
        if crossing is not None:
            y_a, y_b = crossing
            for side in (-1, 1):
                x_start = side * half_width[int(side > 0)] - self.offset
                for y_row, back in ((y_a, -1), (y_b, 1)):  # the two fronts of the crossing street
                    pos = 0.0
                    while pos < 100:
                        width = rng.uniform(8, 30)
                        height = max(4.0, typical * rng.uniform(0.5, 1.5))
                        xa, xb = x_start + side * pos, x_start + side * (pos + width)
                        self.building((xa, y_row), (xb, y_row), (0, back), height, rng.uniform(10, 25),
                                      rng, glass=rng.random() < glass_share)
                        pos += width

    def street(self, canyon=False):
        rng = self.rng
        if canyon:
            half = rng.uniform(3.0, 8.0, 2)
            typical = rng.uniform(18, 70)
        else:
            half = rng.uniform(6.0, 18.0, 2)
            typical = rng.uniform(7, 35)
        self.offset = rng.uniform(-0.6, 0.6) * min(half)
        crossing = None
        if not canyon and rng.random() < 0.35 or canyon and rng.random() < 0.1:
            start = rng.uniform(-25, 20)
            crossing = (start, start + rng.uniform(8, 25))
        self.street_rows(half, typical, 0.45 if canyon else 0.2, 140.0, crossing)
        west, east = -half[0] - self.offset, half[1] - self.offset
        winter = self.time != "night" and rng.random() < 0.3
        if not canyon and rng.random() < 0.55:  # street trees along a sidewalk
            side = rng.choice([-1, 1])
            x = (west + rng.uniform(1.5, 3.0)) if side < 0 else (east - rng.uniform(1.5, 3.0))
            leaf = self.lit(_color(rng, *_LEAVES[int(rng.choice(3, p=(0.6, 0.25, 0.15)))]))
            bark = self.lit(_color(rng, *_BARK))
            spacing = rng.uniform(7, 15)
            for y in np.arange(rng.uniform(-spacing, 0) - 30, 30, spacing):
                size = rng.uniform(2.5, 5.0)
                trunk = rng.uniform(2.5, 4.5)
                self.tree(x, y, size, trunk, rng.uniform(0.12, 0.25), 0.6, 0.2, winter, leaf, bark)
        if rng.random() < 0.6:  # poles with lamps and wires along one side
            side = rng.choice([-1, 1])
            x = (west + 0.6) if side < 0 else (east - 0.6)
            spacing = rng.uniform(20, 40)
            height = rng.uniform(6.5, 10.0)
            tops = []
            for y in np.arange(rng.uniform(-spacing, 0) - 60, 60, spacing):
                tops.append(self.pole(x, y, height, rng, lamp_towards=(-side, 0),
                                      lamp=rng.random() < 0.8))
            if rng.random() < 0.7:
                for a, b in zip(tops[:-1], tops[1:]):
                    self.wires_between(a, b, rng, int(rng.integers(1, 4)), sag=(0.2, 0.8))
        if rng.random() < (0.6 if canyon else 0.4):  # cables across the street
            for _ in range(int(rng.integers(1, 5))):
                y = rng.uniform(-15, 15)
                z = rng.uniform(4.5, 12.0) - self.camera_height
                a = np.array([west, y + rng.normal(0, 2), z])
                b = np.array([east, y + rng.normal(0, 2), z + rng.normal(0, 0.8)])
                self.wires_between(a, b, rng, int(rng.integers(1, 3)), spread=0.3, sag=(0.1, 0.8))
                if rng.random() < 0.25:  # a traffic light or sign hanging from it
                    mid = (a + b) / 2 + [rng.normal(0, 1), 0, -0.9]
                    color = np.array((25, 25, 22), np.float32) * self.light + 10
                    self.box3d(mid, (0.35, 0.35, 1.0), color)
        if not canyon and rng.random() < 0.12:  # tram wires along the street
            x = rng.uniform(-2, 2) - self.offset
            z = rng.uniform(5.5, 6.5) - self.camera_height
            self.wires_between((x, -150, z), (x, 150, z), rng, 2, spread=0.8, sag=(0.0, 0.1))
        if rng.random() < 0.2:  # a sign on a post
            x = (west + 0.8) if rng.random() < 0.5 else (east - 0.8)
            y = rng.uniform(-6, 6)
            height = rng.uniform(2.2, 3.5)
            self.cylinder(x, y, 0.04, height, self.lit((90, 90, 90)))
            color = self.lit(_color(rng, (30, 60, 140), (230, 230, 230)))
            self.box3d((x, y, height - self.camera_height), (0.08, 0.7, 0.7), color)

    def canyon(self):
        self.street(canyon=True)

    def courtyard(self):
        rng = self.rng
        hx, hy = rng.uniform(5, 22), rng.uniform(5, 22)
        cx, cy = rng.uniform(-0.6, 0.6) * hx, rng.uniform(-0.6, 0.6) * hy
        typical = rng.uniform(8, 30)
        corners = [(-hx - cx, hy - cy), (hx - cx, hy - cy), (hx - cx, -hy - cy), (-hx - cx, -hy - cy)]
        glass_share = 0.15
        for i in range(4):  # the north, east, south and west walls
            a, b = np.array(corners[i]), np.array(corners[(i + 1) % 4])
            back = np.array([-(b - a)[1], (b - a)[0]])  # out of the courtyard
            parts = int(rng.integers(1, 4))
            cuts = np.sort(rng.uniform(0.2, 0.8, parts - 1))
            stops = np.concatenate([[0.0], cuts, [1.0]])
            for s0, s1 in zip(stops[:-1], stops[1:]):
                height = max(4.0, typical * rng.uniform(0.6, 1.4))
                self.building(a + s0 * (b - a), a + s1 * (b - a), back, height, rng.uniform(8, 15), rng,
                              glass=rng.random() < glass_share)
        if rng.random() < 0.4:
            leaf = self.lit(_color(rng, *_LEAVES[int(rng.choice(3, p=(0.6, 0.25, 0.15)))]))
            x, y = rng.uniform(-0.7, 0.7) * hx - cx, rng.uniform(-0.7, 0.7) * hy - cy
            size = rng.uniform(2.5, 5.0)
            trunk = rng.uniform(2.0, 4.0)
            bark = self.lit(_color(rng, *_BARK))
            self.cylinder(x, y, rng.uniform(0.1, 0.3), trunk + size * 0.5, bark)
            self.crowns.append(((x, y, trunk + size - self.camera_height), size, leaf))
            self.bare_tree(x, y, trunk, 0.2, size * 1.6, bark * 0.6, max_segments=150)
        if rng.random() < 0.3:  # washing lines or cables between facades
            for _ in range(int(rng.integers(1, 4))):
                y = rng.uniform(-hy, hy) - cy
                z = rng.uniform(3.0, 10.0) - self.camera_height
                self.wires_between((-hx - cx, y, z), (hx - cx, y + rng.normal(0, 2), z), rng, 1,
                                   spread=0.0, sag=(0.1, 0.6))

    def park(self):
        rng = self.rng
        self.offset = 0.0
        self.treeline = rng.random() < 0.8
        if rng.random() < 0.45:  # distant buildings over the trees
            for _ in range(int(rng.integers(1, 6))):
                azimuth = rng.uniform(0, 2 * math.pi)
                distance = rng.uniform(80, 300)
                width = rng.uniform(15, 60)
                centre = distance * np.array([math.sin(azimuth), math.cos(azimuth)])
                along = np.array([math.cos(azimuth), -math.sin(azimuth)])
                self.building(centre - along * width / 2, centre + along * width / 2, centre,
                              rng.uniform(10, 90), 15, rng, glass=rng.random() < 0.3)
        winter = self.time != "night" and rng.random() < 0.25
        leaf = self.lit(_color(rng, *_LEAVES[int(rng.choice(3, p=(0.6, 0.25, 0.15)))]))
        bark = self.lit(_color(rng, *_BARK))
        for _ in range(int(rng.integers(0, 5))):
            azimuth = rng.uniform(0, 2 * math.pi)
            distance = rng.uniform(3, 35) if rng.random() < 0.8 else rng.uniform(1.0, 3.0)
            x, y = distance * math.sin(azimuth), distance * math.cos(azimuth)
            size = rng.uniform(2.5, 7.0)
            trunk = rng.uniform(2.0, 5.0)
            self.tree(x, y, size, trunk, rng.uniform(0.12, 0.35), 0.5, 0.3, winter, leaf, bark)
        for _ in range(int(rng.integers(0, 3))):
            azimuth = rng.uniform(0, 2 * math.pi)
            distance = rng.uniform(3, 20)
            x, y = distance * math.sin(azimuth), distance * math.cos(azimuth)
            self.pole(x, y, rng.uniform(3.5, 8.0), rng, lamp_towards=(-x, -y))
        if rng.random() < 0.2:  # a power line crossing the park
            azimuth = rng.uniform(0, math.pi)
            offset = rng.uniform(-15, 15)
            z = rng.uniform(8, 20) - self.camera_height
            along = np.array([math.sin(azimuth), math.cos(azimuth), 0])
            across = np.array([along[1], -along[0], 0]) * offset
            self.wires_between(across - along * 200 + [0, 0, z], across + along * 200 + [0, 0, z], rng,
                               int(rng.integers(1, 4)), spread=1.0, sag=(2.0, 8.0))

    def forest(self):
        rng = self.rng
        winter = self.time != "night" and rng.random() < 0.2
        bark = self.lit(_color(rng, *_BARK))
        self.canopy_height = rng.uniform(6, 22)
        trunks = int(rng.integers(12, 50))
        distance = np.sqrt(rng.uniform(2.5**2, 35**2, trunks))
        azimuth = rng.uniform(0, 2 * math.pi, trunks)
        order = np.argsort(distance)
        roots = 0
        for i in order:
            x, y = distance[i] * math.sin(azimuth[i]), distance[i] * math.cos(azimuth[i])
            radius = rng.uniform(0.1, 0.35)
            top = self.canopy_height + rng.uniform(0.5, 6.0)
            self.cylinder(x, y, radius, top, bark * rng.uniform(0.7, 1.2), taper=rng.uniform(0.5, 0.85))
            if roots < (11 if winter else 8):
                fork = top * (rng.uniform(0.45, 0.8) if winter else rng.uniform(0.7, 0.95))
                self.bare_tree(x, y, fork, radius * 0.6, top * (1.6 if winter else 0.9), bark * 0.7,
                               max_segments=2500 if winter else 300, twigs=3 if winter else 0)
                roots += 1
        if not winter:
            self.canopy = rng.uniform(-0.22, 0.2)
            self.canopy_leaf = self.lit(_color(rng, *_LEAVES[int(rng.choice(3, p=(0.65, 0.25, 0.1)))]))

    # -- painting ---------------------------------------------------------------------------------

    def render(self):
        rng = self.rng
        self.facade_texture = _noise(rng, 256, 256, 24, 24, octaves=3)
        self.ground()
        self.render_faces()
        if self.treeline:
            self.paint_treeline()
        crowns = sorted(self.crowns, key=lambda c: -math.hypot(c[0][0], c[0][1]))
        for centre, size, leaf in crowns:
            self.crown(centre, size, leaf, holes=rng.uniform(0.68, 0.8), density=rng.uniform(-0.1, 0.2))
        if self.canopy is not None:
            self.paint_canopy()
        for segments, bark in self.branches:
            box = self.points_box(segments[:, [0, 2]], segments[:, [1, 3]], segments[:, 4].max())
            if box is not None:
                r0, r1, c0, c1 = box
                shifted = segments - np.array([c0, r0, c0, r0, 0.0])
                self.paint(_draw_segments(r1 - r0, c1 - c0, shifted), bark, box)
        for polygon, color in self.shapes:
            box = self.points_box(polygon[:, 0], polygon[:, 1], 1)
            if box is not None:
                r0, r1, c0, c1 = box
                layer = np.zeros((r1 - r0, c1 - c0), np.uint8)
                hull = cv2.convexHull(np.round((polygon - [c0, r0]) * 16).astype(np.int32))
                cv2.fillConvexPoly(layer, hull, 1, cv2.LINE_8, shift=4)
                self.paint(layer > 0, color, box)
        for polys, thickness, color in self.lines:
            points = np.concatenate(polys)
            box = self.points_box(points[:, 0], points[:, 1], thickness)
            if box is not None:
                r0, r1, c0, c1 = box
                layer = np.zeros((r1 - r0, c1 - c0), np.uint8)
                pts = [np.round((p - [c0, r0]) * 16).astype(np.int32) for p in polys]
                cv2.polylines(layer, pts, False, 1, thickness, cv2.LINE_8, shift=4)
                self.paint(layer > 0, color, box)
        self.sky_layer()

    def paint_treeline(self):
        """A ring of trees along the horizon, in front of far buildings and behind near things."""
        rng, bins = self.rng, self.bins
        phi = (np.arange(bins) + 0.5) * (2 * math.pi / bins)
        profile = np.full(bins, rng.uniform(0.02, 0.12))
        k = np.arange(1, 60)
        amplitude = rng.normal(0, 0.05, k.size) / k**0.8
        phase = rng.uniform(0, 2 * math.pi, k.size)
        profile += (amplitude[:, None] * np.cos(k[:, None] * phi[None, :] + phase[:, None])).sum(0)
        profile = np.maximum(profile + rng.normal(0, 0.006, bins), -0.02).astype(np.float32)
        leaf = self.lit(_color(rng, *_LEAVES[0])) * 0.8
        region = self.inside & (self.elevation < profile[self.bin])
        region &= self.depth > rng.uniform(30, 80)
        texture = _sample(self.facade_texture, np.mod(self.ph * 200.0, 256.0), self.th * 150.0,
                          cv2.BORDER_WRAP)
        self.paint(region, leaf * (0.7 + 0.6 * texture)[..., None])

    def paint_canopy(self):
        """A forest canopy overhead: crowns seen from below with gaps; denser towards the horizon."""
        rng = self.rng
        span = np.float32(4.6)
        crowns = _noise(rng, 384, 384, rng.uniform(10, 24), rng.uniform(10, 24), octaves=4)
        leaves = _noise(rng, 512, 512, 170, 170, octaves=2, persistence=0.6)
        q = _plane_radius(self.th)
        u = (q * self.sph / span + 1) * np.float32(191.5)
        v = (1 - q * self.cph / span) * np.float32(191.5)
        clumps = _sample(crowns, u, v)
        fine = _sample(leaves, u * np.float32(4 / 3), v * np.float32(4 / 3))
        field = clumps + 0.5 * (fine - 0.5) + 0.12 * q + self.canopy - 0.5
        region = self.inside & (field > 0)
        distance = self.canopy_height / np.maximum(self.tan_e, np.float32(1e-3))
        region &= self.depth > distance
        glow = np.clip(1 - field / 0.12, 0, 1)  # leaves at the edge of a gap let light through
        shade = 0.55 + 0.5 * fine + 0.6 * glow
        self.paint(region, self.canopy_leaf * shade[..., None])

    # -- camera ------------------------------------------------------------------------------

    def camera(self):
        """Glare, exposure, tint, vignetting, surround, blur, aberration, noise and JPEG."""
        rng, h, w = self.rng, self.h, self.w
        image = self.image
        circle = self.circle
        xx = (np.arange(w, dtype=np.float32) + 0.5 - np.float32(circle.cx)) / np.float32(circle.radius)
        yy = (np.arange(h, dtype=np.float32) + 0.5 - np.float32(circle.cy)) / np.float32(circle.radius)
        rho2 = xx[None, :] ** 2 + yy[:, None] ** 2
        if self.sun is not None:
            image = self.glare(image, xx, yy)
        for x, y, radius in self.lamps:
            image = self.glow(image, x, y, max(radius, 1.5))
        warmth = rng.uniform(-0.07, 0.07)
        # Exposed for the ground, a bright sky burns out to white (often so under overcast).
        burn = 0.35 if self.time == "overcast" else 0.15
        exposure = rng.uniform(1.2, 1.8) if rng.random() < burn else rng.uniform(0.8, 1.15)
        gain = exposure * np.array((1 + warmth, 1 + rng.uniform(-0.02, 0.02), 1 - warmth), np.float32)
        falloff = 1 - np.float32(rng.uniform(0.0, 0.45)) * rho2
        if rng.random() < 0.08:  # a dark ring at the rim of the circle
            start = rng.uniform(0.85, 0.95)
            ring = np.clip((np.sqrt(rho2) - np.float32(start)) / np.float32(1 - start), 0, 1)
            falloff *= 1 - np.float32(rng.uniform(0.5, 0.9)) * ring * ring
        image = image * falloff[..., None]
        image *= gain
        surround = np.full(3, 0.0 if rng.random() < 0.7 else rng.uniform(3, 22), np.float32)
        np.copyto(image, surround, where=~self.inside[..., None])
        if rng.random() < 0.5:
            sigma = rng.uniform(0.4, 1.0)
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        if rng.random() < 0.12:  # lateral chromatic aberration: red and blue scaled about the centre
            k = rng.uniform(0.002, 0.006) * rng.choice([-1, 1])
            for channel, scale in ((0, 1 + k), (2, 1 - k)):
                cx, cy = circle.cx - 0.5, circle.cy - 0.5
                matrix = np.array([[scale, 0, (1 - scale) * cx], [0, scale, (1 - scale) * cy]],
                                  np.float32)
                image[..., channel] = cv2.warpAffine(np.ascontiguousarray(image[..., channel]), matrix,
                                                     (w, h), flags=cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REPLICATE)
        sigma = rng.uniform(0.8, 3.5) * (2.0 if self.time == "night" else 1.0)
        # Sensor noise after demosaicing is a little blotchy: drawn at half size, then enlarged.
        grain = rng.standard_normal(((h + 1) // 2, (w + 1) // 2, 3), dtype=np.float32)
        grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)
        image += np.float32(sigma * 1.4) * grain
        image += np.float32(0.5)
        image = np.clip(image, 0, 255, out=image).astype(np.uint8)
        if rng.random() < 0.3:
            quality = [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 92))]
            _, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), quality)
            image = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
        return image

    def glare(self, image, xx, yy):
        """The sun's glare and lens flare, drawn over whatever is in front of it."""
        rng = self.rng
        x, y, ok = self.project(self.sun[None, :] * 1000)
        if not ok[0]:
            return image
        col = int(np.clip(round(float(x[0])), 0, self.w - 1))
        row = int(np.clip(round(float(y[0])), 0, self.h - 1))
        visible = bool(self.sky[row, col]) if self.inside[row, col] else False
        strength = rng.uniform(0.7, 1.2) if visible else rng.uniform(0.1, 0.4)
        sx = (float(x[0]) + 0.5 - self.circle.cx) / self.circle.radius
        sy = (float(y[0]) + 0.5 - self.circle.cy) / self.circle.radius
        dx, dy = xx[None, :] - np.float32(sx), yy[:, None] - np.float32(sy)
        d = np.sqrt(dx * dx + dy * dy)
        g = rng.uniform(0.04, 0.12)
        flare = (rng.uniform(0.6, 1.0) * np.exp(-((d / g) ** 2))
                 + rng.uniform(0.1, 0.3) * np.exp(-d / (3 * g)))
        if visible and rng.random() < 0.7:  # diffraction spikes
            rays = int(rng.choice([4, 6, 8]))
            start = rng.uniform(0, math.pi)
            width = rng.uniform(0.003, 0.008)
            length = rng.uniform(0.2, 0.6)
            for i in range(rays // 2):
                beta = start + i * 2 * math.pi / rays
                perp = np.abs(dx * np.float32(math.sin(beta)) - dy * np.float32(math.cos(beta)))
                flare = flare + 0.5 * np.exp(-((perp / width) ** 2) - d / length)
        flare = flare * strength
        color = np.array((255, 225, 170) if self.time == "dusk" else (255, 250, 240), np.float32)
        out = image + flare[..., None] * color
        if visible and rng.random() < 0.6:  # ghosts along the line through the centre
            ghosts = np.zeros((self.h, self.w, 3), np.float32)
            for _ in range(int(rng.integers(2, 6))):
                k = rng.uniform(-1.3, 0.6)
                gx = self.circle.cx - 0.5 + k * sx * self.circle.radius
                gy = self.circle.cy - 0.5 + k * sy * self.circle.radius
                radius = int(max(2, rng.uniform(0.02, 0.12) * self.circle.radius))
                tint = _color(rng, (20, 40, 20), (90, 120, 140)) * rng.uniform(0.2, 0.6)
                tint = tuple(float(v) for v in tint)
                cv2.circle(ghosts, (int(gx), int(gy)), radius, tint, -1, cv2.LINE_AA)
            out = out + cv2.GaussianBlur(ghosts, (0, 0), 1.5)
        return out

    def glow(self, image, x, y, radius):
        """The halo of a street lamp at night."""
        r = 4 * radius
        r0, r1 = int(max(0, y - r)), int(min(self.h, y + r + 1))
        c0, c1 = int(max(0, x - r)), int(min(self.w, x + r + 1))
        if r0 >= r1 or c0 >= c1:
            return image
        yy = np.arange(r0, r1, dtype=np.float32)[:, None] - y
        xx = np.arange(c0, c1, dtype=np.float32)[None, :] - x
        halo = np.exp(-(xx * xx + yy * yy) / (radius * radius))
        image = image.copy() if image is self.image else image
        image[r0:r1, c0:c1] += halo[..., None] * np.array((255, 220, 160), np.float32)
        return image


__all__ = ["UPWARD_SCENE_KINDS", "render_upward_scene", "sample_upward_lens_and_circle"]
