"""DeepLabV3 and DeepLabV3+ with ASPP, as in torchvision's ``deeplabv3_resnet50``.

The encoder's last stages are dilated instead of strided (output stride 8 or 16). ASPP has a
1x1 branch, three 3x3 atrous branches and an image-pooling branch, 256 channels each, then a
1x1 projection with dropout. DeepLabV3 follows it with Conv3x3-BN-ReLU and a 1x1 classifier;
DeepLabV3+ first fuses the upsampled ASPP output with the stride-4 features projected to 48
channels. Logits are upsampled bilinearly to the input size.
"""

from __future__ import annotations

import keras
from keras import layers

from skyseg_tf.models.base import assemble_model, encoder_name
from skyseg_tf.models.layers import BroadcastLike, conv_bn_relu, segmentation_head
from skyseg_tf.models.unet import _check_head

DEFAULT_ATROUS_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


def aspp(x, atrous_rates, filters: int = 256, dropout: float = 0.5, name: str = "aspp"):
    """Atrous Spatial Pyramid Pooling on a feature map.

    Example:
        >>> aspp(keras.Input((16, 16, 64)), (2, 4, 6), filters=8).shape
        (None, 16, 16, 8)
    """
    branches = [conv_bn_relu(x, filters, 1, name=f"{name}_conv1x1")]
    for index, rate in enumerate(atrous_rates):
        branches.append(conv_bn_relu(x, filters, 3, name=f"{name}_atrous{index + 1}", dilation_rate=rate))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    pooled = conv_bn_relu(pooled, filters, 1, name=f"{name}_pool_proj")
    branches.append(BroadcastLike(name=f"{name}_pool_broadcast")([pooled, x]))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    x = conv_bn_relu(x, filters, 1, name=f"{name}_project")
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def _resolve_rates(output_stride, atrous_rates):
    if output_stride not in DEFAULT_ATROUS_RATES:
        raise ValueError(f"output_stride must be 8, 16 or 32; received {output_stride!r}.")
    rates = tuple(atrous_rates) if atrous_rates is not None else DEFAULT_ATROUS_RATES[output_stride]
    if not rates or not all(isinstance(r, int) and r > 0 for r in rates):
        raise ValueError(f"atrous_rates must be positive ints; received {atrous_rates!r}.")
    return rates


def build_deeplabv3(
    backbone="resnet50",
    encoder_weights="imagenet",
    classes: int = 1,
    activation: str | None = "sigmoid",
    output_stride: int = 8,
    atrous_rates=None,
    aspp_filters: int = 256,
    aspp_dropout: float = 0.5,
    input_shape=(None, None, 3),
    name: str | None = None,
) -> keras.Model:
    """Builds DeepLabV3 (torchvision layout) on a dilated ``keras.applications`` encoder.

    Args:
        backbone: Encoder name, or a Keras model exposing ``pyramid_outputs`` P1..P5
            (:func:`skyseg_tf.models.base.pyramid_encoder`; then ``output_stride=32``).
        encoder_weights: ``"imagenet"``, ``None`` or a path to a weights file; ImageNet
            weights load into the dilated encoder unchanged.
        classes: 1 (sigmoid sky probability) or 2 with ``activation="softmax"`` (the study's
            two-class other/sky head).
        activation: ``"sigmoid"``, ``"softmax"`` or ``None`` for logits.
        output_stride: 8 (torchvision's default) or 16; 32 leaves the encoder undilated.
        atrous_rates: ASPP rates; defaults to (12, 24, 36) at OS 8 and (6, 12, 18) at OS 16.
        aspp_filters: Channels of every ASPP branch and of the head.
        aspp_dropout: Dropout after the ASPP projection.
        input_shape: ``(height, width, 3)``, sizes divisible by ``output_stride`` or ``None``.
        name: Model name; defaults to ``deeplabv3_<backbone>``.

    Example:
        >>> model = build_deeplabv3("resnet50", encoder_weights=None, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 64, 64, 1)
    """
    rates = _resolve_rates(output_stride, atrous_rates)
    _check_head(classes, activation)

    def decode(features):
        x = aspp(features["P5"], rates, aspp_filters, aspp_dropout)
        x = conv_bn_relu(x, aspp_filters, 3, name="head_block")
        return segmentation_head(x, classes, activation, kernel_size=1, upsample=output_stride)

    return assemble_model(
        name or f"deeplabv3_{encoder_name(backbone)}", backbone, encoder_weights, input_shape,
        output_stride=output_stride, size_divisor=output_stride, decode=decode,
    )


def build_deeplabv3plus(
    backbone="resnet50",
    encoder_weights="imagenet",
    classes: int = 1,
    activation: str | None = "sigmoid",
    output_stride: int = 16,
    atrous_rates=None,
    aspp_filters: int = 256,
    aspp_dropout: float = 0.5,
    low_level_filters: int = 48,
    input_shape=(None, None, 3),
    name: str | None = None,
) -> keras.Model:
    """Builds DeepLabV3+: DeepLabV3's ASPP plus a decoder that fuses the stride-4 features.

    The ASPP output is upsampled to stride 4, concatenated with the P2 features projected to
    ``low_level_filters`` channels, refined by two Conv3x3-BN-ReLU, classified and upsampled x4.

    Args:
        backbone: Encoder name, or a Keras model exposing ``pyramid_outputs`` P1..P5
            (:func:`skyseg_tf.models.base.pyramid_encoder`; then ``output_stride=32``).
        encoder_weights: ``"imagenet"``, ``None`` or a path to a weights file.
        classes: Output channels.
        activation: ``"sigmoid"``, ``"softmax"`` or ``None``.
        output_stride: 16 (the paper's default) or 8.
        atrous_rates: ASPP rates (default from the output stride).
        aspp_filters: ASPP and decoder channels.
        aspp_dropout: Dropout after the ASPP projection.
        low_level_filters: Channels of the projected P2 features.
        input_shape: ``(height, width, 3)``.
        name: Model name; defaults to ``deeplabv3plus_<backbone>``.

    Example:
        >>> model = build_deeplabv3plus("resnet50", encoder_weights=None, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 64, 64, 1)
    """
    rates = _resolve_rates(output_stride, atrous_rates)
    _check_head(classes, activation)

    def decode(features):
        x = aspp(features["P5"], rates, aspp_filters, aspp_dropout)
        x = layers.UpSampling2D(output_stride // 4, interpolation="bilinear", name="decoder_upsampling")(x)
        low = conv_bn_relu(features["P2"], low_level_filters, 1, name="decoder_low_level")
        x = layers.Concatenate(name="decoder_concat")([x, low])
        x = conv_bn_relu(x, aspp_filters, 3, name="decoder_fuse1")
        x = conv_bn_relu(x, aspp_filters, 3, name="decoder_fuse2")
        return segmentation_head(x, classes, activation, kernel_size=1, upsample=4)

    return assemble_model(
        name or f"deeplabv3plus_{encoder_name(backbone)}", backbone, encoder_weights, input_shape,
        output_stride=output_stride, size_divisor=max(output_stride, 4), decode=decode,
    )
