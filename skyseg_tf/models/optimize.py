"""Exact rewrites of built models that make them faster: BatchNorm folding and fusing, sub-pixel upsampling.

Three rewrites, all exact (the outputs match to float rounding) and all working on the
functional config, so they reach into nested functional models (the ``encoder`` of every
skyseg_tf model is one, built from ``keras.applications``), keep layer names, and give ordinary
Keras models that save and load as ``.keras``:

* **BatchNorm folding** (:func:`fold_batch_norms`, inference only). At inference a
  ``BatchNormalization`` is a fixed per-channel affine map ``y = x * s + (beta - mean * s)``
  with ``s = gamma / sqrt(var + eps)``. When it directly follows a convolution whose output
  nothing else reads, it folds into that convolution: ``kernel' = kernel * s``,
  ``bias' = (bias - mean) * s + beta``. The model loses one layer per Conv-BN pair (Keras 3 runs
  BatchNorm as element-wise passes over the whole feature map), and TensorFlow's graph optimiser
  fuses the remaining Conv + BiasAdd (+ Add) + ReLU into one oneDNN kernel.
* **Sub-pixel upsampling convolutions** (:func:`split_upsampling_convs`, training and inference).
  A 3x3 "same" convolution of a map upsampled x2 by nearest neighbour, ``conv3x3(up2(x))``, is a
  stride-2 transposed convolution of ``x`` with a 4x4 kernel whose taps are sums of the 3x3 taps
  (each output pixel of the upsampled map sees only a 2x2 window of ``x``). That costs 16 instead
  of 36 multiply-adds per input pixel and channel pair: 2.25x fewer. A U-Net decoder block
  concatenates the upsampled map with a skip feature before its first conv; the rewrite splits
  that conv along its input channels into the upsampled part (the transposed conv) plus a 3x3
  conv of the skip, summed, which also drops the concatenation. In the U-Net-ResNet50 this is
  about 10 of its 83 GFLOPs at 512x512, in its most expensive layers.
* **Fused BatchNorm** (:func:`fuse_batch_norms`, training and inference): every
  ``BatchNormalization`` becomes a :class:`FusedBatchNormalization`, which runs TensorFlow's
  fused kernel (one call forward, one backward) where Keras 3 runs several element-wise ops.

:func:`optimize_for_training` applies the last two (what ``skyseg train`` trains by default);
:func:`optimize_for_inference` applies the first two (the upsampling part as a plain
``keras.layers.Conv2DTranspose`` with a precomputed kernel, or a :class:`SubPixelConv2D` that
runs a kernel too large for the CPU cache in chunks, so the result has only standard Keras
layers besides skyseg_tf's own). :func:`split_upsampling_convs` keeps the 3x3 kernel as the
trained variable (:class:`NearestUpsampleConv2D` derives the 4x4 kernel in every call), so the
rewritten model has the same parameters, outputs and gradients (to rounding) and trains as the
original.

How much each rewrite gains, per model, size and machine, is measured by
``benchmarks/bench_models.py`` and ``benchmarks/bench_vs_segmentation_models.py`` and reported in
``docs/benchmarks.md`` (figures change with each run and machine, so they live there). In short:
the U-Nets gain most; the DeepLabs, with no nearest upsampling and dominated by dilated
convolutions, gain little from folding; at tiny sizes the transposed convolutions' overhead
outweighs their savings.

Example:
    >>> import numpy as np
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
    ...                               input_shape=(64, 64, 3))
    >>> fast = optimize_for_inference(model)
    >>> count_batch_norms(model) > 0, count_batch_norms(fast)
    (True, 0)
    >>> x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    >>> bool(np.allclose(fast(x), model(x, training=False), atol=1e-4))
    True
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import keras
import numpy as np
from keras import ops

FOLDABLE_CONV_CLASSES = ("Conv2D", "DepthwiseConv2D", "NearestUpsampleConv2D")
"""Layer classes a following BatchNormalization can be folded into."""

BATCH_NORM_CLASSES = ("BatchNormalization", "FusedBatchNormalization")
"""Config class names :func:`fold_batch_norms` folds."""

# Rows: taps 0..3 of the 4x4 stride-2 transposed kernel ("same" padding). Columns: taps 0..2 of
# the 3x3 kernel. Output row 2m reads x[m-1] (tap 3 = w0) and x[m] (tap 1 = w1 + w2); output row
# 2m+1 reads x[m] (tap 2 = w0 + w1) and x[m+1] (tap 0 = w2). The same holds for columns.
_SUBPIXEL_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


# --------------------------------------------------------------------------------------------
# Reading and rewriting functional configs
# --------------------------------------------------------------------------------------------


def _tensors(item: Any) -> list[dict]:
    """The Keras-tensor dicts (``{"class_name": "__keras_tensor__", ...}``) inside a config item."""
    if isinstance(item, dict):
        if item.get("class_name") == "__keras_tensor__":
            return [item]
        return [tensor for value in item.values() for tensor in _tensors(value)]
    if isinstance(item, (list, tuple)):
        return [tensor for value in item for tensor in _tensors(value)]
    return []


def _visit_histories(item: Any, visit: Callable[[list], None]) -> None:
    """Calls ``visit(keras_history)`` for every Keras tensor reference inside a config item."""
    for tensor in _tensors(item):
        history = tensor.get("config", {}).get("keras_history")
        if history:
            visit(history)


def _output_references(output_layers: Any) -> list[list]:
    """The ``[layer_name, node_index, tensor_index]`` triples of a functional config's outputs."""
    if isinstance(output_layers, dict):
        return [ref for value in output_layers.values() for ref in _output_references(value)]
    if isinstance(output_layers, (list, tuple)):
        if len(output_layers) == 3 and isinstance(output_layers[0], str):
            return [output_layers]
        return [ref for value in output_layers for ref in _output_references(value)]
    return []


