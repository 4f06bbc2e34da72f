"""Assembly shared by every architecture: raw-RGB input, size check, normalisation, encoder."""

from __future__ import annotations

from typing import Callable, Mapping

import keras

from skyseg_tf.models.encoders import FEATURE_NAMES, build_encoder, get_encoder_spec, list_encoders
from skyseg_tf.models.layers import ImageNormalization, InputSizeCheck


def check_input_shape(input_shape) -> tuple:
    """Validates ``input_shape`` = (height, width, 3) with ``None`` allowed for height and width.

    Example:
        >>> check_input_shape((None, None, 3))
        (None, None, 3)
    """
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if (
        shape is None
        or len(shape) != 3
        or shape[2] != 3
        or any(s is not None and (not isinstance(s, int) or s <= 0) for s in shape[:2])
    ):
        raise ValueError(
            f"input_shape must be (height, width, 3) with positive ints or None for height and "
            f"width (RGB images, channels last); received {input_shape!r}."
        )
    return shape


def encoder_name(backbone) -> str:
    """The name builders use for a backbone: the encoder name, or a plug-in model's name.

    Example:
        >>> encoder_name("resnet50")
        'resnet50'
    """
    return backbone if isinstance(backbone, str) else str(getattr(backbone, "name", "custom"))


def pyramid_encoder(backbone, output_stride: int = 32) -> keras.Model:
    """A plug-in encoder: any Keras model exposing ``pyramid_outputs`` (keras-hub's contract).

    ``backbone.pyramid_outputs`` must map ``"P1"``..``"P5"`` (feature maps at strides 2..32) to
    tensors of the model's graph; every decoder of this library then works on it. The encoder
    receives the model input as it is, raw RGB in ``[0, 255]`` (no ImageNet normalisation is
    inserted: put your backbone's own preprocessing inside it), and runs at its own stride, so
    ``output_stride`` must be 32.

    Raises:
        ValueError: Without ``pyramid_outputs`` P1..P5, or with ``output_stride`` other than 32.

    Example:
        >>> import keras
        >>> inputs = keras.Input((None, None, 3)); x = inputs; pyramid = {}
        >>> for level in range(1, 6):
        ...     x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x); pyramid[f"P{level}"] = x
        >>> backbone = keras.Model(inputs, x, name="tiny"); backbone.pyramid_outputs = pyramid
        >>> sorted(pyramid_encoder(backbone).output)
        ['P1', 'P2', 'P3', 'P4', 'P5']
    """
    pyramid = getattr(backbone, "pyramid_outputs", None)
    missing = [k for k in FEATURE_NAMES if not isinstance(pyramid, Mapping) or k not in pyramid]
    if missing:
        raise ValueError(
            f"backbone: {encoder_name(backbone)!r} is neither an encoder name ({', '.join(list_encoders())}) "
            f"nor a Keras model whose `pyramid_outputs` maps {', '.join(FEATURE_NAMES)} to feature maps at "
            f"strides 2..32 (missing: {', '.join(missing)})."
        )
    if output_stride != 32:
        raise ValueError(
            f"output_stride: received {output_stride!r} with the plug-in encoder {encoder_name(backbone)!r}, "
            "which runs at its own stride; pass output_stride=32 (dilate the backbone yourself for 8 or 16)."
        )
    return keras.Model(backbone.inputs, {k: pyramid[k] for k in FEATURE_NAMES}, name="encoder")


def assemble_model(
    name: str,
    backbone,
    encoder_weights,
    input_shape,
    output_stride: int,
    size_divisor: int,
    decode: Callable[[dict], "keras.KerasTensor"],
) -> keras.Model:
    """Builds ``raw RGB -> size check -> normalisation -> encoder -> decode(features)``.

    Args:
        name: Model name (also used in the input-size error message).
        backbone: Encoder name, or a plug-in: a Keras model exposing ``pyramid_outputs``
            (see :func:`pyramid_encoder`; it brings its own weights and preprocessing).
        encoder_weights: ``"imagenet"``, ``None`` or a weights file path (for named encoders).
        input_shape: ``(height, width, 3)``.
        output_stride: Encoder output stride (32, 16 or 8).
        size_divisor: What height and width must be divisible by.
        decode: Function from the encoder's feature dict to the model output tensor.

    Example:
        >>> from keras import layers
        >>> model = assemble_model("probe", "resnet50", None, (64, 64, 3), 32, 32,
        ...                        lambda f: layers.GlobalAveragePooling2D()(f["P5"]))
        >>> model.output_shape
        (None, 2048)
    """
    input_shape = check_input_shape(input_shape)
    inputs = keras.Input(input_shape, name="image")
    x = InputSizeCheck(size_divisor, model_name=name, name="input_size_check")(inputs)
    if isinstance(backbone, str):
        spec = get_encoder_spec(backbone)
        encoder = build_encoder(backbone, encoder_weights, input_shape, output_stride)
        x = ImageNormalization(spec.normalization, name="normalization")(x)
    else:
        if encoder_weights not in (None, "imagenet"):
            raise ValueError(
                f"encoder_weights: received {encoder_weights!r} with the plug-in encoder "
                f"{encoder_name(backbone)!r}, which brings its own weights; load them into it first."
            )
        encoder = pyramid_encoder(backbone, output_stride)
    features = encoder(x)
    return keras.Model(inputs, decode(features), name=name)
