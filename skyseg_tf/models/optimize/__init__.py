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

One job per module: :mod:`~skyseg_tf.models.optimize.graph` (the rewrite engine),
:mod:`~skyseg_tf.models.optimize.folding`, :mod:`~skyseg_tf.models.optimize.subpixel`,
:mod:`~skyseg_tf.models.optimize.fused`, :mod:`~skyseg_tf.models.optimize.canonical` (back to
the model as built); the layers the rewrites insert live with the other layers
(:mod:`skyseg_tf.models.layers`).

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

import keras

from skyseg_tf.models.layers import (  # noqa: F401  (public here too, where they used to live)
    SUBPIXEL_CHUNK_BYTES,
    FusedBatchNormalization,
    NearestUpsampleConv2D,
    SubPixelConv2D,
    subpixel_kernel,
)
from skyseg_tf.models.optimize.canonical import restore_canonical
from skyseg_tf.models.optimize.folding import (
    BATCH_NORM_CLASSES,
    FOLDABLE_CONV_CLASSES,
    batch_norm_affine,
    count_batch_norms,
    fold_batch_norms,
)
from skyseg_tf.models.optimize.fused import fuse_batch_norms
from skyseg_tf.models.optimize.graph import is_functional, rewrite_model
from skyseg_tf.models.optimize.subpixel import split_upsampling_convs, upsampling_rewrite

SPLIT_MIN_REPLICA_BATCH = 8
"""Images per replica from which splitting the upsampling convs pays off on CPUs: their sub-pixel
gradients gain on batches of 8 and more and cost time on batches of 1 (docs/benchmarks.md)."""


def split_pays_off(replica_batch: int) -> bool:
    """Whether training should split the upsampling convs: CPUs, 8+ images per replica.

    Measured on a 2-core CPU, the split alone: 1.02-1.36x at batch 8 (unet_resnet50,
    unet_mobilenet_v3_large), 0.90-0.96x at batch 1. On an H100 (Keras 3 on JAX) the split made
    the U-Net-ResNet50 training step 0.6x as fast, and TensorFlow on a GPU is not measured, so
    where TensorFlow sees a GPU the convs stay as built.

    Example:
        >>> split_pays_off(1)
        False
    """
    import tensorflow as tf

    return replica_batch >= SPLIT_MIN_REPLICA_BATCH and not tf.config.list_logical_devices("GPU")


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
    return upsampling_rewrite(fold_batch_norms(model), transposed=True)


def optimize_if_possible(model):
    """``(optimize_for_inference(model), True)`` for functional Keras models, else ``(model, False)``.

    For callers that take any model (a subclassed ``keras.Model``, a SavedModel's
    ``TFSMLayer``, a plain callable) and optimise where the rewrite applies.

    Example:
        >>> optimize_if_possible(len)
        (<built-in function len>, False)
    """
    if isinstance(model, keras.Model) and is_functional(model.get_config()):
        return optimize_for_inference(model), True
    return model, False


def optimize_for_training(model: keras.Model, split_upsampling: bool | str = True,
                          replica_batch: int | None = None) -> keras.Model:
    """The fast training model: fused BatchNorms and (optionally) sub-pixel upsampling convs.

    Applies :func:`split_upsampling_convs` (when ``split_upsampling``) and
    :func:`fuse_batch_norms`. Both keep the parameters, outputs and gradients of ``model`` (to
    float rounding), so the result trains as the original does, faster. ``skyseg train`` applies
    it unless the config says ``fast_training: false``; it splits the upsampling convs only on
    CPUs and for batches of 8 or more per replica, where the sub-pixel convolutions' gradients
    pay off (on an H100 under Keras/JAX the split made training slower; ``docs/benchmarks.md``).

    Args:
        model: A functional ``keras.Model``; it is not modified.
        split_upsampling: Whether to apply :func:`split_upsampling_convs`; ``"auto"``: where it
            pays (:func:`split_pays_off` of ``replica_batch``).
        replica_batch: Images per replica per step, for ``split_upsampling="auto"``.

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
    if split_upsampling == "auto":
        if replica_batch is None:
            raise ValueError("optimize_for_training(split_upsampling='auto') needs replica_batch=, the images "
                             "per replica per step.")
        split_upsampling = split_pays_off(replica_batch)
    if split_upsampling:
        model = split_upsampling_convs(model)
    return fuse_batch_norms(model)


__all__ = [
    "BATCH_NORM_CLASSES",
    "FOLDABLE_CONV_CLASSES",
    "FusedBatchNormalization",
    "NearestUpsampleConv2D",
    "SPLIT_MIN_REPLICA_BATCH",
    "SUBPIXEL_CHUNK_BYTES",
    "SubPixelConv2D",
    "batch_norm_affine",
    "count_batch_norms",
    "fold_batch_norms",
    "fuse_batch_norms",
    "is_functional",
    "optimize_for_inference",
    "optimize_for_training",
    "optimize_if_possible",
    "restore_canonical",
    "rewrite_model",
    "split_pays_off",
    "split_upsampling_convs",
    "subpixel_kernel",
]
