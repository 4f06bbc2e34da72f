"""Sky probabilities of one image at its own resolution: :func:`predict_image`.

Models see sizes divisible by their stride (32 for U-Net, 8 for DeepLabV3): the input is padded
to a multiple where needed (mirror padding at the bottom and right) and the prediction is
cropped back. See :mod:`skyseg_tf.inference` for the modes and the ``"auto"`` rule.

Example:
    >>> import numpy as np
    >>> predict_image(lambda x: x[..., :1] / 255.0, np.full((20, 30, 3), 255, np.uint8)).shape
    (20, 30)
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from skyseg_tf import checks
from skyseg_tf.hemisphere.lens import ImageCircle, circle_mask
from skyseg_tf.image_ops import resize_images, resize_probabilities
from skyseg_tf.inference.predictor import SkyPredictor, as_predictor
from skyseg_tf.inference.refine import DEFAULT_GUIDED_EPS, REFINE_METHODS, default_guided_radius, refine_probability
from skyseg_tf.inference.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE, predict_tiles

MODES = ("auto", "resize", "tile")
"""Values of ``predict_image(mode=...)``; see :mod:`skyseg_tf.inference` for the ``"auto"`` rule."""

DEFAULT_INPUT_SIZE = (512, 512)
"""Working size of ``mode="resize"`` for models that accept any size and record no scale (height, width)."""


def as_rgb(image) -> np.ndarray:
    """An image as ``uint8 [H, W, 3]``: grayscale repeated, alpha dropped, floats rounded and clipped.

    Example:
        >>> as_rgb(np.zeros((2, 3), np.float32)).shape
        (2, 3, 3)
    """
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


def check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size, refine_radius,
                             refine_eps):
    """Checks the options of :func:`predict_image` (once, before any file is read, for callers
    that predict many images); returns ``input_size`` as a ``(height, width)`` pair or ``None``.

    Example:
        >>> check_prediction_options(256, "auto", 512, 64, None, 4, None, 1e-4)
        (256, 256)
    """
    input_size = checks.size_pair("input_size", input_size)
    tile_size = checks.positive_int("tile_size", tile_size)
    checks.positive_int("batch_size", batch_size)
    checks.choice("mode", mode, MODES)
    try:
        overlap_ok = checks.non_negative_int("overlap", overlap) < tile_size
    except ValueError:
        overlap_ok = False
    if not overlap_ok:
        raise ValueError(
            f"overlap: received {overlap!r}; pass an int with 0 <= overlap < tile_size "
            f"(tile_size={tile_size}); a quarter of the tile or less is typical."
        )
    checks.choice("refine", refine, REFINE_METHODS)
    if refine_radius is not None:
        checks.positive_int("refine_radius", refine_radius)
    checks.positive_float("refine_eps", refine_eps)
    return input_size


def _is_model_like(value) -> bool:
    """Whether ``predict_image``'s first argument is a model rather than an image."""
    return callable(value) or isinstance(value, (str, os.PathLike, SkyPredictor))


def resolve_mode(mode: str, image_shape: Sequence[int], predictor: SkyPredictor,
                 tile_size: int = DEFAULT_TILE_SIZE) -> str:
    """The mode ``"auto"`` resolves to for an image (``"resize"`` or ``"tile"``).

    Example:
        >>> resolve_mode("auto", (3000, 4000), as_predictor(lambda x: x[..., :1]))
        'resize'
    """
    checks.choice("mode", mode, MODES)
    if mode != "auto":
        return mode
    if predictor.preprocessing is not None:  # the scale the model was trained at
        return "tile" if predictor.preprocessing.resize_mode == "crop" else "resize"
    height, width = image_shape[:2]
    if predictor.input_size is None and height <= tile_size and width <= tile_size:
        return "tile"
    return "resize"


