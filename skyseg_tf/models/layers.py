"""Layers shared by the decoders: input checks, encoder normalisation and small blocks.

Every custom layer here is registered as serializable under the ``skyseg_tf`` package and its
``get_config()`` returns exactly its constructor arguments, so a saved ``.keras`` model reloads
without ``custom_objects``.
"""

from __future__ import annotations

import keras
import numpy as np
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


# --------------------------------------------------------------------------------------------
# Layers of the exact rewrites (skyseg_tf.models.optimize)
# --------------------------------------------------------------------------------------------

# Rows: taps 0..3 of the 4x4 stride-2 transposed kernel ("same" padding). Columns: taps 0..2 of
# the 3x3 kernel. Output row 2m reads x[m-1] (tap 3 = w0) and x[m] (tap 1 = w1 + w2); output row
# 2m+1 reads x[m] (tap 2 = w0 + w1) and x[m+1] (tap 0 = w2). The same holds for columns.
_SUBPIXEL_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def subpixel_kernel(kernel):
    """The 4x4 stride-2 transposed-conv kernel equal to a 3x3 conv after nearest upsampling x2.

    ``conv2d(upsample_nearest_2x(x), kernel, padding="same")`` equals
    ``conv_transpose(x, subpixel_kernel(kernel), strides=2, padding="same")``.

    Args:
        kernel: ``(3, 3, in_channels, out_channels)``, a tensor or an array.

    Returns:
        ``(4, 4, out_channels, in_channels)``, the layout of ``keras.ops.conv_transpose`` and
        ``keras.layers.Conv2DTranspose``; a NumPy array for a NumPy input, else a tensor.

    Example:
        >>> subpixel_kernel(np.ones((3, 3, 5, 2))).shape
        (4, 4, 2, 5)
    """
    if isinstance(kernel, np.ndarray):
        taps = np.asarray(_SUBPIXEL_TAPS, kernel.dtype)
        return np.einsum("ai,bj,ijcf->abfc", taps, taps, kernel)
    taps = ops.convert_to_tensor(_SUBPIXEL_TAPS, dtype=kernel.dtype)
    return ops.einsum("ai,bj,ijcf->abfc", taps, taps, kernel)


def _upsampled_x2_shape(input_shape, filters: int) -> tuple:
    """``(batch, 2 * height, 2 * width, filters)``, unknown sizes staying unknown."""
    height, width = (None if s is None else 2 * s for s in input_shape[1:3])
    return (input_shape[0], height, width, filters)


