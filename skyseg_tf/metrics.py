"""Metrics for binary sky segmentation, accumulated over all pixels of all batches.

Every metric is a ``keras.metrics.Metric`` whose state is a set of sums (pixel counts),
so values are dataset-level (e.g. the IoU is ``sum TP / sum (TP + FP + FN)`` over the
whole evaluation set, not a mean of per-batch IoUs) and Keras reduces them correctly
across replicas under ``tf.distribute`` (the sums are added, never averaged).

* Confusion-count metrics share one base class holding TP, FP, FN and TN:
  :class:`SkyIoU`, :class:`SkyDice`, :class:`PixelAccuracy`, :class:`SkyPrecision`,
  :class:`SkyRecall`. A ratio whose denominator is 0 (e.g. precision when no pixel
  was ever predicted sky) is 0, as in ``keras.metrics``.
* :class:`SkyAUC`: ROC AUC over pixels (``keras.metrics.AUC`` on the sky channel).
* :class:`BoundaryFScore`: BF score of the sky edge (Csurka et al. 2013).

Inputs follow the convention of ``skyseg_tf.losses.sky_probability``: ``y_pred`` is
``(B, H, W, 1)`` (sky probability, or logit with ``from_logits=True``) or ``(B, H, W, 2)``
over ``(other, sky)``; ``y_true`` is ``(B, H, W, 1)`` or ``(B, H, W)``, sky where
``y_true >= 0.5``; void pixels (``y_true ==`` :data:`~skyseg_tf.outputs.VOID_LABEL`, ``2``)
are left out of every count. A pixel is predicted sky when its sky probability is
``>= threshold``. ``sample_weight`` may be per image ``(B,)`` or per pixel
``(B, H, W)`` / ``(B, H, W, 1)``; a weight of 0 ignores a pixel. Counts are float32
(exact up to 2**24 pixels, then relative rounding of about 1e-7).

Example:
    >>> import numpy as np
    >>> from skyseg_tf import metrics
    >>> y_true = np.array([[[[1], [1]], [[0], [0]]]], "float32")  # (1, 2, 2, 1)
    >>> y_pred = np.array([[[[0.9], [0.2]], [[0.1], [0.3]]]], "float32")
    >>> m = metrics.SkyIoU()
    >>> m.update_state(y_true, y_pred)
    >>> float(m.result())  # TP=1, FN=1, FP=0
    0.5
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from skyseg_tf import checks
from skyseg_tf.outputs import VOID_LABEL, sky_probability, sky_target_and_valid

#: Default probability at or above which a pixel counts as predicted sky.
DEFAULT_THRESHOLD = 0.5
#: Default number of thresholds of :class:`SkyAUC`.
DEFAULT_NUM_THRESHOLDS = 200
#: Per-photo false-sky shares whose exceedance reports count ("photos with more than 1% / 5% of
#: their non-sky pixels called sky"): evaluation reports and per-source validation.
FALSE_SKY_LEVELS = (0.01, 0.05)
#: Default boundary tolerance of :class:`BoundaryFScore`, in pixels.
DEFAULT_BOUNDARY_TOLERANCE = 2

_PACKAGE = "skyseg_tf"


# --------------------------------------------------------------------------- helpers


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"`threshold` must be a number; received threshold={threshold!r}.")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(
            "`threshold` is a sky probability and must be in [0, 1]; received "
            f"threshold={threshold!r}. With from_logits=True it still applies to the "
            "probability (0.5 means logit 0)."
        )


def _binary_inputs(y_true, y_pred, from_logits, threshold):
    """Returns ``(truth, prediction, valid)`` as float32 {0, 1} tensors of shape (B, H, W, 1);
    ``valid`` is 0 on void pixels."""
    p = sky_probability(y_pred, from_logits)
    target, valid = sky_target_and_valid(y_true, p)
    truth = ops.cast(target >= 0.5, "float32")
    prediction = ops.cast(p >= threshold, "float32")
    return truth, prediction, valid


def _pixel_weights(sample_weight, like, valid=None):
    """Broadcasts a per-image or per-pixel ``sample_weight`` to ``like``'s shape, times ``valid``."""
    if sample_weight is None:
        weight = ops.ones_like(like)
    else:
        weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        while len(weight.shape) < len(like.shape):
            weight = ops.expand_dims(weight, -1)
        weight = ops.broadcast_to(weight, ops.shape(like))
    return weight if valid is None else weight * valid


