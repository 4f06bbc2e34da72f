"""Sky probability maps at an image's original resolution, for one array or folders of files.

:func:`predict_image` takes an RGB image of any size (a 4000x3000 photo included) and returns a
float32 sky probability map of the same height and width. Models see sizes divisible by their
stride (32 for U-Net, 8 for DeepLabV3): the input is padded to a multiple where needed (mirror
padding at the bottom and right) and the prediction is cropped back.

Modes:

* ``"resize"``: the whole image is resized to ``input_size`` (the scale a model trained with
  ``make_dataset(..., resize_mode="resize")`` expects), predicted once, and the probabilities are
  resized back bilinearly. Memory and time do not depend on the photo's size.
* ``"tile"``: native resolution. An image that fits in one ``tile_size`` square is predicted in
  one padded pass; a larger one is cut into overlapping ``tile_size`` tiles, predicted
  ``batch_size`` tiles at a time, and blended with a raised-cosine window, so memory is bounded by
  the batch of tiles, not the photo. Suits models trained on full-resolution crops
  (``resize_mode="crop"``).
* ``"auto"`` (the rule): a model that records the scale it was trained at
  (:mod:`skyseg_tf.preprocessing`: every model ``skyseg train`` writes, and the presets) runs at
  that scale (``"resize"`` to it, or ``"tile"`` for models trained on full-resolution crops).
  Otherwise an image whose height and width are both at most ``tile_size`` runs at
  native resolution in one padded pass (no resampling at all); a larger image, or any image for a
  model with a fixed input size, is resized (``"resize"``), so the model sees the whole scene at
  its training scale.

``refine="guided"`` runs a guided filter (He et al., 2010) on the full-resolution probabilities,
guided by the image's grayscale, so the upsampled sky edge follows the image's own edges
(``benchmarks/bench_refinement.py`` measures when this helps).

:func:`predict_paths` writes masks, probability maps and overlays for files and folders, and
:func:`load_model` loads a ``.keras`` file or an exported SavedModel.

Example:
    >>> import numpy as np
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> probability = predict_image(model, np.zeros((100, 150, 3), np.uint8), input_size=(64, 64))
    >>> probability.shape, probability.dtype.name
    ((100, 150), 'float32')
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import pathlib
from typing import Iterable, Sequence

import cv2
import numpy as np
import tensorflow as tf

from skyseg_tf import preprocessing
from skyseg_tf.losses import sky_probability
from skyseg_tf.metrics import DEFAULT_THRESHOLD

MODES = ("auto", "resize", "tile")
"""Values of ``predict_image(mode=...)``; see the module docstring for the ``"auto"`` rule."""

REFINE_METHODS = (None, "guided")
"""Values of ``predict_image(refine=...)``."""

SAVE_KINDS = ("mask", "probability", "overlay")
"""What :func:`predict_paths` can write for each image."""

DEFAULT_INPUT_SIZE = (512, 512)
"""Working size of ``mode="resize"`` for models that accept any size (height, width)."""

DEFAULT_TILE_SIZE = 512
DEFAULT_OVERLAP = 64
DEFAULT_BATCH_SIZE = 4

DEFAULT_STRIDE = 32
"""Divisor assumed for models whose stride cannot be read (SavedModels, plain callables); every
skyseg_tf model accepts multiples of 32."""

DEFAULT_GUIDED_EPS = 1e-4
"""Regularisation of the guided filter, for a guide in [0, 1]: edges of contrast well above
``sqrt(eps)`` = 0.01 are followed (chosen with ``benchmarks/bench_refinement.py``)."""

PREDICT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes :func:`predict_paths` treats as images when it lists a folder."""

OUTPUT_SUFFIXES = {"mask": "_mask.png", "probability": "_probability.png", "overlay": "_overlay.jpg"}
"""File-name endings of the outputs of :func:`predict_paths`."""

SKY_PROBABILITY_KEY = "sky_probability"
"""Output name of the sky probability in exported SavedModels (read back by :func:`load_model`)."""

