"""Validation on several sources at once: per-source figures each epoch and one selection score.

A model trained on a mix of sources (street photos, close-ups, interiors without sky, synthetic
scenes) must not be chosen on one of them alone. :class:`PerSourceValidation` runs the model on
the validation split of each validated source at the end of every epoch and writes into the
epoch's logs (so the history CSV, TensorBoard, ``ModelCheckpoint`` and ``EarlyStopping`` see
them):

* for a source with masks: ``val_<name>_iou`` (dataset IoU over its labelled pixels);
* for every source: ``val_<name>_false_sky`` (share of its labelled non-sky pixels predicted sky)
  and ``val_<name>_over_1pct`` / ``val_<name>_over_5pct`` (share of its photos in which more than
  1% / 5% of the labelled non-sky pixels are predicted sky);
* ``val_iou``: the IoU pooled over the sources with masks; ``val_loss``: the loss over all;
* ``val_score``: the mean over the sources of ``iou`` (sources with masks) or ``1 - over_1pct``
  (negatives sources, photos without sky): a model that paints ceilings as sky or loses the
  street photos scores lower either way.

``TrainConfig.monitor`` names the figure that picks the best epoch (``"val_score"`` in the
shipped recipe). Void pixels (:data:`~skyseg_tf.outputs.VOID_LABEL`) count nowhere.

Example:
    >>> scores = {"labelmefacade": {"iou": 0.9}, "houses": {"over_1pct": 0.1}}
    >>> round(selection_score(scores, negatives={"houses"}), 3)
    0.9
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np

from skyseg_tf.metrics import DEFAULT_THRESHOLD, confusion_counts, false_sky_figures
from skyseg_tf.outputs import sky_probability

LOWER_IS_BETTER = ("_loss", "_false_sky", "_over_1pct", "_over_5pct")
"""Endings of the logged figures for which lower is better (``monitor`` is then minimised)."""


def monitor_mode(monitor: str) -> str:
    """``"min"`` for a figure where lower is better (losses, false sky), else ``"max"``.

    Example:
        >>> monitor_mode("val_score"), monitor_mode("val_interiors_over_1pct")
        ('max', 'min')
    """
    return "min" if monitor.endswith(LOWER_IS_BETTER) else "max"


@dataclasses.dataclass
class ValidationSource:
    """One validated source: its name (``[a-z0-9_]+``), batches ``(images, masks)`` and whether
    it is a negatives source (photos without sky)."""

    name: str
    dataset: object
    negative: bool = False


def source_name(spec) -> str:
    """A short name for a source spec: its ``name``, else its folder's, else its type.

    A folder called ``images`` is named after its parent (``.../labelmefacade/images`` gives
    ``labelmefacade``).

    Example:
        >>> source_name({"type": "folder", "images": "../shared/data/msrc_v2/images", "masks": "m"})
        'msrc_v2'
        >>> source_name({"type": "synthetic"}), source_name({"type": "tfds", "name": "a/b"})
        ('synthetic', 'a_b')
    """
    import os

    if isinstance(spec, dict) and spec.get("name") and spec.get("type") != "tfds":
        raw = str(spec["name"])
    elif isinstance(spec, dict) and spec.get("type") in ("folder", "negatives"):
        path = os.path.normpath(os.fspath(spec.get("images", spec.get("images_dir", "folder"))))
        raw = os.path.basename(path)
        if raw.lower() == "images":
            raw = os.path.basename(os.path.dirname(path)) or raw
    elif isinstance(spec, dict) and spec.get("type") == "tfds":
        raw = str(spec.get("name", "tfds"))
    elif isinstance(spec, dict):
        raw = str(spec.get("type", "source"))
    else:
        raw = str(spec)
    return re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_") or "source"


def selection_score(figures: dict, negatives: set) -> float:
    """The mean over sources of ``iou`` (sources with masks) or ``1 - over_1pct`` (negatives).

    Example:
        >>> selection_score({"a": {"iou": 0.8}, "b": {"over_1pct": 0.2}}, negatives={"b"})
        0.8
    """
    parts = [1.0 - values["over_1pct"] if name in negatives else values["iou"]
             for name, values in figures.items()]
    return float(np.mean(parts)) if parts else float("nan")


def source_figures(model, dataset, *, negative: bool, threshold: float = DEFAULT_THRESHOLD,
                   from_logits: bool = False, loss=None) -> dict:
    """IoU, false-sky figures and mean loss of ``model`` on the batches of one source.

    Returns:
        ``{"iou", "false_sky", "over_1pct", "over_5pct", "loss", "images"}`` (``iou`` only for a
        source with masks); every figure counts labelled pixels only.

    Example:
        >>> import numpy as np
        >>> class Half:
        ...     def predict_on_batch(self, images):
        ...         return np.concatenate([np.ones((1, 1, 2, 1)), np.zeros((1, 1, 2, 1))], 2)
        >>> masks = np.array([[[[1], [2], [0], [0]]]], "float32")
        >>> figures = source_figures(Half(), [(np.zeros((1, 1, 4, 3)), masks)], negative=False)
        >>> figures["iou"], figures["false_sky"]
        (1.0, 0.0)
    """
    tp = fp = fn = 0.0
    photo_fp, photo_other, losses = [], [], []
    for batch in dataset:
        images, masks = batch[0], np.asarray(batch[1], np.float32)
        output = model.predict_on_batch(images)
        probability = np.asarray(sky_probability(output, from_logits), np.float32)
        if loss is not None:
            losses.append(float(np.mean(keras.ops.convert_to_numpy(loss(masks, output)))))
        counts = confusion_counts(masks, probability, threshold)
        tp += float(np.sum(counts["tp"]))
        fp += float(np.sum(counts["fp"]))
        fn += float(np.sum(counts["fn"]))
        photo_fp.extend(np.asarray(counts["fp"]).reshape(-1).tolist())
        photo_other.extend(np.asarray(counts["fp"] + counts["tn"]).reshape(-1).tolist())
    false_sky = false_sky_figures(photo_fp, photo_other)
    figures = {
        "false_sky": false_sky["false_sky"],
        "over_1pct": false_sky["over_1pct"],
        "over_5pct": false_sky["over_5pct"],
        "images": false_sky["photos"],
        "tp": tp, "fp": fp, "fn": fn,
    }
    if losses:
        figures["loss"] = float(np.mean(losses))
    if not negative:
        figures["iou"] = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return figures


class PerSourceValidation(keras.callbacks.Callback):
    """Logs per-source validation figures, ``val_iou``, ``val_loss`` and ``val_score`` each epoch.

    Put it before ``ModelCheckpoint``/``EarlyStopping`` in the callback list: they read the
    figures from the same logs.

    Args:
        sources: the :class:`ValidationSource` list (names unique).
        threshold: sky probability at or above which a pixel is predicted sky.
        from_logits: whether the model outputs logits.
    """

    def __init__(self, sources, threshold: float = DEFAULT_THRESHOLD, from_logits: bool = False):
        super().__init__()
        names = [source.name for source in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"validation sources need distinct names, received {names}; give "
                             "each source spec its own 'name'.")
        self.sources = list(sources)
        self.threshold = threshold
        self.from_logits = from_logits

    def log_keys(self) -> list[str]:
        """Every key this callback writes into the logs (what ``monitor`` may name)."""
        keys = ["val_iou", "val_loss", "val_score"]
        for source in self.sources:
            if not source.negative:
                keys.append(f"val_{source.name}_iou")
            keys += [f"val_{source.name}_{k}" for k in ("false_sky", "over_1pct", "over_5pct")]
        return keys

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update(self.evaluate())

    def evaluate(self) -> dict:
        """The figures of the current model, keyed as in the logs."""
        loss = getattr(self.model, "loss", None)
        loss = loss if callable(loss) else None
        figures, logs = {}, {}
        for source in self.sources:
            values = source_figures(self.model, source.dataset, negative=source.negative,
                                    threshold=self.threshold, from_logits=self.from_logits,
                                    loss=loss)
            figures[source.name] = values
            for key in ("iou", "false_sky", "over_1pct", "over_5pct"):
                if key in values:
                    logs[f"val_{source.name}_{key}"] = values[key]
        masked = [v for s, v in zip(self.sources, figures.values()) if not s.negative]
        tp, fp, fn = (sum(v[k] for v in masked) for k in ("tp", "fp", "fn"))
        logs["val_iou"] = tp / (tp + fp + fn) if masked and tp + fp + fn else float("nan")
        losses = [v["loss"] for v in figures.values() if "loss" in v]
        logs["val_loss"] = float(np.mean(losses)) if losses else float("nan")
        logs["val_score"] = selection_score(
            figures, {s.name for s in self.sources if s.negative})
        return logs


__all__ = ["LOWER_IS_BETTER", "PerSourceValidation", "monitor_mode", "ValidationSource", "selection_score",
           "source_figures", "source_name"]
