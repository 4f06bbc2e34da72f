"""Fused BatchNorm (training and inference): every BatchNormalization runs TensorFlow's fused kernel.

The layer is :class:`skyseg_tf.models.layers.FusedBatchNormalization`; this module swaps it in.
"""

from __future__ import annotations

import keras

from skyseg_tf.models.layers import FusedBatchNormalization  # noqa: F401  (the layer swapped in)
from skyseg_tf.models.optimize.graph import (
    rewrite_model,
)


def _fuse_batch_norms_config(config: dict) -> dict:
    """Swaps every BatchNormalization of one functional config for FusedBatchNormalization."""
    for entry in config["layers"]:
        if entry["class_name"] == "BatchNormalization":
            entry.update({"module": FusedBatchNormalization.__module__, "class_name": "FusedBatchNormalization",
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
        >>> from skyseg_tf.models.optimize import count_batch_norms
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
        ...                               input_shape=(64, 64, 3))
        >>> fused = fuse_batch_norms(model)
        >>> count_batch_norms(fused) == count_batch_norms(model)
        True
        >>> type(fused.get_layer("decoder_stage0a_bn")).__name__
        'FusedBatchNormalization'
    """
    return rewrite_model(model, _fuse_batch_norms_config)


__all__ = [
    "fuse_batch_norms",
]