OVERLAY_COLOR = (255, 0, 200)
OVERLAY_ALPHA = 0.5


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def load_model(path: str | os.PathLike):
    """Loads a model for prediction: a ``.keras`` file or a SavedModel folder.

    ``.keras`` (and ``.h5``) files load with ``keras.saving.load_model`` after importing
    skyseg_tf, which registers its layers, losses and metrics, so no ``custom_objects`` are
    needed. A SavedModel folder (one written by :func:`skyseg_tf.export.export_saved_model`, or
    any SavedModel whose ``serving_default`` maps float32 ``[B, H, W, 3]`` images to sky
    probabilities) loads as a ``keras.layers.TFSMLayer``. A TF Serving base folder holding
    numbered versions (``export/1/``, ``export/2/``) loads its highest version.

    Args:
        path: The ``.keras`` file or the SavedModel folder.

    Returns:
        A ``keras.Model`` or ``keras.layers.TFSMLayer``, callable on a float32 batch of RGB
        images in ``[0, 255]``; every function of this module accepts it.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``path`` is neither a Keras file nor a SavedModel folder.

    Example:
        >>> import os, tempfile
        >>> import skyseg_tf
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.keras")
        >>> skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(path)
        >>> load_model(path).name
        'unet_mobilenet_v3_large'
    """
    import keras

    import skyseg_tf  # noqa: F401  (registers the serializable skyseg_tf objects)

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"model: {str(path)!r} does not exist. Pass a .keras file written by training or "
            "model.save(), or a SavedModel folder written by `skyseg export`."
        )
    if path.is_file():
        if path.suffix.lower() not in (".keras", ".h5"):
            raise ValueError(
                f"model: {str(path)!r} is a file but not a .keras or .h5 model. Pass a .keras "
                "file or a SavedModel folder."
            )
        model = keras.saving.load_model(path, compile=False)
        return preprocessing.attach(model, preprocessing.read_from_keras_file(path))
    saved_model_dir = _find_saved_model_dir(path)
    layer = keras.layers.TFSMLayer(
        str(saved_model_dir), call_endpoint="serving_default", name=f"saved_model_{path.name}"
    )
    return preprocessing.attach(layer, _saved_model_preprocessing(saved_model_dir))


def _saved_model_preprocessing(saved_model_dir: pathlib.Path):
    """The preprocessing an export recorded in its info file, if any."""
    import json

    info = saved_model_dir / "assets.extra" / "skyseg.json"
    if not info.is_file():
        return None
    record = json.loads(info.read_text()).get("preprocessing")
    return preprocessing.Preprocessing.from_dict(record) if record else None


def _find_saved_model_dir(path: pathlib.Path) -> pathlib.Path:
    if (path / "saved_model.pb").exists():
        return path
    versions = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit()
                and (p / "saved_model.pb").exists()]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    raise ValueError(
        f"model: the folder {str(path)!r} holds no saved_model.pb, nor numbered version folders "
        "with one (TF Serving layout, e.g. export/1/saved_model.pb). Pass a .keras file or a "
        "SavedModel folder."
    )


def _walk_layers(layer) -> Iterable:
    yield layer
    for child in getattr(layer, "layers", ()) or ():
        if child is not layer:
            yield from _walk_layers(child)


def model_stride(model) -> int:
    """The number a model's input height and width must be divisible by.

    Read from the model's ``InputSizeCheck`` layers; :data:`DEFAULT_STRIDE` (32, which suits
    every skyseg_tf model) for a SavedModel or any other callable.

    Example:
        >>> import skyseg_tf
        >>> model_stride(skyseg_tf.build_model("deeplabv3_resnet50", encoder_weights=None))
        8
    """
    from skyseg_tf.models.layers import InputSizeCheck

    divisors = [layer.divisor for layer in _walk_layers(model) if isinstance(layer, InputSizeCheck)]
    return max(divisors) if divisors else DEFAULT_STRIDE


def model_input_size(model) -> tuple[int, int] | None:
    """The fixed ``(height, width)`` a model was built for, or ``None`` if it takes any size.

    Example:
        >>> import skyseg_tf
        >>> model_input_size(skyseg_tf.build_model(
        ...     "unet_mobilenet_v3_large", encoder_weights=None, input_shape=(64, 96, 3)))
        (64, 96)
    """
    inputs = getattr(model, "inputs", None)
    if inputs:
        shape = tuple(inputs[0].shape)
        if len(shape) == 4 and isinstance(shape[1], int) and isinstance(shape[2], int):
            return (shape[1], shape[2])
    return None


