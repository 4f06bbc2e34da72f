"""BatchNorm folding (inference): a BatchNorm after a convolution becomes part of its kernel and bias.

At inference a ``BatchNormalization`` is a fixed per-channel affine map ``y = x * s + (beta - mean * s)``
with ``s = gamma / sqrt(var + eps)``. When it directly follows a convolution whose output nothing
else reads, it folds into that convolution: ``kernel' = kernel * s``, ``bias' = (bias - mean) * s + beta``.
"""

from __future__ import annotations

import keras
import numpy as np

from skyseg_tf.models.optimize.graph import (
    called_once,
    inbound_tensors,
    reader_counts,
    register_weight_recipe,
    reroute,
    rewrite_model,
    to_numpy,
)

FOLDABLE_CONV_CLASSES = ("Conv2D", "DepthwiseConv2D", "NearestUpsampleConv2D")
"""Layer classes a following BatchNormalization can be folded into."""

BATCH_NORM_CLASSES = ("BatchNormalization", "FusedBatchNormalization")
"""Config class names :func:`fold_batch_norms` folds."""


def _fold_batch_norms_config(config: dict) -> dict:
    """Drops the foldable BatchNorms of one functional config; returns ``{conv: record}``."""
    by_name = {entry["name"]: entry for entry in config["layers"]}
    readers = reader_counts(config)
    pairs: dict[str, str] = {}
    for entry in config["layers"]:
        if not _is_foldable_batch_norm(entry):
            continue
        inputs = inbound_tensors(entry)
        conv = by_name.get(inputs[0]["config"]["keras_history"][0]) if len(inputs) == 1 else None
        if (
            conv is None
            or conv["class_name"] not in FOLDABLE_CONV_CLASSES
            or not called_once(conv)
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
        inputs = inbound_tensors(entry)
        if not _is_foldable_batch_norm(entry) or len(inputs) != 1:
            continue
        add = by_name.get(inputs[0]["config"]["keras_history"][0])
        if add is None or add["class_name"] != "Add" or not called_once(add) or readers.get(add["name"], 0) != 1:
            continue
        convs = [by_name.get(part["config"]["keras_history"][0]) for part in inbound_tensors(add)]
        if not all(conv is not None and _is_summed_linear_conv(conv) and readers.get(conv["name"], 0) == 1
                   and conv["name"] not in records for conv in convs):
            continue
        for index, conv in enumerate(convs):
            records[conv["name"]] = ("fold_part", conv["name"], entry["name"], index == 0)
        convs[0]["config"]["use_bias"] = True
        renames[entry["name"]] = [add["name"], 0, 0]
    removed = set(renames)
    config["layers"] = [entry for entry in config["layers"] if entry["name"] not in removed]
    reroute(config, renames)
    return records


def _is_foldable_batch_norm(entry: dict) -> bool:
    """A channels-last BatchNormalization (Keras's or the fused one) called once."""
    return (
        entry["class_name"] in BATCH_NORM_CLASSES
        and called_once(entry)
        and entry["config"].get("axis") in (-1, 3, [-1], [3])
    )


def _is_summed_linear_conv(entry: dict) -> bool:
    """A channels-last Conv2D or NearestUpsampleConv2D with no activation, called once."""
    config = entry["config"]
    return (
        entry["class_name"] in ("Conv2D", "NearestUpsampleConv2D")
        and called_once(entry)
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
    mean, variance = to_numpy(layer.moving_mean), to_numpy(layer.moving_variance)
    gamma = to_numpy(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = to_numpy(layer.beta) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - mean * scale


def _folded_conv_weights(conv, batch_norm, with_shift: bool = True) -> list[np.ndarray]:
    scale, shift = batch_norm_affine(batch_norm)
    kernel = to_numpy(conv.kernel)
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # (kh, kw, in, multiplier): out = in * m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (kh, kw, in / groups, out), NearestUpsampleConv2D's 3x3 kernel too
        kernel = kernel * scale
    bias = to_numpy(conv.bias) * scale if conv.use_bias else np.zeros_like(scale)
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

    return rewrite_model(model, _fold_batch_norms_config)


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


register_weight_recipe(
    "fold", lambda source, conv, batch_norm: _folded_conv_weights(source.get_layer(conv), source.get_layer(batch_norm)))
register_weight_recipe(
    "fold_part", lambda source, conv, batch_norm, with_shift: _folded_conv_weights(
        source.get_layer(conv), source.get_layer(batch_norm), with_shift=with_shift))


__all__ = [
    "BATCH_NORM_CLASSES",
    "FOLDABLE_CONV_CLASSES",
    "batch_norm_affine",
    "count_batch_norms",
    "fold_batch_norms",
]
