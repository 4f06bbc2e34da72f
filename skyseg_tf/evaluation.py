"""Evaluation report: the study's Table 1 (IoU, ROC AUC) and more, for one or several models.

:func:`evaluate_models` runs each model over a test split and reports, side by side,

* at the model input size (images resized by ``make_dataset``, masks by nearest neighbour):
  IoU, ROC AUC, Dice, pixel accuracy, precision, recall and boundary F
  (:func:`skyseg_tf.metrics.default_metrics`; dataset-level sums, not means of per-image values);
* with ``original_resolution=True``, the same metrics at each image's own resolution: the
  prediction is resized back bilinearly, then thresholded, and compared with the native mask
  (read from the element source, not the resized pipeline);
* throughput in images per second (the model's forward passes during the evaluation, excluding
  data loading and the first, compiling, call of each batch shape);
* per-image IoU, to list the worst images.

It writes ``metrics.md`` (Markdown tables), ``metrics.json`` and two figures per model
(:func:`skyseg_tf.visualization.prediction_grid`): ``examples_<model>.png`` with the first test
images and ``worst_<model>.png`` with the lowest-IoU ones.

Example:
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> report = evaluate_models([model], "synthetic", image_size=(64, 64), batch_size=2,
    ...                          source_kwargs={"num_examples": 10}, progress=False)
    >>> sorted(report.models[0].metrics)[:3]
    ['auc', 'boundary_f', 'dice']
"""

from __future__ import annotations

import collections.abc
import dataclasses
import heapq
import json
import os
import pathlib
import re
import time
from typing import Any, Sequence

import numpy as np

from skyseg_tf.data.sources import renders_synthetic_without_size
from skyseg_tf.inference import as_predictor, model_name, resize_probabilities
from skyseg_tf.metrics import DEFAULT_THRESHOLD, FALSE_SKY_LEVELS, confusion_counts, default_metrics, false_sky_figures
from skyseg_tf.outputs import VOID_LABEL
from skyseg_tf.presets import list_presets

METRIC_LABELS = {
    "iou": "IoU",
    "auc": "ROC AUC",
    "dice": "Dice",
    "pixel_accuracy": "Pixel acc.",
    "precision": "Precision",
    "recall": "Recall",
    "boundary_f": "Boundary F",
}
"""Report order and column titles; IoU and ROC AUC first, as in the study's Table 1."""

WORST_IN_TABLE = 5
"""How many of the worst images per model the Markdown report lists."""