# ------------------------------------------------------------- confusion-count metrics


class _SkyConfusionMetric(keras.metrics.Metric):
    """Accumulates weighted TP, FP, FN and TN pixel counts of the sky class.

    Subclasses set ``default_name`` and implement ``result`` from the four counts.
    """

    default_name = None

    def __init__(self, threshold=DEFAULT_THRESHOLD, from_logits=False, name=None, dtype=None):
        _check_threshold(threshold)
        checks.boolean("from_logits", from_logits)
        super().__init__(name=name or self.default_name, dtype=dtype)
        self.threshold = threshold
        self.from_logits = from_logits
        self.true_positives = self.add_variable((), "zeros", name="true_positives")
        self.false_positives = self.add_variable((), "zeros", name="false_positives")
        self.false_negatives = self.add_variable((), "zeros", name="false_negatives")
        self.true_negatives = self.add_variable((), "zeros", name="true_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the batch's pixel counts to the state.

        Args:
            y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``.
            y_pred: Model output, see ``skyseg_tf.losses.sky_probability``.
            sample_weight: Optional per-image ``(B,)`` or per-pixel weights.
        """
        truth, prediction, valid = _binary_inputs(y_true, y_pred, self.from_logits, self.threshold)
        weight = _pixel_weights(sample_weight, truth, valid)
        positive = weight * prediction
        negative = weight - positive
        self.true_positives.assign_add(ops.cast(ops.sum(positive * truth), self.dtype))
        self.false_positives.assign_add(ops.cast(ops.sum(positive * (1.0 - truth)), self.dtype))
        self.false_negatives.assign_add(ops.cast(ops.sum(negative * truth), self.dtype))
        self.true_negatives.assign_add(ops.cast(ops.sum(negative * (1.0 - truth)), self.dtype))

    def get_config(self):
        return {
            "threshold": self.threshold,
            "from_logits": self.from_logits,
            **super().get_config(),
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SkyIoU(_SkyConfusionMetric):
    """Intersection over union of the sky class, ``TP / (TP + FP + FN)``, over all pixels.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"iou"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = SkyIoU()
        >>> m.update_state(np.array([[[[1], [1], [0]]]]), np.array([[[[0.9], [0.1], [0.8]]]]))
        >>> round(float(m.result()), 4)  # TP=1, FN=1, FP=1
        0.3333
    """

    default_name = "iou"

    def result(self):
        tp = self.true_positives
        return ops.divide_no_nan(tp, tp + self.false_positives + self.false_negatives)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SkyDice(_SkyConfusionMetric):
    """Dice (F1) of the sky class, ``2 TP / (2 TP + FP + FN)``, over all pixels.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"dice"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = SkyDice()
        >>> m.update_state(np.array([[[[1], [1], [0]]]]), np.array([[[[0.9], [0.1], [0.8]]]]))
        >>> float(m.result())  # 2 / (2 + 1 + 1)
        0.5
    """

    default_name = "dice"

    def result(self):
        tp2 = 2.0 * self.true_positives
        return ops.divide_no_nan(tp2, tp2 + self.false_positives + self.false_negatives)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PixelAccuracy(_SkyConfusionMetric):
    """Fraction of pixels classified correctly, ``(TP + TN) / all``.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"pixel_accuracy"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = PixelAccuracy()
        >>> m.update_state(np.array([[[[1], [1], [0], [0]]]]), np.full((1, 1, 4, 1), 0.9))
        >>> float(m.result())
        0.5
    """

    default_name = "pixel_accuracy"

    def result(self):
        correct = self.true_positives + self.true_negatives
        wrong = self.false_positives + self.false_negatives
        return ops.divide_no_nan(correct, correct + wrong)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SkyPrecision(_SkyConfusionMetric):
    """Precision of the sky class, ``TP / (TP + FP)``, over all pixels.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"precision"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = SkyPrecision()
        >>> m.update_state(np.array([[[[1], [1], [0], [0]]]]), np.full((1, 1, 4, 1), 0.9))
        >>> float(m.result())
        0.5
    """

    default_name = "precision"

    def result(self):
        tp = self.true_positives
        return ops.divide_no_nan(tp, tp + self.false_positives)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SkyRecall(_SkyConfusionMetric):
    """Recall of the sky class, ``TP / (TP + FN)``, over all pixels.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"recall"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = SkyRecall()
        >>> m.update_state(np.array([[[[1], [1], [0], [0]]]]), np.full((1, 1, 4, 1), 0.9))
        >>> float(m.result())
        1.0
    """

    default_name = "recall"

    def result(self):
        tp = self.true_positives
        return ops.divide_no_nan(tp, tp + self.false_negatives)


# ------------------------------------------------------------------------------ AUC


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SkyAUC(keras.metrics.AUC):
    """ROC AUC of the sky probability over all pixels.

    ``keras.metrics.AUC`` (threshold buckets accumulated as state, trapezoidal rule)
    applied to the sky channel, so it accepts the one- and two-channel outputs and
    logits like the other metrics. Its resolution is ``1 / (num_thresholds - 1)``:
    probabilities in the same bucket count as ties.

    Args:
        num_thresholds: Number of evenly spaced thresholds in ``[0, 1]``, ``> 1``.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"auc"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> m = SkyAUC()
        >>> y_true = np.array([0, 0, 1, 1]).reshape(1, 2, 2, 1)
        >>> y_pred = np.array([0.1, 0.4, 0.35, 0.8]).reshape(1, 2, 2, 1)
        >>> m.update_state(y_true, y_pred)
        >>> round(float(m.result()), 2)
        0.75
    """

    def __init__(
        self,
        num_thresholds=DEFAULT_NUM_THRESHOLDS,
        from_logits=False,
        name="auc",
        dtype=None,
    ):
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral):
            raise TypeError(
                f"`num_thresholds` must be an integer > 1; received {num_thresholds!r}."
            )
        checks.boolean("from_logits", from_logits)
        # The sky reduction below applies the sigmoid/softmax itself, so the parent
        # always receives probabilities.
        super().__init__(num_thresholds=num_thresholds, name=name, dtype=dtype, from_logits=False)
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the batch's per-threshold pixel counts to the state.

        Args:
            y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``.
            y_pred: Model output, see ``skyseg_tf.losses.sky_probability``.
            sample_weight: Optional per-image ``(B,)`` or per-pixel weights.
        """
        p = sky_probability(y_pred, self.from_logits)
        target, valid = sky_target_and_valid(y_true, p)
        truth = ops.cast(target >= 0.5, "float32")
        super().update_state(truth, p, sample_weight=_pixel_weights(sample_weight, p, valid))

    def get_config(self):
        return {
            "num_thresholds": self.num_thresholds,
            "from_logits": self.from_logits,
            "name": self.name,
            "dtype": self.dtype,
        }


# -------------------------------------------------------------------- boundary score


def _erode(mask):
    """3x3 binary erosion; pixels outside the image are ignored (not background)."""
    return -ops.max_pool(-mask, 3, strides=1, padding="same", data_format="channels_last")


def _dilate(mask, radius):
    """Square dilation by ``radius`` pixels (Chebyshev distance)."""
    if radius == 0:
        return mask
    return ops.max_pool(
        mask, 2 * radius + 1, strides=1, padding="same", data_format="channels_last"
    )


def sky_boundary(mask):
    """Inner boundary of a binary sky mask: sky pixels with a non-sky 8-neighbour.

    Computed as ``mask - erode(mask)`` with a 3x3 erosion. The image frame is not a
    boundary: a sky region touching the top of the image has no edge there.

    Args:
        mask: Float ``{0, 1}`` tensor of shape ``(B, H, W, 1)``.

    Returns:
        Float ``{0, 1}`` tensor of the same shape, 1 on boundary pixels.

    Example:
        >>> import numpy as np
        >>> mask = np.array([1, 1, 0, 0], "float32").reshape(1, 4, 1, 1)  # sky on top
        >>> ops.convert_to_numpy(sky_boundary(mask))[0, :, 0, 0].tolist()
        [0.0, 1.0, 0.0, 0.0]
    """
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) != 4:
        raise ValueError(
            f"Boundaries need masks shaped (B, H, W, 1); received shape {tuple(mask.shape)}."
        )
    return mask - _erode(mask)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BoundaryFScore(keras.metrics.Metric):
    """Boundary F1 score (BF score, Csurka et al. 2013) of the sky edge.

    Boundaries are the inner boundaries of the thresholded prediction and of the
    ground truth (see :func:`sky_boundary`). A predicted boundary pixel is matched when
    a ground-truth boundary pixel lies within ``tolerance`` pixels (square neighbourhood,
    Chebyshev distance), and vice versa. Matched and total boundary pixels are summed
    over all images, then ``P = matched_pred / total_pred``, ``R = matched_true /
    total_true`` and ``F = 2PR / (P + R)``.

    Edge cases: with no predicted boundary at all ``P = 1`` (nothing wrong was drawn);
    with no true boundary ``R = 1``. So a state with no boundary on either side (e.g.
    all-sky images predicted all sky, or a fresh state) gives ``F = 1``, a missing
    prediction of an existing edge gives ``F = 0``, and no input produces NaN.

    Args:
        tolerance: Distance in pixels within which boundary pixels match, ``>= 0``.
        threshold: Sky probability at or above which a pixel is predicted sky.
        from_logits: Whether the model outputs logits.
        name: Metric name, default ``"boundary_f"``.
        dtype: Dtype of the state and result.

    Example:
        >>> import numpy as np
        >>> y_true = np.array([1, 1, 0, 0], "float32").reshape(1, 4, 1, 1)
        >>> y_pred = np.array([1, 0, 0, 0], "float32").reshape(1, 4, 1, 1)  # 1 px off
        >>> m = BoundaryFScore(tolerance=1)
        >>> m.update_state(y_true, y_pred)
        >>> float(m.result())
        1.0
    """

    def __init__(
        self,
        tolerance=DEFAULT_BOUNDARY_TOLERANCE,
        threshold=DEFAULT_THRESHOLD,
        from_logits=False,
        name="boundary_f",
        dtype=None,
    ):
        if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Integral):
            raise TypeError(
                f"`tolerance` must be a whole number of pixels; received {tolerance!r}."
            )
        if tolerance < 0:
            raise ValueError(f"`tolerance` must be >= 0 pixels; received {tolerance!r}.")
        _check_threshold(threshold)
        checks.boolean("from_logits", from_logits)
        super().__init__(name=name, dtype=dtype)
        self.tolerance = int(tolerance)
        self.threshold = threshold
        self.from_logits = from_logits
        self.matched_predicted = self.add_variable((), "zeros", name="matched_predicted")
        self.total_predicted = self.add_variable((), "zeros", name="total_predicted")
        self.matched_true = self.add_variable((), "zeros", name="matched_true")
        self.total_true = self.add_variable((), "zeros", name="total_true")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the batch's matched and total boundary pixels to the state.

        Args:
            y_true: Sky mask, ``(B, H, W, 1)`` or ``(B, H, W)``.
            y_pred: Model output, see ``skyseg_tf.losses.sky_probability``.
            sample_weight: Optional per-image ``(B,)`` or per-pixel weights, applied to
                the boundary pixels.
        """
        truth, prediction, valid = _binary_inputs(y_true, y_pred, self.from_logits, self.threshold)
        true_edge = sky_boundary(truth)
        predicted_edge = sky_boundary(prediction)
        weight = _pixel_weights(sample_weight, truth, valid)
        true_edge_w = weight * true_edge
        predicted_edge_w = weight * predicted_edge
        near_true = _dilate(true_edge, self.tolerance)
        near_predicted = _dilate(predicted_edge, self.tolerance)
        updates = (
            (self.matched_predicted, predicted_edge_w * near_true),
            (self.total_predicted, predicted_edge_w),
            (self.matched_true, true_edge_w * near_predicted),
            (self.total_true, true_edge_w),
        )
        for variable, values in updates:
            variable.assign_add(ops.cast(ops.sum(values), self.dtype))

    def result(self):
        precision = ops.where(
            self.total_predicted > 0,
            ops.divide_no_nan(self.matched_predicted, self.total_predicted),
            1.0,
        )
        recall = ops.where(
            self.total_true > 0,
            ops.divide_no_nan(self.matched_true, self.total_true),
            1.0,
        )
        return ops.cast(
            ops.divide_no_nan(2.0 * precision * recall, precision + recall), self.dtype
        )

    def get_config(self):
        return {
            "tolerance": self.tolerance,
            "threshold": self.threshold,
            "from_logits": self.from_logits,
            **super().get_config(),
        }


def false_sky_figures(false_positives, other_pixels) -> dict:
    """False-sky figures of a set of photos from their per-photo counts.

    Args:
        false_positives: per photo, labelled non-sky pixels called sky.
        other_pixels: per photo, labelled non-sky pixels.

    Returns:
        ``{"false_sky", "over_1pct", "over_5pct", "photos"}``: the pooled share of non-sky pixels
        called sky, the share of photos (those with non-sky pixels) above each of
        :data:`FALSE_SKY_LEVELS`, and how many photos those shares count.

    Example:
        >>> false_sky_figures([2, 0, 0], [100, 100, 0])
        {'false_sky': 0.01, 'photos': 2, 'over_1pct': 0.5, 'over_5pct': 0.0}
    """
    fp = np.asarray(false_positives, np.float64).reshape(-1)
    other = np.asarray(other_pixels, np.float64).reshape(-1)
    counted = other > 0
    shares = fp[counted] / other[counted]
    total = float(other.sum())
    figures = {"false_sky": float(fp.sum()) / total if total else 0.0, "photos": int(shares.size)}
    for level, key in zip(FALSE_SKY_LEVELS, ("over_1pct", "over_5pct")):
        figures[key] = float(np.mean(shares > level)) if shares.size else 0.0
    return figures


def confusion_counts(masks, probabilities, threshold=DEFAULT_THRESHOLD):
    """Per-image pixel counts ``{"tp", "fp", "fn", "tn"}`` (NumPy, shape ``(B,)`` each).

    The one place that turns a batch of ground-truth masks and sky probabilities into counts for
    per-image figures (evaluation reports, per-source validation): sky where the mask is
    ``>= 0.5``, predicted sky where the probability is ``>= threshold``, and void pixels
    (:data:`~skyseg_tf.outputs.VOID_LABEL`) in no count.

    Args:
        masks: ``(B, H, W)`` or ``(B, H, W, 1)``: 1 sky, 0 other, 2 void.
        probabilities: sky probabilities of the same shape (or without the channel axis).
        threshold: the sky probability at or above which a pixel is predicted sky.

    Example:
        >>> import numpy as np
        >>> counts = confusion_counts(np.array([[[1, 0, 2, 0]]]), np.array([[[0.9, 0.8, 0.9, 0.1]]]))
        >>> {k: int(v[0]) for k, v in counts.items()}
        {'tp': 1, 'fp': 1, 'fn': 0, 'tn': 1}
    """
    masks = np.asarray(masks, np.float32)
    probabilities = np.asarray(probabilities, np.float32)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if probabilities.ndim == 4 and probabilities.shape[-1] == 1:
        probabilities = probabilities[..., 0]
    if masks.shape != probabilities.shape:
        raise ValueError(f"confusion_counts: masks {masks.shape} and probabilities "
                         f"{probabilities.shape} must have the same shape.")
    valid = masks < 0.5 * (1 + VOID_LABEL)
    truth = (masks >= 0.5) & valid
    predicted = (probabilities >= threshold) & valid
    axes = tuple(range(1, masks.ndim))
    return {
        "tp": np.sum(predicted & truth, axis=axes),
        "fp": np.sum(predicted & ~truth & valid, axis=axes),
        "fn": np.sum(~predicted & truth, axis=axes),
        "tn": np.sum(~predicted & ~truth & valid, axis=axes),
    }


def default_metrics(threshold=DEFAULT_THRESHOLD, from_logits=False):
    """The metrics used by training and evaluation, in report order.

    Names: ``iou``, ``dice``, ``auc``, ``pixel_accuracy``, ``precision``, ``recall``,
    ``boundary_f``.

    Args:
        threshold: Sky probability at or above which a pixel is predicted sky (all
            thresholded metrics).
        from_logits: Whether the model outputs logits.

    Returns:
        A new list of metric instances (fresh state).

    Example:
        >>> [m.name for m in default_metrics()]
        ['iou', 'dice', 'auc', 'pixel_accuracy', 'precision', 'recall', 'boundary_f']
    """
    common = {"threshold": threshold, "from_logits": from_logits}
    return [
        SkyIoU(**common),
        SkyDice(**common),
        SkyAUC(from_logits=from_logits),
        PixelAccuracy(**common),
        SkyPrecision(**common),
        SkyRecall(**common),
        BoundaryFScore(**common),
    ]


__all__ = [
    "BoundaryFScore",
    "DEFAULT_BOUNDARY_TOLERANCE",
    "DEFAULT_NUM_THRESHOLDS",
    "DEFAULT_THRESHOLD",
    "FALSE_SKY_LEVELS",
    "PixelAccuracy",
    "SkyAUC",
    "SkyDice",
    "SkyIoU",
    "SkyPrecision",
    "SkyRecall",
    "confusion_counts",
    "false_sky_figures",
    "default_metrics",
    "sky_boundary",
]
