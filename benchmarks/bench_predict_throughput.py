"""Photos per second of `skyseg predict` on 12-megapixel JPEGs, against the one-at-a-time path.

Side by side in one run, on the same photos (scikit-image's public-domain sample photos upscaled
to 4000x3000 with sensor-like noise, JPEG quality 92), with the pretrained preset optimised for
inference as `skyseg predict` runs it:

* ``baseline``: the path of skyseg-tf before the throughput work, kept here verbatim in spirit:
  one photo at a time, full decode, the probabilities upsampled with ``tf.image.resize``, the
  overlay blended in float32 numpy, outputs written with Pillow at its default PNG compression;
* ``predict_paths``: today's :func:`skyseg_tf.inference.predict_paths` (reading, predicting and
  writing overlapped in threads, OpenCV upsampling/blending/encoding), with ``workers=0`` (nothing
  overlapped) and ``workers=2``, and with ``draft=True`` (JPEG draft decoding) for masks only.

Each configuration also runs with ``refine="guided"``. Masks are compared with the baseline's
(IoU over all photos, and the lowest per photo).

Usage:
    python benchmarks/bench_predict_throughput.py [--photos 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np


def make_photos(folder: pathlib.Path, count: int, size=(3000, 4000)) -> list[pathlib.Path]:
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(0)
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
    paths = []
    for index in range(count):
        name = names[index % len(names)]
        base = getattr(skimage.data, name)()
        if base.ndim == 2:
            base = np.repeat(base[..., None], 3, axis=-1)
        if index // len(names) % 2:
            base = base[:, ::-1]
        image = Image.fromarray(base).resize((size[1], size[0]), Image.BICUBIC)
        noisy = np.asarray(image, np.int16) + rng.integers(-6, 7, (*size, 3), dtype=np.int16)
        path = folder / f"{index:03d}_{name}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=92)
        paths.append(path)
    return paths


def baseline(predictor, paths, out_dir: pathlib.Path, refine):
    """The one-photo-at-a-time path of skyseg-tf before the throughput work (for comparison)."""
    from PIL import Image

    from skyseg_tf.data.folder import read_image
    from skyseg_tf.image_ops import resize_images, resize_probabilities
    from skyseg_tf.inference import default_guided_radius, refine_probability

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        image = read_image(path, exif_transpose=True)
        height, width = image.shape[:2]
        size = predictor.preprocessing.working_size(image.shape)
        low = predictor(resize_images(image[None], size))
        probability = resize_probabilities(low[..., None], (height, width)).numpy()[0, ..., 0]
        if refine:
            scale = max(height / size[0], width / size[1])
            probability = refine_probability(image, probability, default_guided_radius(scale))
        probability = np.clip(probability, 0, 1)
        stem = out_dir / path.stem
        Image.fromarray(np.where(probability >= 0.5, 255, 0).astype(np.uint8)).save(f"{stem}_mask.png")
        Image.fromarray(np.round(probability * 255.0).astype(np.uint8)).save(f"{stem}_probability.png")
        weight = (0.5 * probability)[..., None]
        overlay = image.astype(np.float32) * (1.0 - weight) + np.float32([255, 0, 200]) * weight
        Image.fromarray(np.clip(np.round(overlay), 0, 255).astype(np.uint8)).save(f"{stem}_overlay.jpg", quality=90)


def mask_agreement(reference: pathlib.Path, other: pathlib.Path, paths) -> tuple[float, float]:
    from PIL import Image

    inter = union = 0
    lowest = 1.0
    for path in paths:
        a = np.asarray(Image.open(reference / f"{path.stem}_mask.png")) > 0
        b = np.asarray(Image.open(other / f"{path.stem}_mask.png")) > 0
        i, u = np.logical_and(a, b).sum(), np.logical_or(a, b).sum()
        inter, union = inter + i, union + u
        lowest = min(lowest, i / u if u else 1.0)
    return (inter / union if union else 1.0), lowest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import skyseg_tf
    from skyseg_tf.inference import as_predictor, predict_paths
    from skyseg_tf.models.optimize import optimize_if_possible
    from skyseg_tf.preprocessing import attach, get

    work = pathlib.Path(tempfile.mkdtemp(prefix="skyseg_throughput_"))
    (work / "photos").mkdir()
    paths = make_photos(work / "photos", args.photos)
    model = skyseg_tf.from_preset()
    optimized, _ = optimize_if_possible(model)
    model = attach(optimized, get(model))
    predictor = as_predictor(model)
    baseline(predictor, paths[:1], work / "warmup", refine=False)  # traces the model once

    rows = []
    for refine in (None, "guided"):
        tag = refine or "none"
        started = time.perf_counter()
        baseline(predictor, paths, work / f"baseline_{tag}", refine=bool(refine))
        base_seconds = time.perf_counter() - started
        rows.append({"path": "baseline (one at a time)", "refine": tag, "save": "mask,probability,overlay",
                     "seconds": base_seconds, "photos_per_s": len(paths) / base_seconds,
                     "iou_vs_baseline": 1.0, "min_iou": 1.0})
        everything, masks = ("mask", "probability", "overlay"), ("mask", "probability")
        configurations = [(0, everything, False), (2, everything, False), (2, masks, False)]
        if refine is None:
            configurations.append((2, masks, True))  # draft decoding needs no refinement
        for workers, save, draft in configurations:
            out = work / f"new_{tag}_{workers}_{len(save)}_{draft}"
            started = time.perf_counter()
            summary = predict_paths(predictor, work / "photos", out, save=save, refine=refine,
                                    workers=workers, draft=draft, progress=False)
            seconds = time.perf_counter() - started
            assert summary.ok, summary
            iou, lowest = mask_agreement(work / f"baseline_{tag}", out, paths)
            name = f"predict_paths workers={workers}" + (" draft" if draft else "")
            rows.append({"path": name, "refine": tag, "save": ",".join(save),
                         "seconds": seconds, "photos_per_s": len(paths) / seconds,
                         "iou_vs_baseline": float(iou), "min_iou": float(lowest)})

    print(f"{len(paths)} photos of 4000x3000 (JPEG q92), {platform.processor() or platform.machine()}, "
          f"TensorFlow {tf.__version__}, Python {sys.version.split()[0]}")
    print(f"{'path':30s} {'refine':7s} {'save':26s} {'s':>7s} {'photos/s':>9s} {'x base':>7s} {'IoU':>8s} {'min IoU':>8s}")
    for row in rows:
        base = next(r for r in rows if r["refine"] == row["refine"] and r["path"].startswith("baseline"))
        row["speedup"] = row["photos_per_s"] / base["photos_per_s"]
        print(f"{row['path']:30s} {row['refine']:7s} {row['save']:26s} {row['seconds']:7.2f} "
              f"{row['photos_per_s']:9.2f} {row['speedup']:7.2f} {row['iou_vs_baseline']:8.5f} {row['min_iou']:8.5f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"photos": len(paths), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