def _is_functional(config: Any) -> bool:
    return isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config)


def _inbound_tensors(entry: dict) -> list[dict]:
    """The Keras-tensor dicts a layer entry is called on (its single call's arguments)."""
    return _tensors(entry.get("inbound_nodes", []))


def _reader_counts(config: dict) -> dict[str, int]:
    """How many tensor references (layer inputs and model outputs) read each layer's output."""
    counts: dict[str, int] = {}

    def count(history):
        counts[history[0]] = counts.get(history[0], 0) + 1

    for entry in config["layers"]:
        _visit_histories(entry.get("inbound_nodes", []), count)
    for reference in _output_references(config["output_layers"]):
        count(reference)
    return counts


def _reroute(config: dict, renames: dict[str, list]) -> None:
    """Points every reference to a layer in ``renames`` at the given ``[name, node, tensor]``."""

    def visit(history):
        if history[0] in renames:
            history[:] = list(renames[history[0]])

    for entry in config["layers"]:
        _visit_histories(entry.get("inbound_nodes", []), visit)
    for reference in _output_references(config["output_layers"]):
        visit(reference)


def _tensor(shape, dtype, history) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": list(shape), "dtype": dtype, "keras_history": list(history)},
    }


def _called_once(entry: dict) -> bool:
    return len(entry.get("inbound_nodes", [])) == 1


