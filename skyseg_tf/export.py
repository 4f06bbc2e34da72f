"""Export for serving: a SavedModel in TF Serving's layout, TFLite files, and ONNX.

:func:`export_saved_model` writes ``out_dir/<version>/`` (what TF Serving watches) with two
signatures:

``serving_default``
    input ``images``: float32 ``[B, H, W, 3]``, raw RGB in ``[0, 255]``, any ``H`` and ``W`` (the
    batch is mirror-padded to the model's stride and the output cropped back);
    output ``sky_probability``: float32 ``[B, H, W, 1]``.

``serving_bytes``
    input ``image_bytes``: string ``[B]``, encoded JPEG / PNG / GIF / BMP / WebP files (the REST
    API sends ``{"b64": "..."}`` per instance). Each image is decoded (RGB), resized to the export's
    working size ``image_size`` as the training pipeline resizes, predicted, and its probability
    resized back bilinearly to the image's own size. Images of one request may differ in size:
    outputs are padded with zeros at the bottom and right to the largest image of the request, and
    ``image_size`` tells each image's ``(height, width)``; crop ``[i, :h, :w]``.
    Outputs: ``sky_probability`` float32 ``[B, Hmax, Wmax, 1]``, ``sky_mask`` uint8
    ``[B, Hmax, Wmax, 1]`` (1 = sky, probability ``>= threshold``), ``image_size`` int32 ``[B, 2]``.
    Bytes that are not an image give an ``InvalidArgumentError`` naming the input and the fix
    (TF Serving answers it as an HTTP 400 error). TensorFlow's decoders ignore EXIF orientation:
    outputs follow the stored pixel order, so rotate phone photos on the client if needed.

The normalisation is a layer inside the model, so clients send raw pixels. Serve with::

    docker run -p 8501:8501 -p 8500:8500 -v "$PWD/export:/models/skyseg" \\
        -e MODEL_NAME=skyseg tensorflow/serving

:func:`export_tflite` writes a fixed-size TFLite model (float32 or float16 weights) and
:func:`check_tflite` / :func:`check_saved_model` report how far the exports are from Keras.
:func:`export_onnx` writes an ONNX model (dynamic batch, height and width; float32 images in,
sky probability out) with tf2onnx, checked in onnxruntime by :func:`check_onnx`; it needs
``pip install "skyseg-tf[onnx]"``.

Example:
    >>> import tempfile
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> path = export_saved_model(model, tempfile.mkdtemp(), image_size=(64, 64))
    >>> path.name
    '1'
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import os
import pathlib
import re
import shutil
import tempfile
import uuid
import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf

from skyseg_tf.inference import (
    DEFAULT_INPUT_SIZE,
    SKY_PROBABILITY_KEY,
    as_predictor,
    load_model,
    model_input_size,
    model_stride,
    pad_to_multiple,
    resize_images,
    resize_probabilities,
)
from skyseg_tf import preprocessing
from skyseg_tf.losses import sky_probability
from skyseg_tf.metrics import DEFAULT_THRESHOLD
from skyseg_tf.models import output_activation

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
PROBABILITY_OUTPUT = SKY_PROBABILITY_KEY
MASK_OUTPUT = "sky_mask"
SIZE_OUTPUT = "image_size"
TFLITE_QUANTIZATIONS = (None, "float16")
INFO_FILE = "assets.extra/skyseg.json"
"""Export facts (working size, stride, threshold) beside the SavedModel; TF Serving ignores
``assets.extra``."""
ONNX_FILE = "model.onnx"
"""File name ``skyseg export --onnx`` writes in its output folder."""
ONNX_OPSETS = (13, 14, 15, 16, 17, 18)
"""ONNX opsets :func:`export_onnx` can target (what tf2onnx 1.17 converts to)."""
DEFAULT_ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4
"""Largest sky-probability difference from Keras that :func:`export_onnx` accepts when it verifies."""
ONNX_INSTALL = 'pip install "skyseg-tf[onnx]"'

# Leading bytes of the formats tf.io.decode_image reads: (offset, magic).
_MAGIC = (
    ((0, b"\xff\xd8\xff"),),  # JPEG
    ((0, b"\x89PNG\r\n\x1a\n"),),  # PNG
    ((0, b"GIF8"),),  # GIF
    ((0, b"BM"),),  # BMP
    ((0, b"RIFF"), (8, b"WEBP")),  # WebP
    ((0, b"\xff\x0a"),),  # JPEG XL codestream
    ((0, b"\x00\x00\x00\x0cJXL "),),  # JPEG XL container
)


def _resolve_model(model):
    import keras

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model: received {type(model).__name__}; export needs a keras.Model or the path of a "
            ".keras file."
        )
    return model


def _working_size(model, image_size) -> tuple[int, int]:
    from skyseg_tf import checks
    from skyseg_tf.inference import model_input_size

    size = checks.size_pair("image_size", image_size) or model_input_size(model) or DEFAULT_INPUT_SIZE
    fixed = model_input_size(model)
    if fixed is not None and size != fixed:
        raise ValueError(
            f"image_size: received {size}, but {model.name} only takes {fixed[0]}x{fixed[1]} "
            f"inputs; pass image_size={fixed} or rebuild the model with input_shape=(None, None, 3)."
        )
    return size


def _sky(model, images):
    """Sky probability ``[B, H, W, 1]`` of a float32 batch of any size (padded to the stride)."""
    stride = model_stride(model)
    shape = tf.shape(images)
    padded = pad_to_multiple(images, stride)
    probability = _sky_probability(model, padded)
    return probability[:, : shape[1], : shape[2], :]


def _sky_probability(model, images):
    """Sky probability ``[B, H, W, 1]`` of a batch the model takes, from logits too."""
    from_logits = output_activation(model) is None
    return sky_probability(model(images, training=False), from_logits=from_logits)


def _check_encoded(data, index):
    padded = tf.strings.join([data, tf.constant(b"\x00" * 16)])
    matches = []
    for parts in _MAGIC:
        checks = [tf.equal(tf.strings.substr(padded, offset, len(magic)), magic) for offset, magic in parts]
        matches.append(tf.reduce_all(tf.stack(checks)))
    return tf.debugging.Assert(
        tf.reduce_any(tf.stack(matches)),
        [
            f"{SERVING_BYTES}: element of input '{BYTES_INPUT}' is not an encoded JPEG, PNG, GIF, "
            "BMP or WebP image (corrupt data or a wrong encoding). Send each image file's bytes "
            'unchanged; in the REST API as {"b64": "<base64 of the file>"}. Index:',
            index,
            "first bytes:",
            tf.strings.substr(padded, 0, 12),
        ],
        name="check_image_bytes",
    )


def _bytes_endpoint(model, size, threshold, short_side=False):
    def predict_one(data, index):
        with tf.control_dependencies([_check_encoded(data, index)]):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        original = tf.shape(image)[:2]
        if short_side:  # the shorter side to min(size), aspect kept, as predict_image does
            sides = tf.cast(original, tf.float32)
            scale = tf.minimum(float(min(size)) / tf.reduce_min(sides),
                               float(preprocessing.MAX_WORKING_SIDE) / tf.reduce_max(sides))
            working = tf.maximum(tf.cast(tf.round(tf.cast(original, tf.float32) * scale), tf.int32), 1)
        else:
            working = size
        resized = resize_images(image[None], working)
        low = _sky(model, resized)
        return resize_probabilities(low, original)[0], original

    def serve(image_bytes):
        count = tf.shape(image_bytes)[0]
        probabilities = tf.TensorArray(tf.float32, size=count, infer_shape=False,
                                       element_shape=tf.TensorShape([None, None, 1]))
        sizes = tf.TensorArray(tf.int32, size=count, element_shape=tf.TensorShape([2]))

        def predict(i, probabilities, sizes):
            probability, original = predict_one(image_bytes[i], i)
            return i + 1, probabilities.write(i, probability), sizes.write(i, original)

        _, probabilities, sizes = tf.while_loop(
            lambda i, *_: i < count, predict, (tf.constant(0), probabilities, sizes))
        sizes = sizes.stack()
        max_height = tf.reduce_max(sizes[:, 0])
        max_width = tf.reduce_max(sizes[:, 1])
        padded = tf.TensorArray(tf.float32, size=count, element_shape=tf.TensorShape([None, None, 1]))

        def pad(i, padded):
            probability = probabilities.read(i)
            shape = tf.shape(probability)
            probability = tf.pad(probability, [[0, max_height - shape[0]], [0, max_width - shape[1]], [0, 0]])
            return i + 1, padded.write(i, probability)

        _, padded = tf.while_loop(lambda i, *_: i < count, pad, (tf.constant(0), padded))
        probability = padded.stack()
        return {
            PROBABILITY_OUTPUT: probability,
            MASK_OUTPUT: tf.cast(probability >= threshold, tf.uint8),
            SIZE_OUTPUT: sizes,
        }

    return serve


def export_saved_model(
    model,
    out_dir: str | os.PathLike,
    version: int = 1,
    image_size: int | Sequence[int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    overwrite: bool = False,
    optimize: bool = True,
) -> pathlib.Path:
    """Writes a SavedModel for TF Serving to ``out_dir/<version>/``.

    Signatures ``serving_default`` (float32 images) and ``serving_bytes`` (encoded image files)
    are described in the module docstring. Written with ``keras.export.ExportArchive`` into a
    hidden folder beside ``out_dir/<version>`` (``.<version>.<id>.partial``, which TF Serving does
    not load), info file included, and renamed into place only when complete: a failure leaves
    no partial folder, and an export it was to replace (``overwrite=True``) stays as it was.

    Args:
        model: A ``keras.Model`` or the path of a ``.keras`` file.
        out_dir: The model's base folder (mount it as ``/models/<name>`` in TF Serving).
        version: Version number, the sub-folder name; TF Serving serves the highest.
        image_size: ``(height, width)`` that ``serving_bytes`` resizes images to (the training
            size). Default: the scale the model records (:mod:`skyseg_tf.preprocessing`; for
            ``"short_side"`` models, such as the presets, each image's shorter side is resized
            to ``min(image_size)`` with its aspect ratio kept), else the model's fixed input
            size, else ``skyseg_tf.inference.DEFAULT_INPUT_SIZE``. Recorded in the info file.
        threshold: Probability at or above which ``sky_mask`` is 1.
        overwrite: Replace an existing ``out_dir/<version>`` (otherwise an error).
        optimize: Export :func:`skyseg_tf.models.optimize.optimize_for_inference`'s rewrite
            of the model (BatchNorms folded into the convs, sub-pixel upsampling convs): the same
            outputs to float rounding, 1.2-1.4x faster for the U-Nets on a CPU.

    Returns:
        The version folder, ``out_dir/<version>``.

    Raises:
        FileExistsError: If the version folder exists and ``overwrite`` is False.
        ValueError: For an invalid argument.

    Example:
        >>> import tempfile
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> out = export_saved_model(model, tempfile.mkdtemp(), version=3, image_size=64)
        >>> sorted(tf.saved_model.load(str(out)).signatures)
        ['serving_bytes', 'serving_default']
    """
    import keras

    model = _resolve_model(model)
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 1:
        raise ValueError(f"version: received {version!r}; pass a positive int (TF Serving's version folder).")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold: received {threshold!r}; pass a probability in [0, 1].")
    stride = model_stride(model)
    recorded = preprocessing.get(model) if image_size is None else None
    if recorded is not None and recorded.resize_mode != "crop":
        size = recorded.image_size
        short_side = recorded.resize_mode == "short_side"
    else:
        size = _working_size(model, image_size)
        short_side = False
    served = preprocessing.Preprocessing("short_side" if short_side else "resize", tuple(size),
                                         recorded.view if recorded is not None else "photo")
    target = pathlib.Path(out_dir) / str(int(version))
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{str(target)!r} already exists. Export another version (version={version + 1}) "
            "or pass overwrite=True to replace it."
        )
    if optimize:
        from skyseg_tf.models.optimize import optimize_if_possible

        model, optimize = optimize_if_possible(model)
        if not optimize:
            warnings.warn(f"export_saved_model: {type(model).__name__} is not a functional Keras model; "
                          "exported as it is, without optimize_for_inference.", stacklevel=2)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_DEFAULT,
        lambda images: {PROBABILITY_OUTPUT: _sky(model, images)},
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGES_INPUT)],
    )
    archive.add_endpoint(
        SERVING_BYTES,
        _bytes_endpoint(model, size, float(threshold), short_side),
        input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)],
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(target)
    try:
        archive.write_out(str(partial), verbose=False)
        _write_info(partial, {
            "model_name": model.name,
            "image_size": list(size),
            "preprocessing": served.to_dict(),
            "stride": stride,
            "threshold": float(threshold),
            "optimized_for_inference": bool(optimize),
            "signatures": {SERVING_DEFAULT: [IMAGES_INPUT, [PROBABILITY_OUTPUT]],
                           SERVING_BYTES: [BYTES_INPUT, [PROBABILITY_OUTPUT, MASK_OUTPUT, SIZE_OUTPUT]]},
            "skyseg_tf_version": _version(),
        })
        _replace_folder(partial, target)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return target


def _partial_path(final: pathlib.Path) -> pathlib.Path:
    """A hidden sibling of ``final`` for writing it under; TF Serving only loads numeric names."""
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.partial")


def _write_info(export_dir: pathlib.Path, info: dict) -> None:
    path = export_dir / INFO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n")


def _replace_folder(source: pathlib.Path, target: pathlib.Path) -> None:
    """Renames the complete folder ``source`` to ``target``, replacing an existing ``target``.

    The old ``target`` is first renamed aside (and put back if the second rename fails), then
    deleted: ``target`` is the old export or the new one, never a mix of both, and is absent
    only between the two renames.
    """
    if not target.exists():
        os.replace(source, target)
        return
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(target, old)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _version() -> str:
    from skyseg_tf import __version__

    return __version__


def export_tflite(
    model,
    path: str | os.PathLike,
    image_size: int | Sequence[int] | None = None,
    quantization: str | None = None,
) -> pathlib.Path:
    """Writes a TFLite model: float32 ``[1, h, w, 3]`` RGB in ``[0, 255]`` -> ``[1, h, w, 1]``.

    The signature is ``serving_default`` with input ``images`` and output ``sky_probability``.
    TFLite needs a fixed input size; resize images to it (``skyseg_tf.inference.resize_images``).
    The file is written under a temporary name beside ``path`` and renamed into place when
    complete, so a failure leaves no partial file and keeps an existing one.

    Args:
        model: A ``keras.Model`` or the path of a ``.keras`` file.
        path: Output ``.tflite`` file (replaced if it exists).
        image_size: ``(height, width)``, divisible by the model's stride. Default: the model's
            fixed input size, else ``skyseg_tf.inference.DEFAULT_INPUT_SIZE``.
        quantization: ``None`` (float32 weights) or ``"float16"`` (half-size file; weights in
            float16, computed in float32 on CPU).

    Returns:
        ``path``.

    Raises:
        ValueError: For an invalid argument.

    Example:
        >>> import os, tempfile
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> path = export_tflite(model, os.path.join(tempfile.mkdtemp(), "sky.tflite"), image_size=64)
        >>> path.stat().st_size > 1_000_000
        True
    """
    import keras

    model = _resolve_model(model)
    if quantization not in TFLITE_QUANTIZATIONS:
        raise ValueError(f"quantization: received {quantization!r}; valid values are {TFLITE_QUANTIZATIONS}.")
    path = pathlib.Path(path)
    if path.suffix != ".tflite":
        raise ValueError(f"path: received {str(path)!r}; a TFLite file name must end with '.tflite'.")
    stride = model_stride(model)
    size = _working_size(model, image_size)
    if size[0] % stride or size[1] % stride:
        raise ValueError(
            f"image_size: received {size}; {model.name} needs sizes divisible by {stride}, e.g. "
            f"{tuple(-(-v // stride) * stride for v in size)}."
        )
    with tempfile.TemporaryDirectory() as saved_model_dir:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SERVING_DEFAULT,
            lambda images: {PROBABILITY_OUTPUT: _sky_probability(model, images)},
            input_signature=[tf.TensorSpec([1, *size, 3], tf.float32, name=IMAGES_INPUT)],
        )
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        content = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(path)
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def _tflite_interpreter(path):
    try:  # The LiteRT runtime, where installed; TensorFlow's own interpreter otherwise.
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path))


def run_tflite(path: str | os.PathLike, images) -> np.ndarray:
    """Runs a TFLite export on float32 images ``[N, h, w, 3]``; returns ``[N, h, w, 1]``.

    Example:
        >>> run_tflite("sky.tflite", np.zeros((2, 64, 64, 3), np.float32)).shape  # doctest: +SKIP
        (2, 64, 64, 1)
    """
    runner = _tflite_interpreter(path).get_signature_runner(SERVING_DEFAULT)
    images = np.asarray(images, np.float32)
    return np.concatenate([runner(**{IMAGES_INPUT: image[None]})[PROBABILITY_OUTPUT] for image in images])


def _test_images(num_images, size, seed):
    from skyseg_tf.data.synthetic import render_scene

    images = [render_scene(np.random.default_rng([seed, i]), size[0], size[1])[0] for i in range(num_images)]
    return np.stack(images).astype(np.float32)


def check_tflite(model, tflite_path: str | os.PathLike, num_images: int = 2, seed: int = 0) -> dict:
    """Compares a TFLite export with its Keras model on synthetic scenes.

    Args:
        model: The ``keras.Model`` (or ``.keras`` path) that was exported.
        tflite_path: The ``.tflite`` file.
        num_images: How many scenes to compare on.
        seed: Seed of the scenes.

    Returns:
        ``{"max_abs_diff": float, "mean_abs_diff": float, "image_size": (h, w)}`` over the sky
        probabilities.

    Example:
        >>> check_tflite(model, "sky.tflite")["max_abs_diff"] < 1e-4  # doctest: +SKIP
        True
    """
    model = _resolve_model(model)
    details = _tflite_interpreter(tflite_path).get_signature_runner(SERVING_DEFAULT).get_input_details()
    size = tuple(int(v) for v in details[IMAGES_INPUT]["shape"][1:3])
    images = _test_images(num_images, size, seed)
    expected = as_predictor(model)(images)
    actual = run_tflite(tflite_path, images)[..., 0]
    difference = np.abs(actual - expected)
    return {"max_abs_diff": float(difference.max()), "mean_abs_diff": float(difference.mean()),
            "image_size": size}


def check_saved_model(model, export_dir: str | os.PathLike, image_size: int | Sequence[int] = (64, 96),
                      num_images: int = 2, seed: int = 0) -> dict:
    """Compares both signatures of a SavedModel export with its Keras model, in this process.

    ``serving_default`` is compared with the Keras model on synthetic scenes of ``image_size``;
    ``serving_bytes`` on the same scenes encoded as PNG (lossless) with ``predict_image`` at
    the export's working scale (``input_size=<export size>``, or the shorter side resized to it
    for ``"short_side"`` exports).

    Returns:
        ``{"serving_default": max abs diff, "serving_bytes": max abs diff}``.

    Example:
        >>> check_saved_model(model, "export/1")["serving_bytes"] < 1e-4  # doctest: +SKIP
        True
    """
    import io

    from PIL import Image

    from skyseg_tf import checks
    from skyseg_tf.inference import predict_image

    model = _resolve_model(model)
    size = checks.size_pair("image_size", image_size)
    loaded = tf.saved_model.load(str(export_dir))
    images = _test_images(num_images, size, seed)
    predictor = as_predictor(model)
    served = loaded.signatures[SERVING_DEFAULT](**{IMAGES_INPUT: tf.constant(images)})[PROBABILITY_OUTPUT]
    default_diff = float(np.abs(served.numpy()[..., 0] - predictor(images)).max())
    encoded = []
    for image in images.astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    outputs = loaded.signatures[SERVING_BYTES](**{BYTES_INPUT: tf.constant(encoded)})
    info = read_export_info(export_dir)
    export_size = tuple(info["image_size"])
    short_side = info.get("preprocessing", {}).get("resize_mode") == "short_side"
    if short_side:  # the scale the export serves at, whatever the model object records
        from skyseg_tf.inference import SkyPredictor

        predictor = SkyPredictor(model)
        predictor.preprocessing = preprocessing.Preprocessing("short_side", export_size)
    bytes_diff = 0.0
    for k, image in enumerate(images.astype(np.uint8)):
        expected = predict_image(predictor, image, input_size=None if short_side else export_size, mode="resize")
        actual = outputs[PROBABILITY_OUTPUT].numpy()[k, : image.shape[0], : image.shape[1], 0]
        bytes_diff = max(bytes_diff, float(np.abs(actual - expected).max()))
    return {SERVING_DEFAULT: default_diff, SERVING_BYTES: bytes_diff}


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------


class OnnxNotInstalledError(ImportError):
    """The packages ONNX export needs (onnx, tf2onnx; onnxruntime to verify) are missing."""


class OnnxExportError(RuntimeError):
    """The ONNX converter could not take a model, or the ONNX file it made disagrees with Keras."""


def require_onnx(runtime: bool = True) -> None:
    """Raises :class:`OnnxNotInstalledError` unless the ONNX export packages import.

    Args:
        runtime: Also require onnxruntime (what :func:`check_onnx` and ``verify=True`` run).

    Example:
        >>> require_onnx()  # doctest: +SKIP
    """
    import importlib

    names = ("onnx", "tf2onnx") + (("onnxruntime",) if runtime else ())
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise OnnxNotInstalledError(
            f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed; install the ONNX extra: {ONNX_INSTALL}"
        )


class _RecordList(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def _tf2onnx_messages():
    """Collects tf2onnx's warnings and errors (it logs unsupported ops instead of raising)."""
    logger = logging.getLogger("tf2onnx")
    handler = _RecordList()
    propagate, level = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