def model_name(model, default: str = "model") -> str:
    """A display name for a model: its Keras name, or ``default``.

    Example:
        >>> model_name(object(), default="mine")
        'mine'
    """
    name = getattr(model, "name", None)
    return name if isinstance(name, str) and name else default


class SkyPredictor:
    """Runs a model on float32 batches of any size and returns sky probabilities ``(B, H, W)``.

    Pads each batch (mirror padding, bottom and right) to the model's stride and crops the
    output back, reduces one- or two-channel outputs (and ``{"sky_probability": ...}`` dicts
    from SavedModels) to the sky probability, and compiles one ``tf.function`` per input shape
    (resizing and tiling keep the shapes few).

    Args:
        model: A ``keras.Model``, a ``keras.layers.TFSMLayer`` or any callable from a float32
            batch ``[B, H, W, 3]`` in ``[0, 255]`` to ``[B, H, W, 1 or 2]`` probabilities.

    Example:
        >>> import numpy as np
        >>> import skyseg_tf
        >>> predictor = SkyPredictor(skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None))
        >>> predictor(np.zeros((2, 40, 50, 3), np.float32)).shape
        (2, 40, 50)
    """

    def __init__(self, model):
        if isinstance(model, SkyPredictor):
            model = model.model
        if not callable(model):
            raise TypeError(
                f"model: received {type(model).__name__}, which is not callable. Pass a keras "
                "model, a path loaded with skyseg_tf.inference.load_model, or a callable."
            )
        self.model = model
        self.stride = model_stride(model)
        self.input_size = model_input_size(model)
        self.name = model_name(model)
        self.preprocessing = preprocessing.get(model)
        self._function = tf.function(self._predict, autograph=False)

    def _predict(self, images):
        outputs = self.model(images, training=False) if _takes_training(self.model) else self.model(images)
        if isinstance(outputs, dict):
            outputs = outputs.get(SKY_PROBABILITY_KEY, next(iter(outputs.values())))
        from skyseg_tf.models import output_activation  # runs once per traced shape

        from_logits = output_activation(self.model) is None
        return tf.convert_to_tensor(sky_probability(outputs, from_logits=from_logits))[..., 0]

    def __call__(self, images) -> np.ndarray:
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images: expected a float32 batch [B, H, W, 3], received shape {images.shape}."
            )
        height, width = int(images.shape[1]), int(images.shape[2])
        if self.input_size is not None and (height, width) != self.input_size:
            raise ValueError(
                f"{self.name} was built for {self.input_size[0]}x{self.input_size[1]} inputs; "
                f"received {height}x{width}. Use mode='resize' (input size {self.input_size}), or "
                "rebuild the model with input_shape=(None, None, 3)."
            )
        padded = pad_to_multiple(images, self.stride)
        return self._function(padded).numpy()[:, :height, :width]


def _takes_training(model) -> bool:
    import keras

    return isinstance(model, keras.Model)


@functools.lru_cache(maxsize=1)
def _default_model():
    """The pretrained default preset, built once per process (``predict_image(photo)``)."""
    from skyseg_tf.presets import DEFAULT_PRESET, from_preset

    return from_preset(DEFAULT_PRESET)


_PREDICTOR_ATTRIBUTE = "_skyseg_predictor"
"""Where a model keeps its :class:`SkyPredictor`, so calls in a loop reuse its compiled functions
(an attribute, not a global cache: the predictor lives and dies with its model)."""


def as_predictor(model) -> SkyPredictor:
    """Wraps a model (or a path to one) in a :class:`SkyPredictor`; predictors pass through.

    The same model object gets the same predictor on every call (and so its compiled
    ``tf.function``), as long as the model lives. ``None`` means the pretrained
    :data:`skyseg_tf.presets.DEFAULT_PRESET`.

    Example:
        >>> model = lambda x: x[..., :1] / 255.0
        >>> as_predictor(model) is as_predictor(model), as_predictor(as_predictor(model)).stride
        (True, 32)
    """
    if isinstance(model, SkyPredictor):
        return model
    if model is None:
        model = _default_model()
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    predictor = getattr(model, _PREDICTOR_ATTRIBUTE, None)
    if not isinstance(predictor, SkyPredictor) or predictor.model is not model or (
            predictor.preprocessing is not preprocessing.get(model)):
        predictor = SkyPredictor(model)
        try:
            object.__setattr__(model, _PREDICTOR_ATTRIBUTE, predictor)
        except AttributeError:  # objects without attributes: no reuse
            pass
    return predictor