@keras.saving.register_keras_serializable(package="skyseg_tf")
class NearestUpsampleConv2D(keras.layers.Layer):
    """A 3x3 "same" convolution of the input upsampled x2 by nearest neighbour, 2.25x cheaper.

    Computes ``Conv2D(filters, 3, padding="same")(UpSampling2D(2)(x))`` as one stride-2
    transposed convolution of ``x`` with the 4x4 kernel :func:`subpixel_kernel` derives from
    the 3x3 kernel in every call. The trained variable is the 3x3 kernel itself (same shape and
    initialiser as the ``Conv2D`` it replaces), so outputs, gradients and optimizer updates are
    those of the upsample-then-convolve pair.

    Args:
        filters: Output channels.
        use_bias: Whether to add a bias.
        kernel_initializer: Initialiser of the 3x3 kernel.
        bias_initializer: Initialiser of the bias.

    Example:
        >>> layer = NearestUpsampleConv2D(4)
        >>> tuple(layer(np.zeros((1, 8, 8, 3), "float32")).shape)
        (1, 16, 16, 4)
        >>> tuple(layer.kernel.shape)
        (3, 3, 3, 4)
    """

    def __init__(self, filters: int, use_bias: bool = False, kernel_initializer="he_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"NearestUpsampleConv2D(filters=...) must be a positive int; received {filters!r}.")
        self.filters = filters
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(3, 3, int(input_shape[-1]), self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias else None
        )

    def call(self, inputs):
        kernel = subpixel_kernel(ops.cast(self.kernel, self.compute_dtype))
        outputs = ops.conv_transpose(inputs, kernel, strides=2, padding="same")
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return _upsampled_x2_shape(input_shape, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


SUBPIXEL_CHUNK_BYTES = 16 * 2**20
"""Largest float32 4x4 transposed-conv kernel :func:`optimize_for_inference` runs in one piece.

A larger one (``unet_resnet50``'s first decoder block: 2048 -> 256 channels, 32 MiB) runs on
chunks of its input channels, summed, so each kernel fits a CPU's cache (the gain is measured
in ``docs/benchmarks.md``)."""


def input_chunks(channels: int, filters: int) -> int:
    return max(1, min(channels, -(-16 * channels * filters * 4 // SUBPIXEL_CHUNK_BYTES)))


def _chunk_bounds(channels: int, chunks: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, channels, chunks + 1).round().astype(int).tolist()
    return list(zip(edges[:-1], edges[1:]))


@keras.saving.register_keras_serializable(package="skyseg_tf")
class SubPixelConv2D(keras.layers.Layer):
    """A stride-2 "same" transposed convolution with a 4x4 kernel, run on chunks of its input channels.

    Computes what ``keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same")`` does,
    as the sum of ``input_chunks`` transposed convolutions of consecutive input-channel slices,
    each with its own slice of the kernel (variables ``kernel_0``, ``kernel_1``...). A kernel
    too large for the CPU's cache runs faster in pieces that fit. :func:`optimize_for_inference`
    uses it for kernels over :data:`SUBPIXEL_CHUNK_BYTES`.

    Args:
        filters: Output channels.
        use_bias: Whether to add a bias.
        input_chunks: Number of input-channel slices (1: a plain transposed convolution).

    Example:
        >>> layer = SubPixelConv2D(4, input_chunks=2)
        >>> tuple(layer(np.zeros((1, 3, 5, 6), "float32")).shape)
        (1, 6, 10, 4)
        >>> [tuple(kernel.shape) for kernel in layer.kernels]
        [(4, 4, 4, 3), (4, 4, 4, 3)]
    """

    def __init__(self, filters: int, use_bias: bool = True, input_chunks: int = 1, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("filters", filters), ("input_chunks", input_chunks)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SubPixelConv2D({key}=...) must be a positive int; received {value!r}.")
        self.filters = filters
        self.use_bias = bool(use_bias)
        self.input_chunks = input_chunks

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if self.input_chunks > channels:
            raise ValueError(f"SubPixelConv2D: input_chunks={self.input_chunks} exceeds the {channels} input channels.")
        self._bounds = _chunk_bounds(channels, self.input_chunks)
        self.kernels = [
            self.add_weight(name=f"kernel_{index}", shape=(4, 4, self.filters, stop - start),
                            initializer="glorot_uniform")
            for index, (start, stop) in enumerate(self._bounds)
        ]
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def split_kernel(self, kernel) -> list[np.ndarray]:
        """The per-chunk kernels of a whole ``(4, 4, filters, in_channels)`` kernel."""
        return [np.asarray(kernel)[..., start:stop] for start, stop in self._bounds]

    def call(self, inputs):
        outputs = None
        for (start, stop), kernel in zip(self._bounds, self.kernels):
            part = inputs if len(self._bounds) == 1 else inputs[..., start:stop]
            part = ops.conv_transpose(part, ops.cast(kernel, self.compute_dtype), strides=2, padding="same")
            outputs = part if outputs is None else outputs + part
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return _upsampled_x2_shape(input_shape, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "use_bias": self.use_bias,
                "input_chunks": self.input_chunks}


# TensorFlow's fused kernel raises a smaller epsilon to this value; layers with a smaller one
# keep Keras's computation so the result stays exact.
_FUSED_MIN_EPSILON = 1.001e-5
_FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="skyseg_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` run by TensorFlow's fused kernel: same maths, faster.

    Keras 3 computes BatchNorm from generic ops (moments, then ``x * scale + shift``): several
    passes over the feature map forward and more backward. TensorFlow has one kernel for the
    forward pass and one for its gradient (oneDNN on CPUs, cuDNN on GPUs), which Keras 2 used.
    This layer calls them for 4-D channels-last inputs under the TensorFlow backend; it has the
    same variables, config, moving-statistics update (biased batch variance, as Keras) and
    results to float rounding. Anything the fused kernel does not cover (another backend,
    another rank or axis, masks, ``renorm``, ``synchronized``, an epsilon below 1.001e-5) runs
    Keras's own code.

    With :func:`split_upsampling_convs` it speeds up the U-Net training step on a CPU; the
    figures are in ``docs/benchmarks.md``.

    Example:
        >>> layer = FusedBatchNormalization()
        >>> x = np.random.default_rng(0).normal(3.0, 2.0, (4, 8, 8, 5)).astype("float32")
        >>> y = layer(x, training=True)
        >>> bool(np.allclose(np.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-5))
        True
    """

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.epsilon >= _FUSED_MIN_EPSILON
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        float32 = "float32"
        gamma = ops.cast(self.gamma, float32) if self.scale else ops.ones_like(self.moving_mean)
        beta = ops.cast(self.beta, float32) if self.center else ops.zeros_like(self.moving_mean)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            # The kernel returns the unbiased variance; Keras tracks the biased one.
            count = ops.cast(ops.prod(ops.shape(inputs)[:3]), float32)
            variance = variance * ops.where(count > 1.0, (count - 1.0) / count, 0.0)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=ops.cast(self.moving_mean, float32),
                variance=ops.cast(self.moving_variance, float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)
        return ops.cast(outputs, self.compute_dtype)