def _layer_names(model) -> set[str]:
    names = set()
    for layer in getattr(model, "layers", ()):
        names.add(layer.name)
        names |= _layer_names(layer)
    return names


def _conversion_error(model, path, opset, records, error=None) -> OnnxExportError:
    """An error naming the model, the ops and layers that failed, and the exports that work."""
    import tf2onnx

    problems = [record.getMessage() for record in records if record.levelno >= logging.ERROR]
    if error is not None:
        problems.append(f"{type(error).__name__}: {error}")
    problems = [" ".join(problem.split())[:300] for problem in problems]
    text = " ".join(problems)
    nodes = [a or b for a, b in re.findall(r"\[([^\]:]+): \w+\]|node '([^']+)'", text)]
    known = _layer_names(model) - {model.name}
    layers = []
    for node in nodes:
        for scope in reversed(node.split("/")[:-1]):  # the innermost Keras layer first
            name = next((n for n in (scope, re.sub(r"_\d+$", "", scope)) if n in known), None)
            if name is not None:
                if name not in layers:
                    layers.append(name)
                break
    where = f" in layer {', '.join(repr(n) for n in layers)}" if layers else ""
    return OnnxExportError(
        f"{model.name} cannot be exported to ONNX: tf2onnx {tf2onnx.__version__} (opset {opset}) "
        f"failed{where}: {'; '.join(problems[:6]) or 'no reason given'}. Nothing was written to "
        f"{str(path)!r}. Rewrite that layer with standard Keras layers, or export a SavedModel "
        "(`skyseg export`, export_saved_model) or TFLite (`skyseg export --tflite`, export_tflite), "
        "which run every TensorFlow op."
    )


