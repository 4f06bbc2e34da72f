"""Layers shared by the decoders: input checks, encoder normalisation and small blocks.

Every custom layer here is registered as serializable under the ``skyseg_tf`` package and its
``get_config()`` returns exactly its constructor arguments, so a saved ``.keras`` model reloads
without ``custom_objects``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

# Per-channel constants of the normalisations that ImageNet-pretrained Keras encoders expect.
# "caffe": RGB -> BGR, then subtract the ImageNet mean (keras.applications ResNet, VGG).
# "torch": scale to [0, 1], then standardise with the ImageNet mean and std.
# "tf": scale to [-1, 1] (keras.applications MobileNet, EfficientNetV2 without its own layer).
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
NORMALIZATION_MODES = ("caffe", "torch", "tf", "none")
#: Output activations of the segmentation head; ``None`` means logits.
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", None)


def nearest_multiple(value: int, divisor: int) -> int:
    """Returns the positive multiple of ``divisor`` closest to ``value`` (ties round up).

    Example:
        >>> nearest_multiple(500, 32)
        512
    """
    lower = max(divisor, (value // divisor) * divisor)
    upper = lower + divisor if value > lower else lower
    return upper if (upper - value) <= (value - lower) else lower


def check_input_size(height, width, divisor: int, model_name: str = "model") -> None:
    """Raises a ValueError when a known height or width is not divisible by ``divisor``.

    The message names the divisibility that is needed and the nearest valid size, in the
    spirit of segmentation_models' ``check_input_shape``.

    Example:
        >>> check_input_size(512, 384, 32)
        >>> check_input_size(500, 384, 32)
        Traceback (most recent call last):
        ...
        ValueError: ...
    """
    bad = [(axis, size) for axis, size in (("height", height), ("width", width))
           if size is not None and int(size) % divisor]
    if not bad:
        return
    fixed = tuple(
        nearest_multiple(int(size), divisor) if size is not None else None for size in (height, width)
    )
    padded = tuple(
        -(-int(size) // divisor) * divisor if size is not None else None for size in (height, width)
    )
    received = " and ".join(f"{axis} {size}" for axis, size in bad)
    raise ValueError(
        f"{model_name} needs an input height and width divisible by {divisor}, but received "
        f"{received} (input {height}x{width}). The nearest valid size is {fixed[0]}x{fixed[1]}: "
        f"resize the images to it, or pad them to {padded[0]}x{padded[1]} "
        f"(skyseg_tf.inference pads and crops automatically)."
    )


@keras.saving.register_keras_serializable(package="skyseg_tf")
class InputSizeCheck(layers.Layer):
    """Identity layer that rejects inputs whose height or width is not a multiple of ``divisor``.

    Shapes known when the model is called or traced are checked in Python, so the error is a
    clear ``ValueError`` naming the needed divisibility and the nearest valid size. Sizes that are
    only known at run time (a graph traced with ``None`` dimensions) are checked with a run-time
    assertion carrying the same advice.

    Args:
        divisor: The stride that the height and width must be divisible by.
        model_name: Name used in the error message.

    Example:
        >>> import numpy as np
        >>> tuple(InputSizeCheck(32)(np.zeros((1, 64, 96, 3), "float32")).shape)
        (1, 64, 96, 3)
    """

    def __init__(self, divisor: int, model_name: str = "model", **kwargs):
        super().__init__(**kwargs)
        self.divisor = int(divisor)
        self.model_name = model_name

    def build(self, input_shape):
        check_input_size(input_shape[1], input_shape[2], self.divisor, self.model_name)
        super().build(input_shape)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        check_input_size(height, width, self.divisor, self.model_name)
        if (height is None or width is None) and keras.backend.backend() == "tensorflow":
            import tensorflow as tf  # Run-time check for dimensions unknown while tracing.

            shape = tf.shape(inputs)
            divisible = tf.reduce_all(tf.equal(tf.math.floormod(shape[1:3], self.divisor), 0))
            message = (
                f"{self.model_name} needs an input height and width divisible by {self.divisor}; "
                "resize or pad the images (skyseg_tf.inference pads automatically). Received height, width:"
            )
            with tf.control_dependencies([tf.debugging.Assert(divisible, [message, shape[1:3]])]):
                return tf.identity(inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "divisor": self.divisor, "model_name": self.model_name}


@keras.saving.register_keras_serializable(package="skyseg_tf")
class ImageNormalization(layers.Layer):
    """Turns raw RGB in [0, 255] into what a pretrained encoder expects.

    Keeping the normalisation inside the model means training, evaluation, export and serving
    all feed the same raw pixels and cannot disagree.

    Args:
        mode: ``"caffe"`` (RGB to BGR, minus the ImageNet mean; Keras ResNets), ``"torch"``
            (to [0, 1], ImageNet mean/std), ``"tf"`` (to [-1, 1]; Keras MobileNets) or
            ``"none"``.

    Example:
        >>> import numpy as np
        >>> out = ImageNormalization("tf")(np.full((1, 2, 2, 3), 255.0, "float32"))
        >>> float(out[0, 0, 0, 0])
        1.0
    """

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATION_MODES:
            raise ValueError(
                f"ImageNormalization(mode={mode!r}) is not a known mode; valid modes are "
                f"{', '.join(NORMALIZATION_MODES)}."
            )
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=x.dtype)
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=x.dtype)
            x = (x / 255.0 - mean) / std
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="skyseg_tf")
class BroadcastLike(layers.Layer):
    """Spreads a ``(B, 1, 1, C)`` tensor over the height and width of a reference tensor.

    This is the bilinear upsampling of the ASPP image-pooling branch: resizing a 1x1 map to any
    size gives the same value everywhere, and broadcasting does it without a resize kernel and
    for sizes known only at run time.

    Example:
        >>> import numpy as np
        >>> tuple(BroadcastLike()([np.ones((2, 1, 1, 4), "float32"), np.zeros((2, 5, 6, 8), "float32")]).shape)
        (2, 5, 6, 4)
    """

    def call(self, inputs):
        pooled, reference = inputs
        ones = ops.ones_like(reference[..., :1], dtype=pooled.dtype)
        return pooled * ones

    def compute_output_shape(self, input_shapes):
        pooled, reference = input_shapes
        return (reference[0], reference[1], reference[2], pooled[3])


def conv_bn_relu(x, filters: int, kernel_size: int, name: str, dilation_rate: int = 1):
    """Conv2D (no bias) -> BatchNorm -> ReLU, with deterministic layer names.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> conv_bn_relu(inputs, 16, 3, name="block").shape
        (None, 8, 8, 16)
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        kernel_initializer="he_uniform",
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def segmentation_head(x, classes: int, activation: str | None, kernel_size: int, upsample: int = 1):
    """Classifier conv, optional bilinear upsampling, and the output activation.

    The activation runs in float32 even under a mixed-precision policy, so probabilities and
    losses keep their precision.

    Args:
        x: Decoder features.
        classes: Output channels (1 for a sigmoid sky mask, 2 for a softmax over other/sky).
        activation: ``"sigmoid"``, ``"softmax"`` or ``None`` for logits.
        kernel_size: Classifier kernel size (3 in segmentation_models' U-Net, 1 in DeepLab).
        upsample: Bilinear upsampling factor applied to the logits (the decoder's stride).

    Example:
        >>> head = segmentation_head(keras.Input((8, 8, 16)), 1, "sigmoid", 3)
        >>> head.dtype
        'float32'
    """
    x = layers.Conv2D(classes, kernel_size, padding="same", name="head_conv")(x)
    if upsample > 1:
        x = layers.UpSampling2D(upsample, interpolation="bilinear", name="head_upsampling")(x)
    return layers.Activation(activation or "linear", dtype="float32", name=f"head_{activation or 'logits'}")(x)


