"""Procedural outdoor scenes with exact sky masks, as a ``tf.data`` source.

Each scene is painted back to front on a float canvas: a sky gradient for one time of day
(day, dusk, overcast, night) with clouds, sun glare or stars, then mountains, hills, ground,
buildings, trees, water that mirrors the sky, poles and power wires, and sometimes an overhang
(foliage, a bridge) along the top edge or a close-up with no sky at all. The sky mask is the set of
pixels that nothing was painted over, so it is exact by construction, thin wires and sharp tips
included. Camera effects (exposure, blur, glare, noise) then change the image but not the mask,
as they would in a photograph.

Element ``i`` of ``synthetic_sky(seed=s)`` is a pure function of ``(s, i)`` and the image size: it
renders from ``np.random.default_rng([s, i])``, so any subset or split is reproducible and can be
rendered in parallel.

Example:
    >>> ds = synthetic_sky(num_examples=5, image_size=(64, 96), seed=1)
    >>> element = next(iter(ds))
    >>> element["image"].shape.as_list(), element["file_name"].numpy()
    ([64, 96, 3], b'synthetic_1_000000.png')
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFilter

from skyseg_tf import checks
from skyseg_tf.data import spec

SPLITS = ("train", "validation", "test")
"""Split names accepted by :func:`synthetic_sky` and :func:`split_indices`."""

DEFAULT_IMAGE_SIZE = (256, 256)
DEFAULT_NUM_EXAMPLES = 1000

TIMES_OF_DAY = ("day", "dusk", "overcast", "night")
"""Sky palettes a scene can be rendered with."""

SCENE_FEATURES = (
    "closeup",
    "clouds",
    "sun",
    "mountains",
    "hills",
    "buildings",
    "spires",
    "trees",
    "conifers",
    "bare_trees",
    "poles",
    "wires",
    "water",
    "road",
    "overhang",
)
"""Boolean scene elements; with ``time_of_day`` they make up a features dict."""

# Probability of each boolean feature when it is sampled (``spires`` only matters with
# ``buildings``, ``conifers``/``bare_trees`` only with ``trees``).
_FEATURE_PROBABILITIES = {
    "closeup": 0.06,
    "clouds": 0.6,
    "sun": 0.3,
    "mountains": 0.4,
    "hills": 0.4,
    "buildings": 0.4,
    "spires": 0.5,
    "trees": 0.5,
    "conifers": 0.4,
    "bare_trees": 0.2,
    "poles": 0.3,
    "wires": 0.35,
    "water": 0.22,
    "road": 0.2,
    "overhang": 0.1,
}
_TIME_OF_DAY_PROBABILITIES = (0.45, 0.2, 0.2, 0.15)

# Sky colours per time of day: (top low, top high), (horizon low, horizon high), RGB.
_SKY_PALETTES = {
    "day": (((20, 70, 160), (90, 150, 235)), ((165, 195, 225), (225, 238, 252))),
    "dusk": (((25, 25, 70), (95, 70, 150)), ((235, 120, 50), (255, 205, 130))),
    "overcast": (((115, 120, 130), (185, 188, 195)), ((175, 180, 185), (230, 232, 235))),
    "night": (((2, 4, 12), (18, 24, 50)), ((18, 25, 50), (70, 60, 90))),
}
# How brightly objects are lit at each time of day.
_LIGHT = {"day": 1.0, "dusk": 0.5, "overcast": 0.75, "night": 0.16}


def sample_scene_features(rng: np.random.Generator) -> dict:
    """Draws which elements a scene contains.

    :func:`render_scene` calls this first when it gets no ``features``, so
    ``sample_scene_features(np.random.default_rng([seed, i]))`` tells what element ``i`` of
    ``synthetic_sky(seed=seed)`` shows (see :func:`scene_features`).

    Args:
        rng: the generator to draw from.

    Returns:
        A dict with ``"time_of_day"`` (one of :data:`TIMES_OF_DAY`) and a bool for each name in
        :data:`SCENE_FEATURES`.

    Example:
        >>> import numpy as np
        >>> features = sample_scene_features(np.random.default_rng(0))
        >>> features["time_of_day"] in TIMES_OF_DAY
        True
    """
    time_of_day = TIMES_OF_DAY[int(rng.choice(len(TIMES_OF_DAY), p=_TIME_OF_DAY_PROBABILITIES))]
    draws = rng.random(len(SCENE_FEATURES))
    features = {"time_of_day": time_of_day}
    for name, draw in zip(SCENE_FEATURES, draws):
        features[name] = bool(draw < _FEATURE_PROBABILITIES[name])
    if time_of_day in ("overcast", "night"):
        features["sun"] = False
    if not features["buildings"]:
        features["spires"] = False
    if not features["trees"]:
        features["conifers"] = features["bare_trees"] = False
    if features["water"]:
        features["road"] = False
    if features["closeup"]:  # a frame filled by one surface shows nothing else
        features.update({name: False for name in SCENE_FEATURES if name != "closeup"})
    elif not any(features[name] for name in ("mountains", "hills", "buildings", "trees", "water")):
        features["hills"] = True  # every open scene has something on the horizon
    return features


def scene_features(seed: int, index: int) -> dict:
    """Returns the features of element ``index`` of ``synthetic_sky(seed=seed)`` without rendering.

    Args:
        seed: the dataset seed.
        index: the element's index over the whole dataset (not within a split).

    Returns:
        The dict :func:`sample_scene_features` draws for that element.

    Example:
        >>> scene_features(0, 3) == scene_features(0, 3)
        True
    """
    return sample_scene_features(np.random.default_rng([checks.non_negative_int("seed", seed), int(index)]))


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    features: Mapping | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders one outdoor scene and its exact sky mask.

    Args:
        rng: the generator that decides everything about the scene.
        height: image height in pixels (at least 16).
        width: image width in pixels (at least 16).
        features: which elements to draw: ``"time_of_day"`` and any names from
            :data:`SCENE_FEATURES` mapped to bools (missing ones are ``False``, a missing time of
            day is ``"day"``). ``None`` draws them with :func:`sample_scene_features`.

    Returns:
        ``(image, mask)``: ``uint8`` arrays ``[height, width, 3]`` (RGB) and
        ``[height, width, 1]`` with ``1`` for sky and ``0`` elsewhere.

    Raises:
        ValueError: for a size below 16 or an unknown feature name or time of day.

    Example:
        >>> import numpy as np
        >>> image, mask = render_scene(np.random.default_rng(0), 48, 64, {"wires": True})
        >>> image.shape, mask.shape, set(np.unique(mask)) <= {0, 1}
        ((48, 64, 3), (48, 64, 1), True)
    """
    height, width = _check_size((height, width), "height, width")
    features = sample_scene_features(rng) if features is None else _complete_features(features)
    scene = _Scene(rng, height, width, features)
    if features["closeup"]:
        scene.closeup()
    else:
        scene.sky_layer()
        if features["mountains"]:
            scene.mountains()
        if features["hills"]:
            scene.hills()
        scene.ground()
        if features["buildings"]:
            scene.buildings()
        if features["trees"]:
            scene.trees()
        if features["water"]:
            scene.water()
        if features["poles"]:
            scene.poles()
        if features["wires"]:
            scene.wires()
        if features["overhang"]:
            scene.overhang()
    image = scene.camera()
    return image, scene.sky.astype(np.uint8)[..., None]


