"""The output convention of skyseg_tf models, in one place: :func:`sky_probability` and :func:`sky_target`.

Ground truth: ``1`` = sky, ``0`` = not sky, :data:`VOID_LABEL` (``2``) = unlabelled; a void
pixel counts in no loss and no metric. :func:`sky_target_and_valid` is the one place that splits
a mask into its target and its valid pixels.

A model's output is ``(B, H, W, 1)``, the sky probability (or the sky logit when the model ends
without an activation), or ``(B, H, W, 2)``, probabilities (or logits) over ``(other, sky)``.
Losses, metrics, prediction and export all reduce outputs and masks through these two functions;
whether an output holds logits is read from the model once
(:func:`skyseg_tf.models.output_activation`).

Example:
    >>> import numpy as np
    >>> float(sky_probability(np.array([[[[0.3, 0.7]]]], "float32"))[0, 0, 0, 0])
    0.699999988079071
"""

from __future__ import annotations

from keras import ops

VOID_LABEL = 2
"""Value of unlabelled ("void") pixels in ground-truth masks (``uint8`` element masks and the
float masks of batches): like ``ignore_index`` in other segmentation libraries, such a pixel
counts in no loss and no metric. ``2`` rather than ``255``, because ``0``/``255`` binary masks
are read as other/sky throughout the library. Any value above ``1.5`` is void."""


def sky_channel(y_pred, from_logits=False):
    """Returns the sky channel of ``y_pred`` in float32, in the domain it came in.

    For one channel this is the input itself. For two channels of probabilities it is
    channel 1; for two channels of logits it is ``logit_sky - logit_other``, the logit
    whose sigmoid equals the softmax probability of sky (the losses work on it).

    Example:
        >>> import numpy as np
        >>> float(sky_channel(np.array([[[[1.0, 3.0]]]], "float32"), from_logits=True)[0, 0, 0, 0])
        2.0
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_pred = ops.cast(y_pred, "float32")
    shape = tuple(y_pred.shape)
    channels = shape[-1] if shape else None
    if len(shape) < 2 or channels not in (1, 2):
        raise ValueError(
            "`y_pred` must have a channel axis last with 1 channel (sky probability, or "
            "sky logit with from_logits=True) or 2 channels (other, sky). "
            f"Received y_pred with shape {shape}. For a (B, H, W) probability map add "
            "the axis with `y_pred[..., None]`."
        )
    if channels == 1:
        return y_pred
    if from_logits:
        return y_pred[..., 1:2] - y_pred[..., 0:1]
    return y_pred[..., 1:2]


def sky_probability(y_pred, from_logits=False):
    """Reduces a model output to the sky probability, shape ``(..., 1)``, float32.

    This is the one place that knows the output convention of skyseg_tf models; every
    loss and metric calls it.

    Args:
        y_pred: ``(B, H, W, 1)`` sky probability (sigmoid output) or sky logit, or
            ``(B, H, W, 2)`` softmax probabilities or logits over ``(other, sky)``.
        from_logits: Whether ``y_pred`` holds logits (sigmoid for one channel, softmax
            for two) rather than probabilities.

    Returns:
        A float32 tensor shaped like ``y_pred`` with a last axis of size 1.

    Raises:
        ValueError: If the last axis of ``y_pred`` is neither 1 nor 2.

    Example:
        >>> import numpy as np
        >>> logits = np.array([[[[0.0, 2.0]]]], "float32")  # (1, 1, 1, 2)
        >>> p = sky_probability(logits, from_logits=True)
        >>> round(float(p[0, 0, 0, 0]), 4)
        0.8808
    """
    sky = sky_channel(y_pred, from_logits)
    return ops.sigmoid(sky) if from_logits else sky


def sky_target(y_true, like):
    """Brings a ground-truth mask to float32 with the shape of ``like``'s sky channel.

    Args:
        y_true: ``(B, H, W, 1)`` or ``(B, H, W)`` mask, 1 for sky and 0 elsewhere.
        like: The sky-channel tensor ``y_true`` is compared with (rank 4, last axis 1),
            e.g. the output of :func:`sky_probability`.

    Returns:
        ``y_true`` as float32 with a trailing axis of size 1.

    Raises:
        ValueError: If ``y_true`` cannot be matched to ``like``.

    Example:
        >>> import numpy as np
        >>> p = np.zeros((2, 4, 4, 1), "float32")
        >>> tuple(sky_target(np.ones((2, 4, 4), "uint8"), p).shape)
        (2, 4, 4, 1)
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    rank = len(like.shape)
    if len(y_true.shape) == rank - 1:
        y_true = ops.expand_dims(y_true, -1)
    if len(y_true.shape) != rank or y_true.shape[-1] not in (1, None):
        raise ValueError(
            "`y_true` must be a sky mask shaped (B, H, W, 1) or (B, H, W) to match "
            f"y_pred's sky channel {tuple(like.shape)}; received y_true with shape "
            f"{tuple(y_true.shape)}. One-hot masks: pass `y_true[..., 1:2]`."
        )
    return y_true


def sky_target_and_valid(y_true, like):
    """Splits a ground-truth mask into its target and its labelled pixels.

    Args:
        y_true: ``(B, H, W, 1)`` or ``(B, H, W)`` mask: ``1`` sky, ``0`` other (soft labels in
            ``[0, 1]`` allowed), :data:`VOID_LABEL` unlabelled.
        like: The sky-channel tensor ``y_true`` is compared with, as in :func:`sky_target`.

    Returns:
        ``(target, valid)``, float32 with the shape of ``like``: the target in ``[0, 1]`` (``0``
        on void pixels) and ``1`` where a pixel is labelled, ``0`` where it is void.

    Example:
        >>> import numpy as np
        >>> target, valid = sky_target_and_valid(np.array([[[1, 0, 2]]]), np.zeros((1, 1, 3, 1)))
        >>> np.asarray(target)[..., 0].tolist(), np.asarray(valid)[..., 0].tolist()
        ([[[1.0, 0.0, 0.0]]], [[[1.0, 1.0, 0.0]]])
    """
    y_true = sky_target(y_true, like)
    valid = ops.cast(y_true < 0.5 * (1.0 + VOID_LABEL), "float32")
    return y_true * valid, valid


__all__ = ["VOID_LABEL", "sky_channel", "sky_probability", "sky_target", "sky_target_and_valid"]