def _onnx_signature(model) -> tf.TensorSpec:
    fixed = model_input_size(model)
    return tf.TensorSpec([None, *(fixed or (None, None)), 3], tf.float32, name=IMAGES_INPUT)


_ONNX_ATTEMPTS = 3
"""Conversions :func:`export_onnx` tries. tf2onnx 1.17's graph optimisers visit nodes in an order
that varies from run to run, and now and then (a few conversions of the pretrained U-Net in a
hundred) one keeps a leading 1 from its rewrite of the last NCHW-to-NHWC transpose (output
``[1, B, H, W, 1]``, values right); a new conversion gets it right."""


def _convert_to_onnx(model, path, opset: int):
    """One tf2onnx conversion of the model's sky probability; any failure is an OnnxExportError."""
    import onnx
    import tf2onnx

    signature = _onnx_signature(model)
    function = tf.function(lambda images: {PROBABILITY_OUTPUT: _sky_probability(model, images)},
                           input_signature=[signature], autograph=False)
    with _tf2onnx_messages() as records:
        try:
            proto, _ = tf2onnx.convert.from_function(function, [signature], opset=opset)
        except Exception as error:  # any converter failure becomes one clear error
            raise _conversion_error(model, path, opset, records, error) from error
    if any(record.levelno >= logging.ERROR for record in records):  # ops left unconverted
        raise _conversion_error(model, path, opset, records)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise _conversion_error(model, path, opset, records, error) from error
    return proto


