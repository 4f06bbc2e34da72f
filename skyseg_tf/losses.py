"""Losses for binary sky segmentation.

Every loss has a functional core (``dice_loss``, ``bce_loss``, ``bce_dice_loss``,
``focal_loss``) and a thin serializable ``keras.losses.Loss`` class over it
(``DiceLoss``, ``BCELoss``, ``BCEDiceLoss``, ``FocalLoss``); ``get_loss`` resolves a
name such as ``"bce_dice"`` to an instance.

Input convention, shared with ``skyseg_tf.metrics``:

* ``y_pred`` is either ``(B, H, W, 1)``, the sky probability (or the sky logit when
  ``from_logits=True``), or ``(B, H, W, 2)``, probabilities (or logits) over the classes
  ``(other, sky)``. :func:`skyseg_tf.outputs.sky_probability` reduces both to the sky
  channel; :mod:`skyseg_tf.outputs` is the only place that knows this convention.
* ``y_true`` is ``(B, H, W, 1)`` or ``(B, H, W)``, 1 for sky and 0 elsewhere (any
  integer or float dtype). Soft labels in ``[0, 1]`` are accepted by the losses. Pixels
  holding :data:`~skyseg_tf.outputs.VOID_LABEL` (``2``, unlabelled) count in no loss: the
  Dice sums skip them and the per-pixel losses average over the labelled pixels only.

All computation happens in float32, whatever the dtype of ``y_pred`` (e.g. float16
under a ``mixed_float16`` policy).

Reduction and ``tf.distribute``: every functional core returns one value per image,
shape ``(B,)``, and the classes use Keras' ``"sum_over_batch_size"`` reduction, which
divides by the number of replicas under a ``tf.distribute`` strategy. A loss that
returned a scalar would skip that scaling, so the batch-level Dice (``per_image=False``,
the segmentation_models default) is computed over the replica's local batch and
returned broadcast to ``(B,)``; with ``N`` replicas the training loss is then the mean of
the ``N`` local Dice losses, as in segmentation_models. Use ``per_image=True`` for a
Dice that does not depend on how a batch is split. ``sample_weight`` weights whole
images (shape ``(B,)``).

Example:
    >>> import numpy as np
    >>> from skyseg_tf import losses
    >>> y_true = np.ones((1, 2, 2, 1), "float32")
    >>> loss = losses.get_loss("bce_dice")
    >>> float(loss(y_true, y_true)) < 1e-3
    True
"""

from __future__ import annotations

import numbers

import keras
from keras import ops

from skyseg_tf import checks
from skyseg_tf.outputs import sky_channel, sky_probability, sky_target, sky_target_and_valid  # noqa: F401  (public here too)

#: Default smoothing term of the Dice loss (added to numerator and denominator).
DEFAULT_SMOOTH = 1.0
#: Default focal-loss weight of the sky class (the other class gets ``1 - alpha``).
DEFAULT_FOCAL_ALPHA = 0.25
#: Default focal-loss focusing exponent.
DEFAULT_FOCAL_GAMMA = 2.0

_PACKAGE = "skyseg_tf"


# --------------------------------------------------------------------------- helpers


def _check_non_negative_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number; received {name}={value!r}.")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0; received {name}={value!r}.")


def _image_axes(x):
    return tuple(range(1, len(x.shape)))


def _mean_over_valid(values, valid):
    """Per-image mean of ``values`` over the labelled pixels (0 for an image without any)."""
    axes = _image_axes(values)
    return ops.sum(values * valid, axis=axes) / ops.maximum(ops.sum(valid, axis=axes), 1.0)


# ----------------------------------------------------------------- functional cores


