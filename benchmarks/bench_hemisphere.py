"""Sky from below: accuracy of the fisheye preset against the default on upward fisheye views, and speed.

    python benchmarks/bench_hemisphere.py [--models sky_unet_efficientnet_lite0_fisheye sky_unet_efficientnet_lite0]
        [--num-scenes 100] [--out benchmarks/results/hemisphere_lite0.json]

No hand-labelled upward fisheye photo is available to this project (the maintainers keep such a
set), so accuracy is measured on what can be labelled exactly, all held out from training:

* **procedural upward scenes** of a seed no preset trained on (``synthetic_upward``), and
* **real photos through a fisheye lens**: the test parts of LabelMeFacade, MSRC-v2 and the interiors (read from
  ``../shared/data``, never copied), each re-imaged once through a random fisheye lens, rotation and
  image circle (``skyseg_tf.data.lens_view.fisheye_view``, fixed seed).

Each photo is predicted with ``predict_image``'s defaults (a fisheye preset finds the image circle
itself; a photo whose circle is not found counts as predicted "no sky" and is counted in
``circle_not_found``; the default preset is run as it is) and scored at full resolution: dataset IoU, and for
the procedural scenes (whose image circle holds a full hemisphere) the mean absolute error of the
sky view factor against the exact mask's.

**Speed** (median of repeated calls after a warm-up): a 1000x1000 fisheye photo to its mask
(``predict_image`` with the fisheye preset: circle found, model, circle applied), and a 2048x1024
panorama to its sky view factor (``predict_hemisphere(lens="panorama")`` with the default preset).
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

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
HELD_OUT_SEED = 90210
VIEW_SEED = 1234


def _upward_scenes(count, size=512):
    from skyseg_tf.data.synthetic_upward import render_upward_scene, sample_upward_lens_and_circle

    for index in range(count):
        rng = np.random.default_rng([HELD_OUT_SEED, index])
        lens, circle = sample_upward_lens_and_circle(rng, size, size)
        image, mask = render_upward_scene(rng, size, size, lens=lens, circle=circle)
        yield f"upward_{index:04d}", image, mask[..., 0], lens, circle


def _real_views(name, images, masks, options, limit):
    from skyseg_tf.data.folder import folder_dataset
    from skyseg_tf.data.lens_view import fisheye_view
    from skyseg_tf.data.negatives import negatives_dataset

    if masks is None:  # photos without sky: every pixel labelled "not sky"
        elements = negatives_dataset(str(images), split="test", **options)
    else:
        elements = folder_dataset(images_dir=str(images), masks_dir=str(masks), split="test", **options)
    for index, element in enumerate(elements):
        if limit and index >= limit:
            break
        image = element["image"].numpy()
        mask = element["segmentation_mask"].numpy()
        warped, labels = fisheye_view(image, mask, np.random.default_rng([VIEW_SEED, index]))
        yield f"{name}_{index:04d}", warped, labels[..., 0]


def _iou(counts):
    tp, fp, fn = counts
    return tp / max(tp + fp + fn, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+",
                        default=["sky_unet_efficientnet_lite0_fisheye", "sky_unet_efficientnet_lite0"])
    parser.add_argument("--num-scenes", type=int, default=100)
    parser.add_argument("--num-photos", type=int, default=0, help="photos per real set (0: the whole test part)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sets", nargs="+", default=None,
                        help="measure only the sets whose label starts with one of these words (e.g. interiors), "
                             "keeping the other figures already in --out")
    parser.add_argument("--speed-only", action="store_true",
                        help="measure speed only, keeping the accuracy figures already in --out")
    parser.add_argument("--out", default="benchmarks/results/hemisphere_lite0.json")
    args = parser.parse_args(argv)

    from skyseg_tf import from_preset
    from skyseg_tf.hemisphere import hemisphere_figures, predict_hemisphere
    from skyseg_tf.hemisphere.measure import whole_hemisphere
    from skyseg_tf.inference import predict_image
    from skyseg_tf.metrics import false_sky_figures

    results = {"machine": machine_info(), "sets": {}, "speed": {}}
    if (args.speed_only or args.sets) and pathlib.Path(args.out).is_file():
        previous = json.loads(pathlib.Path(args.out).read_text())
        results["sets"] = previous["sets"]
        if args.sets:
            results["speed"] = previous.get("speed", {})

    def wanted(label):
        return not args.speed_only and (args.sets is None or any(label.lower().startswith(w.lower())
                                                                  for w in args.sets))
    models = {name: from_preset(name) for name in args.models}
    scenes = list(_upward_scenes(args.num_scenes if wanted("procedural") else 0))
    sets = {"procedural upward scenes (held-out seed)": [(n, i, m) for n, i, m, _, _ in scenes]}
    real = {
        "LabelMeFacade test through a fisheye lens": (SHARED / "labelmefacade" / "images",
                                                      SHARED / "labelmefacade" / "labels",
                                                      {"sky_color": [0, 128, 128]}),
        "MSRC-v2 test through a fisheye lens": (SHARED / "msrc_v2" / "images", SHARED / "msrc_v2" / "masks",
                                                {"void_masks": str(SHARED / "msrc_v2" / "void")}),
        "interiors test through a fisheye lens": (SHARED / "houses_indoor" / "images", None,
                                                  {"split_group": "^([^_]+)_", "window_policy": "none"}),
    }
    for label, (images, masks, options) in real.items():
        if images.is_dir() and wanted(label):
            sets[label] = list(_real_views(label.split()[0].lower(), images, masks, options, args.num_photos))
    for label, items in sets.items():
        if not items:
            continue
        entry = {}
        for name, model in models.items():
            counts = np.zeros(3)
            svf_errors = []
            failures = 0
            photo_fp, photo_other = [], []
            for index, (_, image, mask) in enumerate(items):
                try:
                    probability = predict_image(model, image)
                except ValueError:  # no image circle found: the user gets no mask; scored as all "not sky"
                    failures += 1
                    probability = np.zeros(image.shape[:2], np.float32)
                sky = probability >= 0.5
                valid = mask != 2
                truth = mask == 1
                counts += [np.sum(sky & truth & valid), np.sum(sky & ~truth & valid), np.sum(~sky & truth & valid)]
                photo_fp.append(np.sum(sky & ~truth & valid))
                photo_other.append(np.sum(~truth & valid))
                if label.startswith("procedural"):
                    _, _, _, lens, circle = scenes[index]
                    if whole_hemisphere(sky.shape, circle, lens):  # else no SVF can be measured
                        rings = int(min(90, circle.radius // 3))
                        predicted = hemisphere_figures(sky, circle, lens, rings=rings)["svf"]
                        exact = hemisphere_figures(truth, circle, lens, rings=rings)["svf"]
                        svf_errors.append(abs(predicted - exact))
            entry[name] = {"photos": len(items), "circle_not_found": failures}
            if counts[0] + counts[2] > 0:  # a set with sky
                entry[name]["iou"] = round(_iou(counts), 4)
            else:  # photos without sky: how much is called sky (inside and outside the circle)
                figures = false_sky_figures(photo_fp, photo_other)
                entry[name].update({key: round(figures[key], 4) for key in ("false_sky", "over_1pct", "over_5pct")})
            if svf_errors:
                entry[name].update(svf_mean_abs_error=round(float(np.mean(svf_errors)), 4),
                                   svf_photos=len(svf_errors))
            print(f"{label} | {name} | {entry[name]}", flush=True)
        results["sets"][label] = entry

    fisheye_name = next((n for n in args.models if n.endswith("_fisheye")), None)
    photo_name = next((n for n in args.models if not n.endswith("_fisheye")), None)
    rng = np.random.default_rng(0)
    if fisheye_name:
        from skyseg_tf.data.synthetic_upward import render_upward_scene
        from skyseg_tf.hemisphere import ImageCircle

        from skyseg_tf.hemisphere import find_image_circle

        circle = ImageCircle(500, 500, 480)
        photo, _ = render_upward_scene(rng, 1000, 1000, circle=circle, kind="street", time_of_day="day")
        model = models[fisheye_name]
        calls = {"fisheye_1000x1000_to_mask_s": lambda: predict_image(model, photo),  # the circle found
                 "fisheye_1000x1000_to_mask_circle_given_s": lambda: predict_image(model, photo, circle=circle),
                 "find_image_circle_1000x1000_s": lambda: find_image_circle(photo)}
        for key, call in calls.items():
            call()
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            results["speed"][key] = round(statistics.median(times), 4)
            print(key, results["speed"][key], "s", flush=True)
    if photo_name:
        panorama = rng.integers(0, 256, (1024, 2048, 3), dtype=np.uint8)
        panorama[:400] = (120, 170, 230)
        model = models[photo_name]
        predict_hemisphere(model, panorama, lens="panorama")
        times = []
        for _ in range(max(3, args.repeats // 3)):
            started = time.perf_counter()
            predict_hemisphere(model, panorama, lens="panorama")
            times.append(time.perf_counter() - started)
        results["speed"]["panorama_2048x1024_to_svf_s"] = round(statistics.median(times), 4)
        print("panorama 2048x1024 -> SVF:", results["speed"]["panorama_2048x1024_to_svf_s"], "s", flush=True)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