def export_onnx(
    model,
    path: str | os.PathLike,
    opset: int = DEFAULT_ONNX_OPSET,
    verify: bool = True,
    atol: float = ONNX_TOLERANCE,
) -> pathlib.Path:
    """Writes an ONNX model: float32 ``[B, H, W, 3]`` RGB in ``[0, 255]`` -> ``[B, H, W, 1]``.

    Input ``images``: batch, height and width are dynamic; the height and width must be
    divisible by the model's stride (32 for the U-Nets; ``"stride"`` in the file's metadata).
    Pad or resize on the client; a model built for a fixed size keeps that size. Output
    ``sky_probability``: the model's output activation is applied (a sigmoid for logits
    models), so clients get probabilities, as from every other export. The file's metadata
    (``session.get_modelmeta().custom_metadata_map`` in onnxruntime) holds the stride, the
    preprocessing the model records (its working scale), the threshold and the model name.

    Converted with tf2onnx from the model as built (not ``optimize_for_inference``'s rewrite:
    onnxruntime fuses BatchNorms itself, and the rewrite ran no consistently faster there; see
    docs/benchmarks.md). The file is written under a
    temporary name and renamed into place only after conversion (and verification) succeed,
    so a failure leaves no partial file and keeps an existing one.

    Args:
        model: A ``keras.Model`` or the path of a ``.keras`` file.
        path: Output ``.onnx`` file (replaced if it exists).
        opset: ONNX opset, one of :data:`ONNX_OPSETS`.
        verify: Run the file in onnxruntime in a fresh Python process on a random batch and a
            real photo at two sizes (:func:`check_onnx`) and fail if it differs from Keras.
        atol: Largest accepted difference of the sky probability when verifying.

    Returns:
        ``path``.

    Raises:
        OnnxNotInstalledError: If onnx, tf2onnx (or, to verify, onnxruntime) is missing.
        OnnxExportError: If the converter cannot take the model (the message names the
            failing ops and layers), or the file disagrees with Keras.
        ValueError: For an invalid argument.

    Example:
        >>> import os, tempfile
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))  # doctest: +SKIP
        >>> path.name  # doctest: +SKIP
        'model.onnx'
    """
    model = _resolve_model(model)
    path = pathlib.Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"path: received {str(path)!r}; an ONNX file name must end with '.onnx'.")
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset not in ONNX_OPSETS:
        raise ValueError(f"opset: received {opset!r}; valid values are {ONNX_OPSETS}.")
    if isinstance(atol, bool) or not isinstance(atol, numbers.Real) or not atol > 0:
        raise ValueError(f"atol: received {atol!r}; pass a positive float, e.g. {ONNX_TOLERANCE}.")
    require_onnx(runtime=verify)
    import onnx
    import tf2onnx

    for _ in range(_ONNX_ATTEMPTS):
        proto = _convert_to_onnx(model, path, int(opset))
        output_shape = proto.graph.output[0].type.tensor_type
        rank = len(output_shape.shape.dim) if output_shape.HasField("shape") else 4
        if rank == 4:
            break
    else:
        raise OnnxExportError(
            f"{model.name}: tf2onnx {tf2onnx.__version__} made a {rank}-dimensional output instead of "
            f"[batch, height, width, 1] in {_ONNX_ATTEMPTS} attempts; nothing was written to {str(path)!r}. "
            "Export a SavedModel or TFLite instead."
        )
    recorded = preprocessing.get(model)
    onnx.helper.set_model_props(proto, {
        "model_name": model.name,
        "stride": str(model_stride(model)),
        "input": IMAGES_INPUT,
        "output": PROBABILITY_OUTPUT,
        "preprocessing": json.dumps(recorded.to_dict() if recorded is not None else None),
        "threshold": str(DEFAULT_THRESHOLD),
        "skyseg_tf_version": _version(),
    })
    proto.doc_string = (f"Sky segmentation ({model.name}): {IMAGES_INPUT} float32 [B, H, W, 3], raw RGB in "
                        f"[0, 255], H and W divisible by {model_stride(model)} -> {PROBABILITY_OUTPUT} "
                        "float32 [B, H, W, 1].")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(path)
    try:
        onnx.save_model(proto, str(partial))
        if verify:
            report = check_onnx(model, partial)
            if not report["max_abs_diff"] <= atol:
                raise OnnxExportError(
                    f"{model.name}: the ONNX conversion runs but differs from Keras by "
                    f"{report['max_abs_diff']:.3g} (more than atol={atol}) at sizes "
                    f"{report['image_sizes']}; nothing was written to {str(path)!r}. Export a "
                    "SavedModel or TFLite instead, or report the model's layers as a tf2onnx issue."
                )
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