@keras.saving.register_keras_serializable(package=_PACKAGE)
def dice_loss(y_true, y_pred, smooth=DEFAULT_SMOOTH, from_logits=False, per_image=False):
    """Soft Dice loss ``1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)``.

    Args:
        y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``, values in ``[0, 1]``.
        y_pred: Model output, see :func:`sky_probability`.
        smooth: Added to numerator and denominator; keeps the loss defined (0) for an
            image with no sky predicted and none present.
        from_logits: Whether ``y_pred`` holds logits.
        per_image: If True, one Dice per image. If False (default, as in
            segmentation_models) the sums run over the whole (replica-local) batch and
            that single value is repeated for each image.

    Returns:
        Float32 tensor of shape ``(B,)``, one loss per image.

    Example:
        >>> import numpy as np
        >>> t = np.array([[[[1.0], [0.0]]]])  # (1, 1, 2, 1)
        >>> p = np.array([[[[1.0], [1.0]]]])
        >>> round(float(dice_loss(t, p, smooth=0.0)[0]), 4)  # 1 - 2 * 1 / (2 + 1)
        0.3333
    """
    p = sky_probability(y_pred, from_logits)
    t, valid = sky_target_and_valid(y_true, p)
    p_valid = p * valid
    axes = _image_axes(p) if per_image else None
    intersection = ops.sum(p_valid * t, axis=axes)
    total = ops.sum(p_valid, axis=axes) + ops.sum(t, axis=axes)
    loss = 1.0 - (2.0 * intersection + smooth) / (total + smooth)
    if not per_image:
        loss = loss * ops.ones((ops.shape(p)[0],), dtype="float32")
    return loss


@keras.saving.register_keras_serializable(package=_PACKAGE)
def bce_loss(y_true, y_pred, from_logits=False):
    """Binary cross-entropy on the sky channel, averaged over the pixels of each image.

    With ``from_logits=True`` it is computed from the logits (numerically stable);
    with probabilities they are clipped to ``[eps, 1 - eps]`` as Keras does.

    Args:
        y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``, values in ``[0, 1]``.
        y_pred: Model output, see :func:`sky_probability`.
        from_logits: Whether ``y_pred`` holds logits.

    Returns:
        Float32 tensor of shape ``(B,)``.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 1, 1, 1))
        >>> round(float(bce_loss(t, np.full((1, 1, 1, 1), 0.5))[0]), 4)  # ln 2
        0.6931
    """
    sky = sky_channel(y_pred, from_logits)
    t, valid = sky_target_and_valid(y_true, sky)
    ce = ops.binary_crossentropy(t, sky, from_logits=from_logits)
    return _mean_over_valid(ce, valid)


@keras.saving.register_keras_serializable(package=_PACKAGE)
def bce_dice_loss(
    y_true,
    y_pred,
    bce_weight=1.0,
    dice_weight=1.0,
    smooth=DEFAULT_SMOOTH,
    from_logits=False,
    per_image=False,
):
    """Weighted sum ``bce_weight * bce_loss + dice_weight * dice_loss``.

    Args:
        y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``, values in ``[0, 1]``.
        y_pred: Model output, see :func:`sky_probability`.
        bce_weight: Weight of the binary cross-entropy term.
        dice_weight: Weight of the Dice term.
        smooth: Dice smoothing term, see :func:`dice_loss`.
        from_logits: Whether ``y_pred`` holds logits.
        per_image: Dice per image or over the batch, see :func:`dice_loss`.

    Returns:
        Float32 tensor of shape ``(B,)``.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 2, 2, 1))
        >>> float(bce_dice_loss(t, t, bce_weight=0.0)[0])
        0.0
    """
    bce = bce_loss(y_true, y_pred, from_logits=from_logits)
    dice = dice_loss(
        y_true, y_pred, smooth=smooth, from_logits=from_logits, per_image=per_image
    )
    return bce_weight * bce + dice_weight * dice


@keras.saving.register_keras_serializable(package=_PACKAGE)
def focal_loss(
    y_true,
    y_pred,
    alpha=DEFAULT_FOCAL_ALPHA,
    gamma=DEFAULT_FOCAL_GAMMA,
    from_logits=False,
):
    """Binary focal loss (Lin et al. 2017) averaged over the pixels of each image.

    ``FL = -alpha_t * (1 - p_t) ** gamma * log(p_t)`` with ``alpha_t = alpha`` on sky
    pixels and ``1 - alpha`` elsewhere. ``gamma=0, alpha=0.5`` gives half the binary
    cross-entropy.

    Args:
        y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``, values in ``[0, 1]``.
        y_pred: Model output, see :func:`sky_probability`.
        alpha: Weight of the sky class, in ``[0, 1]``.
        gamma: Focusing exponent, ``>= 0``.
        from_logits: Whether ``y_pred`` holds logits.

    Returns:
        Float32 tensor of shape ``(B,)``.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 1, 1, 1))
        >>> p = np.full((1, 1, 1, 1), 0.5)
        >>> round(float(focal_loss(t, p, alpha=0.5, gamma=0.0)[0]), 4)  # ln(2) / 2
        0.3466
    """
    sky = sky_channel(y_pred, from_logits)
    t, valid = sky_target_and_valid(y_true, sky)
    ce = ops.binary_crossentropy(t, sky, from_logits=from_logits)
    p = ops.sigmoid(sky) if from_logits else sky
    p_t = t * p + (1.0 - t) * (1.0 - p)
    alpha_t = t * alpha + (1.0 - t) * (1.0 - alpha)
    loss = alpha_t * ops.power(ops.maximum(1.0 - p_t, 0.0), gamma) * ce
    return _mean_over_valid(loss, valid)


