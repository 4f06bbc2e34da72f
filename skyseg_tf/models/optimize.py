"""Inference-time optimisations of built models: BatchNorm folding.

At inference a ``BatchNormalization`` layer is a fixed per-channel affine map,
``y = (x - mean) / sqrt(var + eps) * gamma + beta``. When it directly follows a convolution
whose output nothing else reads, the map can be folded into that convolution's kernel and
bias: ``kernel' = kernel * s`` and ``bias' = (bias - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` per output channel. The folded model computes the same function
(up to float rounding) with one layer fewer per Conv-BN pair, and TensorFlow's graph optimiser
then fuses the remaining Conv2D + BiasAdd + ReLU into one kernel. Keras 3's BatchNormalization
runs as several element-wise ops over the whole feature map, so on a CPU, where those passes
over memory cost as much as a small convolution, folding is the largest single win
(``benchmarks/bench_vs_segmentation_models.py`` measures it; ``docs/benchmarks.md`` has the
figures).

The transformation works on the functional config, so it reaches into nested functional models
(the ``encoder`` of every skyseg_tf model is one, built from ``keras.applications``), keeps
every layer name, and gives an ordinary Keras model that saves and loads as ``.keras``.

The folded model is for inference and export only: training it would train a network without
normalisation. Fold a copy after training, never before.

Example:
    >>> import numpy as np
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
    ...                               input_shape=(64, 64, 3))
    >>> folded = fold_batch_norms(model)
    >>> count_batch_norms(model) > 0, count_batch_norms(folded)
    (True, 0)
    >>> x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    >>> bool(np.allclose(folded(x), model(x, training=False), atol=1e-4))
    True
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import keras
import numpy as np

FOLDABLE_CONV_CLASSES = ("Conv2D", "DepthwiseConv2D")
"""Layer classes a following BatchNormalization can be folded into."""


def _visit_histories(item: Any, visit: Callable[[list], None]) -> None:
    """Calls ``visit(keras_history)`` for every Keras tensor reference inside a config item."""
    if isinstance(item, dict):
        if item.get("class_name") == "__keras_tensor__":
            history = item.get("config", {}).get("keras_history")
            if history:
                visit(history)
            return
        for value in item.values():
            _visit_histories(value, visit)
    elif isinstance(item, (list, tuple)):
        for value in item:
            _visit_histories(value, visit)


def _output_references(output_layers: Any) -> list[list]:
    """The ``[layer_name, node_index, tensor_index]`` triples of a functional config's outputs."""
    if isinstance(output_layers, dict):
        return [ref for value in output_layers.values() for ref in _output_references(value)]
    if isinstance(output_layers, (list, tuple)):
        if len(output_layers) == 3 and isinstance(output_layers[0], str):
            return [output_layers]
        return [ref for value in output_layers for ref in _output_references(value)]
    return []


def _is_functional_entry(entry: dict) -> bool:
    config = entry.get("config")
    return isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config)


def _inbound_histories(entry: dict) -> list[list]:
    histories: list[list] = []
    _visit_histories(entry.get("inbound_nodes", []), histories.append)
    return histories


def _foldable_pairs(config: dict) -> dict[str, str]:
    """Maps each foldable BatchNormalization of one functional config to its convolution."""
    by_name = {entry["name"]: entry for entry in config["layers"]}
    readers: dict[str, int] = {}
    for entry in config["layers"]:
        for history in _inbound_histories(entry):
            readers[history[0]] = readers.get(history[0], 0) + 1
    for reference in _output_references(config["output_layers"]):
        readers[reference[0]] = readers.get(reference[0], 0) + 1

    pairs: dict[str, str] = {}
    for entry in config["layers"]:
        if entry["class_name"] != "BatchNormalization" or len(entry.get("inbound_nodes", [])) != 1:
            continue
        if entry["config"].get("axis") not in (-1, 3, [-1], [3]):
            continue
        histories = _inbound_histories(entry)
        if len(histories) != 1:
            continue
        conv = by_name.get(histories[0][0])
        if (
            conv is None
            or conv["class_name"] not in FOLDABLE_CONV_CLASSES
            or len(conv.get("inbound_nodes", [])) != 1
            or readers.get(conv["name"], 0) != 1
            or conv["config"].get("activation", "linear") not in ("linear", None)
            or conv["config"].get("data_format", "channels_last") != "channels_last"
        ):
            continue
        pairs[entry["name"]] = conv["name"]
    return pairs