_ONNX_RUNNER = r"""
import json, sys
import numpy as np
import onnxruntime

onnx_path, data_path, out_path = sys.argv[1:4]
session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
(images,) = session.get_inputs()
data = np.load(data_path)
results = {key: session.run(None, {images.name: data[key]})[0] for key in data.files}
np.savez(out_path, **results)
print("RESULT" + json.dumps({
    "input": [images.name, [d if isinstance(d, int) else None for d in images.shape]],
    "outputs": [output.name for output in session.get_outputs()],
    "onnxruntime": onnxruntime.__version__,
}))
"""


def _sample_photo() -> np.ndarray:
    """A real photo: scikit-image's astronaut (public domain) where installed, else a synthetic scene."""
    try:
        from skimage import data
    except ImportError:
        return _test_images(1, (512, 512), seed=0)[0].astype(np.uint8)
    return np.asarray(data.astronaut())[..., :3]


def check_onnx(model, onnx_path: str | os.PathLike, image_sizes: Sequence[Sequence[int]] | None = None,
               seed: int = 0, timeout: float = 600) -> dict:
    """Runs an ONNX export in onnxruntime, in a fresh Python process, and compares it with Keras.

    At each size the batch holds uniform random pixels and a real photo (scikit-image's
    astronaut, else a synthetic scene) resized to that size; from the second size on, also the
    photo mirrored, so batch sizes differ too. The fresh process imports only NumPy and
    onnxruntime.

    Args:
        model: The ``keras.Model`` (or ``.keras`` path) that was exported.
        onnx_path: The ``.onnx`` file.
        image_sizes: ``(height, width)`` pairs divisible by the model's stride. Default: two
            sizes, e.g. ``(64, 96)`` and ``(96, 64)`` (the fixed size, for a fixed-size model).
        seed: Seed of the random batch.
        timeout: Seconds the fresh process may take.

    Returns:
        ``{"max_abs_diff", "mean_abs_diff", "image_sizes", "batch_sizes", "input", "outputs",
        "onnxruntime"}``: differences over the sky probabilities; ``input`` is the ONNX input's
        name and shape (``None`` for dynamic dimensions).

    Raises:
        OnnxExportError: If onnxruntime cannot load or run the file.

    Example:
        >>> check_onnx(model, "exported/model.onnx")["max_abs_diff"] < 1e-4  # doctest: +SKIP
        True
    """
    import subprocess
    import sys

    from skyseg_tf.models.layers import check_input_size

    model = _resolve_model(model)
    require_onnx(runtime=True)
    stride = model_stride(model)
    if image_sizes is None:
        fixed = model_input_size(model)
        base = stride * -(-32 // stride)
        image_sizes = [fixed] if fixed is not None else [(2 * base, 3 * base), (3 * base, 2 * base)]
    image_sizes = [tuple(int(v) for v in size) for size in image_sizes]
    for height, width in image_sizes:
        check_input_size(height, width, stride, model.name)
    photo = _sample_photo()[None]
    rng = np.random.default_rng(seed)
    batches = {}
    for index, size in enumerate(image_sizes):
        resized = resize_images(photo, size).numpy()
        noise = rng.uniform(0.0, 255.0, (1, *size, 3)).astype(np.float32)
        batch = [noise, resized] if index == 0 else [resized, noise, resized[:, :, ::-1]]
        batches[f"size{index}"] = np.concatenate(batch).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        data_path, out_path = os.path.join(folder, "in.npz"), os.path.join(folder, "out.npz")
        np.savez(data_path, **batches)
        # The fresh process runs in the temporary folder: hand it an absolute path, or a relative
        # one (``exported/model.onnx``) would be looked up there.
        absolute = os.path.abspath(onnx_path)
        done = subprocess.run([sys.executable, "-c", _ONNX_RUNNER, absolute, data_path, out_path],
                              capture_output=True, text=True, timeout=timeout, cwd=folder)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
        if done.returncode != 0 or not lines:
            raise OnnxExportError(
                f"onnxruntime could not run {str(onnx_path)!r} (exported from {model.name}): "
                f"{done.stderr.strip()[-1500:]}"
            )
        info = json.loads(lines[-1][len("RESULT"):])
        with np.load(out_path) as outputs:
            results = {key: outputs[key] for key in outputs.files}
    differences = []
    for key, images in batches.items():
        expected = _sky_probability(model, tf.constant(images)).numpy()
        actual = results[key]
        if actual.shape != expected.shape:
            raise OnnxExportError(f"{str(onnx_path)!r}: onnxruntime returned shape {actual.shape} for input "
                                  f"{images.shape}; Keras returns {expected.shape}.")
        differences.append(np.abs(actual.astype(np.float64) - expected))
    return {
        "max_abs_diff": float(max(d.max() for d in differences)),
        "mean_abs_diff": float(np.mean([d.mean() for d in differences])),
        "image_sizes": image_sizes,
        "batch_sizes": [int(images.shape[0]) for images in batches.values()],
        "input": info["input"],
        "outputs": info["outputs"],
        "onnxruntime": info["onnxruntime"],
    }


def read_export_info(export_dir: str | os.PathLike) -> dict:
    """Reads ``assets.extra/skyseg.json`` of an export: working size, stride, threshold, model.

    Example:
        >>> read_export_info("export/1")["image_size"]  # doctest: +SKIP
        [64, 64]
    """
    path = pathlib.Path(export_dir) / INFO_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist; {str(export_dir)!r} was not written by "
            "skyseg_tf.export.export_saved_model (pass the version folder, e.g. export/1)."
        )
    return json.loads(path.read_text())


__all__ = [
    "BYTES_INPUT",
    "DEFAULT_ONNX_OPSET",
    "IMAGES_INPUT",
    "MASK_OUTPUT",
    "ONNX_FILE",
    "ONNX_INSTALL",
    "ONNX_OPSETS",
    "ONNX_TOLERANCE",
    "OnnxExportError",
    "OnnxNotInstalledError",
    "PROBABILITY_OUTPUT",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "SIZE_OUTPUT",
    "TFLITE_QUANTIZATIONS",
    "check_onnx",
    "check_saved_model",
    "check_tflite",
    "read_export_info",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "require_onnx",
    "run_tflite",
]