# --------------------------------------------------------------------------------------------
# Resizing and padding (TensorFlow ops, also used by the exported serving signatures)
# --------------------------------------------------------------------------------------------


def resize_images(images, size) -> tf.Tensor:
    """Resizes a float batch of RGB images as the training pipeline does.

    Bilinear with antialiasing, clipped to ``[0, 255]`` and rounded to whole values, as
    ``make_dataset`` resizes (it stores ``uint8``), so the model sees what it saw in training.

    Args:
        images: ``[B, H, W, 3]`` in ``[0, 255]``.
        size: ``(height, width)``.

    Returns:
        float32 ``[B, height, width, 3]``.

    Example:
        >>> resize_images(np.zeros((1, 10, 20, 3), np.float32), (4, 8)).shape
        TensorShape([1, 4, 8, 3])
    """
    resized = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear", antialias=True)
    return tf.round(tf.clip_by_value(resized, 0.0, 255.0))


def resize_probabilities(probabilities, size) -> tf.Tensor:
    """Resizes ``[B, h, w, 1]`` probabilities bilinearly to ``size``, clipped to ``[0, 1]``.

    Example:
        >>> resize_probabilities(np.ones((1, 2, 2, 1), np.float32), (5, 3)).shape
        TensorShape([1, 5, 3, 1])
    """
    resized = tf.image.resize(tf.cast(probabilities, tf.float32), size, method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)


def _mirror_indices(length, padded_length):
    """Indices 0..length-1 followed by their mirror image (edge repeated), any padding size."""
    index = tf.range(padded_length)
    period = 2 * length
    folded = tf.math.floormod(index, period)
    return tf.where(folded < length, folded, period - 1 - folded)