@dataclasses.dataclass
class ModelEvaluation:
    """The evaluation of one model.

    Attributes:
        name: Display name (the file stem for a path, else the Keras model name).
        path: The model file or folder, if the model was given as a path.
        metrics: Metric name -> value at the model input size (keys of :data:`METRIC_LABELS`).
        original_metrics: The same at each image's original resolution, or ``None``.
        images_per_second: Forward-pass throughput during the evaluation.
        num_images: Images evaluated.
        per_image: ``[{"file_name", "iou", "iou_original"?}]`` in data order.
        worst: The lowest-IoU entries of ``per_image``, worst first (ranked by the original
            resolution IoU when measured).
        figures: ``{"examples": path, "worst": path}`` when figures were written.
        false_sky: What it calls sky where there is none (:func:`false_sky_summary`): the share
            of all labelled non-sky pixels predicted sky, and the share of photos in which more
            than 1% / 5% of them are; the only figures that mean something on photos without sky.
        has_sky: Whether the ground truth holds any sky pixel (``False`` for a negatives
            source: IoU, recall and AUC are undefined there and the report leaves them out).
    """

    name: str
    path: str | None
    metrics: dict
    original_metrics: dict | None
    images_per_second: float
    num_images: int
    per_image: list
    worst: list
    figures: dict = dataclasses.field(default_factory=dict)
    false_sky: dict = dataclasses.field(default_factory=dict)
    has_sky: bool = True

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EvaluationReport:
    """All models of one evaluation, and the report text.

    Attributes:
        models: One :class:`ModelEvaluation` per model, in the order given.
        settings: Source, split, image size, threshold and the other options.
        markdown: The Markdown report (also written to ``metrics.md``); ``str(report)``.
        files: ``{"markdown", "json"}`` paths when ``out_dir`` was given.
    """

    models: list
    settings: dict
    markdown: str
    files: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (what ``metrics.json`` holds)."""
        return {"settings": self.settings, "models": [m.to_dict() for m in self.models]}

    def __str__(self) -> str:
        return self.markdown


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


# File names every run uses; a model saved under one of them is named after its folder.
GENERIC_MODEL_FILE_NAMES = ("best", "model", "last", "final")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _unique_names(names):
    seen = collections.Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _resolve(models):
    if isinstance(models, (str, os.PathLike)) or not isinstance(models, collections.abc.Sequence):
        models = [models]
    if not models:
        raise ValueError("model_paths_or_models: received an empty list; pass at least one model or path.")
    resolved = []
    for entry in models:
        if isinstance(entry, str) and not os.path.exists(entry) and entry in list_presets():
            from skyseg_tf.presets import from_preset

            resolved.append((entry, None, as_predictor(from_preset(entry))))
        elif isinstance(entry, (str, os.PathLike)):
            path = pathlib.Path(entry)
            predictor = as_predictor(path)
            name = path.stem if path.is_file() else path.name
            if name in GENERIC_MODEL_FILE_NAMES:  # runs/unet_resnet50/best.keras -> "unet_resnet50"
                name = path.resolve().parent.name or name
            resolved.append((name, str(path), predictor))
        else:
            predictor = as_predictor(entry)
            resolved.append((model_name(predictor.model), None, predictor))
    names = _unique_names([name for name, _, _ in resolved])
    return [(name, path, predictor) for name, (_, path, predictor) in zip(names, resolved)]


def _image_entries(file_names, masks, probabilities, threshold) -> list[dict]:
    """Per-image ``{"file_name", "iou", "false_sky", "sky_pixels", "other_pixels", "fp"}``.

    ``iou`` is 1.0 when neither truth nor prediction has sky; ``false_sky`` (the share of the
    labelled non-sky pixels predicted sky) is ``None`` when the image has none. Void pixels
    count nowhere.
    """
    counts = confusion_counts(masks, probabilities, threshold)
    entries = []
    for k, file_name in enumerate(file_names):
        tp, fp, fn, tn = (int(counts[key][k]) for key in ("tp", "fp", "fn", "tn"))
        union = tp + fp + fn
        entries.append({
            "file_name": file_name,
            "iou": 1.0 if union == 0 else tp / union,
            "false_sky": fp / (fp + tn) if fp + tn else None,
            "sky_pixels": tp + fn,
            "other_pixels": fp + tn,
            "fp": fp,
        })
    return entries


def _badness(entry) -> float:
    """How wrong an image is: ``1 - IoU`` where it has sky, its false-sky share where it has none."""
    iou = entry.get("iou_original", entry["iou"])
    if entry["sky_pixels"] == 0:
        return entry["false_sky"] or 0.0
    return 1.0 - iou


def _caption(entry) -> str:
    if entry["sky_pixels"] == 0:
        return f"{entry['file_name']}  false sky {100 * (entry['false_sky'] or 0.0):.1f}%"
    return f"{entry['file_name']}  IoU {entry.get('iou_original', entry['iou']):.3f}"


def false_sky_summary(per_image: Sequence[dict]) -> dict:
    """Pooled false-sky fraction and the share of photos over each of :data:`FALSE_SKY_LEVELS`.

    Counts photos that have labelled non-sky pixels; ``photos_without_sky`` counts those that
    have no sky at all in their ground truth.

    Example:
        >>> entries = [{"false_sky": 0.02, "fp": 2, "other_pixels": 100, "sky_pixels": 0},
        ...            {"false_sky": 0.0, "fp": 0, "other_pixels": 100, "sky_pixels": 50}]
        >>> summary = false_sky_summary(entries)
        >>> summary["false_sky"], summary["over_1pct"], summary["over_5pct"]
        (0.01, 0.5, 0.0)
    """
    figures = false_sky_figures([e["fp"] for e in per_image], [e["other_pixels"] for e in per_image])
    return {"false_sky": figures["false_sky"], "photos": figures["photos"],
            "photos_without_sky": sum(1 for e in per_image if e["sky_pixels"] == 0),
            "over_1pct": figures["over_1pct"], "over_5pct": figures["over_5pct"]}


def _standard_mask(mask: np.ndarray) -> np.ndarray:
    """A source's ``uint8`` mask as float32 ``0``/``1``/``VOID_LABEL`` (0/255 masks: 255 is sky)."""
    mask = np.asarray(mask)
    return np.where(mask == VOID_LABEL, float(VOID_LABEL), (mask > 0).astype(np.float32)).astype(np.float32)