def _fold_config(config: dict) -> dict:
    """Rewrites a functional config in place without its foldable BatchNorms.

    Returns a tree ``{"folds": {conv_name: bn_name}, "children": {layer_name: subtree}}`` that
    says which layers' weights must be folded when they are copied over.
    """
    pairs = _foldable_pairs(config)
    children = {
        entry["name"]: _fold_config(entry["config"]) for entry in config["layers"] if _is_functional_entry(entry)
    }

    def reroute(history):
        if history[0] in pairs:
            history[0] = pairs[history[0]]

    kept = []
    for entry in config["layers"]:
        if entry["name"] in pairs:
            continue
        if entry["name"] in pairs.values():
            entry["config"]["use_bias"] = True
        _visit_histories(entry.get("inbound_nodes", []), reroute)
        kept.append(entry)
    config["layers"] = kept
    for reference in _output_references(config["output_layers"]):
        reroute(reference)
    return {"folds": {conv: bn for bn, conv in pairs.items()}, "children": children}


def _batch_norm_affine(layer) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, shift)`` of a BatchNormalization layer at inference, in float64."""
    mean = np.asarray(keras.ops.convert_to_numpy(layer.moving_mean), np.float64)
    variance = np.asarray(keras.ops.convert_to_numpy(layer.moving_variance), np.float64)
    gamma = np.asarray(keras.ops.convert_to_numpy(layer.gamma), np.float64) if layer.scale else 1.0
    beta = np.asarray(keras.ops.convert_to_numpy(layer.beta), np.float64) if layer.center else 0.0
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale * np.ones_like(mean), beta - mean * scale


def _folded_weights(conv, batch_norm) -> list[np.ndarray]:
    scale, shift = _batch_norm_affine(batch_norm)
    kernel = np.asarray(keras.ops.convert_to_numpy(conv.kernel), np.float64)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        # Kernel (kh, kw, in, multiplier); output channel c * multiplier + m.
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale  # (kh, kw, in / groups, out)
    bias = np.asarray(keras.ops.convert_to_numpy(conv.bias), np.float64) if conv.use_bias else 0.0
    bias = bias * scale + shift
    return [kernel, bias]


def _copy_weights(source: keras.Model, target: keras.Model, tree: dict) -> None:
    for layer in target.layers:
        original = source.get_layer(layer.name)
        if layer.name in tree["children"]:
            _copy_weights(original, layer, tree["children"][layer.name])
        elif layer.name in tree["folds"]:
            batch_norm = source.get_layer(tree["folds"][layer.name])
            kernel, bias = _folded_weights(original, batch_norm)
            layer.kernel.assign(kernel.astype(layer.kernel.dtype))
            layer.bias.assign(bias.astype(layer.bias.dtype))
        elif layer.weights:
            layer.set_weights(original.get_weights())


def _check_functional(model) -> None:
    config = model.get_config() if isinstance(model, keras.Model) else None
    if not isinstance(config, dict) or not {"layers", "input_layers", "output_layers"} <= set(config):
        raise TypeError(
            f"fold_batch_norms needs a functional keras.Model (every skyseg_tf model is one); "
            f"received {type(model).__name__}. Build the model with skyseg_tf.build_model or "
            "load it with skyseg_tf.inference.load_model."
        )


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """Returns an inference copy of ``model`` with BatchNorms folded into the preceding convs.

    Every ``BatchNormalization`` (channels last) that reads the output of a ``Conv2D`` or
    ``DepthwiseConv2D`` with a linear activation, whose output nothing else reads, is removed
    and its moving statistics, scale and offset are folded into that convolution's kernel and
    bias (computed in float64). Nested functional models, such as the ``keras.applications``
    encoder inside every skyseg_tf model, are folded too. Layer names, the input and the output
    are unchanged; the model is neither compiled nor meant for training. BatchNorms that
    cannot be folded (one after an addition or on an image) stay as they are.

    Args:
        model: A functional ``keras.Model`` (a skyseg_tf model, a ``keras.applications``
            model, or one from ``from_segmentation_models``). It is not modified.

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
    _check_functional(model)
    config = copy.deepcopy(model.get_config())
    tree = _fold_config(config)
    folded = keras.Model.from_config(config)
    _copy_weights(model, folded, tree)
    return folded


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