def split_indices(num_examples: int, split: str | None = None) -> np.ndarray:
    """Returns the element indices of a split of a synthetic dataset.

    Index ``i`` belongs to ``"train"`` when ``i % 5`` is 0, 1 or 2, to ``"validation"`` when it
    is 3 and to ``"test"`` when it is 4: a 60/20/20 partition (exact when ``num_examples`` is a
    multiple of 5) in which an element keeps its split whatever ``num_examples`` is.

    Args:
        num_examples: the size of the whole dataset.
        split: ``"train"``, ``"validation"``, ``"test"`` or ``None`` for all indices.

    Returns:
        A sorted ``int64`` array.

    Raises:
        ValueError: for an unknown split or a ``num_examples`` below 1.

    Example:
        >>> split_indices(10, "validation").tolist()
        [3, 8]
    """
    num_examples = checks.positive_int("num_examples", num_examples)
    indices = np.arange(num_examples, dtype=np.int64)
    if split is None:
        return indices
    if split not in SPLITS:
        raise ValueError(f"split: received {split!r}; valid values are {SPLITS} or None (all).")
    remainders = {"train": (0, 1, 2), "validation": (3,), "test": (4,)}[split]
    return indices[np.isin(indices % 5, remainders)]


def synthetic_file_name(seed: int, index: int) -> str:
    """Returns the file name of element ``index`` of ``synthetic_sky(seed=seed)``.

    Args:
        seed: the dataset seed.
        index: the element's index over the whole dataset.

    Returns:
        ``synthetic_{seed}_{index:06d}.png``.

    Example:
        >>> synthetic_file_name(0, 12)
        'synthetic_0_000012.png'
    """
    return f"synthetic_{seed}_{index:06d}.png"


def render_element(seed: int, index: int, image_size: Sequence[int] = DEFAULT_IMAGE_SIZE) -> dict:
    """Renders element ``index`` of ``synthetic_sky(seed=seed, image_size=image_size)`` in numpy.

    Args:
        seed: the dataset seed (a non-negative int).
        index: the element's index over the whole dataset.
        image_size: ``(height, width)`` in pixels.

    Returns:
        A dict of numpy values following :data:`skyseg_tf.data.spec.ELEMENT_SPEC`.

    Example:
        >>> element = render_element(0, 7, (32, 48))
        >>> element["image"].shape, element["file_name"]
        ((32, 48, 3), b'synthetic_0_000007.png')
    """
    seed = checks.non_negative_int("seed", seed)
    height, width = _check_size(image_size, "image_size")
    image, mask = render_scene(np.random.default_rng([seed, int(index)]), height, width)
    return spec.make_element(image, mask, synthetic_file_name(seed, int(index)))