def _results(metrics) -> dict:
    return {metric.name: float(metric.result()) for metric in metrics}


def _format(value) -> str:
    return "-" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------


def _evaluate_one(name, path, predictor, make_batches, make_elements, threshold, original_resolution,
                  num_figure_examples, out_dir, progress):
    metrics = default_metrics(threshold=threshold)
    original = default_metrics(threshold=threshold) if original_resolution else None
    per_image = []
    examples = []
    worst_heap = []  # (badness, -order, image, mask, probability, caption): the worst kept
    seen_shapes = set()
    timed_images = 0
    timed_seconds = 0.0
    first_batch = None
    elements = make_elements().as_numpy_iterator() if original_resolution else None
    batches = make_batches()
    iterator = batches.as_numpy_iterator()
    if progress:
        from tqdm.auto import tqdm

        total = int(batches.cardinality())
        iterator = tqdm(iterator, desc=f"evaluate {name}", unit="batch", total=total if total > 0 else None)
    order = 0
    for images, masks, file_names in iterator:
        start = time.perf_counter()
        probabilities = predictor(images)
        seconds = time.perf_counter() - start
        if images.shape in seen_shapes:
            timed_images += len(images)
            timed_seconds += seconds
        else:  # the first call of a shape compiles; it does not count as throughput
            seen_shapes.add(images.shape)
            if first_batch is None:
                first_batch = images
        for metric in metrics:
            metric.update_state(masks, probabilities[..., None])
        names = [name.decode("utf-8", "replace") for name in file_names]
        for k, entry in enumerate(_image_entries(names, masks, probabilities, threshold)):
            file_name = entry["file_name"]
            if original_resolution:
                element = next(elements)
                element_name = element["file_name"].decode("utf-8", "replace")
                if element_name != file_name:
                    raise RuntimeError(
                        f"the element source and the batched pipeline disagree on the order of "
                        f"images ({element_name!r} vs {file_name!r}); use a source with a fixed order."
                    )
                native_mask = _standard_mask(element["segmentation_mask"])[None]
                height, width = native_mask.shape[1:3]
                native = resize_probabilities(probabilities[k][None, ..., None], (height, width)).numpy()
                for metric in original:
                    metric.update_state(native_mask, native)
                native_entry = _image_entries([file_name], native_mask, native, threshold)[0]
                entry = {**native_entry, "iou": entry["iou"], "iou_original": native_entry["iou"]}
            per_image.append(entry)
            if num_figure_examples:
                item = (images[k].astype(np.uint8), masks[k, ..., 0], probabilities[k])
                caption = _caption(entry)
                if len(examples) < num_figure_examples:
                    examples.append((*item, caption))
                heapq.heappush(worst_heap, (_badness(entry), -order, *item, caption))
                if len(worst_heap) > num_figure_examples:
                    heapq.heappop(worst_heap)  # drops the best of the kept
            order += 1
    if not per_image:
        raise ValueError("the source yielded no images for this split; check the source and split.")
    if timed_images == 0 and first_batch is not None:  # one batch shape only: time it once more
        start = time.perf_counter()
        predictor(first_batch)
        timed_seconds = time.perf_counter() - start
        timed_images = len(first_batch)
    worst = sorted(per_image, key=_badness, reverse=True)[:max(WORST_IN_TABLE, num_figure_examples)]
    evaluation = ModelEvaluation(
        name=name,
        path=path,
        metrics=_results(metrics),
        original_metrics=_results(original) if original_resolution else None,
        images_per_second=timed_images / timed_seconds if timed_seconds > 0 else float("nan"),
        num_images=len(per_image),
        per_image=per_image,
        worst=worst,
        false_sky=false_sky_summary(per_image),
        has_sky=any(e["sky_pixels"] for e in per_image),
    )
    if out_dir is not None and num_figure_examples:
        _write_figures(evaluation, name, examples, worst_heap, out_dir, threshold)
    return evaluation