def pad_to_multiple(images, multiple: int) -> tf.Tensor:
    """Pads a batch at the bottom and right, mirroring the image, to sizes divisible by ``multiple``.

    Works for paddings larger than the image and for sizes known only at run time (it gathers
    mirrored indices), so the exported SavedModel uses it too. Crop with ``[:, :H, :W]``.

    Example:
        >>> x = np.arange(3, dtype=np.float32).reshape(1, 1, 3, 1)
        >>> pad_to_multiple(x, 4)[0, 0, :, 0].numpy().tolist()
        [0.0, 1.0, 2.0, 2.0]
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    # Python ints where the size is known, so the padded shape stays static.
    height = images.shape[1] if images.shape[1] is not None else shape[1]
    width = images.shape[2] if images.shape[2] is not None else shape[2]
    padded_height = (height + multiple - 1) // multiple * multiple
    padded_width = (width + multiple - 1) // multiple * multiple
    images = tf.gather(images, _mirror_indices(height, padded_height), axis=1)
    return tf.gather(images, _mirror_indices(width, padded_width), axis=2)


# --------------------------------------------------------------------------------------------
# Guided filter
# --------------------------------------------------------------------------------------------


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
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 1:
        raise ValueError(f"radius: received {radius!r}; pass a whole number of pixels >= 1.")
    kernel = (2 * int(radius) + 1,) * 2

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


# --------------------------------------------------------------------------------------------
# predict_image
# --------------------------------------------------------------------------------------------


def _check_size_pair(name: str, value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
        ok = len(pair) == 2 and all(v > 0 for v in pair) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}: received {value!r}; pass (height, width) as two positive ints, or one int.")
    return pair


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: received {value!r}; pass a positive int.")
    return int(value)


def _as_rgb(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(
            f"image: expected an RGB array [H, W, 3] (grayscale [H, W] or [H, W, 1] and RGBA are converted), "
            f"received shape {array.shape}."
        )
    array = array[..., :3]
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"image: received dtype {array.dtype}; pass uint8 (or floats in [0, 255]).")
        array = np.clip(np.round(array.astype(np.float32)), 0, 255).astype(np.uint8)
    return array


def _check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size, refine_radius,
                              refine_eps):
    """Checks the options of :func:`predict_image`; returns ``input_size`` as a pair or None."""
    input_size = _check_size_pair("input_size", input_size)
    tile_size = _check_positive("tile_size", tile_size)
    _check_positive("batch_size", batch_size)
    if mode not in MODES:
        raise ValueError(f"mode: received {mode!r}; valid modes are {MODES}.")
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Integral) or not 0 <= overlap < tile_size:
        raise ValueError(
            f"overlap: received {overlap!r}; pass an int with 0 <= overlap < tile_size "
            f"(tile_size={tile_size}); a quarter of the tile or less is typical."
        )
    if refine not in REFINE_METHODS:
        raise ValueError(f"refine: received {refine!r}; valid values are {REFINE_METHODS}.")
    if refine_radius is not None:
        _check_positive("refine_radius", refine_radius)
    if isinstance(refine_eps, bool) or not isinstance(refine_eps, numbers.Real) or not refine_eps > 0:
        raise ValueError(f"refine_eps: received {refine_eps!r}; pass a positive number such as 1e-4.")
    return input_size


def _is_model_like(value) -> bool:
    """Whether ``predict_image``'s first argument is a model rather than an image."""
    return callable(value) or isinstance(value, (str, os.PathLike, SkyPredictor))


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D raised-cosine ramp over ``overlap`` pixels at each end, 1 in the middle, never 0."""
    index = np.arange(tile, dtype=np.float64) + 0.5
    if overlap <= 0:
        return np.ones(tile, np.float32)
    ramp = np.minimum(1.0, np.minimum(index, tile - index) / overlap)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


def _predict_native(predictor: SkyPredictor, image: np.ndarray, tile_size: int, overlap: int,
                    batch_size: int, progress: bool) -> np.ndarray:
    height, width = image.shape[:2]
    stride = predictor.stride
    if height <= tile_size and width <= tile_size:
        return predictor(image[None].astype(np.float32))[0]
    # Tiles are tile_size squares; an axis shorter than a tile is covered by one tile as long as
    # the axis padded to the stride.
    tile_h = min(tile_size, -(-height // stride) * stride)
    tile_w = min(tile_size, -(-width // stride) * stride)
    canvas = image
    if tile_h > height or tile_w > width:
        canvas = pad_to_multiple(image[None], stride).numpy()[0]
    canvas_h, canvas_w = canvas.shape[:2]
    step = tile_size - overlap
    positions = [(top, left) for top in _tile_starts(canvas_h, tile_h, step)
                 for left in _tile_starts(canvas_w, tile_w, step)]
    window = np.outer(_blend_window(tile_h, overlap if canvas_h > tile_h else 0),
                      _blend_window(tile_w, overlap if canvas_w > tile_w else 0))
    total = np.zeros((canvas_h, canvas_w), np.float32)
    weight = np.zeros((canvas_h, canvas_w), np.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(positions), desc="tiles", unit="tile", leave=False)
    for first in range(0, len(positions), batch_size):
        chunk = positions[first:first + batch_size]
        tiles = np.stack([canvas[t:t + tile_h, l:l + tile_w] for t, l in chunk]).astype(np.float32)
        probabilities = predictor(tiles)
        for (top, left), probability in zip(chunk, probabilities):
            total[top:top + tile_h, left:left + tile_w] += probability * window
            weight[top:top + tile_h, left:left + tile_w] += window
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    total /= weight
    return total[:height, :width]


def resolve_mode(mode: str, image_shape: Sequence[int], predictor: SkyPredictor,
                 tile_size: int = DEFAULT_TILE_SIZE) -> str:
    """The mode ``"auto"`` resolves to for an image (``"resize"`` or ``"tile"``).

    Example:
        >>> resolve_mode("auto", (3000, 4000), as_predictor(lambda x: x[..., :1]))
        'resize'
    """
    if mode not in MODES:
        raise ValueError(f"mode: received {mode!r}; valid modes are {MODES}.")
    if mode != "auto":
        return mode
    if predictor.preprocessing is not None:  # the scale the model was trained at
        return "tile" if predictor.preprocessing.resize_mode == "crop" else "resize"
    height, width = image_shape[:2]
    if predictor.input_size is None and height <= tile_size and width <= tile_size:
        return "tile"
    return "resize"


def predict_image(
    model=None,
    image=None,
    input_size: int | Sequence[int] | None = None,
    mode: str = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    refine: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    refine_radius: int | None = None,
    refine_eps: float = DEFAULT_GUIDED_EPS,
    progress: bool = False,
) -> np.ndarray:
    """Predicts the sky probability of every pixel of an image, at the image's own resolution.

    See the module docstring for the modes and the ``"auto"`` rule.

    ``predict_image(photo)`` (one array argument) uses the pretrained model
    (:data:`skyseg_tf.presets.DEFAULT_PRESET`, loaded once per process).

    Args:
        model: A ``keras.Model``, a model loaded with :func:`load_model` or
            :func:`skyseg_tf.from_preset`, a path to one, or a :class:`SkyPredictor`; ``None``
            for the pretrained model. The same model object reuses its compiled functions.
        image: RGB ``uint8`` ``[H, W, 3]`` of any size (floats in ``[0, 255]``, grayscale
            ``[H, W]`` and RGBA are converted).
        input_size: ``(height, width)`` (or one int) the image is resized to in ``"resize"``
            mode. Default: the scale the model was trained at, when it records one
            (:mod:`skyseg_tf.preprocessing`; e.g. the shorter side to 256 pixels, aspect ratio
            kept), else the model's fixed input size, else :data:`DEFAULT_INPUT_SIZE`. Sizes not
            divisible by the stride are padded.
        mode: ``"auto"``, ``"resize"`` or ``"tile"``.
        tile_size: Tile side in ``"tile"`` mode, divisible by the model's stride; also the size
            up to which ``"auto"`` predicts at native resolution.
        overlap: Pixels shared by neighbouring tiles (blended), ``0 <= overlap < tile_size``.
        refine: ``None`` or ``"guided"`` (guided-filter edge refinement at full resolution).
        batch_size: Tiles per forward pass; lower it to save memory.
        refine_radius: Guided-filter radius; default :func:`default_guided_radius` of the
            upsampling factor (2 at native resolution).
        refine_eps: Guided-filter regularisation.
        progress: Show a progress bar over the tiles.

    Returns:
        float32 ``[H, W]`` sky probabilities in ``[0, 1]``.

    Raises:
        ValueError: For an invalid argument (the message names it and the valid values).

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> image = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
        >>> predict_image(model, image, mode="tile", tile_size=128, overlap=32).shape
        (300, 200)
    """
    if image is None and model is not None and not _is_model_like(model):
        model, image = None, model  # predict_image(photo)
    if image is None:
        raise ValueError("image: missing; call predict_image(photo) or predict_image(model, photo) "
                         "with an RGB array [H, W, 3].")
    input_size = _check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size,
                                           refine_radius, refine_eps)
    predictor = as_predictor(model)
    image = _as_rgb(image)
    height, width = image.shape[:2]
    mode = resolve_mode(mode, image.shape, predictor, tile_size)
    if mode == "tile":
        if predictor.input_size is not None:
            raise ValueError(
                f"mode='tile': {predictor.name} only takes {predictor.input_size[0]}x"
                f"{predictor.input_size[1]} inputs; use mode='resize', or rebuild it with "
                "input_shape=(None, None, 3)."
            )
        if tile_size % predictor.stride:
            fixed = max(predictor.stride, round(tile_size / predictor.stride) * predictor.stride)
            raise ValueError(
                f"tile_size: received {tile_size}, which {predictor.name} cannot take; it must be "
                f"divisible by {predictor.stride}, e.g. tile_size={fixed}."
            )
        probability = _predict_native(predictor, image, tile_size, overlap, batch_size, progress)
        scale = 1.0
    else:
        size = input_size or predictor.input_size
        if size is None and predictor.preprocessing is not None:
            size = predictor.preprocessing.working_size(image.shape) or DEFAULT_INPUT_SIZE
        size = size or DEFAULT_INPUT_SIZE
        resized = resize_images(image[None], size)
        low = predictor(resized)
        probability = resize_probabilities(low[..., None], (height, width)).numpy()[0, ..., 0]
        scale = max(height / size[0], width / size[1])
    if refine == "guided":
        radius = refine_radius if refine_radius is not None else default_guided_radius(scale)
        probability = refine_probability(image, probability, radius, refine_eps)
    return np.clip(probability, 0.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Files and folders
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PredictionSummary:
    """What :func:`predict_paths` did.

    Attributes:
        succeeded: Input files predicted and written.
        failed: ``(input file, reason)`` for files that could not be read or predicted.
        skipped: Files in the input folders that are not images by their suffix.
        written: Every output file.
    """

    succeeded: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    written: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file failed (the CLI exits non-zero otherwise)."""
        return not self.failed

    def to_dict(self) -> dict:
        """JSON-ready counts and lists."""
        return {
            "succeeded": [str(p) for p in self.succeeded],
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "skipped": [str(p) for p in self.skipped],
            "written": [str(p) for p in self.written],
        }

    def __str__(self) -> str:
        lines = [f"{len(self.succeeded)} image(s) predicted, {len(self.failed)} failed, "
                 f"{len(self.skipped)} non-image file(s) skipped, {len(self.written)} file(s) written."]
        lines += [f"  FAILED {p}: {r}" for p, r in self.failed]
        return "\n".join(lines)