# Layers that may sit between the head's activation and the model output and commute with an
# element-wise activation (resampling, dropout, padding), so the activation before them is the output's.
_ACTIVATION_PRESERVING_LAYERS = (
    layers.UpSampling2D, layers.Resizing, layers.Dropout, layers.Identity,
    layers.Cropping2D, layers.ZeroPadding2D,
)


def _activation_name(function) -> str:
    return "linear" if function is None else getattr(function, "__name__", str(function))


def output_activation(model) -> str | None:
    """The activation of a model's output: ``"sigmoid"``, ``"softmax"``, or ``None`` for logits.

    The one place that decides whether a model outputs probabilities or logits: training
    compiles its losses and metrics with ``from_logits=output_activation(model) is None``, and
    prediction and export apply the sigmoid (softmax) to logits, as keras-hub's
    ``ImageSegmenter.compile`` reads the segmenter's activation.

    It walks back from the model's output through nested models, linear ``Activation`` layers
    (the float32 casts of mixed precision, ``segmentation_head``'s ``head_logits``) and layers
    that commute with an element-wise activation (``UpSampling2D``, ``Resizing``, ``Dropout``...)
    to the first layer that has an ``activation`` (``head_sigmoid``, a ``Conv2D``...) or is a
    ``Softmax``. A linear activation there means logits. A model whose output comes from a layer
    with no activation (a ``Lambda``, a custom layer), or whose graph cannot be read (a
    SavedModel's ``TFSMLayer``, a plain callable) and that declares no ``activation`` attribute,
    is taken to output probabilities, the convention of every skyseg_tf loss, metric and
    predictor: ``"softmax"`` for two or more channels, else ``"sigmoid"``.

    Args:
        model: A ``keras.Model`` (functional or ``Sequential``), or any model-like callable.

    Returns:
        ``"sigmoid"``, ``"softmax"`` or ``None`` (logits).

    Raises:
        ValueError: If the output layer's activation is neither a probability nor linear
            (e.g. ``"relu"``).

    Example:
        >>> import skyseg_tf
        >>> logits = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                                activation=None)
        >>> output_activation(logits) is None
        True
        >>> output_activation(skyseg_tf.build_model("deeplabv3_resnet50", encoder_weights=None))
        'sigmoid'
    """
    outputs = getattr(model, "outputs", None) if isinstance(model, keras.Model) else None
    if not outputs:
        declared = getattr(model, "activation", None)
        if declared is None:
            return "sigmoid"
        return _probability_or_logits(keras.activations.get(declared), model)
    tensor = outputs[0]
    while True:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            break
        layer = history.operation
        if isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
            tensor = layer.outputs[history.tensor_index]
            continue
        if isinstance(layer, layers.Softmax):
            return "softmax"
        function = getattr(layer, "activation", None)
        passes = isinstance(layer, _ACTIVATION_PRESERVING_LAYERS) or (
            isinstance(layer, layers.Activation) and _activation_name(function) == "linear")
        if not passes:
            if isinstance(layer, layers.Layer) and hasattr(layer, "activation"):
                return _probability_or_logits(function, layer)
            break
        inputs = layer._inbound_nodes[history.node_index].input_tensors
        if len(inputs) != 1:
            break
        tensor = inputs[0]
    channels = tensor.shape[-1] if len(tensor.shape) else None
    return "softmax" if channels is not None and channels >= 2 else "sigmoid"


def _probability_or_logits(function, where) -> str | None:
    name = _activation_name(function)
    if name == "linear":
        return None
    if name in ("sigmoid", "softmax"):
        return name
    raise ValueError(
        f"The output of {getattr(where, 'name', where)!r} has activation {name!r}, which gives neither "
        "probabilities nor logits. Sky models end in 'sigmoid' (one channel), 'softmax' (two "
        "channels: other, sky) or no activation (logits); rebuild the head with one of them."
    )
