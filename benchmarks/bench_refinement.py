"""Does guided-filter refinement help the upsampled sky edge? An oracle measurement.

Setup that isolates the upsampling step: synthetic full-resolution scenes with hard sky edges
(poles, power wires, spires, bare trees, conifers) and exact masks. The *true* mask is
area-downsampled by a factor ``s`` to low-resolution "probabilities" (what a perfect model
working at 1/s of the resolution could output), then brought back to full resolution by

* ``bilinear``: bilinear upsampling (what ``predict_image(mode="resize")`` does), and
* ``guided``: the same, then ``refine_probability`` (guided filter on the grayscale image),

and both are thresholded at 0.5 and scored against the true full-resolution mask: boundary F
(tolerance 2 px, ``skyseg_tf.metrics.BoundaryFScore``) and IoU. A radius/eps sweep shows how
sensitive the result is; the default row is ``radius = default_guided_radius(s)``,
``eps = DEFAULT_GUIDED_EPS``.

Run:
    python benchmarks/bench_refinement.py               # 24 scenes of 768 x 1024
    python benchmarks/bench_refinement.py --num 8 --height 384 --width 512

Example:
    >>> main(["--num", "2", "--height", "128", "--width", "160", "--scales", "4"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

HARD_FEATURES = (
    {"poles": True, "wires": True, "hills": True},
    {"buildings": True, "spires": True, "wires": True},
    {"trees": True, "bare_trees": True, "mountains": True},
    {"trees": True, "conifers": True, "poles": True, "wires": True},
)
TIMES = ("day", "dusk", "overcast")


def render_hard_scenes(num, height, width, seed=0):
    """``num`` (image, mask) pairs with thin or sharp sky edges; mask float32 [H, W] in {0, 1}."""
    from skyseg_tf.data.synthetic import render_scene

    scenes = []
    for index in range(num):
        features = dict(HARD_FEATURES[index % len(HARD_FEATURES)])
        features["time_of_day"] = TIMES[(index // len(HARD_FEATURES)) % len(TIMES)]
        image, mask = render_scene(np.random.default_rng([seed, index]), height, width, features)
        scenes.append((image, mask[..., 0].astype(np.float32)))
    return scenes


def score(pairs):
    """Boundary F (tolerance 2) and IoU over ``[(truth [H, W], probability [H, W]), ...]``."""
    from skyseg_tf.metrics import BoundaryFScore, SkyIoU

    boundary, iou = BoundaryFScore(), SkyIoU()
    for truth, probability in pairs:
        boundary.update_state(truth[None, ..., None], probability[None, ..., None])
        iou.update_state(truth[None, ..., None], probability[None, ..., None])
    return float(boundary.result()), float(iou.result())


def main(argv=None):
    """Prints boundary F and IoU with and without guided refinement, per downsampling factor."""
    from skyseg_tf.inference import (
        DEFAULT_GUIDED_EPS,
        default_guided_radius,
        refine_probability,
        resize_probabilities,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=24, help="number of scenes")
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8],
                        help="downsampling factors (full / low resolution)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    scenes = render_hard_scenes(args.num, args.height, args.width, args.seed)
    print(f"{args.num} hard scenes of {args.height}x{args.width} rendered in "
          f"{time.perf_counter() - start:.1f} s; sky edges scored at full resolution.")
    print()
    print("| factor | method | radius | eps | boundary F | IoU | s/image |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for scale in args.scales:
        low_size = (args.width // scale, args.height // scale)  # cv2 takes (width, height)
        upsampled = []
        for image, truth in scenes:
            low = cv2.resize(truth, low_size, interpolation=cv2.INTER_AREA)
            up = resize_probabilities(low[None, ..., None], truth.shape).numpy()[0, ..., 0]
            upsampled.append((image, truth, up))
        f, iou = score([(truth, up) for _, truth, up in upsampled])
        print(f"| {scale} | bilinear | - | - | {f:.4f} | {iou:.4f} | - |")
        default_radius = default_guided_radius(scale)
        settings = sorted({(r, e) for r in (max(1, default_radius // 2), default_radius, 2 * default_radius)
                           for e in (1e-5, DEFAULT_GUIDED_EPS, 1e-3, 1e-2)})
        for radius, eps in settings:
            start = time.perf_counter()
            refined = [(truth, refine_probability(image, up, radius, eps)) for image, truth, up in upsampled]
            seconds = (time.perf_counter() - start) / len(upsampled)
            f, iou = score(refined)
            mark = " (default)" if (radius, eps) == (default_radius, DEFAULT_GUIDED_EPS) else ""
            print(f"| {scale} | guided{mark} | {radius} | {eps:g} | {f:.4f} | {iou:.4f} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
