"""Measures a pretrained preset the way users run it: accuracy on real and synthetic photos, speed.

    python benchmarks/bench_pretrained.py [--preset sky_unet_efficientnet_lite0] [--out runs/bench_pretrained]

* **LabelMeFacade** (read from ``../shared/data/labelmefacade``; research-only licence, so its
  photos never enter the repository): the validation and test parts of the 60/20/20 hash split
  (the preset trained on the train part), each photo predicted with ``predict_image``'s defaults
  (the model picks its own scale) and scored at the photo's own resolution: dataset IoU, ROC AUC,
  boundary F and the rest of ``skyseg evaluate``'s table (``skyseg_tf.evaluation``).
* **Synthetic hard cases**: held-out procedural scenes (a seed the preset never trained on) by
  kind: night, dusk, overcast, thin structures (wires, poles, bare trees), water, and close-ups
  without any sky, where the figure is the share of pixels wrongly called sky.
* **scikit-image photos** (public domain): predicted sky fraction of photos with and without sky.
* **Speed**: ``predict_image(model, photo)`` on a 1024x768 photo (resize, forward pass, resize
  back; no refinement), median of repeated calls after a warm-up, as loaded (``from_preset``) and
  after ``optimize_for_inference``, side by side in rounds.

Writes ``OUT/pretrained.json``, ``OUT/pretrained.md`` and figures of the worst cases
(``OUT/labelmefacade_*``, kept out of the repository; ``OUT/failures_synthetic.png`` and
``OUT/skimage_photos.png``, which docs/pretrained.md shows).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine_info  # noqa: E402

import numpy as np  # noqa: E402

LABELMEFACADE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "labelmefacade"
SKY_COLOR = (0, 128, 128)
HARD_SEED = 90210  # not the training seed of any preset
HARD_KINDS = {
    "night": lambda f: f["time_of_day"] == "night",
    "dusk": lambda f: f["time_of_day"] == "dusk",
    "overcast": lambda f: f["time_of_day"] == "overcast",
    "thin structures (wires, poles, bare trees)": lambda f: f.get("wires") or f.get("poles") or f.get("bare_trees"),
    "water": lambda f: f.get("water"),
    "close-up, no sky": lambda f: f.get("closeup"),
}
SKIMAGE_PHOTOS = {"rocket": True, "camera": True, "coffee": False, "chelsea": False, "astronaut": False}


def labelmefacade(model, out: pathlib.Path) -> dict:
    from skyseg_tf.evaluation import evaluate_models

    if not LABELMEFACADE.is_dir():
        return {"skipped": f"{LABELMEFACADE} not found"}
    source = {"type": "folder", "images": str(LABELMEFACADE / "images"), "masks": str(LABELMEFACADE / "labels"),
              "sky_color": list(SKY_COLOR)}
    results = {}
    for split in ("validation", "test"):
        report = evaluate_models([model], source, split=split, image_size=None, out_dir=out / f"labelmefacade_{split}",
                                 num_figure_examples=6, progress=True)
        evaluation = report.models[0]
        results[split] = {"num_images": evaluation.num_images, **{k: round(v, 4) for k, v in evaluation.metrics.items()},
                          "worst": evaluation.worst[:5]}
    return results


def synthetic_hard_cases(model, out: pathlib.Path, num_examples: int) -> dict:
    from skyseg_tf.data.synthetic import render_element, scene_features
    from skyseg_tf.inference import predict_image
    from skyseg_tf.visualization import prediction_grid

    sums = {kind: [0, 0, 0, 0] for kind in HARD_KINDS}  # intersection, union, predicted sky, pixels
    failures = []
    for index in range(num_examples):
        features = scene_features(HARD_SEED, index)
        kinds = [kind for kind, test in HARD_KINDS.items() if test(features)]
        if not kinds:
            continue
        element = render_element(HARD_SEED, index, (360, 480))
        truth = element["segmentation_mask"][..., 0] == 1  # 2 = void, not sky
        probability = predict_image(model, element["image"])
        predicted = probability >= 0.5
        inter, union = int((truth & predicted).sum()), int((truth | predicted).sum())
        for kind in kinds:
            values = sums[kind]
            values[0] += inter
            values[1] += union
            values[2] += int(predicted.sum())
            values[3] += predicted.size
        iou = inter / union if union else 1.0
        failures.append((iou, index, element["image"], truth, probability, ", ".join(kinds)))
    results = {}
    for kind, (inter, union, sky, pixels) in sums.items():
        if pixels == 0:
            continue
        if kind == "close-up, no sky":
            results[kind] = {"false_sky_fraction": round(sky / pixels, 4), "num_images": pixels // (360 * 480)}
        else:
            results[kind] = {"iou": round(inter / union, 4) if union else None, "num_images": pixels // (360 * 480)}
    failures.sort(key=lambda item: item[0])
    worst = failures[:6]
    prediction_grid([w[2] for w in worst], [w[3] for w in worst], [w[4] for w in worst],
                    out / "failures_synthetic.png", captions=[f"#{w[1]} {w[5]}: IoU {w[0]:.2f}" for w in worst],
                    title="Worst held-out synthetic scenes")
    return results


def skimage_photos(model, out: pathlib.Path) -> dict:
    from skyseg_tf.inference import predict_image
    from skyseg_tf.visualization import prediction_grid

    try:
        from skimage import data
    except ImportError:
        return {"skipped": "scikit-image not installed"}
    results, images, probabilities = {}, [], []
    for name, has_sky in SKIMAGE_PHOTOS.items():
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = image[..., :3]
        probability = predict_image(model, image)
        results[name] = {"has_sky": has_sky, "predicted_sky_fraction": round(float((probability >= 0.5).mean()), 4)}
        images.append(image)
        probabilities.append(probability)
    prediction_grid(images, None, probabilities, out / "skimage_photos.png", captions=list(SKIMAGE_PHOTOS),
                    title="scikit-image sample photos (never seen in training)")
    return results


def speed(model, rounds: int) -> dict:
    from skyseg_tf.inference import SkyPredictor, predict_image
    from skyseg_tf.models.optimize import optimize_for_inference
    from skyseg_tf import preprocessing

    if LABELMEFACADE.is_dir():
        from PIL import Image

        first = sorted((LABELMEFACADE / "images").iterdir())[0]
        photo = np.asarray(Image.open(first).convert("RGB").resize((1024, 768), Image.BICUBIC))
    else:
        photo = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    optimized = preprocessing.attach(optimize_for_inference(model), preprocessing.get(model))
    contenders = {"as loaded": SkyPredictor(model), "optimize_for_inference": SkyPredictor(optimized)}
    for predictor in contenders.values():
        for _ in range(3):
            predict_image(predictor, photo)
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, predictor in contenders.items():
            start = time.perf_counter()
            predict_image(predictor, photo)
            times[name].append(time.perf_counter() - start)
    return {name: {"median_ms": round(1000 * statistics.median(values), 1),
                   "min_ms": round(1000 * min(values), 1)} for name, values in times.items()}


def to_markdown(results: dict) -> str:
    lines = [f"# Pretrained preset `{results['preset']}`", ""]
    for split, values in results["labelmefacade"].items():
        if not isinstance(values, dict):
            continue
        lines.append(f"- LabelMeFacade {split} ({values['num_images']} photos): IoU {values['iou']:.4f}, "
                     f"ROC AUC {values['auc']:.4f}, boundary F {values['boundary_f']:.4f}, "
                     f"precision {values['precision']:.4f}, recall {values['recall']:.4f}")
    for kind, values in results["synthetic_hard_cases"].items():
        figure = (f"false sky {values['false_sky_fraction']:.2%}" if "false_sky_fraction" in values
                  else f"IoU {values['iou']:.4f}")
        lines.append(f"- synthetic {kind} ({values['num_images']} scenes): {figure}")
    for name, values in results["skimage_photos"].items():
        if isinstance(values, dict):
            lines.append(f"- scikit-image `{name}` ({'sky' if values['has_sky'] else 'no sky'}): "
                         f"{values['predicted_sky_fraction']:.1%} predicted sky")
    for name, values in results["speed_1024x768"].items():
        lines.append(f"- predict_image, 1024x768, {name}: median {values['median_ms']} ms (min {values['min_ms']} ms)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="sky_unet_efficientnet_lite0")
    parser.add_argument("--out", default="runs/bench_pretrained")
    parser.add_argument("--synthetic-examples", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from skyseg_tf.presets import from_preset

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = from_preset(args.preset)
    results = {"preset": args.preset, "machine": machine_info()}
    results["speed_1024x768"] = speed(model, args.rounds)
    print(json.dumps(results["speed_1024x768"]), flush=True)
    results["skimage_photos"] = skimage_photos(model, out)
    results["synthetic_hard_cases"] = synthetic_hard_cases(model, out, args.synthetic_examples)
    results["labelmefacade"] = labelmefacade(model, out)
    (out / "pretrained.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = to_markdown(results)
    (out / "pretrained.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