def _pairs(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _rewrite(model: keras.Model, rewrite_config: Callable[[dict], dict]) -> keras.Model:
    """Rewrites a functional model's config (nested models too) and copies its weights over.

    ``rewrite_config`` edits one functional config in place and returns ``{layer_name: record}``
    for the layers whose weights must be computed (see :func:`_computed_weights`); every other
    layer gets the weights of the same-named layer of ``model``.
    """
    config = model.get_config() if isinstance(model, keras.Model) else None
    if not _is_functional(config):
        raise TypeError(
            "skyseg_tf.models.optimize needs a functional keras.Model (every skyseg_tf model is "
            f"one); received {type(model).__name__}. Build the model with skyseg_tf.build_model "
            "or load it with skyseg_tf.inference.load_model."
        )
    config = copy.deepcopy(config)

    def walk(functional_config):
        children = {
            entry["name"]: walk(entry["config"])
            for entry in functional_config["layers"]
            if _is_functional(entry.get("config"))
        }
        return {"records": rewrite_config(functional_config), "children": children}

    tree = walk(config)
    rewritten = keras.Model.from_config(config)
    _copy_weights(model, rewritten, tree)
    return rewritten


def _copy_weights(source: keras.Model, target: keras.Model, tree: dict) -> None:
    for layer in target.layers:
        if layer.name in tree["children"]:
            _copy_weights(source.get_layer(layer.name), layer, tree["children"][layer.name])
        elif layer.name in tree["records"]:
            values = _computed_weights(source, tree["records"][layer.name])
            if isinstance(layer, SubPixelConv2D):
                values = layer.split_kernel(values[0]) + values[1:]
            for variable, value in zip(layer.weights, values, strict=True):
                variable.assign(np.asarray(value).astype(variable.dtype))
        elif layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def _computed_weights(source: keras.Model, record: tuple) -> list[np.ndarray]:
    """Weights of a rewritten layer from the original model's layers, in float64.

    Records: ``("fold", conv, batch_norm)``; ``("fold_part", conv, batch_norm, with_shift)``,
    one of the convs summed before a BatchNorm; ``("subpixel", layer)``, a
    :class:`NearestUpsampleConv2D` as a ``Conv2DTranspose``; ``("up", conv, channels, transposed)``, the
    upsampled input channels of ``conv`` (with its bias when it has no skip part);
    ``("skip", conv, channels)``, the other input channels of ``conv``, with its bias.
    """
    if record[0] == "fold":
        return _folded_conv_weights(source.get_layer(record[1]), source.get_layer(record[2]))
    if record[0] == "fold_part":
        return _folded_conv_weights(source.get_layer(record[1]), source.get_layer(record[2]), with_shift=record[3])
    if record[0] == "subpixel":
        layer = source.get_layer(record[1])
        return [subpixel_kernel(_numpy(layer.kernel))] + ([_numpy(layer.bias)] if layer.use_bias else [])
    conv, channels = source.get_layer(record[1]), record[2]
    kernel = _numpy(conv.kernel)[:, :, channels, :]
    bias = [_numpy(conv.bias)] if conv.use_bias else []
    if record[0] == "skip":
        return [kernel] + bias
    transposed = record[3]
    owns_bias = len(channels) == conv.kernel.shape[2]
    return [subpixel_kernel(kernel) if transposed else kernel] + (bias if owns_bias else [])


def _numpy(variable) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(variable), np.float64)


# --------------------------------------------------------------------------------------------
# BatchNorm folding
# --------------------------------------------------------------------------------------------


def _fold_batch_norms_config(config: dict) -> dict:
    """Drops the foldable BatchNorms of one functional config; returns ``{conv: record}``."""
    by_name = {entry["name"]: entry for entry in config["layers"]}
    readers = _reader_counts(config)
    pairs: dict[str, str] = {}
    for entry in config["layers"]:
        if not _is_foldable_batch_norm(entry):
            continue
        inputs = _inbound_tensors(entry)
        conv = by_name.get(inputs[0]["config"]["keras_history"][0]) if len(inputs) == 1 else None
        if (
            conv is None
            or conv["class_name"] not in FOLDABLE_CONV_CLASSES
            or not _called_once(conv)
            or readers.get(conv["name"], 0) != 1
            or conv["config"].get("activation", "linear") not in ("linear", None)
            or conv["config"].get("data_format", "channels_last") != "channels_last"
        ):
            continue
        pairs[entry["name"]] = conv["name"]
    records = {conv: ("fold", conv, bn) for bn, conv in pairs.items()}
    for conv_name in pairs.values():
        by_name[conv_name]["config"]["use_bias"] = True
    renames = {bn: [conv, 0, 0] for bn, conv in pairs.items()}
    # A BatchNorm after the sum of convs (what split_upsampling_convs makes of a decoder conv,
    # as in a model trained by `skyseg train`) folds into each of them; one takes the shift.
    for entry in config["layers"]:
        inputs = _inbound_tensors(entry)
        if not _is_foldable_batch_norm(entry) or len(inputs) != 1:
            continue
        add = by_name.get(inputs[0]["config"]["keras_history"][0])
        if add is None or add["class_name"] != "Add" or not _called_once(add) or readers.get(add["name"], 0) != 1:
            continue
        convs = [by_name.get(part["config"]["keras_history"][0]) for part in _inbound_tensors(add)]
        if not all(conv is not None and _is_summed_linear_conv(conv) and readers.get(conv["name"], 0) == 1
                   and conv["name"] not in records for conv in convs):
            continue
        for index, conv in enumerate(convs):
            records[conv["name"]] = ("fold_part", conv["name"], entry["name"], index == 0)
        convs[0]["config"]["use_bias"] = True
        renames[entry["name"]] = [add["name"], 0, 0]
    removed = set(renames)
    config["layers"] = [entry for entry in config["layers"] if entry["name"] not in removed]
    _reroute(config, renames)
    return records