def _collect_inputs(inputs, recursive: bool):
    """Returns ``([(path, output stem relative to out_dir)], skipped)``."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    items, skipped = [], []
    for entry in inputs:
        path = pathlib.Path(entry)
        if path.is_file():
            items.append((path, pathlib.Path(path.stem)))
        elif path.is_dir():
            files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
            for file in files:
                if file.name.startswith("."):
                    continue
                if file.suffix.lower() in PREDICT_EXTENSIONS:
                    items.append((file, file.relative_to(path).with_suffix("")))
                else:
                    skipped.append(file)
        else:
            raise FileNotFoundError(
                f"inputs: {str(path)!r} does not exist. Pass image files or folders of images."
            )
    stems = [stem for _, stem in items]
    duplicates = {stem for stem in stems if stems.count(stem) > 1}
    items = [(p, stem.with_name(p.name) if stem in duplicates else stem) for p, stem in items]
    return items, skipped


def overlay_sky(image: np.ndarray, probability: np.ndarray, color=OVERLAY_COLOR,
                alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Tints the sky of an image: each pixel moves towards ``color`` by ``alpha * probability``.

    Example:
        >>> overlay_sky(np.zeros((1, 2, 3), np.uint8), np.array([[0.0, 1.0]]), alpha=1.0)[0].tolist()
        [[0, 0, 0], [255, 0, 200]]
    """
    weight = (alpha * np.asarray(probability, np.float32))[..., None]
    tint = np.asarray(color, np.float32)
    out = image.astype(np.float32) * (1.0 - weight) + tint * weight
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _write_outputs(image, probability, out_stem: pathlib.Path, save, threshold, probability_bits):
    from PIL import Image

    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in save:
        path = out_stem.with_name(out_stem.name + OUTPUT_SUFFIXES[kind])
        if kind == "mask":
            Image.fromarray(np.where(probability >= threshold, 255, 0).astype(np.uint8)).save(path)
        elif kind == "probability":
            if probability_bits == 16:
                values = np.round(probability * 65535.0).astype(np.uint16)
                Image.fromarray(values).save(path)
            else:
                Image.fromarray(np.round(probability * 255.0).astype(np.uint8)).save(path)
        else:
            Image.fromarray(overlay_sky(image, probability)).save(path, quality=90)
        written.append(path)
    return written