# -------------------------------------------------------------------------- classes


class _SkyLoss(keras.losses.Loss):
    """Shared constructor checks and config for the loss classes."""

    def __init__(self, from_logits, reduction, name):
        checks.boolean("from_logits", from_logits)
        super().__init__(name=name, reduction=reduction)
        self.from_logits = from_logits

    def get_config(self):
        return {"from_logits": self.from_logits, "reduction": self.reduction, "name": self.name}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiceLoss(_SkyLoss):
    """Soft Dice loss for the sky class; see :func:`dice_loss`.

    ``per_image=False`` (default) computes one Dice over the replica's local batch,
    like segmentation_models; under ``tf.distribute`` the reported loss is the mean of
    the replicas' local values. ``per_image=True`` averages per-image Dice values.

    Args:
        smooth: Smoothing term added to numerator and denominator.
        from_logits: Whether the model outputs logits.
        per_image: Dice per image instead of over the batch.
        reduction: Keras reduction of the per-image values.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> t = np.array([[[[1.0], [0.0]]]])
        >>> p = np.array([[[[1.0], [1.0]]]])
        >>> round(float(DiceLoss(smooth=0.0)(t, p)), 4)
        0.3333
    """

    def __init__(
        self,
        smooth=DEFAULT_SMOOTH,
        from_logits=False,
        per_image=False,
        reduction="sum_over_batch_size",
        name="dice_loss",
    ):
        _check_non_negative_number("smooth", smooth)
        checks.boolean("per_image", per_image)
        super().__init__(from_logits=from_logits, reduction=reduction, name=name)
        self.smooth = smooth
        self.per_image = per_image

    def call(self, y_true, y_pred):
        return dice_loss(
            y_true,
            y_pred,
            smooth=self.smooth,
            from_logits=self.from_logits,
            per_image=self.per_image,
        )

    def get_config(self):
        return {"smooth": self.smooth, "per_image": self.per_image, **super().get_config()}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCELoss(_SkyLoss):
    """Binary cross-entropy on the sky channel; see :func:`bce_loss`.

    Unlike ``keras.losses.BinaryCrossentropy`` it accepts two-channel outputs.

    Args:
        from_logits: Whether the model outputs logits.
        reduction: Keras reduction of the per-image values.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 1, 1, 1))
        >>> round(float(BCELoss(from_logits=True)(t, np.zeros((1, 1, 1, 1)))), 4)
        0.6931
    """

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name="bce_loss"):
        super().__init__(from_logits=from_logits, reduction=reduction, name=name)

    def call(self, y_true, y_pred):
        return bce_loss(y_true, y_pred, from_logits=self.from_logits)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCEDiceLoss(_SkyLoss):
    """``bce_weight * BCE + dice_weight * Dice``; see :func:`bce_dice_loss`.

    Args:
        bce_weight: Weight of the binary cross-entropy term.
        dice_weight: Weight of the Dice term.
        smooth: Dice smoothing term.
        from_logits: Whether the model outputs logits.
        per_image: Dice per image instead of over the batch.
        reduction: Keras reduction of the per-image values.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 2, 2, 1))
        >>> float(BCEDiceLoss(bce_weight=0.0)(t, t))
        0.0
    """

    def __init__(
        self,
        bce_weight=1.0,
        dice_weight=1.0,
        smooth=DEFAULT_SMOOTH,
        from_logits=False,
        per_image=False,
        reduction="sum_over_batch_size",
        name="bce_dice_loss",
    ):
        _check_non_negative_number("bce_weight", bce_weight)
        _check_non_negative_number("dice_weight", dice_weight)
        _check_non_negative_number("smooth", smooth)
        checks.boolean("per_image", per_image)
        super().__init__(from_logits=from_logits, reduction=reduction, name=name)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth
        self.per_image = per_image

    def call(self, y_true, y_pred):
        return bce_dice_loss(
            y_true,
            y_pred,
            bce_weight=self.bce_weight,
            dice_weight=self.dice_weight,
            smooth=self.smooth,
            from_logits=self.from_logits,
            per_image=self.per_image,
        )

    def get_config(self):
        return {
            "bce_weight": self.bce_weight,
            "dice_weight": self.dice_weight,
            "smooth": self.smooth,
            "per_image": self.per_image,
            **super().get_config(),
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(_SkyLoss):
    """Binary focal loss on the sky channel; see :func:`focal_loss`.

    Args:
        alpha: Weight of the sky class, in ``[0, 1]``.
        gamma: Focusing exponent, ``>= 0``.
        from_logits: Whether the model outputs logits.
        reduction: Keras reduction of the per-image values.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> t = np.ones((1, 1, 1, 1))
        >>> round(float(FocalLoss(alpha=0.5, gamma=0.0)(t, np.full((1, 1, 1, 1), 0.5))), 4)
        0.3466
    """

    def __init__(
        self,
        alpha=DEFAULT_FOCAL_ALPHA,
        gamma=DEFAULT_FOCAL_GAMMA,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="focal_loss",
    ):
        _check_non_negative_number("alpha", alpha)
        if alpha > 1:
            raise ValueError(f"`alpha` must be in [0, 1]; received alpha={alpha!r}.")
        _check_non_negative_number("gamma", gamma)
        super().__init__(from_logits=from_logits, reduction=reduction, name=name)
        self.alpha = alpha
        self.gamma = gamma

    def call(self, y_true, y_pred):
        return focal_loss(
            y_true, y_pred, alpha=self.alpha, gamma=self.gamma, from_logits=self.from_logits
        )

    def get_config(self):
        return {"alpha": self.alpha, "gamma": self.gamma, **super().get_config()}


#: Loss names accepted by :func:`get_loss`, mapped to their classes.
LOSSES = {
    "dice": DiceLoss,
    "bce": BCELoss,
    "bce_dice": BCEDiceLoss,
    "focal": FocalLoss,
}


def get_loss(identifier, **kwargs):
    """Resolves a loss name (or passes a loss object through).

    Args:
        identifier: One of ``"dice"``, ``"bce"``, ``"bce_dice"``, ``"focal"`` (see
            :data:`LOSSES`), or a ``keras.losses.Loss`` instance or callable, returned
            unchanged.
        **kwargs: Constructor arguments for a named loss, e.g. ``from_logits=True``.

    Returns:
        A loss object usable in ``model.compile(loss=...)``.

    Raises:
        ValueError: For an unknown name, or keyword arguments given with an object.
        TypeError: For anything that is neither a name nor a callable.

    Example:
        >>> get_loss("bce_dice", from_logits=True).get_config()["from_logits"]
        True
    """
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        if key not in LOSSES:
            raise ValueError(
                f"Unknown loss {identifier!r}. Valid names: {', '.join(sorted(LOSSES))}; "
                "or pass a keras.losses.Loss instance."
            )
        return LOSSES[key](**kwargs)
    if callable(identifier):
        if kwargs:
            raise ValueError(
                f"Keyword arguments {sorted(kwargs)} can only be used with a loss name, "
                f"not with the loss object {identifier!r}; configure the object instead."
            )
        return identifier
    raise TypeError(
        "`identifier` must be a loss name "
        f"({', '.join(sorted(LOSSES))}) or a loss object; received {identifier!r} "
        f"of type {type(identifier).__name__}."
    )


__all__ = [
    "BCEDiceLoss",
    "BCELoss",
    "DEFAULT_FOCAL_ALPHA",
    "DEFAULT_FOCAL_GAMMA",
    "DEFAULT_SMOOTH",
    "DiceLoss",
    "FocalLoss",
    "LOSSES",
    "bce_dice_loss",
    "bce_loss",
    "dice_loss",
    "focal_loss",
    "get_loss",
    "sky_probability",
    "sky_target",
    "sky_target_and_valid",
]
