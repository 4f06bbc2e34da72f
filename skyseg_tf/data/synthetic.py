"""Procedural scenes with exact sky masks, as a ``tf.data`` source.

Each scene is painted back to front on a float canvas: a sky gradient for one time of day
(day, dusk, overcast, night) with clouds, sun glare or stars, then mountains, hills, ground,
buildings, trees (bare ones with fine twigs), water that mirrors the sky, poles and power wires,
and sometimes an overhang (foliage, a bridge) along the top edge, a bare canopy of branches
across the sky or a person in front. Other frames are the bright regions that are not sky: a
close-up with no sky at all, a room whose white ceiling fills the top of the frame and whose
windows may or may not show the sky, and a portrait or still life against a bright studio
backdrop. The sky mask is the set of pixels that nothing was painted over, so it is exact by
construction, thin wires, sharp tips and the sky between twigs included. Camera effects
(exposure, blur, glare, noise) then change the image but not the mask, as they would in a
photograph.

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
    "interior",
    "window_sky",
    "studio",
    "person",
    "bare_canopy",
)
"""Boolean scene elements; with ``time_of_day`` they make up a features dict.

``closeup``, ``interior`` and ``studio`` are frames without an outdoor layout (at most one is
set): a surface filling the frame, a room (its windows show the sky only with ``window_sky``;
without it they show foliage with ``trees``, a facade with ``buildings``, or the room has no
windows), a portrait or still life against a bright backdrop. ``person`` (a head and shoulders
in front of an outdoor scene) and ``bare_canopy`` (leafless branches close to the camera, across
the sky) are outdoor foreground elements.
"""

FRAME_KINDS = ("closeup", "interior", "studio")
"""Features that replace the outdoor layout; a features dict sets at most one of them."""

# One uniform draw picks the kind of scene: a band of this width each, the rest (0.57) a plain
# outdoor scene. It is the draw that used to decide ``closeup`` alone (band [0, 0.06) as before),
# so a scene outside the new bands keeps the features and pixels it had.
_KIND_BANDS = (
    ("closeup", 0.06),
    ("interior", 0.20),
    ("studio", 0.06),
    ("person", 0.05),
    ("bare_canopy", 0.06),
)
# Probability of each outdoor element when it is sampled (``spires`` only matters with
# ``buildings``, ``conifers``/``bare_trees`` only with ``trees``), in the order of the draws.
_FEATURE_PROBABILITIES = {
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
# Share of interiors whose windows show the sky; the others have none in view.
_WINDOW_SKY_PROBABILITY = 0.35
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
    ``synthetic_sky(seed=seed)`` shows (see :func:`scene_features`). About 20% of scenes are
    interiors (a third of them with sky in their windows), 6% studio portraits or still lifes,
    6% close-ups, 5% outdoor portraits and 6% views through a bare canopy.

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
        >>> sum(features[name] for name in FRAME_KINDS) <= 1
        True
    """
    time_of_day = TIMES_OF_DAY[int(rng.choice(len(TIMES_OF_DAY), p=_TIME_OF_DAY_PROBABILITIES))]
    draws = rng.random(1 + len(_FEATURE_PROBABILITIES))
    features = {"time_of_day": time_of_day, **dict.fromkeys(SCENE_FEATURES, False)}
    low = 0.0
    for name, width in _KIND_BANDS:
        features[name] = bool(low <= draws[0] < low + width)
        low += width
    for (name, probability), draw in zip(_FEATURE_PROBABILITIES.items(), draws[1:]):
        features[name] = bool(draw < probability)
    if time_of_day in ("overcast", "night"):
        features["sun"] = False
    if not features["buildings"]:
        features["spires"] = False
    if not features["trees"]:
        features["conifers"] = features["bare_trees"] = False
    if features["water"]:
        features["road"] = False
    if features["closeup"] or features["studio"]:  # a frame with nothing outdoors in it
        kind = "closeup" if features["closeup"] else "studio"
        features.update({name: name == kind for name in SCENE_FEATURES})
        return features
    if features["interior"]:
        features["window_sky"] = bool(rng.random() < _WINDOW_SKY_PROBABILITY)
        if not features["window_sky"]:  # only what stands in front of the windows is seen
            kept = ("interior", "trees", "buildings")
            features.update({name: features[name] and name in kept for name in SCENE_FEATURES})
            return features
    if not any(features[name] for name in ("mountains", "hills", "buildings", "trees", "water")):
        features["hills"] = True  # every open view has something on the horizon
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
    """Renders one scene and its exact sky mask.

    Args:
        rng: the generator that decides everything about the scene.
        height: image height in pixels (at least 16).
        width: image width in pixels (at least 16).
        features: which elements to draw: ``"time_of_day"`` and any names from
            :data:`SCENE_FEATURES` mapped to bools (missing ones are ``False``, a missing time of
            day is ``"day"``), at most one of :data:`FRAME_KINDS` set. An interior uses the
            outdoor elements for what its windows show; ``person`` and ``bare_canopy`` are only
            drawn outdoors. ``None`` draws them with :func:`sample_scene_features`.

    Returns:
        ``(image, mask)``: ``uint8`` arrays ``[height, width, 3]`` (RGB) and
        ``[height, width, 1]`` with ``1`` for sky and ``0`` elsewhere.

    Raises:
        ValueError: for a size below 16, an unknown feature name or time of day, or more than
            one of :data:`FRAME_KINDS`.

    Example:
        >>> import numpy as np
        >>> image, mask = render_scene(np.random.default_rng(0), 48, 64, {"wires": True})
        >>> image.shape, mask.shape, set(np.unique(mask)) <= {0, 1}
        ((48, 64, 3), (48, 64, 1), True)
        >>> room, room_mask = render_scene(np.random.default_rng(0), 48, 64, {"interior": True})
        >>> int(room_mask.max())  # windows without ``window_sky`` show no sky
        0
    """
    height, width = _check_size((height, width), "height, width")
    features = sample_scene_features(rng) if features is None else _complete_features(features)
    scene = _Scene(rng, height, width, features)
    if features["closeup"]:
        scene.closeup()
    elif features["studio"]:
        scene.studio()
    elif features["interior"]:
        scene.interior()
    else:
        scene.outdoor()
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


SCENE_SETS = ("horizon", "upward")
"""Values of :func:`synthetic_sky`'s ``scenes``: ordinary photos of the world (:func:`render_scene`)
or upward-looking fisheye photos (:func:`skyseg_tf.data.synthetic_upward.render_upward_scene`)."""


def render_element(seed: int, index: int, image_size: Sequence[int] = DEFAULT_IMAGE_SIZE,
                   scenes: str = "horizon") -> dict:
    """Renders element ``index`` of ``synthetic_sky(seed=seed, image_size=image_size, scenes=scenes)`` in numpy.

    Args:
        seed: the dataset seed (a non-negative int).
        index: the element's index over the whole dataset.
        image_size: ``(height, width)`` in pixels.
        scenes: one of :data:`SCENE_SETS`.

    Returns:
        A dict of numpy values following :data:`skyseg_tf.data.spec.ELEMENT_SPEC`.

    Example:
        >>> element = render_element(0, 7, (32, 48))
        >>> element["image"].shape, element["file_name"]
        ((32, 48, 3), b'synthetic_0_000007.png')
    """
    seed = checks.non_negative_int("seed", seed)
    height, width = _check_size(image_size, "image_size")
    checks.choice("scenes", scenes, SCENE_SETS)
    rng = np.random.default_rng([seed, int(index)])
    if scenes == "upward":
        from skyseg_tf.data.synthetic_upward import render_upward_scene  # it builds on this module

        image, mask = render_upward_scene(rng, height, width)
        return spec.make_element(image, mask, f"synthetic_upward_{seed}_{int(index):06d}.png")
    image, mask = render_scene(rng, height, width)
    return spec.make_element(image, mask, synthetic_file_name(seed, int(index)))


