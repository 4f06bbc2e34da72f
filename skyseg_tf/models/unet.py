"""U-Net with a pretrained encoder, as in segmentation_models (qubvel).

Decoder block i: upsample x2, concatenate the encoder feature at that stride, then two
Conv3x3-BN-ReLU. Skips are P4, P3, P2, P1 for the first four blocks; the fifth has none.
The head is a 3x3 conv to ``classes`` channels and the output activation.
"""

from __future__ import annotations

import keras
from keras import layers

from skyseg_tf.models.base import assemble_model, encoder_name
from skyseg_tf.models.layers import OUTPUT_ACTIVATIONS, conv_bn_relu, segmentation_head

UNET_SKIPS = ("P4", "P3", "P2", "P1", None)


def build_unet(
    backbone="resnet50",
    encoder_weights="imagenet",
    classes: int = 1,
    activation: str | None = "sigmoid",
    decoder_filters=(256, 128, 64, 32, 16),
    input_shape=(None, None, 3),
    upsampling: str = "nearest",
    name: str | None = None,
) -> keras.Model:
    """Builds a U-Net (segmentation_models style) on a ``keras.applications`` encoder.

    Args:
        backbone: Encoder name (see :func:`skyseg_tf.models.encoders.list_encoders`), or a Keras
            model exposing ``pyramid_outputs`` P1..P5 (:func:`skyseg_tf.models.base.pyramid_encoder`).
        encoder_weights: ``"imagenet"``, ``None`` or a path to a weights file.
        classes: Output channels: 1 (sigmoid sky probability) or 2 (softmax other/sky).
        activation: ``"sigmoid"``, ``"softmax"`` or ``None`` for logits.
        decoder_filters: Filters of the five decoder blocks.
        input_shape: ``(height, width, 3)``; height and width divisible by 32 or ``None``.
        upsampling: ``"nearest"`` (segmentation_models) or ``"bilinear"``.
        name: Model name; defaults to ``unet_<backbone>``.

    Returns:
        A ``keras.Model`` from raw RGB in [0, 255] to ``(B, H, W, classes)`` float32.

    Example:
        >>> model = build_unet("resnet50", encoder_weights=None, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 64, 64, 1)
    """
    decoder_filters = tuple(decoder_filters)
    if len(decoder_filters) != len(UNET_SKIPS) or not all(isinstance(f, int) and f > 0 for f in decoder_filters):
        raise ValueError(
            f"decoder_filters must be {len(UNET_SKIPS)} positive ints (one per decoder block, "
            f"stride 16 down to 1); received {decoder_filters!r}."
        )
    if upsampling not in ("nearest", "bilinear"):
        raise ValueError(f"upsampling must be 'nearest' or 'bilinear'; received {upsampling!r}.")
    _check_head(classes, activation)

    def decode(features):
        x = features["P5"]
        for index, (filters, skip) in enumerate(zip(decoder_filters, UNET_SKIPS)):
            x = layers.UpSampling2D(2, interpolation=upsampling, name=f"decoder_stage{index}_upsampling")(x)
            if skip is not None:
                x = layers.Concatenate(name=f"decoder_stage{index}_concat")([x, features[skip]])
            x = conv_bn_relu(x, filters, 3, name=f"decoder_stage{index}a")
            x = conv_bn_relu(x, filters, 3, name=f"decoder_stage{index}b")
        return segmentation_head(x, classes, activation, kernel_size=3)

    return assemble_model(
        name or f"unet_{encoder_name(backbone)}", backbone, encoder_weights, input_shape,
        output_stride=32, size_divisor=32, decode=decode,
    )


def _check_head(classes, activation):
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive int (1 for sigmoid, 2 for softmax); received {classes!r}.")
    if activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"activation must be 'sigmoid', 'softmax' or None (logits); received {activation!r}.")
    if activation == "softmax" and classes < 2:
        raise ValueError("activation='softmax' needs classes >= 2 (for example classes=2: other, sky).")