def _evaluate_native(name, path, predictor, make_elements, threshold, num_figure_examples, out_dir, progress):
    """Each image predicted the way ``predict_image`` does by default (the model's own scale),
    scored at the image's own resolution: what a user of the model gets."""
    from skyseg_tf.inference import predict_image

    metrics = default_metrics(threshold=threshold)
    per_image, examples, worst_heap = [], [], []
    seconds = 0.0
    iterator = make_elements().as_numpy_iterator()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"evaluate {name}", unit="image")
    for order, element in enumerate(iterator):
        image = element["image"]
        truth = _standard_mask(element["segmentation_mask"][..., 0])
        start = time.perf_counter()
        probability = predict_image(predictor, image)
        if order:  # the first call compiles
            seconds += time.perf_counter() - start
        for metric in metrics:
            metric.update_state(truth[None, ..., None], probability[None, ..., None])
        file_name = element["file_name"].decode("utf-8", "replace")
        entry = _image_entries([file_name], truth[None], probability[None], threshold)[0]
        per_image.append(entry)
        if num_figure_examples:
            thumbnail_truth = _thumbnail(truth)
            item = (_thumbnail(image).astype(np.uint8),
                    np.where(thumbnail_truth > 1.25, float(VOID_LABEL), thumbnail_truth >= 0.5).astype(np.float32),
                    _thumbnail(probability))
            caption = _caption(entry)
            if len(examples) < num_figure_examples:
                examples.append((*item, caption))
            heapq.heappush(worst_heap, (_badness(entry), -order, *item, caption))
            if len(worst_heap) > num_figure_examples:
                heapq.heappop(worst_heap)
    if not per_image:
        raise ValueError("the source yielded no images for this split; check the source and split.")
    timed = len(per_image) - 1
    evaluation = ModelEvaluation(
        name=name, path=path, metrics=_results(metrics), original_metrics=None,
        images_per_second=timed / seconds if seconds > 0 else float("nan"),
        num_images=len(per_image), per_image=per_image,
        worst=sorted(per_image, key=_badness, reverse=True)[:max(WORST_IN_TABLE, num_figure_examples)],
        false_sky=false_sky_summary(per_image), has_sky=any(e["sky_pixels"] for e in per_image),
    )
    if out_dir is not None and num_figure_examples:
        _write_figures(evaluation, name, examples, worst_heap, out_dir, threshold)
    return evaluation


_THUMBNAIL = (192, 256)
"""Size of the figure rows when images of several sizes are shown side by side."""


def _thumbnail(array):
    import cv2

    height, width = _THUMBNAIL
    interpolation = cv2.INTER_AREA if array.shape[0] > height else cv2.INTER_LINEAR
    return cv2.resize(np.asarray(array, np.float32), (width, height), interpolation=interpolation)


def _write_figures(evaluation, name, examples, worst_heap, out_dir, threshold):
    from skyseg_tf.visualization import prediction_grid

    slug = _slug(name)
    image, mask, probability, caption = zip(*examples)
    evaluation.figures["examples"] = str(prediction_grid(
        image, mask, probability, out_dir / f"examples_{slug}.png", captions=caption,
        threshold=threshold, title=f"{name}: test examples"))
    ranked = sorted(worst_heap, key=lambda item: (item[0], item[1]), reverse=True)
    image, mask, probability, caption = zip(*(item[2:] for item in ranked))
    title = f"{name}: lowest IoU" if evaluation.has_sky else f"{name}: most false sky"
    evaluation.figures["worst"] = str(prediction_grid(
        image, mask, probability, out_dir / f"worst_{slug}.png", captions=caption,
        threshold=threshold, title=title))


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _table(models, attribute):
    labels = list(METRIC_LABELS.values())
    lines = ["| model | " + " | ".join(labels) + " | images/s |",
             "|---|" + "---:|" * (len(labels) + 1)]
    for model in models:
        values = getattr(model, attribute)
        cells = [_format(values.get(key)) for key in METRIC_LABELS]
        lines.append(f"| {model.name} | " + " | ".join(cells) + f" | {model.images_per_second:.1f} |")
    return lines


