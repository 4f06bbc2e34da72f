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
guided by the image's grayscale, so the upsampled sky edge follows the image's own edges.

One job per module:

* :mod:`~skyseg_tf.inference.loading`: :func:`load_model` (``.keras`` files, SavedModel folders);
* :mod:`~skyseg_tf.inference.predictor`: :class:`SkyPredictor`, a model as a function of batches;
* :mod:`~skyseg_tf.inference.tiling`: native resolution in blended tiles;
* :mod:`~skyseg_tf.inference.refine`: guided-filter refinement;
* :mod:`~skyseg_tf.inference.predict`: :func:`predict_image` for one array;
* :mod:`~skyseg_tf.inference.files`: :func:`predict_paths` for files and folders;
* :mod:`~skyseg_tf.inference.facts`: :func:`sky_facts`, the per-photo record.

The resize and pad ops live in :mod:`skyseg_tf.image_ops` (shared with the training pipeline
and the exports), the overlay tint in :mod:`skyseg_tf.visualization`.

Example:
    >>> import numpy as np
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> probability = predict_image(model, np.zeros((100, 150, 3), np.uint8), input_size=(64, 64))
    >>> probability.shape, probability.dtype.name
    ((100, 150), 'float32')
"""

from skyseg_tf.image_ops import pad_to_multiple, resize_images, resize_probabilities
from skyseg_tf.inference.facts import DEFAULT_HAS_SKY_FRACTION, sky_facts
from skyseg_tf.inference.files import (
    DEFAULT_SAVE,
    OUTPUT_SUFFIXES,
    PREDICT_EXTENSIONS,
    RECORD_COLUMNS,
    RECORDS_CSV,
    RECORDS_JSONL,
    SAVE_KINDS,
    PredictionSummary,
    collect_inputs,
    predict_paths,
    render_outputs,
    write_outputs,
)
from skyseg_tf.inference.loading import load_model
from skyseg_tf.inference.predict import DEFAULT_INPUT_SIZE, MODES, predict_image, resolve_mode
from skyseg_tf.inference.predictor import (
    DEFAULT_STRIDE,
    SKY_PROBABILITY_KEY,
    SkyPredictor,
    as_predictor,
    model_input_size,
    model_name,
    model_stride,
)
from skyseg_tf.inference.refine import (
    DEFAULT_GUIDED_EPS,
    REFINE_METHODS,
    default_guided_radius,
    guided_filter,
    refine_probability,
)
from skyseg_tf.inference.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE
from skyseg_tf.visualization import OVERLAY_ALPHA, OVERLAY_COLOR, overlay_sky

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_HAS_SKY_FRACTION",
    "DEFAULT_SAVE",
    "RECORDS_CSV",
    "RECORDS_JSONL",
    "RECORD_COLUMNS",
    "collect_inputs",
    "render_outputs",
    "sky_facts",
    "write_outputs",
    "DEFAULT_GUIDED_EPS",
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_OVERLAP",
    "DEFAULT_STRIDE",
    "DEFAULT_TILE_SIZE",
    "MODES",
    "OUTPUT_SUFFIXES",
    "OVERLAY_ALPHA",
    "OVERLAY_COLOR",
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
    "model_name",
    "model_stride",
    "overlay_sky",
    "pad_to_multiple",
    "predict_image",
    "predict_paths",
    "refine_probability",
    "resize_images",
    "resize_probabilities",
    "resolve_mode",
]