def _is_foldable_batch_norm(entry: dict) -> bool:
    """A channels-last BatchNormalization (Keras's or the fused one) called once."""
    return (
        entry["class_name"] in BATCH_NORM_CLASSES
        and _called_once(entry)
        and entry["config"].get("axis") in (-1, 3, [-1], [3])
    )


def _is_summed_linear_conv(entry: dict) -> bool:
    """A channels-last Conv2D or NearestUpsampleConv2D with no activation, called once."""
    config = entry["config"]
    return (
        entry["class_name"] in ("Conv2D", "NearestUpsampleConv2D")
        and _called_once(entry)
        and config.get("activation", "linear") in ("linear", None)
        and config.get("data_format", "channels_last") == "channels_last"
        and config.get("groups", 1) == 1
    )


def batch_norm_affine(layer: keras.layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """The inference-time ``(scale, shift)`` per channel of a BatchNormalization, in float64.

    ``layer(x, training=False) == x * scale + shift``.

    Example:
        >>> bn = keras.layers.BatchNormalization(epsilon=0.0)
        >>> bn.build((None, 2))
        >>> _ = bn.moving_variance.assign([4.0, 1.0])
        >>> [float(v) for v in batch_norm_affine(bn)[0]]
        [0.5, 1.0]
    """
    mean, variance = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
    gamma = _numpy(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = _numpy(layer.beta) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - mean * scale


def _folded_conv_weights(conv, batch_norm, with_shift: bool = True) -> list[np.ndarray]:
    scale, shift = batch_norm_affine(batch_norm)
    kernel = _numpy(conv.kernel)
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # (kh, kw, in, multiplier): out = in * m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (kh, kw, in / groups, out), NearestUpsampleConv2D's 3x3 kernel too
        kernel = kernel * scale
    bias = _numpy(conv.bias) * scale if conv.use_bias else np.zeros_like(scale)
    if with_shift:
        return [kernel, bias + shift]
    return [kernel, bias] if conv.use_bias else [kernel]


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """Returns an inference copy of ``model`` with BatchNorms folded into the preceding convs.

    Every channels-last ``BatchNormalization`` that reads the output of a ``Conv2D`` or
    ``DepthwiseConv2D`` with a linear activation, whose output nothing else reads, is removed,
    and its moving statistics, scale and offset are folded into that convolution's kernel and
    bias (computed in float64). Nested functional models (the ``keras.applications`` encoder of
    every skyseg_tf model) are folded too. BatchNorms that cannot be folded (after an addition,
    or on the raw image as in segmentation_models' ResNets) stay. Layer names, inputs and
    outputs are unchanged.

    The result is for inference and export only: it is not compiled, and training it would
    train a network without normalisation. Fold a copy after training.

    Args:
        model: A functional ``keras.Model`` (a skyseg_tf model, a ``keras.applications`` model,
            or one from ``from_segmentation_models``). It is not modified.

    Returns:
        A new functional ``keras.Model`` whose outputs match ``model(x, training=False)`` to
        float rounding.

    Raises:
        TypeError: If ``model`` is not a functional Keras model.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("deeplabv3_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> count_batch_norms(fold_batch_norms(model))
        0
    """

    return _rewrite(model, _fold_batch_norms_config)


# --------------------------------------------------------------------------------------------
# Sub-pixel (transposed) convolutions for nearest-neighbour upsampling
# --------------------------------------------------------------------------------------------


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


def _input_chunks(channels: int, filters: int) -> int:
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


def _is_nearest_upsampling_x2(entry: dict) -> bool:
    config = entry["config"]
    return (
        entry["class_name"] == "UpSampling2D"
        and _pairs(config.get("size", 2)) == (2, 2)
        and config.get("interpolation", "nearest") == "nearest"
        and config.get("data_format", "channels_last") == "channels_last"
        and _called_once(entry)
    )


def _is_plain_conv3x3(entry: dict) -> bool:
    config = entry["config"]
    return (
        entry["class_name"] == "Conv2D"
        and _pairs(config.get("kernel_size")) == (3, 3)
        and _pairs(config.get("strides", 1)) == (1, 1)
        and _pairs(config.get("dilation_rate", 1)) == (1, 1)
        and config.get("padding") == "same"
        and config.get("groups", 1) == 1
        and config.get("data_format", "channels_last") == "channels_last"
        and config.get("activation", "linear") in ("linear", None)
        and _called_once(entry)
    )


def _upsampling_layer_entry(name: str, conv_config: dict, use_bias: bool, source: dict, transposed: bool) -> dict:
    """Config entry of the layer computing the upsampled part of a conv (see the module doc)."""
    common = {"name": name, "trainable": conv_config.get("trainable", True), "dtype": conv_config["dtype"],
              "filters": conv_config["filters"], "use_bias": use_bias}
    chunks = _input_chunks(int(source["config"]["shape"][-1]), int(conv_config["filters"]))
    if transposed and chunks > 1:
        entry = {"module": __name__, "class_name": "SubPixelConv2D", "registered_name": "skyseg_tf>SubPixelConv2D",
                 "config": {**common, "input_chunks": chunks}}
    elif transposed:
        entry = {"module": "keras.layers", "class_name": "Conv2DTranspose", "registered_name": None,
                 "config": {**common, "kernel_size": [4, 4], "strides": [2, 2], "padding": "same",
                            "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear"}}
    else:
        entry = {"module": __name__, "class_name": "NearestUpsampleConv2D",
                 "registered_name": "skyseg_tf>NearestUpsampleConv2D",
                 "config": {**common, "kernel_initializer": conv_config.get("kernel_initializer", "he_uniform"),
                            "bias_initializer": conv_config.get("bias_initializer", "zeros")}}
    entry.update({"name": name, "inbound_nodes": [{"args": [copy.deepcopy(source)], "kwargs": {}}]})
    return entry


def _split_upsampling_convs_config(config: dict, transposed: bool) -> dict:
    """Rewrites every ``[concat(] up2(x) [, skips)] -> conv3x3`` of one functional config.

    Returns ``{layer_name: record}`` for the weight copy (see :func:`_computed_weights`).
    """
    by_name = {entry["name"]: entry for entry in config["layers"]}
    readers = _reader_counts(config)
    records: dict[str, tuple] = {}
    removed: set[str] = set()
    added: dict[str, list[dict]] = {}  # new entries, placed after the named layer
    renames: dict[str, list] = {}

    for conv in config["layers"]:
        inputs = _inbound_tensors(conv)
        if not _is_plain_conv3x3(conv) or len(inputs) != 1:
            continue
        producer = by_name.get(inputs[0]["config"]["keras_history"][0])
        if producer is None or producer["name"] in removed or readers.get(producer["name"], 0) != 1:
            continue
        if (producer["class_name"] == "Concatenate" and _called_once(producer)
                and producer["config"].get("axis", -1) in (-1, 3)):
            parts = _inbound_tensors(producer)
        elif _is_nearest_upsampling_x2(producer):
            parts = inputs
        else:
            continue
        ups = [index for index, part in enumerate(parts)
               if _is_nearest_upsampling_x2(by_name[part["config"]["keras_history"][0]])
               and readers.get(part["config"]["keras_history"][0], 0) == 1]
        if not ups:
            continue
        up_layer = by_name[parts[ups[0]]["config"]["keras_history"][0]]
        offsets = np.cumsum([0] + [int(part["config"]["shape"][-1]) for part in parts]).tolist()
        channels = [list(range(offsets[i], offsets[i + 1])) for i in range(len(parts))]
        skip_parts = [part for index, part in enumerate(parts) if index != ups[0]]
        up_name = f"{conv['name']}_upsampled" if skip_parts else conv["name"]
        if skip_parts and (up_name in by_name or f"{conv['name']}_sum" in by_name):
            continue
        conv_config = conv["config"]
        has_bias = bool(conv_config.get("use_bias"))
        source = _inbound_tensors(up_layer)[0]
        up_entry = _upsampling_layer_entry(up_name, conv_config, has_bias and not skip_parts, source, transposed)
        records[up_name] = ("up", conv["name"], channels[ups[0]], transposed)
        removed.add(up_layer["name"])
        if not skip_parts:  # conv(up(x)) -> one layer, under the conv's name
            removed.add(conv["name"])
            if producer is not up_layer:
                removed.add(producer["name"])
            added[conv["name"]] = [up_entry]
            continue
        # conv(concat(up(x), skips)) -> conv(skips) + upsampled(x), summed as "<conv>_sum".
        if len(skip_parts) == 1:
            removed.add(producer["name"])
            conv["inbound_nodes"] = [{"args": [copy.deepcopy(skip_parts[0])], "kwargs": {}}]
        else:
            producer["inbound_nodes"] = [{"args": [copy.deepcopy(skip_parts)], "kwargs": {}}]
        conv.pop("build_config", None)
        sum_name = f"{conv['name']}_sum"
        out_shape = list(inputs[0]["config"]["shape"][:-1]) + [conv_config["filters"]]
        dtype = inputs[0]["config"]["dtype"]
        sum_entry = {
            "module": "keras.layers", "class_name": "Add", "registered_name": None, "name": sum_name,
            "config": {"name": sum_name, "trainable": True, "dtype": conv_config["dtype"]},
            "inbound_nodes": [{"args": [[_tensor(out_shape, dtype, [conv["name"], 0, 0]),
                                         _tensor(out_shape, dtype, [up_name, 0, 0])]], "kwargs": {}}],
        }
        renames[conv["name"]] = [sum_name, 0, 0]
        added[conv["name"]] = [up_entry, sum_entry]
        skip_channels = [c for index, chans in enumerate(channels) if index != ups[0] for c in chans]
        records[conv["name"]] = ("skip", conv["name"], skip_channels)

    if transposed:  # layers split earlier (a model trained by `skyseg train`): precompute their kernel
        for entry in config["layers"]:
            if entry["class_name"] == "NearestUpsampleConv2D" and entry["name"] not in records:
                replacement = _upsampling_layer_entry(entry["name"], entry["config"], entry["config"].get("use_bias", False),
                                                      _inbound_tensors(entry)[0], transposed=True)
                entry.clear()
                entry.update(replacement)
                records[entry["name"]] = ("subpixel", entry["name"])

    # Readers of a split conv read its sum instead; the new layers go in after the rerouting,
    # since each sum reads its conv.
    _reroute(config, renames)
    layers = []
    for entry in config["layers"]:
        if entry["name"] not in removed:
            layers.append(entry)
        layers.extend(added.get(entry["name"], []))
    config["layers"] = layers
    return records


def _split(model: keras.Model, transposed: bool) -> keras.Model:
    return _rewrite(model, lambda config: _split_upsampling_convs_config(config, transposed))


def split_upsampling_convs(model: keras.Model) -> keras.Model:
    """Rewrites nearest-upsample-then-3x3-conv pairs as sub-pixel convolutions (trainable).

    Every ``UpSampling2D(2, interpolation="nearest")`` whose output feeds a 3x3 "same"
    ``Conv2D`` (directly, or through a ``Concatenate`` with skip features, as in every U-Net
    decoder block) becomes a :class:`NearestUpsampleConv2D` on the low-resolution input, plus
    the original ``Conv2D`` on the skip features only, summed (layer ``<conv>_sum``). The
    parameters are the same numbers, re-partitioned along the conv's input channels: outputs,
    gradients and optimizer updates match the original model, at 2.25x fewer multiply-adds for
    the upsampled part. Train the result as usual; checkpoints of the original do not load into
    it by name (rewrite after loading them).

    Args:
        model: A functional ``keras.Model``; it is not modified. Models without the pattern
            come back as an equivalent copy.

    Returns:
        A new functional ``keras.Model`` (not compiled).

    Raises:
        TypeError: If ``model`` is not a functional Keras model.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> split = split_upsampling_convs(model)
        >>> split.count_params() == model.count_params()
        True
        >>> type(split.get_layer("decoder_stage4a_conv")).__name__
        'NearestUpsampleConv2D'
    """
    return _split(model, transposed=False)


def optimize_for_inference(model: keras.Model) -> keras.Model:
    """BatchNorms folded, nearest-upsampling convs as transposed convs: the fast inference model.

    Applies :func:`fold_batch_norms`, then rewrites the patterns of
    :func:`split_upsampling_convs` with a plain ``keras.layers.Conv2DTranspose`` holding the
    precomputed 4x4 kernel (a :class:`SubPixelConv2D` for a kernel over
    :data:`SUBPIXEL_CHUNK_BYTES`). The result has only standard Keras layers and skyseg_tf's own, so
    its ``.keras`` file loads after ``import skyseg_tf``; it is for inference and export only.

    Args:
        model: A functional ``keras.Model``; it is not modified.

    Returns:
        A new functional ``keras.Model`` whose outputs match ``model(x, training=False)`` to
        float rounding.

    Raises:
        TypeError: If ``model`` is not a functional Keras model.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> fast = optimize_for_inference(model)
        >>> type(fast.get_layer("decoder_stage0a_conv_upsampled")).__name__
        'Conv2DTranspose'
    """
    return _split(fold_batch_norms(model), transposed=True)


def optimize_if_possible(model):
    """``(optimize_for_inference(model), True)`` for functional Keras models, else ``(model, False)``.

    For callers that take any model (a subclassed ``keras.Model``, a SavedModel's
    ``TFSMLayer``, a plain callable) and optimise where the rewrite applies.

    Example:
        >>> optimize_if_possible(len)
        (<built-in function len>, False)
    """
    if isinstance(model, keras.Model) and _is_functional(model.get_config()):
        return optimize_for_inference(model), True
    return model, False


# --------------------------------------------------------------------------------------------
# Fused BatchNorm for training (TensorFlow backend)
# --------------------------------------------------------------------------------------------

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


def _fuse_batch_norms_config(config: dict) -> dict:
    """Swaps every BatchNormalization of one functional config for FusedBatchNormalization."""
    for entry in config["layers"]:
        if entry["class_name"] == "BatchNormalization":
            entry.update({"module": __name__, "class_name": "FusedBatchNormalization",
                          "registered_name": "skyseg_tf>FusedBatchNormalization"})
    return {}


def fuse_batch_norms(model: keras.Model) -> keras.Model:
    """Returns a copy of ``model`` whose BatchNorms are :class:`FusedBatchNormalization` layers.

    Same layers, names, weights, outputs and gradients (to float rounding), in training and
    inference; faster under the TensorFlow backend, unchanged under the others.

    Args:
        model: A functional ``keras.Model``; it is not modified.

    Returns:
        A new functional ``keras.Model`` (not compiled).

    Raises:
        TypeError: If ``model`` is not a functional Keras model.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> fused = fuse_batch_norms(model)
        >>> count_batch_norms(fused) == count_batch_norms(model)
        True
        >>> type(fused.get_layer("decoder_stage0a_bn")).__name__
        'FusedBatchNormalization'
    """
    return _rewrite(model, _fuse_batch_norms_config)


def optimize_for_training(model: keras.Model, split_upsampling: bool = True) -> keras.Model:
    """The fast training model: fused BatchNorms and (optionally) sub-pixel upsampling convs.

    Applies :func:`split_upsampling_convs` (when ``split_upsampling``) and
    :func:`fuse_batch_norms`. Both keep the parameters, outputs and gradients of ``model`` (to
    float rounding), so the result trains as the original does, faster. ``skyseg train`` applies
    it unless the config says ``fast_training: false``; it splits the upsampling convs only on
    CPUs and for batches of 8 or more per replica, where the sub-pixel convolutions' gradients
    pay off (on an H100 under Keras/JAX the split made training slower; ``docs/benchmarks.md``).

    Args:
        model: A functional ``keras.Model``; it is not modified.
        split_upsampling: Whether to apply :func:`split_upsampling_convs`.

    Returns:
        A new functional ``keras.Model`` (not compiled).

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> fast = optimize_for_training(model)
        >>> fast.count_params() == model.count_params()
        True
    """
    if split_upsampling:
        model = split_upsampling_convs(model)
    return fuse_batch_norms(model)


def count_batch_norms(model) -> int:
    """Number of ``BatchNormalization`` layers in a model, nested models included.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
        >>> count_batch_norms(keras.Model(inputs, x))
        1
    """
    total = 0
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            total += 1
        elif isinstance(layer, keras.Model):
            total += count_batch_norms(layer)
    return total


# --------------------------------------------------------------------------------------------
# Back to the model as built
# --------------------------------------------------------------------------------------------


def restore_canonical(trained: keras.Model, built: keras.Model, check: bool = True) -> keras.Model:
    """Copies the weights of a model trained in rewritten form into the model as built.

    :func:`optimize_for_training` keeps every number of the model but re-partitions some: a
    split upsampling conv lives in ``<conv>_upsampled`` (the upsampled input channels, first in
    the U-Net's concatenation) and ``<conv>`` (the skip channels, with the bias), and
    BatchNorms become :class:`FusedBatchNormalization`. This puts them back, so the saved model
    matches ``build_model(...)`` layer by layer and loads and fine-tunes like a plain one.

    Args:
        trained: The rewritten (trained) model.
        built: A freshly built model of the same architecture; its weights are overwritten.
        check: Compare both models' outputs on a random batch and raise if they differ.

    Returns:
        ``built``, holding the trained weights.

    Raises:
        ValueError: If a layer of ``built`` has no counterpart in ``trained``, or the outputs
            differ (``check``).

    Example:
        >>> import skyseg_tf
        >>> built = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> fast = optimize_for_training(built)
        >>> plain = restore_canonical(fast, skyseg_tf.build_model("unet_mobilenet_v3_large",
        ...                                                        encoder_weights=None))
        >>> count_batch_norms(plain) == count_batch_norms(built)
        True
    """
    _restore_weights(trained, built)
    if check:
        shape = [1] + [dim or 64 for dim in built.inputs[0].shape[1:3]] + [3]
        sample = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
        expected = ops.convert_to_numpy(trained(sample, training=False))
        received = ops.convert_to_numpy(built(sample, training=False))
        difference = float(np.max(np.abs(expected - received)))
        if not difference <= 1e-3:
            raise ValueError(f"restore_canonical: the restored model's outputs differ from the trained "
                             f"model's by {difference:.3g}; the two are not the same architecture.")
    return built


def _restore_weights(trained, built) -> None:
    for layer in built.layers:
        if isinstance(layer, keras.Model):
            _restore_weights(trained.get_layer(layer.name), layer)
            continue
        if not layer.weights:
            continue
        names = {other.name for other in trained.layers}
        if f"{layer.name}_upsampled" in names:
            up = trained.get_layer(f"{layer.name}_upsampled")
            skip = trained.get_layer(layer.name)
            kernel = np.concatenate([_numpy(up.kernel), _numpy(skip.kernel)], axis=2)
            values = [kernel] + ([_numpy(skip.bias)] if skip.use_bias else [])
        elif layer.name in names:
            values = [_numpy(v) for v in trained.get_layer(layer.name).weights]
        else:
            raise ValueError(f"restore_canonical: layer {layer.name!r} of the built model has no "
                             "counterpart in the trained one.")
        for variable, value in zip(layer.weights, values, strict=True):
            if tuple(variable.shape) != value.shape:
                raise ValueError(f"restore_canonical: layer {layer.name!r}: weight {variable.path} has "
                                 f"shape {tuple(variable.shape)}, the trained one {value.shape}.")
            variable.assign(value.astype(variable.dtype))
