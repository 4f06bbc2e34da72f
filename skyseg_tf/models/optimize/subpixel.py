"""Sub-pixel upsampling convolutions: ``conv3x3(upsample_nearest_x2(x))`` as one transposed convolution.

A 3x3 "same" convolution of a map upsampled x2 by nearest neighbour is a stride-2 transposed
convolution of ``x`` with a 4x4 kernel whose taps are sums of the 3x3 taps
(:func:`skyseg_tf.models.layers.subpixel_kernel`): 16 instead of 36 multiply-adds per input
pixel and channel pair. A U-Net decoder block concatenates the upsampled map with a skip feature
before its first conv; the rewrite splits that conv along its input channels into the upsampled
part plus a 3x3 conv of the skip, summed, which also drops the concatenation.
"""

from __future__ import annotations

import copy

import keras
import numpy as np

from skyseg_tf.models.layers import (  # the layers the rewrite inserts
    NearestUpsampleConv2D,
    SubPixelConv2D,
    input_chunks,
    subpixel_kernel,
)
from skyseg_tf.models.optimize.graph import (
    as_pair,
    called_once,
    inbound_tensors,
    reader_counts,
    register_weight_recipe,
    reroute,
    rewrite_model,
    tensor_entry,
    to_numpy,
)


def _is_nearest_upsampling_x2(entry: dict) -> bool:
    config = entry["config"]
    return (
        entry["class_name"] == "UpSampling2D"
        and as_pair(config.get("size", 2)) == (2, 2)
        and config.get("interpolation", "nearest") == "nearest"
        and config.get("data_format", "channels_last") == "channels_last"
        and called_once(entry)
    )


def _is_plain_conv3x3(entry: dict) -> bool:
    config = entry["config"]
    return (
        entry["class_name"] == "Conv2D"
        and as_pair(config.get("kernel_size")) == (3, 3)
        and as_pair(config.get("strides", 1)) == (1, 1)
        and as_pair(config.get("dilation_rate", 1)) == (1, 1)
        and config.get("padding") == "same"
        and config.get("groups", 1) == 1
        and config.get("data_format", "channels_last") == "channels_last"
        and config.get("activation", "linear") in ("linear", None)
        and called_once(entry)
    )


def _upsampling_layer_entry(name: str, conv_config: dict, use_bias: bool, source: dict, transposed: bool) -> dict:
    """Config entry of the layer computing the upsampled part of a conv (see the module doc)."""
    common = {"name": name, "trainable": conv_config.get("trainable", True), "dtype": conv_config["dtype"],
              "filters": conv_config["filters"], "use_bias": use_bias}
    chunks = input_chunks(int(source["config"]["shape"][-1]), int(conv_config["filters"]))
    if transposed and chunks > 1:
        entry = {"module": SubPixelConv2D.__module__, "class_name": "SubPixelConv2D", "registered_name": "skyseg_tf>SubPixelConv2D",
                 "config": {**common, "input_chunks": chunks}}
    elif transposed:
        entry = {"module": "keras.layers", "class_name": "Conv2DTranspose", "registered_name": None,
                 "config": {**common, "kernel_size": [4, 4], "strides": [2, 2], "padding": "same",
                            "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear"}}
    else:
        entry = {"module": NearestUpsampleConv2D.__module__, "class_name": "NearestUpsampleConv2D",
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
    readers = reader_counts(config)
    records: dict[str, tuple] = {}
    removed: set[str] = set()
    added: dict[str, list[dict]] = {}  # new entries, placed after the named layer
    renames: dict[str, list] = {}

    for conv in config["layers"]:
        inputs = inbound_tensors(conv)
        if not _is_plain_conv3x3(conv) or len(inputs) != 1:
            continue
        producer = by_name.get(inputs[0]["config"]["keras_history"][0])
        if producer is None or producer["name"] in removed or readers.get(producer["name"], 0) != 1:
            continue
        if (producer["class_name"] == "Concatenate" and called_once(producer)
                and producer["config"].get("axis", -1) in (-1, 3)):
            parts = inbound_tensors(producer)
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
        source = inbound_tensors(up_layer)[0]
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
            "inbound_nodes": [{"args": [[tensor_entry(out_shape, dtype, [conv["name"], 0, 0]),
                                         tensor_entry(out_shape, dtype, [up_name, 0, 0])]], "kwargs": {}}],
        }
        renames[conv["name"]] = [sum_name, 0, 0]
        added[conv["name"]] = [up_entry, sum_entry]
        skip_channels = [c for index, chans in enumerate(channels) if index != ups[0] for c in chans]
        records[conv["name"]] = ("skip", conv["name"], skip_channels)

    if transposed:  # layers split earlier (a model trained by `skyseg train`): precompute their kernel
        for entry in config["layers"]:
            if entry["class_name"] == "NearestUpsampleConv2D" and entry["name"] not in records:
                replacement = _upsampling_layer_entry(entry["name"], entry["config"], entry["config"].get("use_bias", False),
                                                      inbound_tensors(entry)[0], transposed=True)
                entry.clear()
                entry.update(replacement)
                records[entry["name"]] = ("subpixel", entry["name"])

    # Readers of a split conv read its sum instead; the new layers go in after the rerouting,
    # since each sum reads its conv.
    reroute(config, renames)
    # The new upsampling layers read the input of the upsampling they replace, which may itself be
    # a split conv (a conv read by the next upsample -> conv): they read its sum too. The sums
    # (the other added entries) keep reading their own conv.
    reroute({"layers": [entries[0] for entries in added.values()], "output_layers": []}, renames)
    layers = []
    for entry in config["layers"]:
        if entry["name"] not in removed:
            layers.append(entry)
        layers.extend(added.get(entry["name"], []))
    config["layers"] = layers
    return records


def upsampling_rewrite(model: keras.Model, transposed: bool) -> keras.Model:
    """:func:`split_upsampling_convs` (``transposed=False``: trainable :class:`NearestUpsampleConv2D`) or
    the inference form (``True``: precomputed ``Conv2DTranspose`` / :class:`SubPixelConv2D`)."""
    return rewrite_model(model, lambda config: _split_upsampling_convs_config(config, transposed))


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
    return upsampling_rewrite(model, transposed=False)


def _subpixel_weights(source, name):
    """A :class:`NearestUpsampleConv2D`'s weights as a ``Conv2DTranspose``'s (the 4x4 kernel)."""
    layer = source.get_layer(name)
    return [subpixel_kernel(to_numpy(layer.kernel))] + ([to_numpy(layer.bias)] if layer.use_bias else [])


def _channel_weights(source, name, channels, transposed=None):
    """The input channels ``channels`` of a conv: the skip part (``transposed=None``, with the
    bias) or the upsampled part (the 4x4 kernel when ``transposed``; the bias when it owns all)."""
    conv = source.get_layer(name)
    kernel = to_numpy(conv.kernel)[:, :, channels, :]
    bias = [to_numpy(conv.bias)] if conv.use_bias else []
    if transposed is None:
        return [kernel] + bias
    owns_bias = len(channels) == conv.kernel.shape[2]
    return [subpixel_kernel(kernel) if transposed else kernel] + (bias if owns_bias else [])


register_weight_recipe("subpixel", _subpixel_weights)
register_weight_recipe("up", _channel_weights)
register_weight_recipe("skip", lambda source, name, channels: _channel_weights(source, name, channels))


__all__ = [
    "split_upsampling_convs",
    "upsampling_rewrite",
]