def format_markdown(models: Sequence[ModelEvaluation], settings: dict) -> str:
    """The Markdown report: metric tables (models side by side) and the worst images.

    Example:
        >>> m = ModelEvaluation("m", None, {"iou": 0.5}, None, 10.0, 1, [], [])
        >>> print(format_markdown([m], {"split": "test"}).splitlines()[0])
        # Sky segmentation evaluation
    """
    size = settings.get("image_size")
    lines = ["# Sky segmentation evaluation", ""]
    described = ", ".join(f"{key}: {value}" for key, value in settings.items()
                          if key in ("source", "split", "num_images", "threshold"))
    lines += [described, ""]
    with_sky = [model for model in models if model.has_sky]
    if isinstance(size, str):
        lines += ["## At each image's own resolution, each model at its own scale", "",
                  "Every image predicted as predict_image does by default (the scale the model was "
                  "trained at), probabilities resized back to the image; native masks.", ""]
    else:
        lines += [f"## At the model input size ({size[0]}x{size[1]})" if size else "## At the model input size", ""]
    if with_sky:
        lines += _table(with_sky, "metrics")
    else:
        lines += ["The ground truth holds no sky (photos without sky, e.g. a negatives source): IoU, "
                  "recall and ROC AUC are undefined; the false-sky figures below are what counts.", ""]
    lines += ["", "## False sky", "",
              "Sky predicted where the ground truth has none: the share of all labelled non-sky pixels, and the "
              "share of photos in which more than 1% / 5% of their labelled non-sky pixels are called sky "
              "(void pixels count nowhere).", "",
              "| model | false-sky pixels | photos > 1% | photos > 5% | photos | of them without sky | images/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for model in models:
        summary = model.false_sky
        if summary:
            lines.append(f"| {model.name} | {100 * summary['false_sky']:.2f}% | {100 * summary['over_1pct']:.1f}% | "
                         f"{100 * summary['over_5pct']:.1f}% | {summary['photos']} | {summary['photos_without_sky']} | "
                         f"{model.images_per_second:.1f} |")
    lines.append("")
    if any(model.original_metrics is not None for model in with_sky):
        lines += ["", "## At each image's original resolution",
                  "", "Predictions resized back bilinearly, then thresholded; native masks.", ""]
        lines += _table([m for m in with_sky if m.original_metrics is not None], "original_metrics")
    lines += ["", "images/s: " + ("predict_image calls (resize, forward pass, resize back; decoding and "
                                  "the first, compiling call excluded)." if isinstance(size, str) else
                                  "forward passes only (data loading and compilation excluded)."), ""]
    for model in models:
        original = model.original_metrics is not None
        lines += [f"## Worst images: {model.name}", "",
                  "Ranked by 1 - IoU for photos with sky and by false sky for photos without.", "",
                  "| file | IoU |" + (" IoU (original) |" if original else "") + " false sky |",
                  "|---|---:|" + ("---:|" if original else "") + "---:|"]
        for entry in model.worst[:WORST_IN_TABLE]:
            extra = f" {entry['iou_original']:.4f} |" if "iou_original" in entry else (" - |" if original else "")
            false_sky = "-" if entry.get("false_sky") is None else f"{100 * entry['false_sky']:.2f}%"
            iou = f"{entry['iou']:.4f}" if entry.get("sky_pixels", 1) else "-"
            lines.append(f"| {entry['file_name']} | {iou} |{extra} {false_sky} |")
        lines.append("")
    return "\n".join(lines)


def evaluate_models(
    model_paths_or_models: Any,
    source: Any,
    split: str = "test",
    image_size: int | Sequence[int] | None = (256, 256),
    batch_size: int = 8,
    original_resolution: bool = False,
    max_examples: int | None = None,
    out_dir: str | os.PathLike | None = None,
    num_figure_examples: int = 8,
    threshold: float = DEFAULT_THRESHOLD,
    source_kwargs: dict | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Evaluates one or several models on a test split and writes the report.

    Args:
        model_paths_or_models: A model, a path (``.keras`` file or SavedModel folder), or a list
            of them; several models are reported side by side.
        source: A data source spec (see ``skyseg_tf.data.load_source``): ``"synthetic"``,
            ``"ade20k_outdoors_sky"``, ``("folder", images_dir, masks_dir)``, a dict, or a
            ``tf.data.Dataset`` of element dicts.
        split: The split to evaluate (TFDS sources also take slices such as ``"test[:100]"``).
        image_size: ``(height, width)`` (or one int) the models see, divisible by their stride;
            or ``None``: each image is predicted as :func:`skyseg_tf.inference.predict_image`
            does by default (at the scale the model was trained at, when it records one, e.g.
            a preset) and scored at its own resolution: the figure a user of the model gets.
        batch_size: Images per forward pass.
        original_resolution: Also compute every metric at each image's original resolution.
        max_examples: Evaluate only the first ``max_examples`` images.
        out_dir: Folder for ``metrics.md``, ``metrics.json`` and the figures; ``None`` writes
            nothing.
        num_figure_examples: Rows of each figure (0: no figures).
        threshold: Probability at or above which a pixel is predicted sky.
        source_kwargs: Keyword arguments of the source (e.g. ``{"num_examples": 100}`` for
            ``"synthetic"``, ``{"data_dir": ...}`` for TFDS). A ``"synthetic"`` source renders at
            ``image_size`` unless ``source_kwargs`` sets ``image_size``.
        progress: Show a progress bar per model.

    Returns:
        An :class:`EvaluationReport`: ``report.models[i].metrics`` and friends, and
        ``report.markdown`` to print.

    Raises:
        ValueError: For an invalid argument (named in the message) or an empty split.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> report = evaluate_models(model, "synthetic", image_size=64, batch_size=4,
        ...                          source_kwargs={"num_examples": 10}, progress=False)
        >>> report.models[0].num_images
        2
    """
    from skyseg_tf.data import load_source, make_dataset
    from skyseg_tf import checks

    native = image_size is None
    size = None if native else checks.size_pair("image_size", image_size)
    batch_size = checks.positive_int("batch_size", batch_size)
    if max_examples is not None:
        max_examples = checks.positive_int("max_examples", max_examples)
    if isinstance(num_figure_examples, bool) or not isinstance(num_figure_examples, int) or num_figure_examples < 0:
        raise ValueError(f"num_figure_examples: received {num_figure_examples!r}; pass an int >= 0.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold: received {threshold!r}; pass a probability in [0, 1].")
    if not isinstance(original_resolution, bool):
        raise TypeError(f"original_resolution: received {original_resolution!r}; pass True or False.")
    source_kwargs = dict(source_kwargs or {})
    if renders_synthetic_without_size(source):
        source_kwargs.setdefault("image_size", size or (256, 256))
    models = _resolve(model_paths_or_models)
    for name, _, predictor in ([] if native else models):
        if size[0] % predictor.stride or size[1] % predictor.stride:
            fixed = tuple(-(-v // predictor.stride) * predictor.stride for v in size)
            raise ValueError(
                f"image_size: received {size}, but {name} needs sizes divisible by "
                f"{predictor.stride}; use image_size={fixed}."
            )
        if predictor.input_size is not None and predictor.input_size != size:
            raise ValueError(
                f"image_size: received {size}, but {name} only takes {predictor.input_size}; "
                f"pass image_size={predictor.input_size}."
            )

    def make_elements():
        elements = load_source(source, split, **source_kwargs)
        return elements.take(max_examples) if max_examples else elements

    def make_batches():
        # The split was applied by load_source; "test" only tells make_dataset the base split
        # name, and training=False fixes the order and turns augmentation off.
        return make_dataset(make_elements(), "test", size, batch_size, training=False, augment=False,
                            shuffle=False, drop_remainder=False, with_file_names=True)

    out = None
    if out_dir is not None:
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
    if native:
        evaluations = [_evaluate_native(name, path, predictor, make_elements, threshold, num_figure_examples,
                                        out, progress) for name, path, predictor in models]
    else:
        evaluations = [
            _evaluate_one(name, path, predictor, make_batches, make_elements, threshold, original_resolution,
                          num_figure_examples, out, progress)
            for name, path, predictor in models
        ]
    settings = {
        "source": source if isinstance(source, (str, list, tuple, dict)) else type(source).__name__,
        "split": split,
        "image_size": list(size) if size else "each model's own scale, scored at each image's resolution",
        "num_images": evaluations[0].num_images,
        "threshold": threshold,
        "batch_size": batch_size,
        "original_resolution": original_resolution,
        "max_examples": max_examples,
        "source_kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in source_kwargs.items()},
    }
    report = EvaluationReport(models=evaluations, settings=settings,
                              markdown=format_markdown(evaluations, settings))
    if out is not None:
        markdown_path = out / "metrics.md"
        json_path = out / "metrics.json"
        markdown_path.write_text(report.markdown + "\n")
        json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        report.files = {"markdown": str(markdown_path), "json": str(json_path)}
    return report


__all__ = [
    "EvaluationReport",
    "METRIC_LABELS",
    "ModelEvaluation",
    "FALSE_SKY_LEVELS",
    "evaluate_models",
    "false_sky_summary",
    "format_markdown",
]