def predict_paths(
    model,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    save: Sequence[str] = SAVE_KINDS,
    input_size: int | Sequence[int] | None = None,
    mode: str = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    refine: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    probability_bits: int = 8,
    recursive: bool = False,
    progress: bool = True,
    refine_radius: int | None = None,
    refine_eps: float = DEFAULT_GUIDED_EPS,
) -> PredictionSummary:
    """Predicts image files and folders and writes masks, probability maps and overlays.

    For an input ``photo.jpg`` it writes ``photo_mask.png`` (0 / 255, sky = 255 where the
    probability is ``>= threshold``), ``photo_probability.png`` (probability scaled to 8 or 16
    bits) and ``photo_overlay.jpg`` (sky tinted magenta) into ``out_dir``; images of an input
    folder keep their relative sub-folders (with ``recursive``). Pixels are read the way photo
    viewers show them (EXIF orientation applied). A file that cannot be read or predicted is
    reported with its reason and skipped; the others go on. In folders, files without an image
    suffix (:data:`PREDICT_EXTENSIONS`) are listed as skipped, not failed.

    Args:
        model: A model, a path to one (see :func:`load_model`) or a :class:`SkyPredictor`.
        inputs: An image file, a folder, or a list of them.
        out_dir: Output folder (created).
        save: Any of ``"mask"``, ``"probability"``, ``"overlay"``.
        input_size, mode, tile_size, overlap, refine, batch_size, refine_radius, refine_eps: As in
            :func:`predict_image`; checked once, before any file is read.
        threshold: Probability at or above which a pixel is sky in the mask.
        probability_bits: 8 or 16 (bits per pixel of the probability PNG).
        recursive: Also predict images in sub-folders of input folders.
        progress: Show a tqdm progress bar over the files.

    Returns:
        A :class:`PredictionSummary`; ``summary.ok`` is False when any file failed.

    Raises:
        FileNotFoundError: If an input does not exist.
        ValueError: For an invalid option, or inputs without any image.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> import skyseg_tf
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("RGB", (80, 60), (90, 150, 235)).save(os.path.join(folder, "blue.png"))
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> summary = predict_paths(model, folder, os.path.join(folder, "out"), save=("mask",),
        ...                         progress=False)
        >>> summary.ok, [p.name for p in summary.written]
        (True, ['blue_mask.png'])
    """
    from PIL import Image

    from skyseg_tf.data.folder import read_image

    if isinstance(save, str):
        save = (save,)
    save = tuple(save)
    unknown = [kind for kind in save if kind not in SAVE_KINDS]
    if unknown or not save:
        raise ValueError(f"save: received {save!r}; pass one or more of {SAVE_KINDS}.")
    if probability_bits not in (8, 16):
        raise ValueError(f"probability_bits: received {probability_bits!r}; pass 8 or 16.")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold: received {threshold!r}; pass a probability in [0, 1].")
    _check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size, refine_radius, refine_eps)
    items, skipped = _collect_inputs(inputs, recursive)
    if not items:
        raise ValueError(
            f"inputs: found no images in {inputs!r} (image suffixes: {', '.join(PREDICT_EXTENSIONS)})"
            + (f"; {len(skipped)} other file(s) were skipped" if skipped else "")
            + (". Pass recursive=True to search sub-folders." if not recursive else ".")
        )
    predictor = as_predictor(model)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary(skipped=skipped)
    iterator = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="predict", unit="image")
    for path, stem in iterator:
        try:
            image = read_image(path, exif_transpose=True)
            probability = predict_image(
                predictor, image, input_size=input_size, mode=mode, tile_size=tile_size,
                overlap=overlap, refine=refine, batch_size=batch_size, refine_radius=refine_radius,
                refine_eps=refine_eps,
            )
            summary.written += _write_outputs(image, probability, out_dir / stem, save, threshold,
                                              probability_bits)
        except (ValueError, OSError, tf.errors.OpError, MemoryError, Image.DecompressionBombError) as error:
            summary.failed.append((path, f"{type(error).__name__}: {error}".splitlines()[0]))
            continue
        summary.succeeded.append(path)
    return summary


__all__ = [
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_OVERLAP",
    "DEFAULT_STRIDE",
    "DEFAULT_TILE_SIZE",
    "MODES",
    "OUTPUT_SUFFIXES",
    "PREDICT_EXTENSIONS",
    "PredictionSummary",
    "REFINE_METHODS",
    "SAVE_KINDS",
    "SKY_PROBABILITY_KEY",
    "SkyPredictor",
    "as_predictor",
    "default_guided_radius",
    "guided_filter",
    "load_model",
    "model_input_size",
    "model_stride",
    "overlay_sky",
    "pad_to_multiple",
    "predict_image",
    "predict_paths",
    "refine_probability",
    "resize_images",
    "resize_probabilities",
]
