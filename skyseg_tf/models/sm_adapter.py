"""Adapter to segmentation_models (qubvel, the ``sm`` extra) under Keras 3.

segmentation_models picks its Keras through the ``SM_FRAMEWORK`` environment variable, read
when it is first imported. The adapter sets it to ``tf.keras`` just before that import and
nowhere else, so importing skyseg_tf changes no environment. The built model is wrapped so that
it takes raw RGB in [0, 255] like every other skyseg_tf model (the backbone's normalisation is a
layer inside the model) and returns float32 under mixed precision.
"""

from __future__ import annotations

import importlib
import os

import keras

from skyseg_tf.models.layers import ImageNormalization

SM_ARCHITECTURES = ("Unet", "FPN", "Linknet", "PSPNet")

# What each segmentation_models backbone family expects as input (its preprocess_input).
# ResNets/ResNeXts/SE-nets from classification_models start with their own BatchNorm on the
# raw image ("bn_data"), so they take raw pixels.
_SM_NORMALIZATION_BY_PREFIX = (
    ("seresnext", "none"),
    ("seresnet", "none"),
    ("senet", "none"),
    ("resnext", "none"),
    ("resnet", "none"),
    ("vgg", "caffe"),
    ("densenet", "torch"),
    ("efficientnet", "torch"),
    ("inception", "tf"),
    ("mobilenet", "tf"),
)


def _import_segmentation_models():
    if "SM_FRAMEWORK" not in os.environ:
        os.environ["SM_FRAMEWORK"] = "tf.keras"
    try:
        module = importlib.import_module("segmentation_models")
    except ImportError as error:
        raise ImportError(
            "from_segmentation_models needs the optional segmentation-models package: "
            "`pip install 'skyseg-tf[sm]'`."
        ) from error
    if module.framework() != "tf.keras":
        module.set_framework("tf.keras")
    return module


def sm_normalization(backbone: str) -> str:
    """The ImageNormalization mode matching a segmentation_models backbone.

    Example:
        >>> sm_normalization("efficientnetb3")
        'torch'
    """
    for prefix, mode in _SM_NORMALIZATION_BY_PREFIX:
        if backbone.startswith(prefix):
            return mode
    raise ValueError(
        f"Unknown segmentation_models backbone {backbone!r}; known families: "
        f"{', '.join(prefix for prefix, _ in _SM_NORMALIZATION_BY_PREFIX)}."
    )


def from_segmentation_models(
    architecture: str = "Unet",
    backbone: str = "resnet50",
    encoder_weights="imagenet",
    classes: int = 1,
    activation: str = "sigmoid",
    input_shape=(None, None, 3),
    name: str | None = None,
    **kwargs,
) -> keras.Model:
    """Builds one of segmentation_models' own models, ready for skyseg_tf's pipeline.

    Args:
        architecture: ``"Unet"``, ``"FPN"``, ``"Linknet"`` or ``"PSPNet"``.
        backbone: Any segmentation_models backbone (``"resnet50"``, ``"efficientnetb3"``...).
        encoder_weights: ``"imagenet"`` or ``None`` (segmentation_models' own download).
        classes: Output channels.
        activation: Output activation.
        input_shape: ``(height, width, 3)``; PSPNet needs a fixed size divisible by 48.
        name: Name of the wrapping model; defaults to ``sm_<architecture>_<backbone>``.
        **kwargs: Passed on to the segmentation_models constructor.

    Example:
        >>> model = from_segmentation_models("Unet", "resnet18", encoder_weights=None,
        ...                                  input_shape=(64, 64, 3))  # doctest: +SKIP
    """
    if architecture not in SM_ARCHITECTURES:
        raise ValueError(
            f"Unknown segmentation_models architecture {architecture!r}; valid: {', '.join(SM_ARCHITECTURES)}."
        )
    mode = sm_normalization(backbone)
    sm = _import_segmentation_models()
    inner = getattr(sm, architecture)(
        backbone,
        encoder_weights=encoder_weights,
        classes=classes,
        activation=activation,
        input_shape=tuple(input_shape),
        **kwargs,
    )
    inputs = keras.Input(tuple(input_shape), name="image")
    x = ImageNormalization(mode, name="normalization")(inputs)
    x = inner(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(x)
    return keras.Model(inputs, outputs, name=name or f"sm_{architecture.lower()}_{backbone}")