def synthetic_sky(
    num_examples: int = DEFAULT_NUM_EXAMPLES,
    image_size: Sequence[int] = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str | None = None,
    scenes: str = "horizon",
) -> tf.data.Dataset:
    """A ``tf.data`` source of procedural scenes with exact sky masks.

    Mostly outdoor scenes, plus the bright regions that are not sky: rooms with white ceilings
    (a third with sky in their windows), studio backdrops and close-ups (see
    :func:`sample_scene_features` for the shares). Elements follow
    :data:`skyseg_tf.data.spec.ELEMENT_SPEC` with ``H, W = image_size``; file names are
    ``synthetic_{seed}_{index:06d}.png``. Scenes render in numpy through ``tf.numpy_function``,
    in a fixed order: about 20 ms of one CPU core per 256x256 scene, so cache the dataset
    (``.cache()``) or write it out (:func:`write_synthetic_folder`) when it is read for many
    epochs. The dataset holds Python code, so it cannot be serialized (e.g. for the
    tf.data service).

    Args:
        num_examples: size of the whole dataset, all splits together.
        image_size: ``(height, width)`` of every image, each at least 16.
        seed: a non-negative int; element ``i`` is a pure function of ``(seed, i, image_size)``.
        split: ``"train"``, ``"validation"`` or ``"test"`` for the 60/20/20 partition of
            :func:`split_indices` (``i % 5`` in {0, 1, 2} / {3} / {4}), or ``None`` for all.
        scenes: ``"horizon"`` (the scenes above) or ``"upward"``: hemispherical photos taken
            straight up, in an image circle with a blank surround (streets, canyons, courtyards,
            parks, forests; :mod:`skyseg_tf.data.synthetic_upward`), named
            ``synthetic_upward_{seed}_{index:06d}.png``.

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
    checks.choice("scenes", scenes, SCENE_SETS)
    indices = split_indices(num_examples, split)

    def render(index):
        return render_element(seed, int(index), (height, width), scenes)

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
    frames = [name for name in FRAME_KINDS if completed[name]]
    if len(frames) > 1:
        raise ValueError(
            f"features: {frames} are all True; a scene is at most one of {list(FRAME_KINDS)}, "
            "so set only one of them."
        )
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


def _branch_segments(rng, x, y, angle, length, width, levels, spread=0.45, max_segments=3000):
    """Grows branches level by level: ``[n, 5]`` rows ``(x0, y0, x1, y1, line width)``.

    Every segment sprouts 2-3 children from its upper half, shorter, thinner and bent by about
    ``spread`` radians (and a little upwards); widths stop at 1 px, so the last levels are a
    mesh of twigs. ``x`` .. ``width`` are the roots (scalars or arrays of one length).
    """
    x, y, angle, length, width = (np.atleast_1d(np.asarray(v, np.float64)) for v in
                                  (x, y, angle, length, width))
    segments, total = [], 0
    for level in range(levels):
        x1 = x + length * np.cos(angle)
        y1 = y - length * np.sin(angle)
        segments.append(np.stack([x, y, x1, y1, np.maximum(1.0, np.round(width))], axis=1))
        total += x.size
        if level == levels - 1 or total >= max_segments:
            break
        parent = np.repeat(np.arange(x.size), rng.integers(2, 4, x.size))
        if parent.size > max_segments - total:  # keep a random share of the children
            parent = np.sort(rng.choice(parent, max_segments - total, replace=False))
        start = rng.uniform(0.45, 1.0, parent.size)
        x = x[parent] + start * (x1 - x)[parent]
        y = y[parent] + start * (y1 - y)[parent]
        angle = angle[parent] + rng.normal(0.0, spread, parent.size)
        angle += 0.12 * (math.pi / 2 - angle)  # branches turn towards the light
        length = length[parent] * rng.uniform(0.62, 0.85, parent.size)
        width = width[parent] * rng.uniform(0.55, 0.72, parent.size)
    return np.concatenate(segments)


def _draw_segments(height, width, segments):
    """Rasterises branch segments (rows of :func:`_branch_segments`) into a bool mask.

    Limbs go through PIL; 1 px twigs, the thousands, are sampled at every pixel in numpy.
    """
    thick = segments[segments[:, 4] >= 2]

    def draw(d):
        for x0, y0, x1, y1, line in thick.tolist():
            d.line((x0, y0, x1, y1), fill=1, width=int(line))
            if line >= 3:  # round the joints of thick limbs
                r = line / 2
                d.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=1)

    mask = _mask_from_drawing(height, width, draw).copy()
    x0, y0, x1, y1 = segments[segments[:, 4] < 2, :4].T
    steps = np.ceil(np.maximum(np.abs(x1 - x0), np.abs(y1 - y0))).astype(np.int64) + 1
    segment = np.repeat(np.arange(steps.size), steps)
    t = (np.arange(segment.size) - np.repeat(np.cumsum(steps) - steps, steps)) / np.maximum(
        steps - 1, 1)[segment]
    xs = np.rint(x0[segment] + t * (x1 - x0)[segment]).astype(np.int64)
    ys = np.rint(y0[segment] + t * (y1 - y0)[segment]).astype(np.int64)
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    mask[ys[inside], xs[inside]] = True
    return mask


class _Labels:
    """Flat shapes, each with its own colour, drawn into one label image and painted in one pass."""

    def __init__(self, height, width):
        self.image = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.colors = [np.zeros(3, np.float32)]

    def add(self, color):
        """Returns a new label for ``color``."""
        if len(self.colors) > 255:
            raise RuntimeError("more than 255 colours in one label image")
        self.colors.append(np.asarray(color, np.float32))
        return len(self.colors) - 1

    def field(self):
        """``(labels, colours)``: the ``uint8`` label image and its colour field ``[H, W, 3]``."""
        labels = np.asarray(self.image)
        return labels, np.stack(self.colors)[labels]


# Rooms. Surfaces of a box room seen in one-point perspective, as labels of _Room.surfaces.
_CEILING, _FLOOR, _LEFT, _RIGHT, _BACK = range(5)
_CEILINGS = (  # kind, share, colour range: white and cream ceilings are as bright as a grey sky
    ("white", 0.4, ((226, 226, 222), (252, 252, 250))),
    ("cream", 0.2, ((228, 216, 190), (248, 240, 222))),
    ("grey", 0.12, ((160, 160, 158), (205, 205, 202))),
    ("wood", 0.13, ((110, 72, 42), (185, 140, 95))),
    ("tiles", 0.15, ((212, 212, 208), (245, 245, 240))),
)
_WALLS = (  # colour range, share
    (((226, 226, 222), (250, 250, 248)), 0.32),  # white
    (((214, 202, 180), (240, 232, 214)), 0.2),  # off-white, beige
    (((150, 150, 150), (200, 200, 198)), 0.1),  # grey
    (((155, 180, 200), (200, 218, 232)), 0.1),  # pale blue
    (((145, 165, 135), (190, 205, 175)), 0.08),  # sage
    (((215, 195, 135), (245, 230, 180)), 0.08),  # yellow
    (((165, 90, 65), (205, 135, 100)), 0.06),  # terracotta
    (((38, 48, 78), (75, 88, 118)), 0.06),  # navy
)
_FLOORS = (
    ((165, 125, 80), (215, 175, 125)),  # light wood
    ((80, 52, 32), (130, 90, 55)),  # dark wood
    ((180, 178, 170), (235, 232, 225)),  # light tiles
    ((70, 70, 72), (130, 125, 120)),  # dark tiles
    ((95, 90, 85), (170, 160, 145)),  # carpet
)
_FABRICS = (
    ((45, 45, 50), (110, 110, 115)),  # charcoal
    ((150, 150, 150), (215, 212, 205)),  # light grey
    ((40, 60, 100), (90, 120, 170)),  # blue
    ((150, 125, 95), (210, 190, 160)),  # beige
    ((50, 90, 60), (100, 140, 100)),  # green
    ((120, 30, 35), (180, 70, 60)),  # red
    ((200, 190, 170), (245, 240, 230)),  # cream
)
_WOODS = ((70, 45, 28), (160, 115, 70))
_ROOM_LIGHT = {"day": (0.9, 1.12), "overcast": (0.82, 1.04), "dusk": (0.74, 1.0), "night": (0.66, 0.95)}
# People.
_SKIN_TONES = np.array([(255, 224, 196), (234, 192, 160), (198, 140, 100), (150, 100, 70),
                        (95, 62, 45)], np.float32)
_HAIR = (
    ((15, 12, 10), (45, 35, 28)),  # black
    ((50, 32, 20), (95, 65, 40)),  # brown
    ((170, 130, 70), (225, 195, 130)),  # blond
    ((120, 50, 20), (170, 85, 40)),  # red
    ((150, 150, 148), (215, 215, 212)),  # grey, white
)
_BACKDROPS = (  # studio paper: bright and plain, like an overcast or hazy sky
    ((236, 236, 234), (253, 253, 253)),  # white
    ((188, 190, 192), (226, 227, 229)),  # light grey
    ((172, 186, 202), (212, 222, 236)),  # blue-grey
    ((188, 208, 230), (222, 234, 247)),  # pale blue
    ((230, 222, 204), (248, 243, 230)),  # cream
)


class _Room:
    """A box room in one-point perspective, the camera level and facing the back wall.

    Positions are in back-wall pixels: ``X`` across (``-left`` .. ``right``), ``Y`` down from eye
    level (``-top`` = ceiling .. ``bottom`` = floor) and relative depth ``z`` (1 at the back
    wall, smaller nearer); a point is seen at ``(vx + X / z, vy + Y / z)``. ``z * focal`` is the
    depth in the units of ``X`` and ``Y``.
    """

    def __init__(self, rng, height, width):
        self.h, self.w = height, width
        self.vx = rng.uniform(0.3, 0.7) * width
        self.vy = rng.uniform(0.4, 0.62) * height
        room_width = rng.uniform(0.3, 0.75) * width
        room_height = room_width * rng.uniform(0.45, 0.75)
        eye = rng.uniform(0.4, 0.62)  # eye height over ceiling height
        fit = min(1.0, (self.vy - 0.15 * height) / ((1 - eye) * room_height))
        room_width, room_height = room_width * fit, room_height * fit  # the ceiling keeps the top
        across = rng.uniform(0.2, 0.8)  # where the camera stands across the room
        self.left, self.right = across * room_width, (1 - across) * room_width
        self.top, self.bottom = (1 - eye) * room_height, eye * room_height
        self.width, self.height = room_width, room_height
        self.focal = rng.uniform(0.6, 1.0) * width

    def surfaces(self):
        """Per pixel: the surface label, its relative depth ``z`` and its ``X`` and ``Y``."""
        dx = np.arange(self.w, dtype=np.float32)[None, :] - np.float32(self.vx)
        dy = np.arange(self.h, dtype=np.float32)[:, None] - np.float32(self.vy)
        kx = np.maximum(-dx / self.left, dx / self.right)
        ky = np.maximum(-dy / self.top, dy / self.bottom)
        k = np.maximum(np.maximum(kx, ky), np.float32(1.0))  # 1 / z
        face = np.where(kx >= ky, np.where(dx < 0, _LEFT, _RIGHT), np.where(dy < 0, _CEILING, _FLOOR))
        face = np.where(k <= 1.0, _BACK, face).astype(np.uint8)
        z = 1.0 / k
        return face, z, dx * z, dy * z

    def point(self, x, y, z):
        return (self.vx + x / z, self.vy + y / z)

    def on_wall(self, wall, a, b):
        """The image point of wall position ``a`` and height ``b`` (= ``Y``).

        ``a`` is ``X`` on the back wall and the depth ``z * focal`` on a side wall.
        """
        if wall == "back":
            return self.point(a, b, 1.0)
        return self.point(-self.left if wall == "left" else self.right, b, a / self.focal)

    def wall_rect(self, wall, a0, a1, b0, b1):
        return [self.on_wall(wall, a, b) for a, b in ((a0, b0), (a1, b0), (a1, b1), (a0, b1))]

    def wall_span(self, wall, top=None):
        """The part ``(a0, a1)`` of a wall inside the frame (below ``0.05 H`` for a ``Y`` of
        ``top``), or ``None`` when too little of it shows."""
        if wall == "back":
            a0, a1 = max(-self.left, -self.vx), min(self.right, self.w - self.vx)
            return (a0, a1) if a1 - a0 > 0.1 * self.width else None
        room_side = self.left if wall == "left" else self.right
        frame_side = self.vx if wall == "left" else self.w - self.vx
        near = max(room_side / max(frame_side, 1e-3), 0.2)
        if top is not None:
            near = max(near, -top / max(self.vy - 0.05 * self.h, 1e-3))
        near *= 1.05
        return (near * self.focal, 0.97 * self.focal) if near < 0.75 else None


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
        self.glows = []  # (x, y, radius, RGB, strength) of lamps that flare in the camera
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

    def outdoor(self):
        """An outdoor scene: the sky, then each element of ``features`` back to front."""
        features = self.features
        self.sky_layer()
        if features["mountains"]:
            self.mountains()
        if features["hills"]:
            self.hills()
        self.ground()
        if features["buildings"]:
            self.buildings()
        if features["trees"]:
            self.trees()
        if features["water"]:
            self.water()
        if features["poles"]:
            self.poles()
        if features["wires"]:
            self.wires()
        if features["bare_canopy"]:
            self.bare_canopy()
        if features["overhang"]:
            self.overhang()
        if features["person"]:
            self.person()

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
        """A leafless tree: a trunk splitting level by level into a mesh of 1 px twigs."""
        rng, h, w = self.rng, self.h, self.w
        width = max(2.0, size * rng.uniform(0.035, 0.06))
        levels = int(np.clip(math.log(width) / -math.log(0.63) + rng.integers(2, 5), 4, 10))
        segments = _branch_segments(rng, x, foot, math.pi / 2 + rng.normal(0, 0.08),
                                    size * rng.uniform(0.3, 0.4), width, levels,
                                    spread=rng.uniform(0.35, 0.6), max_segments=3000)
        self.paint(_draw_segments(h, w, segments), bark * 0.8)

    def bare_canopy(self):
        """Leafless limbs close to the camera, reaching from the frame's edges across the sky.

        They branch down to dense 1 px twigs, so the sky shows through a fine net (and is
        labelled sky between the twigs).
        """
        rng, h, w, s = self.rng, self.h, self.w, self.s
        count = int(rng.integers(2, 5))
        roots = []
        for _ in range(count):
            edge = rng.random()
            rise = rng.uniform(-0.2, 1.0)  # limbs from high on a side cross the sky nearly level
            if edge < 0.35:
                roots.append((-0.02 * w, rng.uniform(0.05, 0.9) * h, rise))
            elif edge < 0.7:
                roots.append((1.02 * w, rng.uniform(0.05, 0.9) * h, math.pi - rise))
            else:
                roots.append((rng.uniform(0.1, 0.9) * w, 1.02 * h, math.pi / 2 + rng.normal(0, 0.3)))
        x, y, angle = (np.array(v) for v in zip(*roots))
        width = rng.uniform(0.03, 0.07, count) * s
        levels = int(np.clip(math.log(max(width.max(), 1.0)) / -math.log(0.63) + 4, 6, 12))
        segments = _branch_segments(rng, x, y, angle, rng.uniform(0.3, 0.5, count) * s, width,
                                    levels, spread=rng.uniform(0.4, 0.6), max_segments=9000)
        bark = self.lit(_color(rng, (30, 26, 22), (80, 70, 60)))
        self.paint(_draw_segments(h, w, segments), bark)

    def person(self):
        """A head and shoulders in front of the scene; the sky around them stays sky."""
        rng, h, w = self.rng, self.h, self.w
        if rng.random() < 0.45:  # a portrait lens: the background is out of focus
            radius = rng.uniform(1.0, 3.0) * self.s / 256
            blurred = Image.fromarray(np.clip(self.image, 0, 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(radius))
            self.image = np.asarray(blurred, np.float32).copy()
        r = rng.uniform(0.07, 0.15) * h
        cx = rng.uniform(0.2, 0.8) * w
        cy = rng.uniform(0.12, 0.45) * h + 1.1 * r
        labels = _Labels(h, w)
        self.figure(labels, cx, cy, r, self.light * (0.6 + 0.6 * self.ambient))
        label, field = labels.field()
        self.paint(label > 0, field * self.key_light(cx, r)[..., None])

    def figure(self, labels, cx, cy, r, light):
        """Draws a head (centre ``cx, cy``, radius ``r``) and shoulders into ``labels``."""
        rng, draw = self.rng, labels.draw
        tone = rng.uniform(0, len(_SKIN_TONES) - 1)
        low = int(min(tone, len(_SKIN_TONES) - 2))
        skin = (_SKIN_TONES[low] + (tone - low) * (_SKIN_TONES[low + 1] - _SKIN_TONES[low])) * light
        hair = labels.add(_color(rng, *_HAIR[int(rng.integers(len(_HAIR)))]) * light)
        clothes = labels.add(_color(rng, (20, 20, 25), (235, 230, 220)) * light)
        face, neck = labels.add(skin), labels.add(skin * 0.82)
        shoulders = cy + r * rng.uniform(1.5, 1.9)
        half = r * rng.uniform(2.2, 3.2)
        draw.ellipse([cx - half, shoulders - 0.5 * r, cx + half, shoulders + 2.0 * r], fill=clothes)
        draw.rectangle([cx - half, shoulders + 0.75 * r, cx + half, self.h + 1], fill=clothes)
        style = rng.random()
        if style < 0.35:  # long hair falls behind the head and the neck onto the shoulders
            draw.ellipse([cx - 1.12 * r, cy - 1.2 * r, cx + 1.12 * r, cy + rng.uniform(1.3, 2.5) * r],
                         fill=hair)
        draw.rectangle([cx - 0.42 * r, cy + 0.5 * r, cx + 0.42 * r, shoulders + 0.1 * r], fill=neck)
        if rng.random() < 0.5:  # an open neckline
            draw.polygon([(cx - 0.5 * r, shoulders - 0.25 * r), (cx + 0.5 * r, shoulders - 0.25 * r),
                          (cx, shoulders + rng.uniform(0.4, 1.0) * r)], fill=neck)
        for side in (-1, 1):  # ears
            draw.ellipse([cx + side * 0.82 * r - 0.14 * r, cy - 0.2 * r,
                          cx + side * 0.82 * r + 0.14 * r, cy + 0.3 * r], fill=face)
        draw.ellipse([cx - 0.82 * r, cy - 1.1 * r, cx + 0.82 * r, cy + r], fill=face)
        if style < 0.8:  # hair over the top of the head, a side parting
            top = cy - rng.uniform(1.18, 1.35) * r
            draw.chord([cx - 0.9 * r, top, cx + 0.9 * r, cy + rng.uniform(0.1, 0.5) * r], 180, 360,
                       fill=hair)
            for _ in range(int(rng.integers(0, 7))):  # flyaway strands against what is behind
                a = rng.uniform(0.1, 0.9) * math.pi
                x0, y0 = cx + 0.85 * r * math.cos(a), cy - 0.35 * r - 0.85 * r * math.sin(a)
                reach = rng.uniform(0.15, 0.45) * r
                bend = rng.normal(0, 0.4)
                draw.line([(x0, y0), (x0 + reach * math.cos(a + bend), y0 - reach * math.sin(a + bend))],
                          fill=hair, width=1)
        elif style < 0.9:  # a hat
            brim = rng.uniform(1.1, 1.5) * r
            crown = labels.add(_color(rng, (20, 20, 20), (200, 180, 150)) * light)
            draw.rectangle([cx - 0.8 * r, cy - 1.6 * r, cx + 0.8 * r, cy - 0.7 * r], fill=crown)
            draw.ellipse([cx - brim, cy - 0.9 * r, cx + brim, cy - 0.6 * r], fill=crown)
        if r >= 6:  # eyes, brows and mouth
            dark = labels.add(np.array((35, 25, 22), np.float32) * light)
            lips = labels.add(skin * np.array((0.85, 0.62, 0.62), np.float32))
            for side in (-1, 1):
                ex = cx + side * 0.33 * r
                draw.ellipse([ex - 0.1 * r, cy - 0.16 * r, ex + 0.1 * r, cy - 0.04 * r], fill=dark)
                draw.line([(ex - 0.16 * r, cy - 0.32 * r), (ex + 0.16 * r, cy - 0.34 * r)],
                          fill=hair, width=max(1, int(0.06 * r)))
            draw.ellipse([cx - 0.24 * r, cy + 0.45 * r, cx + 0.24 * r, cy + 0.58 * r], fill=lips)

    def key_light(self, cx, r):
        """Shading ``[H, W]`` of a figure at ``cx`` lit from one side."""
        strength = self.rng.uniform(-0.3, 0.3)
        across = np.clip(1 + strength * (self.xx[:1] - cx) / (2.5 * r), 0.6, 1.15)
        return np.broadcast_to(across, (self.h, self.w))

    def studio(self):
        """A portrait or a still life in front of plain bright studio paper: no sky anywhere."""
        rng, h, w = self.rng, self.h, self.w
        paper = _color(rng, *_BACKDROPS[int(rng.integers(len(_BACKDROPS)))])
        light = rng.uniform(0.85, 1.1)
        cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.1, 0.5) * h  # where the light is brightest
        r2 = ((self.xx[:1] - cx) / w) ** 2 + ((self.yy[:, :1] - cy) / h) ** 2
        grain = _noise(rng, h, w, 3, 4, octaves=2)
        shade = (1.06 - rng.uniform(0.1, 0.7) * r2) * (1 + 0.04 * (grain - 0.5))
        bend = rng.uniform(0.72, 1.15) * h  # where the paper sweeps onto the floor
        shade *= 1 - rng.uniform(0.04, 0.2) / (1 + np.exp(-(self.yy[:, :1] - bend) / (0.04 * h)))
        labels = _Labels(h, w)
        if rng.random() < 0.7:
            r = rng.uniform(0.09, 0.17) * h
            x = rng.uniform(0.3, 0.7) * w
            self.figure(labels, x, rng.uniform(0.25, 0.48) * h, r, light)
            key = self.key_light(x, r)
        else:
            self.still_life(labels, light)
            key = self.key_light(w / 2, 0.15 * w)
        label, subject = labels.field()
        shadow_image = Image.fromarray(((label > 0) * np.uint8(255)))
        shadow_image = shadow_image.transform(  # the subject's soft shadow on the paper
            shadow_image.size, Image.Transform.AFFINE,
            (1, 0, -rng.uniform(-0.06, 0.06) * w, 0, 1, -rng.uniform(0.0, 0.04) * h))
        shadow = np.asarray(shadow_image.filter(ImageFilter.GaussianBlur(0.03 * self.s)), np.float32)
        field = (paper * light) * (shade * (1 - rng.uniform(0.1, 0.35) * shadow / 255))[..., None]
        field = np.where((label > 0)[..., None], subject * key[..., None], field)
        self.paint(np.ones((h, w), bool), field)

    def still_life(self, labels, light):
        """A table edge with one to three objects on it: bottles, vases, boxes, fruit, mugs."""
        rng, h, w, draw = self.rng, self.h, self.w, labels.draw
        table_y = rng.uniform(0.6, 0.85) * h
        draw.rectangle([0, table_y, w, h], fill=labels.add(_color(rng, *_WOODS) * light * 1.2))
        count = int(rng.integers(1, 4))
        for i in range(count):
            x = (i + rng.uniform(0.3, 0.7)) / count * w
            base = table_y + rng.uniform(0.03, 0.12) * h
            size = rng.uniform(0.3, 0.6) * h
            color = labels.add(_color(rng, (20, 20, 30), (235, 225, 210)) * light)
            kind = rng.integers(4)
            if kind == 0:  # bottle or vase: a profile turned around its axis
                t = np.linspace(0, 1, 12)
                body = rng.uniform(0.12, 0.25) * size
                neck = body * rng.uniform(0.25, 0.6)
                radius = np.where(t < 0.6, body * (1 - 0.2 * (t / 0.6 - 0.5) ** 2), neck)
                ys = base - t * size
                points = [(x + r, y) for r, y in zip(radius, ys)] + [(x - r, y) for r, y in
                                                                      zip(radius[::-1], ys[::-1])]
                draw.polygon(points, fill=color)
            elif kind == 1:  # box
                half, top = rng.uniform(0.2, 0.45) * size, base - rng.uniform(0.3, 0.8) * size
                lid = labels.add(labels.colors[color] * 1.15)
                draw.polygon([(x - half, top), (x + half, top), (x + 0.8 * half, top - 0.2 * half),
                              (x - 1.2 * half, top - 0.2 * half)], fill=lid)
                draw.rectangle([x - half, top, x + half, base], fill=color)
            elif kind == 2:  # fruit or ball
                r = rng.uniform(0.12, 0.25) * size
                draw.ellipse([x - r, base - 2 * r, x + r, base], fill=color)
            else:  # mug with a handle
                half, top = rng.uniform(0.12, 0.2) * size, base - rng.uniform(0.25, 0.4) * size
                draw.ellipse([x + 0.7 * half, top + 0.2 * (base - top), x + 1.6 * half,
                              base - 0.2 * (base - top)], outline=color, width=max(1, int(0.2 * half)))
                draw.rectangle([x - half, top, x + half, base], fill=color)

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

    def closeup(self, kind=None):
        """A frame with no sky at all: a brick wall (0), dense foliage (1) or a facade (2)."""
        rng, h, w = self.rng, self.h, self.w
        if kind is None:
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

    # -- interiors -----------------------------------------------------------------------

    def interior(self):
        """A room in perspective: ceiling, walls, floor, furniture, lamps, maybe windows.

        The ceiling keeps the top rows of the frame (white, cream, grey, wood or office tiles,
        with beams, recessed lights, a pendant, a dome light or a fan), so a bright flat region
        at the top that is not sky is common. Windows show the sky (labelled sky) only with
        ``window_sky``, otherwise foliage (``trees``) or a facade (``buildings``); a room with
        neither has no windows. What they show is drawn from its own generator, so the room is
        the same whatever is outside.
        """
        rng, h, w = self.rng, self.h, self.w
        view_rng = np.random.default_rng(int(rng.integers(2**63)))
        room = _Room(rng, h, w)
        face, z, X, Y = room.surfaces()
        depth = z * room.focal
        tint = (1.06, 0.97, 0.84) if self.time in ("dusk", "night") else (0.98, 1.0, 1.02)
        light = rng.uniform(*_ROOM_LIGHT[self.time]) * np.array(tint, np.float32)
        ceiling_kind, shares, ranges = zip(*_CEILINGS)
        kind = int(rng.choice(len(shares), p=shares))
        ceiling_kind = ceiling_kind[kind]
        ceiling = _color(rng, *ranges[kind])
        wall_ranges, wall_shares = zip(*_WALLS)
        walls = _color(rng, *wall_ranges[int(rng.choice(len(wall_shares), p=wall_shares))])
        if rng.random() < 0.8:
            back = walls
        else:  # an accent wall
            back = _color(rng, *wall_ranges[int(rng.integers(len(wall_ranges)))])
        floor_kind = int(rng.integers(len(_FLOORS)))
        floor = _color(rng, *_FLOORS[floor_kind])
        face_shade = rng.uniform((0.9, 0.6, 0.66, 0.66, 0.8), (1.08, 0.95, 1.0, 1.0, 1.04))
        face_shade = face_shade.astype(np.float32)
        palette = np.stack([ceiling, floor, walls, walls, back]) * face_shade[:, None] * light
        field = palette[face]
        shade = 1 + 0.16 * (_noise(rng, h, w, 2, 3, octaves=2) - 0.5)
        self.room_surfaces(room, field, shade, face, X, Y, depth, ceiling_kind, floor_kind, palette, light)

        labels = _Labels(h, w)
        panes_image, blinds_image = Image.new("L", (w, h), 0), Image.new("L", (w, h), 0)
        panes, blinds = ImageDraw.Draw(panes_image), ImageDraw.Draw(blinds_image)

        def in_front(points, label, line=0):  # drawn over the windows: hides what they show
            if line:
                for draw, fill in ((labels.draw, label), (panes, 0), (blinds, 0)):
                    draw.line(points, fill=fill, width=line)
            else:
                for draw, fill in ((labels.draw, label), (panes, 0), (blinds, 0)):
                    draw.polygon(points, fill=fill)

        if self.features["window_sky"]:
            view = "sky"
        elif self.features["trees"] and self.features["buildings"]:
            view = "foliage" if view_rng.random() < 0.5 else "facade"
        else:
            view = "foliage" if self.features["trees"] else "facade" if self.features["buildings"] else None
        window_wall, curtains, blind = self.windows(room, labels, panes, blinds, in_front,
                                                    light, draw=view is not None)
        free = [wall for wall in ("back", "left", "right") if wall != window_wall]
        decor_wall = free[int(rng.integers(len(free)))]
        self.wall_decor(room, labels, decor_wall, light * face_shade[{"back": _BACK, "left": _LEFT,
                                                                      "right": _RIGHT}[decor_wall]])
        self.furniture(room, labels, in_front, light)
        self.lamps(room, labels, in_front, light)

        label, colors = labels.field()
        pane = np.asarray(panes_image) > 0
        if blind is not None:  # slats in the windows' plane, gaps between them
            pitch, share, blind_label = blind
            slat = (np.asarray(blinds_image) > 0) & ((Y / pitch) % 1 < share)
            label = np.where(slat, np.uint8(blind_label), label)
            colors[slat] = labels.colors[blind_label]
            pane &= ~slat
        if curtains:  # folds, along the wall
            fabric = np.isin(label, curtains)
            along = np.where(face[fabric] == _BACK, X[fabric], depth[fabric])
            shade[fabric] *= 0.78 + 0.22 * np.sin(along * (2 * math.pi / (0.04 * room.width))
                                                 + rng.uniform(0, 6))
        np.copyto(field, colors, where=(label > 0)[..., None])
        field *= shade[..., None]
        self.sky[:] = False
        if view is not None and pane.any():
            rows, cols = np.flatnonzero(pane.any(axis=1)), np.flatnonzero(pane.any(axis=0))
            self.window_view(view_rng, view, rows[0], rows[-1] + 1, cols[0], cols[-1] + 1, room.vy)
            self.sky &= pane
        self.paint(~pane, field)

    def room_surfaces(self, room, field, shade, face, X, Y, depth, ceiling_kind, floor_kind, palette,
                      light):
        """Textures of the ceiling, the walls and the floor, in place on ``field`` and ``shade``.

        Each works on its surface's pixels only (flat indices), in float32.
        """
        rng = self.rng
        field, shade, face = field.reshape(-1, 3), shade.reshape(-1), face.reshape(-1)
        X, Y, depth = X.reshape(-1), Y.reshape(-1), depth.reshape(-1)
        f32 = np.float32
        ceiling = np.flatnonzero(face == _CEILING)
        cx, cd = X[ceiling], depth[ceiling]
        shade[ceiling] *= 1 + f32(rng.uniform(-0.25, 0.2)) * (cd / f32(room.focal) - f32(0.6))
        if ceiling_kind == "wood":  # boards, running to the back or across
            q = (cx if rng.random() < 0.5 else cd) / f32(rng.uniform(0.05, 0.1) * room.width)
            grain = (f32(0.86) + f32(0.28) * ((np.floor(q) * f32(0.618034)) % 1)) * np.where(
                q % 1 < 0.07, f32(0.65), f32(1.0))
            shade[ceiling] *= grain
        elif ceiling_kind == "tiles":  # an office's suspended ceiling
            tile = f32(rng.uniform(0.12, 0.2) * room.width)
            shade[ceiling[((cx / tile) % 1 < 0.05) | ((cd / tile) % 1 < 0.05)]] *= f32(0.8)
        if ceiling_kind != "tiles" and rng.random() < 0.25:  # beams across the room
            spacing = f32(rng.uniform(0.25, 0.5) * room.width)
            beam = (cd / spacing + f32(rng.uniform(0, 1))) % 1 < rng.uniform(0.1, 0.22)
            field[ceiling[beam]] = (_color(rng, *_WOODS) * light if rng.random() < 0.6
                                    else palette[_CEILING] * 0.9)
        if ceiling_kind != "wood" and rng.random() < 0.35:  # recessed lights, blown out
            cell = f32(rng.uniform(0.25, 0.45) * room.width)
            u = (cx / cell) % 1 - f32(0.5)
            v = (cd / cell + f32(rng.uniform(0, 1))) % 1 - f32(0.5)
            field[ceiling[u**2 + v**2 < rng.uniform(0.004, 0.012)]] = 320.0
        walls = np.flatnonzero(face >= _LEFT)
        wy = Y[walls]
        skirting = walls[wy > room.bottom - rng.uniform(0.02, 0.05) * room.height]
        field[skirting] = (_color(rng, (225, 225, 220), (250, 250, 248)) if rng.random() < 0.6
                           else _color(rng, *_WOODS)) * light * 0.9
        if rng.random() < 0.3:  # cornice under the ceiling
            cornice = walls[wy < -room.top + 0.03 * room.height]
            field[cornice] = np.array((238, 238, 234), f32) * light * 0.95
        if rng.random() < 0.12:  # striped wallpaper
            along = np.where(face[walls] == _BACK, X[walls], depth[walls])
            shade[walls[(along / f32(rng.uniform(0.03, 0.08) * room.width)) % 1 < 0.5]] *= f32(0.9)
        floor = np.flatnonzero(face == _FLOOR)
        fx, fd = X[floor], depth[floor]
        if floor_kind < 2:  # wooden boards with staggered ends
            board = f32(rng.uniform(0.06, 0.12) * room.width)
            q = fx / board
            row = np.floor(q)
            ends = (fd / (board * f32(rng.uniform(4, 8))) + row * f32(0.37)) % 1 < 0.03
            shade[floor] *= (f32(0.85) + f32(0.3) * ((row * f32(0.618034)) % 1)) * np.where(
                (q % 1 < 0.05) | ends, f32(0.7), f32(1.0))
        elif floor_kind < 4:  # tiles, sometimes a chequerboard
            tile = f32(rng.uniform(0.15, 0.3) * room.width)
            u, v = fx / tile, fd / tile
            if rng.random() < 0.3:
                shade[floor[(np.floor(u) + np.floor(v)) % 2 == 0]] *= f32(0.6)
            shade[floor[(u % 1 < 0.04) | (v % 1 < 0.04)]] *= f32(0.75)

    def windows(self, room, labels, panes, blinds, in_front, light, draw):
        """Lays out 1-3 windows on one wall: frames, mullions, sills, curtains or blinds.

        The panes go into ``panes`` (what is outside shows there); nothing is drawn when
        ``draw`` is false, but the same numbers are drawn from the generator. Returns the wall,
        the curtains' labels and ``(pitch, share, label)`` of blinds or ``None``.
        """
        rng = self.rng
        count = int(rng.integers(1, 4))
        top = -room.top + room.height * rng.uniform(0.1, 0.25)
        bottom = (room.bottom - 0.02 * room.height if rng.random() < 0.2
                  else top + room.height * rng.uniform(0.35, 0.6))
        side = "left" if rng.random() < 0.5 else "right"
        wall = side if rng.random() < 0.4 and room.wall_span(side, top) else "back"
        a0, a1 = room.wall_span(wall, top) or room.wall_span("back") or (-room.left, room.right)
        slot = (a1 - a0) / count
        frame_color = [(np.array((238, 238, 234)), 0.5), (_color(rng, *_WOODS), 0.3),
                       (_color(rng, (30, 30, 32), (90, 90, 95)), 0.2)]
        frame_color = frame_color[int(rng.choice(3, p=[c[1] for c in frame_color]))][0]
        frame = labels.add(np.asarray(frame_color, np.float32) * light)
        sill = labels.add(np.asarray(frame_color, np.float32) * light * 1.08)
        columns, rows = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        dressing = rng.random()
        fabric = labels.add(_color(rng, *_FABRICS[int(rng.integers(len(_FABRICS)))]) * light)
        curtains, blind = [], None
        if dressing < 0.2:
            blind = (rng.uniform(0.012, 0.03) * room.height, rng.uniform(0.55, 1.0),
                     labels.add(_color(rng, (200, 200, 195), (245, 242, 235)) * light * 0.95))
        for i in range(count):
            span = slot * rng.uniform(0.5, 0.85)
            w0 = a0 + i * slot + rng.uniform(0, 1) * (slot - span)
            w1 = w0 + span
            thick = rng.uniform(0.03, 0.06) * min(span, bottom - top)
            bar = thick * rng.uniform(0.4, 0.8)
            curtain = dressing >= 0.2 and dressing < 0.6
            drop = rng.uniform(0.15, 1.0)
            left_share, right_share = rng.uniform(0.08, 0.4, 2)
            to_floor = rng.random() < 0.5
            if not draw:
                continue
            labels.draw.polygon(room.wall_rect(wall, w0, w1, top, bottom), fill=frame)
            labels.draw.polygon(room.wall_rect(wall, w0 - 0.05 * span, w1 + 0.05 * span, bottom,
                                               bottom + 0.03 * room.height), fill=sill)
            inner = (w0 + thick, w1 - thick, top + thick, bottom - thick)
            across = np.linspace(inner[0], inner[1], columns + 1)
            down = np.linspace(inner[2], inner[3], rows + 1)
            for c in range(columns):  # panes between the mullions (bars of width ``bar``)
                p0 = across[c] + (bar / 2 if c else 0)
                p1 = across[c + 1] - (bar / 2 if c < columns - 1 else 0)
                for r in range(rows):
                    q0 = down[r] + (bar / 2 if r else 0)
                    q1 = down[r + 1] - (bar / 2 if r < rows - 1 else 0)
                    panes.polygon(room.wall_rect(wall, p0, p1, q0, q1), fill=1)
            if blind is not None:
                blinds.polygon(room.wall_rect(wall, inner[0], inner[1], inner[2],
                                              inner[2] + drop * (inner[3] - inner[2])), fill=1)
            if curtain:
                hem = room.bottom if to_floor else bottom + 0.08 * room.height
                rod = top - 0.05 * room.height
                b = np.linspace(rod, hem, 12)
                wave = 0.025 * span * np.sin(b / (0.05 * room.height))
                sides = ((left_share, w0 - 0.06 * span, 1), (right_share, w1 + 0.06 * span, -1))
                for share, outer, sign in sides:
                    edge = outer + sign * (0.06 * span + share * span) + wave
                    points = [room.on_wall(wall, outer, rod)]
                    points += [room.on_wall(wall, a, y) for a, y in zip(edge, b)]
                    points.append(room.on_wall(wall, outer, hem))
                    in_front(points, fabric)
                curtains = [fabric]
        return wall, curtains, blind

    def wall_decor(self, room, labels, wall, light):
        """Framed pictures (some of landscapes with a painted sky, not sky) and shelves of books."""
        rng = self.rng
        span = room.wall_span(wall, -room.top * 0.8)
        count = int(rng.integers(0, 3))
        shelf = rng.random() < 0.3
        if span is None:
            return
        a0, a1 = span
        for i in range(count):
            size = rng.uniform(0.1, 0.25) * room.width
            tall = size * rng.uniform(0.6, 1.3)
            centre = a0 + (i + rng.uniform(0.3, 0.7)) * (a1 - a0) / max(count, 1)
            mid = -room.top + rng.uniform(0.3, 0.45) * room.height
            q0, q1, p0, p1 = centre - size / 2, centre + size / 2, mid - tall / 2, mid + tall / 2
            rim = 0.06 * size
            labels.draw.polygon(room.wall_rect(wall, q0, q1, p0, p1),
                                fill=labels.add(_color(rng, (20, 18, 15), (200, 170, 100)) * light))
            inner = (q0 + rim, q1 - rim, p0 + rim, p1 - rim)
            horizon = inner[2] + rng.uniform(0.3, 0.7) * (inner[3] - inner[2])
            sky = _color(rng, (90, 130, 190), (235, 235, 230)) if rng.random() < 0.6 else _color(
                rng, (30, 30, 30), (230, 220, 200))
            labels.draw.polygon(room.wall_rect(wall, inner[0], inner[1], inner[2], horizon),
                                fill=labels.add(sky * light))
            labels.draw.polygon(room.wall_rect(wall, inner[0], inner[1], horizon, inner[3]),
                                fill=labels.add(_color(rng, (30, 50, 20), (190, 160, 110)) * light))
        if shelf:
            q0 = a0 + rng.uniform(0, 0.5) * (a1 - a0)
            q1 = min(a1, q0 + rng.uniform(0.2, 0.4) * room.width)
            level = -room.top + rng.uniform(0.25, 0.5) * room.height
            board = labels.add(_color(rng, *_WOODS) * light)
            q = q0
            while q < q1 - 0.02 * room.width:  # books standing on the board
                thick = rng.uniform(0.015, 0.035) * room.width
                tall = rng.uniform(0.07, 0.13) * room.height
                labels.draw.polygon(room.wall_rect(wall, q, min(q + thick, q1), level - tall, level),
                                    fill=labels.add(_color(rng, (30, 25, 25), (210, 190, 160)) * light))
                q += thick * rng.uniform(1.0, 1.3)
                if len(labels.colors) > 120:
                    break
            labels.draw.polygon(room.wall_rect(wall, q0, q1, level, level + 0.015 * room.height),
                                fill=board)

    def furniture(self, room, labels, in_front, light):
        """Up to three pieces standing on the floor: sofas, tables, cabinets, far ones first."""
        rng = self.rng
        pieces = []
        for _ in range(int(rng.integers(0, 4))):
            kind = rng.random()
            size = rng.uniform(0.18, 0.45) * room.width
            x0 = rng.uniform(-room.left, room.right - size)
            far = rng.uniform(0.55, 1.0)
            deep = rng.uniform(0.12, 0.3) * room.width / room.focal
            near = max(far - deep, 0.3)
            fabric = _color(rng, *_FABRICS[int(rng.integers(len(_FABRICS)))])
            if rng.random() < 0.7:
                wood = _color(rng, *_WOODS)
            else:  # painted white
                wood = _color(rng, (215, 215, 210), (248, 248, 245))
            floor, H = room.bottom, room.height
            boxes = []
            if kind < 0.4:  # sofa: seat, back, arms
                arm = 0.1 * size
                back = far - 0.25 * (far - near)
                boxes = [(x0, x0 + size, floor - 0.4 * H, floor - 0.18 * H, back, far, fabric),
                         (x0, x0 + size, floor - 0.2 * H, floor, near, far, fabric),
                         (x0, x0 + arm, floor - 0.27 * H, floor, near, far, fabric * 0.92),
                         (x0 + size - arm, x0 + size, floor - 0.27 * H, floor, near, far, fabric * 0.92)]
            elif kind < 0.75:  # table: legs behind, top, legs in front
                top = floor - rng.uniform(0.3, 0.42) * H
                leg = 0.05 * size
                slab = 0.04 * H
                legs = [(x, x + leg, top + slab, floor, zz - 0.02 * (far - near), zz, wood * 0.8)
                        for zz in (far, near + 0.06 * (far - near))
                        for x in (x0 + leg, x0 + size - 2 * leg)]
                boxes = legs[:2] + [(x0, x0 + size, top, top + slab, near, far, wood)] + legs[2:]
            else:  # cabinet or bookcase
                boxes = [(x0, x0 + size * 0.6, floor - rng.uniform(0.35, 0.85) * H, floor, near, far, wood)]
            pieces.append((far, boxes))
        for _, boxes in sorted(pieces, key=lambda piece: -piece[0]):
            for box in boxes:
                self.room_box(room, labels, in_front, light, *box)

    def room_box(self, room, labels, in_front, light, x0, x1, y0, y1, near, far, color):
        """The faces of a box that the camera sees, each shaded: top, one side, front."""
        point = room.point
        color = np.asarray(color, np.float32) * light
        if y0 > 0:  # the top is below eye level
            in_front([point(x0, y0, near), point(x1, y0, near), point(x1, y0, far), point(x0, y0, far)],
                     labels.add(color * 1.08))
        for x, visible in ((x0, x0 > 0), (x1, x1 < 0)):
            if visible:
                in_front([point(x, y0, near), point(x, y0, far), point(x, y1, far), point(x, y1, near)],
                         labels.add(color * 0.72))
        in_front([point(x0, y0, near), point(x1, y0, near), point(x1, y1, near), point(x0, y1, near)],
                 labels.add(color * 0.88))

    def lamps(self, room, labels, in_front, light):
        """A pendant, a dome light or a ceiling fan, and sometimes a blown-out floor lamp."""
        rng = self.rng
        fixture = rng.random()
        lit = self.time == "night" or rng.random() < 0.4
        x = rng.uniform(-0.5 * room.left, 0.5 * room.right)
        z = rng.uniform(0.45, 0.9)
        ceiling = -room.top
        glowing = np.array((255, 246, 225), np.float32) * 1.35
        if fixture < 0.35:  # pendant: a cord and a shade
            drop = rng.uniform(0.08, 0.3) * room.height
            tall = rng.uniform(0.06, 0.12) * room.height
            wide = rng.uniform(0.08, 0.2) * room.width
            narrow = wide * rng.uniform(0.3, 0.7)
            cord = labels.add(np.array((40, 40, 40), np.float32) * light)
            in_front([room.point(x, ceiling, z), room.point(x, ceiling + drop, z)], cord, line=1)
            shade = glowing if lit else _color(rng, (20, 20, 20), (220, 215, 200)) * light
            y = ceiling + drop
            in_front([room.point(x - narrow / 2, y, z), room.point(x + narrow / 2, y, z),
                      room.point(x + wide / 2, y + tall, z), room.point(x - wide / 2, y + tall, z)],
                     labels.add(shade))
            if lit:
                gx, gy = room.point(x, y + tall, z)
                self.glows.append((gx, gy, wide / z, glowing / 1.35, 0.35))
        elif fixture < 0.55:  # dome light flush with the ceiling
            radius = rng.uniform(0.05, 0.1) * room.width
            t = np.linspace(0, 2 * math.pi, 20, endpoint=False)
            zs = z + radius * np.sin(t) / room.focal
            points = [room.point(x + radius * math.cos(a), ceiling, zz) for a, zz in zip(t, zs)]
            in_front(points, labels.add(glowing if lit else np.array((235, 235, 230), np.float32) * light))
            if lit:
                gx, gy = room.point(x, ceiling, z)
                self.glows.append((gx, gy, 1.5 * radius / z, glowing / 1.35, 0.3))
        elif fixture < 0.7:  # ceiling fan
            y = ceiling + 0.08 * room.height
            rod = labels.add(np.array((60, 55, 50), np.float32) * light)
            in_front([room.point(x, ceiling, z), room.point(x, y, z)], rod, line=2)
            blade = labels.add((_color(rng, *_WOODS) if rng.random() < 0.5 else
                                np.array((230, 230, 225), np.float32)) * light * 0.85)
            reach, start = rng.uniform(0.12, 0.22) * room.width, rng.uniform(0, math.pi)
            depth = z * room.focal
            blades = int(rng.integers(3, 6))
            for k in range(blades):
                a = start + k * 2 * math.pi / blades
                c, s = math.cos(a), math.sin(a)
                corners = [(0.15, -0.08), (1.0, -0.13), (1.0, 0.13), (0.15, 0.08)]
                in_front([room.point(x + reach * (u * c - v * s), y,
                                     (depth + reach * (u * s + v * c)) / room.focal)
                          for u, v in corners], blade)
            hub = 0.05 * room.width
            y0, y1 = y - 0.02 * room.height, y + 0.02 * room.height
            in_front([room.point(x - hub, y0, z), room.point(x + hub, y0, z),
                      room.point(x + hub, y1, z), room.point(x - hub, y1, z)], rod)
        if rng.random() < (0.6 if self.time == "night" else 0.25):  # a floor lamp, blown out
            x = rng.choice([-0.8 * room.left, 0.8 * room.right]) * rng.uniform(0.6, 1.0)
            z = rng.uniform(0.6, 0.95)
            top = room.bottom - rng.uniform(0.55, 0.75) * room.height
            wide = rng.uniform(0.06, 0.12) * room.width
            tall = wide * rng.uniform(0.6, 1.0)
            pole = labels.add(np.array((50, 45, 40), np.float32) * light)
            in_front([room.point(x, room.bottom, z), room.point(x, top, z)], pole, line=2)
            in_front([room.point(x - 0.35 * wide, top - tall, z),
                      room.point(x + 0.35 * wide, top - tall, z),
                      room.point(x + wide / 2, top, z), room.point(x - wide / 2, top, z)],
                     labels.add(glowing))
            gx, gy = room.point(x, top - tall / 2, z)
            self.glows.append((gx, gy, 1.1 * wide / z, glowing / 1.35, 0.35))

    def window_view(self, rng, kind, y0, y1, x0, x1, eye):
        """Renders what the windows show into rows ``y0:y1``, columns ``x0:x1``, with its sky.

        ``"sky"`` is an outdoor scene of this scene's features whose horizon is at eye level
        ``eye``; ``"foliage"`` and ``"facade"`` fill the view (no sky). The view is exposed for
        the room, so a bright sky is often blown out to white.
        """
        features = {**self.features, "interior": False, "person": False, "bare_canopy": False}
        view = _Scene(rng, y1 - y0, x1 - x0, features)
        if kind == "sky":
            view.horizon = float(max(eye - y0, 1.0))
            view.tilt = 0.0
            view.outdoor()
        else:
            view.closeup(1 if kind == "foliage" else int(rng.choice([0, 2])))
        if self.time in ("day", "overcast") and rng.random() < 0.6:
            gain = rng.uniform(1.1, 1.9)
        else:
            gain = rng.uniform(0.85, 1.15)
        self.image[y0:y1, x0:x1] = view.image * gain
        self.sky[y0:y1, x0:x1] = view.sky

    # -- camera ---------------------------------------------------------------------------

    def camera(self):
        """Exposure, white balance, glare, vignette, blur and noise; the mask is unchanged."""
        rng, h, w = self.rng, self.h, self.w
        image = self.image
        if self.sun is not None:  # glare spills over everything near the sun
            x, y, glow, color = self.sun
            d = np.hypot(self.xx - x, self.yy - y)
            image = image + color * (0.35 * np.exp(-((d / (1.5 * glow)) ** 2)))[..., None]
        for x, y, radius, color, strength in self.glows:  # lamps flare over what is near them
            y0, y1 = int(max(0, y - 3 * radius)), int(min(h, y + 3 * radius + 1))
            x0, x1 = int(max(0, x - 3 * radius)), int(min(w, x + 3 * radius + 1))
            if y0 < y1 and x0 < x1:
                d2 = (self.xx[y0:y1, x0:x1] - x) ** 2 + (self.yy[y0:y1, x0:x1] - y) ** 2
                flare = strength * np.exp(-d2 / radius**2)
                image = image.copy() if image is self.image else image
                image[y0:y1, x0:x1] += np.asarray(color, np.float32) * flare[..., None]
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
