"""Back to the model as built: the weights of a model trained in rewritten form, in the built architecture."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from skyseg_tf.models.optimize.graph import (
    to_numpy,
)


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
        >>> from skyseg_tf.models.optimize import count_batch_norms, optimize_for_training
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
            kernel = np.concatenate([to_numpy(up.kernel), to_numpy(skip.kernel)], axis=2)
            values = [kernel] + ([to_numpy(skip.bias)] if skip.use_bias else [])
        elif layer.name in names:
            values = [to_numpy(v) for v in trained.get_layer(layer.name).weights]
        else:
            raise ValueError(f"restore_canonical: layer {layer.name!r} of the built model has no "
                             "counterpart in the trained one.")
        for variable, value in zip(layer.weights, values, strict=True):
            if tuple(variable.shape) != value.shape:
                raise ValueError(f"restore_canonical: layer {layer.name!r}: weight {variable.path} has "
                                 f"shape {tuple(variable.shape)}, the trained one {value.shape}.")
            variable.assign(value.astype(variable.dtype))


__all__ = [
    "restore_canonical",
]