def working_size(predictor: SkyPredictor, image_shape: Sequence[int],
                 input_size: Sequence[int] | None = None) -> tuple[int, int]:
    """The ``(height, width)`` an image of ``image_shape`` is resized to in ``"resize"`` mode.

    ``input_size`` if given, else the model's fixed input size, else the scale the model records
    (:mod:`skyseg_tf.preprocessing`), else :data:`DEFAULT_INPUT_SIZE`.

    Example:
        >>> working_size(as_predictor(lambda x: x[..., :1]), (3000, 4000))
        (512, 512)
    """
    size = input_size or predictor.input_size
    if size is None and predictor.preprocessing is not None:
        size = predictor.preprocessing.working_size(image_shape)
    return tuple(size or DEFAULT_INPUT_SIZE)


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
    *,
    output_size: Sequence[int] | None = None,
    circle: ImageCircle | Sequence[float] | str | bool | None = None,
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
        output_size: ``(height, width)`` of the returned map, in ``"resize"`` mode without
            refinement; default the image's own size. For a photo decoded at reduced scale
            (JPEG draft decoding), pass the photo's full size.
        circle: The image circle of a fisheye photo: the model runs on the circle's bounding
            square and every pixel outside the circle is 0 (never sky). ``None`` (default): the
            model's recorded view decides, ``"auto"`` for a model trained for fisheye photos
            (``sky_unet_efficientnet_lite0_fisheye``), no circle otherwise; ``"auto"``: found
            in the photo (:func:`skyseg_tf.hemisphere.find_image_circle`); an
            :class:`~skyseg_tf.hemisphere.ImageCircle` or ``(cx, cy, radius)`` in pixels of
            ``image``; ``False``: none.

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
    input_size = check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size,
                                           refine_radius, refine_eps)
    predictor = as_predictor(model)
    image = as_rgb(image)
    height, width = image.shape[:2]
    output_size = checks.size_pair("output_size", output_size)
    circle = resolve_circle(circle, predictor, image)
    if circle is not None:
        return _predict_in_circle(predictor, image, circle, output_size, dict(
            input_size=input_size, mode=mode, tile_size=tile_size, overlap=overlap, refine=refine,
            batch_size=batch_size, refine_radius=refine_radius, refine_eps=refine_eps, progress=progress))
    mode = resolve_mode(mode, image.shape, predictor, tile_size)
    if output_size is not None and (mode != "resize" or refine is not None):
        raise ValueError(
            f"output_size: received {output_size!r} with mode={mode!r} and refine={refine!r}; it "
            "needs mode='resize' (or 'auto' resolving to it) and refine=None, which do not need "
            "the full-resolution image."
        )
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
        probability = predict_tiles(predictor, image, tile_size, overlap, batch_size, progress)
        scale = 1.0
    else:
        size = working_size(predictor, image.shape, input_size)
        resized = resize_images(image[None], size)
        low = predictor(resized)[0]
        out_height, out_width = output_size or (height, width)
        if out_height >= low.shape[0] and out_width >= low.shape[1]:
            # Bilinear upsampling (half-pixel centres, as tf.image.resize, which antialiases
            # only when shrinking) in OpenCV: 30x faster for a 12-megapixel photo, equal to 3e-5.
            probability = cv2.resize(low, (out_width, out_height), interpolation=cv2.INTER_LINEAR)
        else:
            probability = resize_probabilities(low[None, ..., None], (out_height, out_width)).numpy()[0, ..., 0]
        scale = max(out_height / size[0], out_width / size[1])
    if refine == "guided":
        radius = refine_radius if refine_radius is not None else default_guided_radius(scale)
        probability = refine_probability(image, probability, radius, refine_eps)
    return np.clip(probability, 0.0, 1.0).astype(np.float32, copy=False)


def resolve_circle(circle, predictor, image: np.ndarray) -> ImageCircle | None:
    """The image circle :func:`predict_image` uses for ``circle`` (see there), or ``None``.

    Example:
        >>> photo = np.zeros((40, 60, 3), np.uint8)
        >>> resolve_circle((30, 20, 18), as_predictor(lambda x: x[..., :1]), photo)
        ImageCircle(cx=30.0, cy=20.0, radius=18.0)
        >>> resolve_circle(None, as_predictor(lambda x: x[..., :1]), photo) is None
        True
    """
    if circle is None:
        recorded = getattr(predictor, "preprocessing", None)
        circle = "auto" if recorded is not None and recorded.view == "fisheye" else False
    if circle is False:
        return None
    if isinstance(circle, ImageCircle):
        return circle
    if isinstance(circle, str):
        if circle != "auto":
            raise ValueError(f"circle: received {circle!r}; pass 'auto', False, an ImageCircle or "
                             "(cx, cy, radius) in pixels.")
        from skyseg_tf.hemisphere.circle import find_image_circle

        return find_image_circle(image)
    try:
        cx, cy, radius = (float(value) for value in circle)
    except (TypeError, ValueError):
        raise ValueError(f"circle: received {circle!r}; pass 'auto', False, an ImageCircle or "
                         "(cx, cy, radius) in pixels.") from None
    return ImageCircle(cx, cy, radius)


def _predict_in_circle(predictor, image, circle: ImageCircle, output_size, options) -> np.ndarray:
    """Predicts the circle's bounding box (clipped to the image); 0 outside the circle."""
    height, width = image.shape[:2]
    top, bottom = max(0, int(np.floor(circle.cy - circle.radius))), min(height, int(np.ceil(circle.cy + circle.radius)))
    left, right = max(0, int(np.floor(circle.cx - circle.radius))), min(width, int(np.ceil(circle.cx + circle.radius)))
    if bottom - top < 2 or right - left < 2:
        raise ValueError(f"circle: {circle} does not overlap the {width}x{height} image; check its centre "
                         "and radius (pixels of the image passed), or pass circle='auto'.")
    probability = np.zeros((height, width), np.float32)
    probability[top:bottom, left:right] = predict_image(
        predictor, image[top:bottom, left:right], circle=False, **options)
    if output_size is not None and tuple(output_size) != (height, width):
        out_height, out_width = output_size
        probability = cv2.resize(probability, (out_width, out_height), interpolation=cv2.INTER_LINEAR)
        circle = ImageCircle(circle.cx * out_width / width, circle.cy * out_height / height,
                             circle.radius * min(out_width / width, out_height / height))
    probability[~circle_mask(probability.shape, circle)] = 0.0
    return probability


# --------------------------------------------------------------------------------------------


__all__ = ["DEFAULT_INPUT_SIZE", "MODES", "as_rgb", "check_prediction_options", "predict_image", "resolve_circle",
           "resolve_mode", "working_size"]
