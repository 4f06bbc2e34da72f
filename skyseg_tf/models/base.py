"""Assembly shared by every architecture: raw-RGB input, size check, normalisation, encoder."""

from __future__ import annotations

from typing import Callable

import keras

from skyseg_tf.models.encoders import build_encoder, get_encoder_spec
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


def assemble_model(
    name: str,
    backbone: str,
    encoder_weights,
    input_shape,
    output_stride: int,
    size_divisor: int,
    decode: Callable[[dict], "keras.KerasTensor"],
) -> keras.Model:
    """Builds ``raw RGB -> size check -> normalisation -> encoder -> decode(features)``.

    Args:
        name: Model name (also used in the input-size error message).
        backbone: Encoder name.
        encoder_weights: ``"imagenet"``, ``None`` or a weights file path.
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
    spec = get_encoder_spec(backbone)
    encoder = build_encoder(backbone, encoder_weights, input_shape, output_stride)
    inputs = keras.Input(input_shape, name="image")
    x = InputSizeCheck(size_divisor, model_name=name, name="input_size_check")(inputs)
    x = ImageNormalization(spec.normalization, name="normalization")(x)
    features = encoder(x)
    return keras.Model(inputs, decode(features), name=name)