def synthetic_sky(
    num_examples: int = DEFAULT_NUM_EXAMPLES,
    image_size: Sequence[int] = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str | None = None,
) -> tf.data.Dataset:
    """A ``tf.data`` source of procedural outdoor scenes with exact sky masks.

    Elements follow :data:`skyseg_tf.data.spec.ELEMENT_SPEC` with ``H, W = image_size``; file
    names are ``synthetic_{seed}_{index:06d}.png``. Scenes render in numpy through
    ``tf.numpy_function``, in a fixed order: about 25 ms of one CPU core per 256x256 scene, so
    cache the dataset (``.cache()``) or write it out (:func:`write_synthetic_folder`) when it is
    read for many epochs. The dataset holds Python code, so it cannot be serialized (e.g. for the
    tf.data service).

    Args:
        num_examples: size of the whole dataset, all splits together.
        image_size: ``(height, width)`` of every image, each at least 16.
        seed: a non-negative int; element ``i`` is a pure function of ``(seed, i, image_size)``.
        split: ``"train"``, ``"validation"`` or ``"test"`` for the 60/20/20 partition of
            :func:`split_indices` (``i % 5`` in {0, 1, 2} / {3} / {4}), or ``None`` for all.

    Returns:
        A finite ``tf.data.Dataset`` of dicts with known cardinality.

    Raises:
        ValueError: for a bad ``num_examples``, ``image_size``, ``seed`` or ``split``.

    Example:
        >>> ds = synthetic_sky(num_examples=10, image_size=(32, 32), split="test")
        >>> [e["file_name"].numpy() for e in ds]
        [b'synthetic_0_000004.png', b'synthetic_0_000009.png']
    """
    seed = checks.non_negative_int("seed", seed)
    height, width = _check_size(image_size, "image_size")
    indices = split_indices(num_examples, split)

    def render(index):
        return render_element(seed, int(index), (height, width))

    @tf.autograph.experimental.do_not_convert
    def to_element(index):
        return spec.numpy_element(render, [index], height, width)

    return tf.data.Dataset.from_tensor_slices(indices).map(
        to_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def write_synthetic_folder(
    out_dir: str | os.PathLike,
    num_examples: int = 16,
    image_size: Sequence[int] = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str | None = None,
) -> pathlib.Path:
    """Writes synthetic scenes as ``images/*.png`` and ``masks/*.png`` (0 = other, 255 = sky).

    The tree is what :func:`skyseg_tf.data.folder.folder_dataset` reads, and its files hold the
    same pixels as the elements of ``synthetic_sky(num_examples, image_size, seed, split)``.

    Args:
        out_dir: directory to create or fill; files with the same names are overwritten.
        num_examples: size of the whole dataset, all splits together.
        image_size: ``(height, width)`` of every image.
        seed: the dataset seed.
        split: which split's elements to write, or ``None`` for all.

    Returns:
        ``out_dir`` as a ``pathlib.Path``.

    Example:
        >>> import tempfile
        >>> root = write_synthetic_folder(tempfile.mkdtemp(), num_examples=2, image_size=(32, 32))
        >>> sorted(p.name for p in (root / "masks").iterdir())
        ['synthetic_0_000000.png', 'synthetic_0_000001.png']
    """
    seed = checks.non_negative_int("seed", seed)
    size = _check_size(image_size, "image_size")
    indices = split_indices(num_examples, split)
    out_dir = pathlib.Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    for index in indices:
        element = render_element(seed, int(index), size)
        name = element[spec.FILE_NAME_KEY].decode("utf-8")
        Image.fromarray(element[spec.IMAGE_KEY]).save(out_dir / "images" / name)
        mask = element[spec.MASK_KEY][..., 0] * np.uint8(255)
        Image.fromarray(mask).save(out_dir / "masks" / name)
    return out_dir


def _check_size(size, name: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
        valid = all(int(v) == v and not isinstance(v, bool) for v in size)
    except (TypeError, ValueError):
        valid = False
    if not valid or height < 16 or width < 16:
        raise ValueError(
            f"{name}: received {size!r}; pass two ints (height, width), each at least 16, "
            "e.g. (256, 256)."
        )
    return height, width


def _complete_features(features: Mapping) -> dict:
    unknown = sorted(set(features) - set(SCENE_FEATURES) - {"time_of_day"})
    if unknown:
        raise ValueError(
            f"features: unknown names {unknown}; valid names are 'time_of_day' and "
            f"{list(SCENE_FEATURES)}."
        )
    time_of_day = features.get("time_of_day", "day")
    if time_of_day not in TIMES_OF_DAY:
        raise ValueError(
            f"features['time_of_day']: received {time_of_day!r}; valid values are {TIMES_OF_DAY}."
        )
    completed = {"time_of_day": time_of_day}
    completed.update({name: bool(features.get(name, False)) for name in SCENE_FEATURES})
    return completed


# --------------------------------------------------------------------------------------------
# Rendering helpers. Coordinates: y grows downwards, rows 0..H-1; sizes scale with the image.


def _noise(rng, height, width, cells_y, cells_x, octaves=4, persistence=0.5):
    """Fractal value noise in about [0, 1]: random grids upsampled bicubically, summed.

    Octaves are summed at the finest grid's resolution, then resized to the image once.
    """
    grids = []
    for octave in range(octaves):
        gy = max(2, int(round(cells_y * 2**octave)) + 1)
        gx = max(2, int(round(cells_x * 2**octave)) + 1)
        if grids and (gy > height or gx > width):
            break
        grids.append((gy, gx, persistence**octave))
    fine_y, fine_x = grids[-1][:2]
    total = np.zeros((fine_y, fine_x), np.float32)
    for gy, gx, amplitude in grids:
        grid = rng.random((gy, gx), dtype=np.float32)
        total += amplitude * _resize(grid, fine_y, fine_x)
    total = _resize(total, height, width) / sum(amplitude for _, _, amplitude in grids)
    return np.clip(total, 0.0, 1.0)


def _resize(array, height, width):
    """Bicubic resize of a float32 2-D array."""
    if array.shape == (height, width):
        return array
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.BICUBIC))


