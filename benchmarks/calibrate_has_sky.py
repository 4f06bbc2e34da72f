"""Calibrates ``has_sky``: the sky fraction from which a photo is said to show sky.

    python benchmarks/calibrate_has_sky.py [--preset sky_unet_efficientnet_lite0] [--synthetic 400]

Each photo is predicted as ``skyseg predict`` does (``predict_image``'s defaults), and its sky
fraction (share of pixels with probability >= 0.5) is computed. Photos with sky:
LabelMeFacade's validation part (read from ``../shared/data/labelmefacade``, never copied; the
preset trained on the train part). Photos without sky: synthetic close-ups of a held-out seed
(walls, foliage, ground filling the frame) and scikit-image's public-domain photos and textures
without sky (a cup of coffee, a cat, a portrait, bricks, grass, gravel, coins, a clock, text,
microscopy). The threshold chosen minimises the balanced error (the mean of the miss rate on
photos with sky and the false-alarm rate on photos without); among equal ones, the middle of the
interval. The figures are printed for docs/benchmarks.md; the value is
``skyseg_tf.inference.facts.DEFAULT_HAS_SKY_FRACTION``.

The negatives are few and partly synthetic: the calibration says how the rule behaves on these
photos, not on indoor photo collections at large.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pretrained import HARD_SEED, LABELMEFACADE, SKY_COLOR  # noqa: E402
from common import machine_info  # noqa: E402

import numpy as np  # noqa: E402

SKIMAGE_WITHOUT_SKY = ("coffee", "chelsea", "astronaut", "brick", "clock", "coins", "grass", "gravel",
                       "page", "text", "immunohistochemistry", "retina", "cell")


def sky_fraction(model, image) -> float:
    from skyseg_tf.inference import predict_image

    return float((predict_image(model, image) >= 0.5).mean())


def with_sky(model) -> list[tuple[str, float, float]]:
    """``(name, predicted fraction, true fraction)`` of LabelMeFacade's validation photos."""
    from skyseg_tf.data.folder import folder_dataset
    from skyseg_tf.data.spec import FILE_NAME_KEY, IMAGE_KEY, MASK_KEY

    dataset = folder_dataset(LABELMEFACADE / "images", LABELMEFACADE / "labels", sky_color=SKY_COLOR,
                             split="validation")
    rows = []
    for element in dataset.as_numpy_iterator():
        truth = float((element[MASK_KEY] > 0).mean())
        rows.append((element[FILE_NAME_KEY].decode(), sky_fraction(model, element[IMAGE_KEY]), truth))
    return rows


def without_sky(model, synthetic: int) -> list[tuple[str, float]]:
    from skimage import data

    from skyseg_tf.data.synthetic import render_element, scene_features

    rows = []
    for name in SKIMAGE_WITHOUT_SKY:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        rows.append((f"skimage:{name}", sky_fraction(model, image[..., :3])))
    for index in range(synthetic):
        if scene_features(HARD_SEED, index).get("closeup"):
            element = render_element(HARD_SEED, index, (360, 480))
            rows.append((f"synthetic:{index}", sky_fraction(model, element["image"])))
    return rows


def choose(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    """The threshold of lowest balanced error (middle of the best interval) and that error."""
    candidates = np.unique(np.concatenate([positives, negatives, [0.0, 1.0]]))
    errors = [(np.mean(positives < t) + np.mean(negatives >= t)) / 2 for t in candidates]
    best = min(errors)
    # Thresholds t with the same error form an interval between two candidates: take its middle.
    good = [i for i, e in enumerate(errors) if e == best]
    low = candidates[good[0] - 1] if good[0] > 0 else 0.0
    threshold = (low + candidates[good[0]]) / 2 if good[0] > 0 else candidates[good[0]]
    return float(threshold), float(best)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--synthetic", type=int, default=400, help="Held-out scenes to draw close-ups from.")
    parser.add_argument("--json", help="Also write the figures here.")
    args = parser.parse_args(argv)
    if not LABELMEFACADE.is_dir():
        print(f"{LABELMEFACADE} not found: the photos with sky are missing.")
        return 1

    import skyseg_tf
    from skyseg_tf.inference.facts import DEFAULT_HAS_SKY_FRACTION

    model = skyseg_tf.from_preset(args.preset) if args.preset else skyseg_tf.from_preset()
    positives = with_sky(model)
    negatives = without_sky(model, args.synthetic)
    pos = np.array([p for _, p, _ in positives])
    neg = np.array([p for _, p in negatives])
    threshold, error = choose(pos, neg)
    current = DEFAULT_HAS_SKY_FRACTION

    def rates(t):
        return float(np.mean(pos < t)), float(np.mean(neg >= t))

    print(machine_info())
    print(f"photos with sky: {len(pos)} (LabelMeFacade validation; true sky fraction min "
          f"{min(t for *_, t in positives):.4f}, median {np.median([t for *_, t in positives]):.3f})")
    print(f"photos without sky: {len(neg)} ({sum(n.startswith('skimage') for n, _ in negatives)} scikit-image, "
          f"{sum(n.startswith('synthetic') for n, _ in negatives)} synthetic close-ups)")
    print(f"predicted sky fraction, with sky: min {pos.min():.4f}, 5th percentile {np.percentile(pos, 5):.4f}")
    print(f"predicted sky fraction, without sky: max {neg.max():.4f}, 95th percentile {np.percentile(neg, 95):.4f}; "
          "highest: " + ", ".join(f"{n} {p:.4f}" for n, p in sorted(negatives, key=lambda r: -r[1])[:4]))
    print(f"best threshold {threshold:.4f}: balanced error {error:.4f}")
    for t in sorted({current, round(threshold, 4), 0.005, 0.02, 0.05}):
        miss, alarm = rates(t)
        print(f"  has_sky_fraction {t:.4f}: missed sky {miss:.3f} of photos with sky, "
              f"false sky {alarm:.3f} of photos without" + ("  <- DEFAULT_HAS_SKY_FRACTION" if t == current else ""))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({
            "threshold": threshold, "balanced_error": error, "current": current,
            "with_sky": positives, "without_sky": negatives}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
