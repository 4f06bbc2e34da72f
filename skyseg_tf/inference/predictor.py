"""A model as a function from float32 RGB batches of any size to sky probabilities.

:class:`SkyPredictor` pads to the model's stride, reads the model's output convention once
(sigmoid, softmax or logits; :func:`skyseg_tf.models.output_activation`) and compiles one
``tf.function`` per input shape; :func:`as_predictor` gives each model object one predictor.

Example:
    >>> import numpy as np
    >>> predictor = as_predictor(lambda x: x[..., :1] / 255.0)
    >>> predictor(np.full((1, 8, 8, 3), 255.0, np.float32)).max().item()
    1.0
"""

from __future__ import annotations

import functools
import os
from typing import Iterable

import numpy as np
import tensorflow as tf

from skyseg_tf import preprocessing
from skyseg_tf.image_ops import pad_to_multiple
from skyseg_tf.inference.loading import load_model
from skyseg_tf.outputs import sky_probability

DEFAULT_STRIDE = 32
"""Divisor assumed for models whose stride cannot be read (SavedModels, plain callables); every
skyseg_tf model accepts multiples of 32."""

SKY_PROBABILITY_KEY = "sky_probability"
"""Output name of the sky probability in exported SavedModels (read back by :func:`load_model`)."""

PROBABILITY_TOLERANCE = 0.01
"""How far outside ``[0, 1]`` an output taken as probabilities may go (float16 rounding) before
:class:`SkyPredictor` refuses it as not probabilities (logits, or ``[0, 255]`` values)."""


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

    Whether the output holds logits is read from the model
    (:func:`skyseg_tf.models.output_activation`). A model whose activation cannot be read (a
    SavedModel, a plain callable, a last layer without an activation) is taken to output
    probabilities, and every output read as probabilities is checked: values outside ``[0, 1]``
    (by more than :data:`PROBABILITY_TOLERANCE`) raise a ``ValueError`` instead of being
    clipped, since they are logits or another scale. Declare a callable's logits with
    ``model.activation = "linear"``.

    Args:
        model: A ``keras.Model``, a ``keras.layers.TFSMLayer`` or any callable from a float32
            batch ``[B, H, W, 3]`` in ``[0, 255]`` to ``[B, H, W, 1 or 2]`` probabilities (or
            logits, if the model says so), or to a dict holding them under ``"sky_probability"``.

    Raises:
        ValueError: (when called) If the images are not a ``[B, H, W, 3]`` batch, the model
            returns a dict without ``"sky_probability"``, or outputs taken as probabilities
            fall outside ``[0, 1]``.

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
        """The sky probability, and the lowest and highest output value (to check probabilities)."""
        outputs = self.model(images, training=False) if _takes_training(self.model) else self.model(images)
        if isinstance(outputs, dict):
            if SKY_PROBABILITY_KEY not in outputs:
                raise ValueError(
                    f"{self.name}: returned a dict with outputs {sorted(outputs)}, none named "
                    f"{SKY_PROBABILITY_KEY!r}. Pass a model whose output is the sky probability "
                    f"[B, H, W, 1 or 2], or a dict holding it under {SKY_PROBABILITY_KEY!r} (as "
                    "skyseg_tf's SavedModel export does); wrap another model in a function that "
                    "returns its sky output."
                )
            outputs = outputs[SKY_PROBABILITY_KEY]
        from skyseg_tf.models import output_activation  # runs once per traced shape

        from_logits = output_activation(self.model) is None
        probability = tf.convert_to_tensor(sky_probability(outputs, from_logits=from_logits))[..., 0]
        if from_logits:  # any value is a logit
            return probability, tf.constant(0.0), tf.constant(1.0)
        values = tf.cast(outputs, tf.float32)
        return probability, tf.reduce_min(values), tf.reduce_max(values)

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
        probability, low, high = (value.numpy() for value in self._function(padded))
        if not (low >= -PROBABILITY_TOLERANCE and high <= 1.0 + PROBABILITY_TOLERANCE):
            from skyseg_tf.models import output_activation

            raise ValueError(
                f"{self.name}: its output is taken as probabilities (output activation "
                f"{output_activation(self.model)!r}), but it holds values in [{low:.4g}, {high:.4g}], "
                "outside [0, 1]. A model whose activation cannot be read (a SavedModel, a callable, a "
                "last layer without an activation) is taken to output probabilities. If it outputs "
                "logits, end the Keras model in a sigmoid (one channel) or softmax (two channels: "
                "other, sky), or declare a callable's or SavedModel's logits with "
                "`model.activation = 'linear'`."
            )
        return probability[:, :height, :width]


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


__all__ = [
    "DEFAULT_STRIDE",
    "PROBABILITY_TOLERANCE",
    "SKY_PROBABILITY_KEY",
    "SkyPredictor",
    "as_predictor",
    "model_input_size",
    "model_name",
    "model_stride",
]
