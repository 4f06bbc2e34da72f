"""The graph-rewrite engine: reads and rewrites functional Keras configs, nested models included.

:func:`rewrite_model` rebuilds a functional model from a rewritten config and copies every weight
it can by layer path; the rewrite function may add, remove and reroute layers and say how the new
layers' weights are computed from the old ones. The rewrites of :mod:`skyseg_tf.models.optimize`
(folding, sub-pixel upsampling, fused BatchNorm) are functions of this engine.

Example:
    >>> import keras
    >>> inputs = keras.Input((8, 8, 3)); outputs = keras.layers.Conv2D(2, 3, name="c")(inputs)
    >>> copy = rewrite_model(keras.Model(inputs, outputs), lambda config: {})
    >>> bool(np.allclose(copy.get_layer("c").kernel, keras.Model(inputs, outputs).get_layer("c").kernel))
    True
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import keras
import numpy as np
from keras import ops

def tensors_in(item: Any) -> list[dict]:
    """The Keras-tensor dicts (``{"class_name": "__keras_tensor__", ...}``) inside a config item."""
    if isinstance(item, dict):
        if item.get("class_name") == "__keras_tensor__":
            return [item]
        return [tensor for value in item.values() for tensor in tensors_in(value)]
    if isinstance(item, (list, tuple)):
        return [tensor for value in item for tensor in tensors_in(value)]
    return []


def visit_histories(item: Any, visit: Callable[[list], None]) -> None:
    """Calls ``visit(keras_history)`` for every Keras tensor reference inside a config item."""
    for tensor in tensors_in(item):
        history = tensor.get("config", {}).get("keras_history")
        if history:
            visit(history)


def output_references(output_layers: Any) -> list[list]:
    """The ``[layer_name, node_index, tensor_index]`` triples of a functional config's outputs."""
    if isinstance(output_layers, dict):
        return [ref for value in output_layers.values() for ref in output_references(value)]
    if isinstance(output_layers, (list, tuple)):
        if len(output_layers) == 3 and isinstance(output_layers[0], str):
            return [output_layers]
        return [ref for value in output_layers for ref in output_references(value)]
    return []


def is_functional(config: Any) -> bool:
    return isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config)


def inbound_tensors(entry: dict) -> list[dict]:
    """The Keras-tensor dicts a layer entry is called on (its single call's arguments)."""
    return tensors_in(entry.get("inbound_nodes", []))


def reader_counts(config: dict) -> dict[str, int]:
    """How many tensor references (layer inputs and model outputs) read each layer's output."""
    counts: dict[str, int] = {}

    def count(history):
        counts[history[0]] = counts.get(history[0], 0) + 1

    for entry in config["layers"]:
        visit_histories(entry.get("inbound_nodes", []), count)
    for reference in output_references(config["output_layers"]):
        count(reference)
    return counts


def reroute(config: dict, renames: dict[str, list]) -> None:
    """Points every reference to a layer in ``renames`` at the given ``[name, node, tensor]``."""

    def visit(history):
        if history[0] in renames:
            history[:] = list(renames[history[0]])

    for entry in config["layers"]:
        visit_histories(entry.get("inbound_nodes", []), visit)
    for reference in output_references(config["output_layers"]):
        visit(reference)


def tensor_entry(shape, dtype, history) -> dict:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": list(shape), "dtype": dtype, "keras_history": list(history)},
    }


def called_once(entry: dict) -> bool:
    return len(entry.get("inbound_nodes", [])) == 1


def as_pair(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def rewrite_model(model: keras.Model, rewrite_config: Callable[[dict], dict]) -> keras.Model:
    """Rewrites a functional model's config (nested models too) and copies its weights over.

    ``rewrite_config`` edits one functional config in place and returns ``{layer_name: record}``
    for the layers whose weights must be computed (see :func:`_computed_weights`); every other
    layer gets the weights of the same-named layer of ``model``.
    """
    config = model.get_config() if isinstance(model, keras.Model) else None
    if not is_functional(config):
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
            if is_functional(entry.get("config"))
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
            split_kernel = getattr(layer, "split_kernel", None)  # layers holding a kernel in pieces
            if callable(split_kernel):
                values = split_kernel(values[0]) + values[1:]
            for variable, value in zip(layer.weights, values, strict=True):
                variable.assign(np.asarray(value).astype(variable.dtype))
        elif layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


WEIGHT_RECIPES: dict[str, Callable[..., list]] = {}
"""How a rewrite computes the weights of the layers it creates: ``{kind: function(source, *args)}``,
filled by the rewrites (:func:`register_weight_recipe`); a rewrite records ``(kind, *args)`` per
new layer, and :func:`rewrite_model` calls the recipe on the original model."""


def register_weight_recipe(kind: str, function: Callable[..., list]) -> None:
    """Registers how layers recorded as ``(kind, *args)`` get their weights (float64 arrays).

    Example:
        >>> register_weight_recipe("copy_of", lambda source, name: source.get_layer(name).get_weights())
        >>> "copy_of" in WEIGHT_RECIPES
        True
    """
    WEIGHT_RECIPES[kind] = function


def _computed_weights(source: keras.Model, record: tuple) -> list[np.ndarray]:
    """Weights of a rewritten layer from the original model's layers (its recipe's result)."""
    return WEIGHT_RECIPES[record[0]](source, *record[1:])


def to_numpy(variable) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(variable), np.float64)


__all__ = [
    "WEIGHT_RECIPES",
    "as_pair",
    "called_once",
    "inbound_tensors",
    "is_functional",
    "output_references",
    "reader_counts",
    "register_weight_recipe",
    "reroute",
    "rewrite_model",
    "tensor_entry",
    "tensors_in",
    "to_numpy",
    "visit_histories",
]