def _noise1d(rng, length, cells, octaves=3, persistence=0.5):
    """Smooth 1-D noise in about [-1, 1], linear pieces at every octave."""
    x = np.arange(length, dtype=np.float32)
    total = np.zeros(length, np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        n = max(2, int(cells * 2**octave) + 2)
        knots = np.linspace(0, length - 1, n)
        total += amplitude * np.interp(x, knots, rng.uniform(-1, 1, n))
        norm += amplitude
        amplitude *= persistence
    return total / norm


def _color(rng, low, high):
    """A colour between ``low`` and ``high``: one shared position plus a little per-channel jitter."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    t = np.clip(rng.uniform(0, 1) + rng.uniform(-0.15, 0.15, 3), 0, 1).astype(np.float32)
    return low + t * (high - low)


def _mask_from_drawing(height, width, draw_fn):
    """Rasterises shapes drawn by ``draw_fn(ImageDraw)`` into a bool mask."""
    canvas = Image.new("L", (width, height), 0)
    draw_fn(ImageDraw.Draw(canvas))
    return np.asarray(canvas) > 0


class _Scene:
    """The canvas of one scene while it is being painted."""

    def __init__(self, rng, height, width, features):
        self.rng = rng
        self.h, self.w = height, width
        self.s = min(height, width)
        self.features = features
        self.time = features["time_of_day"]
        self.light = _LIGHT[self.time] * rng.uniform(0.85, 1.15)
        self.image = np.zeros((height, width, 3), np.float32)
        self.sky = np.ones((height, width), bool)
        # Pixel coordinates as read-only broadcast views (no HxW memory).
        self.yy = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width))
        self.xx = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :], (height, width))
        # Horizon row at the centre and its tilt (camera roll).
        self.horizon = rng.uniform(0.35, 0.82) * height
        self.tilt = math.tan(math.radians(rng.normal(0.0, 1.5)))
        self.sun = None
        self.pole_tops = []  # (x, y, half arm length) of crossarms that wires can hang from
        top, horizon = _SKY_PALETTES[self.time]
        self.sky_top = _color(rng, *top)
        self.sky_horizon = _color(rng, *horizon)
        # Ambient colour that tints every lit surface.
        self.ambient = 0.5 * (self.sky_top + self.sky_horizon) / 255.0

    # -- utilities ---------------------------------------------------------------------------

    def ground_y(self, x):
        return self.horizon + self.tilt * (np.asarray(x, np.float32) - self.w / 2)

    def paint(self, region, color):
        """Paints ``color`` (RGB or an HxWx3 array) on ``region`` and removes it from the sky."""
        np.copyto(self.image, np.asarray(color, np.float32), where=region[..., None])
        self.sky &= ~region

    def lit(self, color):
        """A surface colour under this scene's light."""
        color = np.asarray(color, np.float32)
        return color * self.light * (0.6 + 0.6 * self.ambient)

    def haze(self, color, amount):
        """Mixes a colour towards the horizon sky (aerial perspective)."""
        return (1 - amount) * np.asarray(color, np.float32) + amount * self.sky_horizon

    def textured(self, color, noise, strength):
        """A colour field ``color * (1 + strength * (noise - 0.5))``."""
        shade = 1.0 + strength * (noise - 0.5)
        return np.asarray(color, np.float32) * shade[..., None]

    # -- sky ------------------------------------------------------------------------------

    def sky_layer(self):
        rng, h, w = self.rng, self.h, self.w
        rows = self.yy[:, :1, None]  # the gradient only depends on the row
        t = np.clip(rows / max(self.horizon, 1.0), 0.0, 1.0) ** rng.uniform(0.6, 1.6)
        sky = (1 - t) * self.sky_top + t * self.sky_horizon
        if self.time == "dusk":  # a pink/purple band between the blue top and orange horizon
            band = np.exp(-(((t - rng.uniform(0.45, 0.7)) / 0.18) ** 2))
            sky = sky * (1 - 0.5 * band) + 0.5 * band * _color(rng, (170, 80, 120), (230, 130, 170))
        # Brighter on one side.
        side = (self.xx[:1] / w - rng.uniform(0, 1))[..., None]
        sky = sky * (1 + rng.uniform(-0.12, 0.12) * side)
        if self.time == "night":
            stars = rng.random((h, w)) < rng.uniform(0.0005, 0.004)
            sky[stars] += rng.uniform(60, 200, (int(stars.sum()), 1)).astype(np.float32)
        if self.features["sun"]:
            sky = self.add_sun(sky)
        if self.features["clouds"] or self.time == "overcast":
            sky = self.add_clouds(sky)
        self.image[:] = sky

    def add_sun(self, sky):
        rng = self.rng
        low = 0.55 if self.time == "dusk" else 0.05
        x = rng.uniform(0.05, 0.95) * self.w
        y = rng.uniform(low, 0.95) * float(self.ground_y(x))
        radius = rng.uniform(0.012, 0.03) * self.s
        glow = rng.uniform(0.08, 0.3) * self.s
        color = np.array((255, 200, 120) if self.time == "dusk" else (255, 245, 225), np.float32)
        d = np.hypot(self.xx - x, self.yy - y)
        halo = np.exp(-((d / glow) ** 2)) * rng.uniform(0.5, 1.0) + np.exp(-d / (3 * glow)) * 0.25
        disc = np.clip((radius + 1.0 - d), 0.0, 1.0)
        amount = np.clip(halo + disc, 0.0, 1.0)[..., None]
        self.sun = (x, y, glow, color)
        return sky * (1 - amount) + color * amount

    def add_clouds(self, sky):
        rng, h, w = self.rng, self.h, self.w
        overcast = self.time == "overcast"
        cells = rng.uniform(1.5, 4.0)
        stretch = rng.uniform(1.0, 2.5)  # clouds are wider than tall
        n = _noise(rng, h, w, cells * stretch * h / w, cells, octaves=5, persistence=0.55)
        coverage = rng.uniform(0.15, 0.4) if overcast else rng.uniform(0.4, 0.66)
        softness = rng.uniform(0.05, 0.2)
        alpha = np.clip((n - coverage) / softness, 0.0, 1.0) * rng.uniform(0.8, 1.0)
        palettes = {
            "day": ((250, 250, 252), (150, 158, 175)),
            "dusk": ((255, 175, 130), (95, 65, 105)),
            "overcast": ((210, 212, 216), (105, 110, 120)),
            "night": ((60, 65, 85), (15, 17, 28)),
        }
        lit, shadow = (_color(rng, np.array(c) * 0.88, np.minimum(np.array(c) * 1.04, 255))
                       for c in palettes[self.time])
        # Lit from above: where the density falls going up, the cloud is a sunny top.
        shift = max(2, int(0.05 * h))
        rise = n - np.roll(n, -shift, axis=0)
        light = np.clip(0.6 - rise * rng.uniform(3, 6) - 0.8 * (n - coverage), 0.0, 1.0)[..., None]
        cloud = shadow * (1 - light) + lit * light
        alpha = alpha[..., None]
        return sky * (1 - alpha) + cloud * alpha

    # -- terrain --------------------------------------------------------------------------

    def mountains(self):
        rng, h, w = self.rng, self.h, self.w
        layers = int(rng.integers(1, 3))
        for layer in range(layers):
            base = self.ground_y(self.xx[0])
            height = rng.uniform(0.15, 0.55) * self.horizon * (1 - 0.3 * layer)
            n = int(rng.integers(3, 10))
            xs = np.sort(rng.uniform(-0.2 * w, 1.2 * w, n))
            peaks = rng.uniform(0.45, 1.0, n)
            peaks[1::2] *= rng.uniform(0.25, 0.8, len(peaks[1::2]))  # valleys between peaks
            ridge = np.interp(self.xx[0], xs, base[0] - height * peaks)
            ridge += _noise1d(rng, w, rng.uniform(6, 20), octaves=4) * height * 0.08
            region = self.yy >= ridge[None, :]
            rock = _color(rng, (70, 70, 80), (140, 125, 120))
            haze = rng.uniform(0.25, 0.6) * (1 - 0.4 * layer)
            color = self.haze(self.lit(rock), haze)
            streaks = _noise(rng, h, w, 2, rng.uniform(8, 20), octaves=3)
            field = self.textured(color, streaks, 0.5)
            if self.time in ("day", "overcast") and rng.random() < 0.5:
                snowline = ridge.min() + rng.uniform(0.2, 0.5) * (base.mean() - ridge.min())
                snow = region & (self.yy < snowline + 0.1 * height * (streaks - 0.5) * 4)
                field[snow] = self.haze(self.lit((235, 238, 245)), haze * 0.5)
            self.paint(region, field)

    def hills(self):
        rng, h, w = self.rng, self.h, self.w
        base = self.ground_y(self.xx[0])
        height = rng.uniform(0.05, 0.3) * self.horizon
        ridge = base - height * (0.5 + 0.5 * _noise1d(rng, w, rng.uniform(1, 3), octaves=2))
        ridge += _noise1d(rng, w, rng.uniform(20, 60), octaves=2) * rng.uniform(0.5, 2.0)
        region = self.yy >= ridge[None, :]
        green = _color(rng, (40, 70, 25), (140, 140, 70))
        color = self.haze(self.lit(green), rng.uniform(0.1, 0.4))
        self.paint(region, self.textured(color, _noise(rng, h, w, 6, 12), 0.5))

    def ground(self):
        rng, h, w = self.rng, self.h, self.w
        region = self.yy >= self.ground_y(self.xx)
        kinds = (
            ((50, 85, 30), (110, 150, 60)),  # grass
            ((150, 125, 70), (200, 175, 110)),  # field
            ((185, 165, 125), (225, 205, 160)),  # sand
            ((90, 70, 50), (135, 105, 75)),  # dirt
            ((85, 85, 90), (140, 140, 145)),  # pavement
            ((215, 220, 230), (245, 247, 252)),  # snow
        )
        base = self.lit(_color(rng, *kinds[int(rng.integers(len(kinds)))]))
        # Far ground is hazier; near ground shows more detail (perspective).
        depth = np.clip((self.yy - self.horizon) / max(h - self.horizon, 1.0), 0.0, 1.0)
        far = self.haze(base, rng.uniform(0.1, 0.35))
        color = far * (1 - depth[..., None]) + base * depth[..., None]
        texture = self.ground_texture(_noise(rng, 128, 128, 6, 6, octaves=5))
        shade = 1 + (0.4 + 0.5 * depth) * (texture - 0.5)
        field = color * shade[..., None]
        if self.features["road"]:
            self.road(field, texture)
        self.paint(region, field)

    def ground_texture(self, tile):
        """Lays a square texture tile on the ground plane in perspective (mirror-repeated).

        A pixel ``y`` rows below the horizon sees the ground at distance ``w / y``; the tile
        covers about one unit of ground, so texture is coarse at the bottom and fine far away.
        """
        n = tile.shape[0]
        below = np.maximum(self.yy[:, :1] - self.ground_y(self.xx[:1]), 0.5)
        distance = self.w / below
        across = (self.xx[:1] - self.w / 2) / below
        rows = (distance * n * 0.5).astype(np.int64) % (2 * n)
        cols = (across * n * 0.5 + n / 2).astype(np.int64) % (2 * n)
        rows = np.where(rows < n, rows, 2 * n - 1 - rows)
        cols = np.where(cols < n, cols, 2 * n - 1 - cols)
        return tile[rows, cols]

    def road(self, field, noise):
        """A road from a vanishing point on the horizon to the bottom edge, with a dashed line."""
        rng, h, w = self.rng, self.h, self.w
        vx = rng.uniform(0.2, 0.8) * w
        vy = float(self.ground_y(vx))
        bx = vx + rng.uniform(-0.4, 0.4) * w
        half = rng.uniform(0.2, 0.6) * w
        polygon = [(vx - 0.5, vy), (vx + 0.5, vy), (bx + half, h), (bx - half, h)]
        road = _mask_from_drawing(h, w, lambda d: d.polygon(polygon, fill=1))
        asphalt = self.lit(_color(rng, (55, 55, 60), (100, 100, 105)))
        field[road] = asphalt * (1 + 0.35 * (noise[road] - 0.5))[:, None]
        below = np.maximum(self.yy - vy, 0.5)
        t = below / max(h - vy, 1.0)
        centre = vx + (bx - vx) * t
        dashes = np.floor(rng.uniform(30, 80) * h / below / 10.0) % 2 == 0
        line = road & (np.abs(self.xx - centre) < 0.3 + 0.01 * w * t) & dashes
        field[line] = self.lit((225, 225, 210))

    # -- structures -----------------------------------------------------------------------

    def buildings(self):
        rng, h, w = self.rng, self.h, self.w
        count = int(rng.integers(2, 12))
        labels = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(labels)
        palette = [np.zeros(3, np.float32)]
        params = [(0, 0, 1, 1, 0.5, 0.5, 0.0)]  # x0, y0, sx, sy, fill-x, fill-y, lit share
        feet = np.sort(rng.uniform(0.0, 0.12, count) * h)
        night = self.time in ("night", "dusk")
        for i, foot in enumerate(feet, start=1):
            bw = rng.uniform(0.06, 0.3) * w
            x0 = rng.uniform(-0.1 * w, w - 0.5 * bw)
            bottom = float(self.ground_y(x0 + bw / 2)) + foot
            top = bottom - rng.uniform(0.15, 1.1) * self.horizon * (1 + foot / h)
            draw.rectangle([x0, top, x0 + bw, bottom], fill=i)
            if rng.random() < 0.35:  # a narrower upper storey
                inset = rng.uniform(0.1, 0.3) * bw
                extra = rng.uniform(0.05, 0.2) * (bottom - top)
                draw.rectangle([x0 + inset, top - extra, x0 + bw - inset, top], fill=i)
                top -= extra
            if rng.random() < 0.2 and bw < 0.2 * w:  # gable roof
                ridge = top - 0.5 * bw * rng.uniform(0.4, 1.0)
                draw.polygon([(x0, top), (x0 + bw, top), (x0 + bw / 2, ridge)], fill=i)
            if self.features["spires"] and rng.random() < 0.5:
                cx = x0 + bw * rng.uniform(0.3, 0.7)
                tip = top - rng.uniform(0.05, 0.3) * h
                if rng.random() < 0.5:  # spire: a sharp narrow triangle
                    half = max(1.5, rng.uniform(0.01, 0.04) * w)
                    draw.polygon([(cx - half, top), (cx + half, top), (cx, tip)], fill=i)
                else:  # antenna: a 1-2 px mast with a crossbar
                    mast = int(rng.integers(1, 3))
                    draw.line([(cx, top), (cx, tip)], fill=i, width=mast)
                    bar = tip + rng.uniform(0.3, 0.7) * (top - tip)
                    draw.line([(cx - 0.02 * w, bar), (cx + 0.02 * w, bar)], fill=i, width=1)
            kind = rng.random()
            if kind < 0.35:
                base = _color(rng, (140, 140, 140), (210, 205, 195))  # concrete
            elif kind < 0.6:
                base = _color(rng, (120, 55, 40), (175, 100, 75))  # brick
            elif kind < 0.8:
                base = self.haze(_color(rng, (40, 70, 90), (110, 140, 160)), 0.3)  # glass
            else:
                base = _color(rng, (180, 160, 120), (230, 215, 180))  # stucco
            distance = 1 - foot / (0.12 * h + 1)  # buildings with a higher foot are farther
            palette.append(self.haze(self.lit(base), rng.uniform(0.0, 0.3) * distance))
            sx = max(3.0, rng.uniform(0.015, 0.04) * w)
            sy = max(3.0, sx * rng.uniform(0.9, 1.6))
            lit_share = rng.uniform(0.1, 0.6) if night else 0.0
            params.append((x0 + rng.uniform(0, sx), top + rng.uniform(0.3, 1.0) * sy, sx, sy,
                           rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.65), lit_share))
        label = np.asarray(labels)
        region = label > 0
        palette = np.asarray(palette, np.float32)
        params = np.asarray(params, np.float32)
        x0, y0, sx, sy, fx, fy, lit_share = (params[:, k][label] for k in range(7))
        field = palette[label] * (1 + 0.12 * (_noise(rng, h, w, 20, 20, octaves=2) - 0.5))[..., None]
        u = (self.xx - x0) / sx
        v = (self.yy - y0) / sy
        windows = region & (u >= 0) & (v >= 0) & (u % 1 < fx) & (v % 1 < fy)
        # Windows: dark glass reflecting the sky, some lit at night.
        column, row = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        cell = (column * 73856093) ^ (row * 19349663) ^ label  # a hash per window
        lit_cell = (cell % 1000) / 1000.0 < lit_share
        glass = 0.35 * self.sky_horizon + 0.2 * field
        field[windows] = glass[windows]
        field[windows & lit_cell] = _color(rng, (220, 170, 80), (255, 225, 150))
        self.paint(region, field)

    def trees(self):
        rng, h, w = self.rng, self.h, self.w
        leaf = _color(rng, (25, 55, 20), (90, 125, 55))
        if rng.random() < 0.15:
            leaf = _color(rng, (130, 60, 20), (200, 130, 40))  # autumn
        leaf = self.lit(leaf)
        bark = self.lit(_color(rng, (45, 35, 25), (90, 75, 60)))
        texture = _noise(rng, h, w, 20, 20, octaves=3)
        if rng.random() < 0.6:
            self.treeline(leaf, texture)
        for _ in range(int(rng.integers(1, 5))):
            r = rng.random()
            x = rng.uniform(0.0, 1.0) * w
            foot = float(self.ground_y(x)) + rng.uniform(0.0, 0.25) * h
            size = rng.uniform(0.15, 0.7) * h
            if self.features["bare_trees"] and r < 0.5:
                self.bare_tree(x, foot, size, bark)
            elif self.features["conifers"] and r < 0.8:
                self.conifer(x, foot, size, leaf * 0.8, texture)
            else:
                self.deciduous(x, foot, size, leaf, bark, texture)

    def treeline(self, leaf, texture):
        """A forest edge along the horizon: round crowns, or pointed ones for conifers."""
        rng, w = self.rng, self.w
        base = self.ground_y(self.xx[0]) + 1
        k = int(rng.integers(8, 40))
        cx = rng.uniform(-0.05, 1.05, k) * w
        height = rng.uniform(0.05, 0.2, k)[:, None] * self.horizon
        dx = np.abs(self.xx[0][None, :] - cx[:, None])
        if self.features["conifers"]:
            tops = base[None, :] - height + dx * rng.uniform(1.5, 3.5, k)[:, None]
        else:
            radius = height * rng.uniform(0.6, 1.2, k)[:, None]
            dome = np.sqrt(np.clip(radius**2 - dx**2, 0, None)) * 0.6
            tops = base[None, :] - height - dome + np.where(dx < radius, 0, 1e6)
        top = tops.min(axis=0)
        top += _noise1d(self.rng, w, w / 3, octaves=2) * 1.5
        region = (self.yy >= top[None, :]) & (self.yy <= base[None, :] + 2)
        color = self.haze(leaf, rng.uniform(0.15, 0.45))
        self.paint(region, self.textured(color, texture, 0.8))

    def deciduous(self, x, foot, size, leaf, bark, texture):
        rng, h, w = self.rng, self.h, self.w
        crown_r = size * rng.uniform(0.25, 0.4)
        crown_y = foot - size + crown_r
        trunk_w = max(2.0, crown_r * rng.uniform(0.1, 0.2))
        trunk = _mask_from_drawing(
            h, w, lambda d: d.rectangle([x - trunk_w / 2, crown_y, x + trunk_w / 2, foot], fill=1)
        )
        self.paint(trunk, self.textured(bark, texture, 0.5))
        x0, x1 = int(max(0, x - 1.8 * crown_r)), int(min(w, x + 1.8 * crown_r + 1))
        y0, y1 = int(max(0, crown_y - 1.6 * crown_r)), int(min(h, crown_y + 1.6 * crown_r + 1))
        if x0 >= x1 or y0 >= y1:
            return
        ch, cw = y1 - y0, x1 - x0
        yy, xx = self.yy[y0:y1, x0:x1], self.xx[y0:y1, x0:x1]
        # Crown density: the union of a few ellipsoids, then a lumpy and a leafy (fine) edge.
        density = np.full((ch, cw), -1.0, np.float32)
        for _ in range(int(rng.integers(4, 10))):
            bx = x + rng.normal(0, 0.4) * crown_r
            by = crown_y + rng.normal(0, 0.3) * crown_r
            rx = crown_r * rng.uniform(0.4, 0.75)
            ry = rx * rng.uniform(0.7, 1.0)
            density = np.maximum(density, 1 - ((xx - bx) / rx) ** 2 - ((yy - by) / ry) ** 2)
        scale = max(cw, ch)
        lumps = _noise(rng, ch, cw, 4 * ch / scale, 4 * cw / scale, octaves=3)
        leaves = _noise(rng, ch, cw, ch / 3.0, cw / 3.0, octaves=1)
        crown = density + 0.6 * (lumps - 0.5) + 0.35 * (leaves - 0.5) > 0.0
        crown &= ~((leaves > rng.uniform(0.7, 0.8)) & (density < 0.6))  # gaps near the rim
        region = np.zeros((h, w), bool)
        region[y0:y1, x0:x1] = crown
        clumps = np.zeros((h, w), np.float32)
        clumps[y0:y1, x0:x1] = 0.6 * lumps + 0.4 * leaves
        top_light = np.clip((self.yy - (crown_y - crown_r)) / (2 * crown_r), 0, 1)
        field = self.textured(leaf, clumps, 1.2) * (1.15 - 0.5 * top_light)[..., None]
        self.paint(region, field)

    def conifer(self, x, foot, size, leaf, texture):
        rng, h, w = self.rng, self.h, self.w
        half = size * rng.uniform(0.15, 0.28)
        tip = foot - size
        tiers = int(rng.integers(5, 12))
        left, right = [], []
        for k in range(1, tiers + 1):
            y = tip + (size * 0.85) * k / tiers
            width = half * k / tiers
            left.append((x - width, y))
            left.append((x - width * 0.55, y - 0.1 * size / tiers))
            right.append((x + width, y))
            right.append((x + width * 0.55, y - 0.1 * size / tiers))
        trunk, bottom = max(1.0, 0.06 * half), tip + size * 0.85
        points = ([(x, tip)] + right + [(x + trunk, bottom), (x + trunk, foot), (x - trunk, foot),
                                        (x - trunk, bottom)] + left[::-1])
        region = _mask_from_drawing(h, w, lambda d: d.polygon(points, fill=1))
        self.paint(region, self.textured(leaf, texture, 0.9))

    def bare_tree(self, x, foot, size, bark):
        """A leafless tree: branches thinning to 1 px against the sky."""
        rng, h, w = self.rng, self.h, self.w
        segments = []

        def grow(x0, y0, angle, length, width, depth):
            x1 = x0 + length * math.cos(angle)
            y1 = y0 - length * math.sin(angle)
            segments.append(((x0, y0, x1, y1), max(1, int(round(width)))))
            if depth == 0 or width < 0.6:
                return
            for _ in range(int(rng.integers(2, 4))):
                grow(x1, y1, angle + rng.normal(0, 0.5), length * rng.uniform(0.55, 0.8),
                     width * 0.6, depth - 1)

        grow(x, foot, math.pi / 2 + rng.normal(0, 0.08), size * 0.35, max(2.0, size * 0.05), 5)
        region = _mask_from_drawing(
            h, w, lambda d: [d.line(segment, fill=1, width=width) for segment, width in segments]
        )
        self.paint(region, bark * 0.8)

    def water(self):
        """Water below the horizon that mirrors (darker, rippled) whatever is above it."""
        rng, h, w = self.rng, self.h, self.w
        shore = rng.uniform(0.0, 0.04) * h
        line = self.ground_y(self.xx[0]) + shore
        region = self.yy >= line[None, :]
        depth = np.maximum(self.yy - line[None, :], 0.0)
        ripple = (np.sin(self.yy * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) * rng.uniform(0.5, 3.0)
                  * (1 + depth / (0.1 * h)))
        src_y = np.clip(line[None, :] - depth * rng.uniform(0.9, 1.2) - 1, 0, h - 1).astype(np.int64)
        src_x = np.clip(self.xx + ripple, 0, w - 1).astype(np.int64)
        mirrored = self.image[src_y, src_x]
        tint = self.lit(_color(rng, (20, 45, 50), (60, 90, 100)))
        fresnel = np.clip(depth / max(h - self.horizon, 1.0), 0, 1)[..., None] * rng.uniform(0.3, 0.8)
        darken = rng.uniform(0.55, 0.9)
        field = mirrored * darken * (1 - fresnel) + tint * fresnel
        streaks = _noise(rng, h, w, 40, 2, octaves=2)
        field *= (1 + 0.25 * (streaks - 0.5))[..., None]
        self.paint(region, field)

    def poles(self):
        rng, h, w = self.rng, self.h, self.w
        color = self.lit(_color(rng, (40, 38, 35), (110, 100, 90)))
        count = int(rng.integers(1, 4))
        xs = np.sort(rng.uniform(0.05, 0.95, count)) * w
        # Poles of one line share a height: a nearer pole (lower foot) reaches higher.
        line_top = rng.uniform(-0.3, 0.8) * self.horizon

        def draw(d):
            for x in xs:
                near = rng.uniform(0.02, 0.4) * h
                foot = float(self.ground_y(x)) + near
                top = line_top - 0.8 * near + rng.normal(0, 0.02) * h
                width = max(2, int(rng.uniform(0.006, 0.02) * w))
                d.rectangle([x - width / 2, top, x + width / 2, foot], fill=1)
                if rng.random() < 0.7:  # crossarm
                    arm = rng.uniform(0.03, 0.08) * w
                    ay = top + rng.uniform(0.01, 0.04) * h
                    d.rectangle([x - arm, ay, x + arm, ay + max(1, width // 2)], fill=1)
                    self.pole_tops.append((x, ay, arm))
                else:  # street lamp arm
                    arm = rng.uniform(0.03, 0.1) * w * rng.choice([-1, 1])
                    head = [(x, top), (x + arm, top - 0.01 * h), (x + arm * 1.1, top + 0.005 * h)]
                    d.line(head, fill=1, width=max(1, width // 2))
        self.paint(_mask_from_drawing(h, w, draw), color)

    def wires(self):
        """Power wires: 1-2 px sagging spans between poles (or anchors outside the frame)."""
        rng, h, w = self.rng, self.h, self.w
        tops = sorted(self.pole_tops)
        if tops:
            anchors = [(x, y) for x, y, _ in tops]
            spacing = rng.uniform(0.5, 1.2) * w
            arm = max(a for _, _, a in tops)
        else:
            y = rng.uniform(0.05, 0.8) * self.horizon
            first = rng.uniform(-0.8, -0.05) * w
            anchors = [(first, y)]
            spacing = rng.uniform(1.05, 1.6) * (w - first)  # the next support is out of frame
            arm = rng.uniform(0.02, 0.1) * w
        drift = rng.normal(0, 0.05) * h
        first, last = anchors[0], anchors[-1]
        anchors = [(first[0] - spacing, first[1] - drift)] + anchors
        while anchors[-1][0] < w:
            anchors.append((anchors[-1][0] + spacing, last[1] + drift))
        ax = np.array([a[0] for a in anchors], np.float32)
        ay = np.array([a[1] for a in anchors], np.float32)
        x = np.arange(-2.0 - arm, w + 2.0 + arm, 2.0, dtype=np.float32)
        span = np.clip(np.searchsorted(ax, x) - 1, 0, len(ax) - 2)
        t = (x - ax[span]) / (ax[span + 1] - ax[span])
        lines = []
        for _ in range(int(rng.integers(1, 6))):
            dx = rng.uniform(-1, 1) * arm
            dy = rng.uniform(-0.01, 0.03) * h
            sag = rng.uniform(0.03, 0.12) * (ax[span + 1] - ax[span])
            y = (1 - t) * ay[span] + t * ay[span + 1] + dy + sag * 4 * t * (1 - t)
            points = list(zip((x + dx).tolist(), y.tolist()))
            lines.append((points, 2 if rng.random() < 0.2 else 1))
        region = _mask_from_drawing(
            h, w, lambda d: [d.line(points, fill=1, width=width) for points, width in lines]
        )
        self.paint(region, np.full(3, rng.uniform(15, 60), np.float32))

    def overhang(self):
        """Something along the top edge: leaves hanging into the frame or a bridge/roof."""
        rng, h, w = self.rng, self.h, self.w
        if rng.random() < 0.5:
            leaf = self.lit(_color(rng, (20, 45, 15), (70, 100, 40)))
            n = _noise(rng, h, w, 5, 5, octaves=5)
            reach = rng.uniform(0.1, 0.45) * h
            side = rng.uniform(0, 1)
            weight = np.clip(1 - self.yy / reach, 0, 1) * (0.6 + 0.8 * np.abs(self.xx / w - side))
            region = n * weight > rng.uniform(0.25, 0.4)
            self.paint(region, self.textured(leaf * 0.7, _noise(rng, h, w, 25, 25, octaves=2), 1.0))
        else:
            thickness = rng.uniform(0.05, 0.25) * h
            slope = rng.normal(0, 0.1)
            edge = thickness + slope * (self.xx[0] - w / 2)
            region = self.yy <= edge[None, :]
            concrete = self.lit(_color(rng, (60, 60, 60), (120, 115, 110))) * 0.6
            beams = ((self.xx / (rng.uniform(0.08, 0.2) * w)) % 1 < 0.15)
            field = self.textured(concrete, _noise(rng, h, w, 6, 6), 0.4)
            field[beams] *= 0.7
            self.paint(region, field)

    def closeup(self):
        """A frame with no sky at all: a brick wall, dense foliage or a facade with windows."""
        rng, h, w = self.rng, self.h, self.w
        kind = rng.integers(3)
        noise = _noise(rng, h, w, 6, 6, octaves=5)
        if kind == 0:
            brick = _color(rng, (110, 50, 35), (190, 130, 100))
            rows = max(3.0, rng.uniform(0.03, 0.08) * h)
            cols = rows * rng.uniform(2.0, 3.0)
            row = np.floor(self.yy / rows)
            u = self.xx / cols + 0.5 * (row % 2)
            mortar = ((self.yy / rows) % 1 < 0.12) | (u % 1 < 0.05)
            jitter = ((np.floor(u).astype(np.int64) * 92821 + row.astype(np.int64) * 68917) % 97) / 97.0
            field = brick * ((0.8 + 0.4 * jitter) * (1 + 0.3 * (noise - 0.5)))[..., None]
            field[mortar] = _color(rng, (150, 150, 140), (200, 195, 185))
        elif kind == 1:
            leaf = _color(rng, (25, 60, 20), (90, 140, 60))
            leaves = _noise(rng, h, w, h / 4.0, w / 4.0, octaves=2)
            field = leaf * (0.25 + 1.6 * leaves**2 * (0.6 + 0.8 * noise))[..., None]
        else:
            wall = _color(rng, (120, 115, 105), (215, 205, 190))
            sx = rng.uniform(0.15, 0.35) * w
            sy = sx * rng.uniform(0.8, 1.3)
            u = (self.xx + rng.uniform(0, sx)) / sx % 1
            v = (self.yy + rng.uniform(0, sy)) / sy % 1
            window = (u > 0.25) & (u < 0.75) & (v > 0.2) & (v < 0.8)
            frame = (u > 0.22) & (u < 0.78) & (v > 0.17) & (v < 0.83) & ~window
            field = self.textured(wall, noise, 0.4)
            glass = 0.4 * self.sky_horizon + 0.3 * _color(rng, (20, 30, 40), (60, 70, 80))
            field[window] = glass * (0.7 + 0.6 * noise[window])[:, None]
            field[frame] *= 0.6
        self.paint(np.ones((h, w), bool), self.lit(field) / max(self.light, 0.4))

    # -- camera ---------------------------------------------------------------------------

    def camera(self):
        """Exposure, white balance, glare, vignette, blur and noise; the mask is unchanged."""
        rng, h, w = self.rng, self.h, self.w
        image = self.image
        if self.sun is not None:  # glare spills over everything near the sun
            x, y, glow, color = self.sun
            d = np.hypot(self.xx - x, self.yy - y)
            image = image + color * (0.35 * np.exp(-((d / (1.5 * glow)) ** 2)))[..., None]
        warmth, green = rng.uniform(-0.06, 0.06), rng.uniform(-0.01, 0.01)
        exposure = rng.uniform(1.15, 1.6) if rng.random() < 0.12 else rng.uniform(0.8, 1.15)
        gain = exposure * np.array((1 + warmth, 1 + green, 1 - warmth), np.float32)
        r2 = ((self.xx[:1] - w / 2) / w) ** 2 + ((self.yy[:, :1] - h / 2) / h) ** 2
        image = image * ((1 - rng.uniform(0.0, 0.5) * r2)[..., None] * gain)
        image = np.clip(image, 0, 255, out=image)
        if rng.random() < 0.5:
            blurred = Image.fromarray(image.astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
            image = np.asarray(blurred, np.float32)
        sigma = rng.uniform(0.5, 3.0) * (2.0 if self.time == "night" else 1.0)
        image = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)
