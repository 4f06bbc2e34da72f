"""The main job in one command: the whole library on built-in synthetic sky scenes, then the
pretrained model on real photos.

``skyseg demo`` (``make demo``) generates scenes, trains a light registry model on them,
evaluates it on the held-out split, predicts masks for a few images at full resolution, exports a
SavedModel for TF Serving, runs the pretrained preset (:func:`skyseg_tf.from_preset`) on real
photos that scikit-image ships, and writes ``report.md`` beside everything it made. It runs
offline on a 2-core CPU in minutes.
"""

from __future__ import annotations

import dataclasses
import os
import time

from skyseg_tf.presets import DEFAULT_PRESET

# The demo's settings. U-Net on MobileNetV3-Large (the light encoder) learns the synthetic
# scenes from random initialisation on a CPU; ImageNet weights cannot be downloaded offline.
DEMO_MODEL = "unet_mobilenet_v3_large"
IOU_TARGET = 0.90


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run."""

    num_examples: int
    image_size: int
    epochs: int
    global_batch_size: int
    learning_rate: float
    num_predictions: int
    prediction_size: tuple


FULL = DemoSettings(num_examples=1000, image_size=128, epochs=14, global_batch_size=16, learning_rate=2e-3,
                    num_predictions=4, prediction_size=(480, 640))
QUICK = DemoSettings(num_examples=40, image_size=64, epochs=1, global_batch_size=8, learning_rate=2e-3,
                     num_predictions=2, prediction_size=(96, 128))


def _stage(index: int, total: int, text: str) -> float:
    print(f"\n[{index}/{total}] {text}", flush=True)
    return time.time()


def _done(started: float, text: str = "") -> None:
    print(f"      done in {time.time() - started:.0f} s{'. ' + text if text else ''}", flush=True)


def run_demo(out_dir: str = "runs/demo", quick: bool = False, epochs: int | None = None, verbose: int = 1) -> str:
    """Runs the demo and returns the path of its ``report.md``.

    Args:
        out_dir: Output folder (a run killed part-way resumes its training when re-run).
        quick: A smoke run at tiny sizes (one epoch, no accuracy target).
        epochs: Override the number of epochs.
        verbose: Keras progress output (1: progress bars).

    Example:
        >>> report = run_demo("/tmp/skyseg_demo", quick=True)  # doctest: +SKIP
    """
    from skyseg_tf.data import contact_sheet, load_source
    from skyseg_tf.data.synthetic import write_synthetic_folder
    from skyseg_tf.evaluation import evaluate_models
    from skyseg_tf.export import export_saved_model
    from skyseg_tf.inference import load_model, predict_paths
    from skyseg_tf.training import train

    settings = QUICK if quick else FULL
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int; received {epochs!r}.")
        settings = dataclasses.replace(settings, epochs=epochs)
    os.makedirs(out_dir, exist_ok=True)
    size = settings.image_size
    source = {"type": "synthetic", "num_examples": settings.num_examples, "image_size": (size, size)}
    total = 7
    began = time.time()

    started = _stage(1, total, f"Synthetic sky scenes: {settings.num_examples} scenes at {size}x{size}, split 60/20/20")
    preview = contact_sheet(load_source(source, "train").take(16), os.path.join(out_dir, "data_preview.png"),
                            num=16, columns=4, title="Synthetic training scenes (mask overlay)")
    _done(started, f"Preview: {preview}")

    started = _stage(2, total, f"Training {DEMO_MODEL} for {settings.epochs} epochs (Dice loss, Keras progress bars)")
    result = train({
        "model": DEMO_MODEL,
        "encoder_weights": None,
        "data": "synthetic",
        "data_kwargs": {"num_examples": settings.num_examples, "render_size": [size, size]},
        "image_size": [size, size],
        "global_batch_size": settings.global_batch_size,
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "lr_schedule": "cosine",
        "bn_momentum": 0.9,
        "cache": True,
        "strategy": "auto",
        "run_dir": os.path.join(out_dir, DEMO_MODEL),  # evaluation names the model after this folder
        "tensorboard": False,
        "verbose": verbose,
    })
    _done(started, f"Best validation IoU {result.best_val_iou:.4f}")

    started = _stage(3, total, "Evaluating the best checkpoint on the held-out test split")
    report = evaluate_models([result.best_model_path], source, split="test", image_size=(size, size),
                             batch_size=settings.global_batch_size, out_dir=os.path.join(out_dir, "evaluation"),
                             num_figure_examples=6)
    evaluation = report.models[0]
    _done(started, f"Test IoU {evaluation.metrics['iou']:.4f}, ROC AUC {evaluation.metrics['auc']:.4f}")

    started = _stage(4, total, f"Predicting {settings.num_predictions} full-resolution photos "
                               f"({settings.prediction_size[1]}x{settings.prediction_size[0]})")
    samples = write_synthetic_folder(os.path.join(out_dir, "samples"), num_examples=settings.num_predictions,
                                     image_size=settings.prediction_size, seed=2026)
    model = load_model(result.best_model_path)
    summary = predict_paths(model, samples / "images", os.path.join(out_dir, "predictions"),
                            save=("mask", "probability", "overlay"), refine="guided", progress=True,
                            overwrite=True)  # the model of this run: never keep an earlier run's masks
    if not summary.ok:
        raise RuntimeError(f"Prediction failed for some demo images: {summary}")
    _done(started, str(summary).splitlines()[0])

    started = _stage(5, total, "Exporting a SavedModel for TF Serving")
    export_dir = export_saved_model(model, os.path.join(out_dir, "export"), image_size=(size, size), overwrite=True)
    _done(started, f"Export: {export_dir}")

    started = _stage(6, total, f"The pretrained model ({DEFAULT_PRESET}) on real photos from scikit-image")
    real = predict_real_photos(os.path.join(out_dir, "real_photos"))
    _done(started, real["message"])

    started = _stage(7, total, "Writing the report")
    report_path = _write_report(out_dir, settings, result, report, summary, preview, export_dir, time.time() - began, quick,
                                real)
    _done(started, f"Report: {report_path}")
    if not quick:
        verdict = "meets" if result.best_val_iou >= IOU_TARGET else "DOES NOT meet"
        print(f"\nValidation IoU {result.best_val_iou:.4f} {verdict} the demo target of {IOU_TARGET:.2f}.")
    print(f"Everything is in {out_dir}/: open {report_path}")
    return report_path


REAL_PHOTOS = ("rocket", "camera", "coffee", "chelsea", "astronaut")
"""scikit-image's sample photos the demo shows the pretrained model on: two with sky (a rocket on
its pad at dusk, a photographer on a lawn in grayscale) and three without (a cup of coffee, a cat,
an astronaut's portrait)."""


def predict_real_photos(out_dir: str, names=REAL_PHOTOS) -> dict:
    """Runs the default pretrained preset on scikit-image's sample photos; writes masks, overlays
    and a grid. Returns ``{"grid": path or None, "rows": [(name, shape, sky_fraction)], "message"}``.

    Example:
        >>> result = predict_real_photos("/tmp/skyseg_real")  # doctest: +SKIP
    """
    from skyseg_tf.inference import predict_paths
    from skyseg_tf.presets import from_preset

    try:
        from skimage import data as skimage_data
    except ImportError:
        return {"grid": None, "rows": [], "message": "scikit-image is not installed (pip install 'skyseg-tf[demo]'); "
                                                      "no real photos shown"}
    import numpy as np
    from PIL import Image

    photos = os.path.join(out_dir, "photos")
    os.makedirs(photos, exist_ok=True)
    for name in names:
        image = np.asarray(getattr(skimage_data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        Image.fromarray(image[..., :3].astype(np.uint8)).save(os.path.join(photos, f"{name}.png"))
    model = from_preset(DEFAULT_PRESET)
    predictions = os.path.join(out_dir, "predictions")
    summary = predict_paths(model, photos, predictions, save=("mask", "overlay"), progress=False, overwrite=True)
    if not summary.ok:
        raise RuntimeError(f"Prediction failed for some real photos: {summary}")
    rows, tiles = [], []
    for name in names:
        overlay = np.asarray(Image.open(os.path.join(predictions, f"{name}_overlay.jpg")).convert("RGB"))
        mask = np.asarray(Image.open(os.path.join(predictions, f"{name}_mask.png")))
        rows.append((name, overlay.shape[:2], float((mask > 127).mean())))
        height = 240
        width = round(overlay.shape[1] * height / overlay.shape[0])
        tiles.append(np.asarray(Image.fromarray(overlay).resize((width, height), Image.BILINEAR)))
    grid = os.path.join(out_dir, "real_photos.jpg")
    Image.fromarray(np.concatenate(tiles, axis=1)).save(grid, quality=90)
    fractions = ", ".join(f"{name} {fraction:.0%}" for name, _, fraction in rows)
    return {"grid": grid, "rows": rows, "message": f"Sky fraction: {fractions}. Grid: {grid}"}


def _relative(path, start) -> str:
    return os.path.relpath(str(path), start)


def _write_report(out_dir, settings, result, report, summary, preview, export_dir, seconds, quick, real) -> str:
    evaluation = report.models[0]
    lines = [
        "# skyseg-tf demo report",
        "",
        f"Model `{DEMO_MODEL}` trained from random initialisation on {settings.num_examples} synthetic sky "
        f"scenes at {settings.image_size}x{settings.image_size} for {result.epochs_completed} epochs "
        f"(Dice loss, Adam, cosine learning rate, BatchNorm momentum 0.9), on this machine's CPU. Total time {seconds / 60:.1f} min."
        + (" This was a `--quick` smoke run: its numbers mean nothing." if quick else ""),
        "",
        f"Best validation IoU: **{result.best_val_iou:.4f}**"
        + ("" if quick else f" (target {IOU_TARGET:.2f}: {'met' if result.best_val_iou >= IOU_TARGET else 'not met'})."),
        "",
        "## Test split",
        "",
        report.markdown.strip(),
        "",
        "## Training curves",
        "",
        f"![training curves]({_relative(os.path.join(result.run_dir, 'training_curves.png'), out_dir)})",
        "",
        "## Data",
        "",
        f"![synthetic scenes]({_relative(preview, out_dir)})",
        "",
        "## Test images: image / ground truth / prediction / probability",
        "",
    ]
    for kind in ("examples", "worst"):
        if evaluation.figures.get(kind):
            title = "Worst test images by IoU" if kind == "worst" else "Sample test images"
            lines += [f"### {title}", "", f"![{kind}]({_relative(evaluation.figures[kind], out_dir)})", ""]
    lines += ["## Full-resolution predictions (guided-filter edge refinement)", ""]
    for path in sorted(os.listdir(os.path.join(out_dir, "predictions"))):
        if path.endswith("_overlay.jpg"):
            lines.append(f"![{path}](predictions/{path})")
    lines += ["", "## The pretrained model on real photos", ""]
    if real["grid"]:
        lines += [
            f"`skyseg_tf.from_preset(\"{DEFAULT_PRESET}\")` (what `skyseg predict PHOTO` uses), trained on "
            "real street photos and synthetic scenes (docs/pretrained.md), on scikit-image's sample photos, "
            "which it never saw. Sky tinted magenta:",
            "",
            f"![real photos]({_relative(real['grid'], out_dir)})",
            "",
            "| photo | size | predicted sky |",
            "|---|---|---:|",
        ]
        lines += [f"| {name} | {shape[1]}x{shape[0]} | {fraction:.1%} |" for name, shape, fraction in real["rows"]]
        lines += ["", "Masks and overlays: `real_photos/predictions/`."]
    else:
        lines.append(real["message"] + ".")
    lines += [
        "",
        "## Export",
        "",
        f"SavedModel in TF Serving's layout: `{_relative(export_dir, out_dir)}` "
        "(signatures `serving_default` and `serving_bytes`). Serve it with",
        "",
        "```bash",
        f'docker run -p 8501:8501 -v "$PWD/{_relative(os.path.dirname(str(export_dir)), os.getcwd())}:/models/skyseg" '
        "-e MODEL_NAME=skyseg tensorflow/serving",
        "```",
        "",
    ]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path
