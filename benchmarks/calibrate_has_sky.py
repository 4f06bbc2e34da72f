"""Calibrates ``has_sky``: the sky fraction from which a photo is said to show sky.

    python benchmarks/calibrate_has_sky.py [--preset sky_unet_efficientnet_lite0] [--synthetic 400] \\
        [--max-per-group N] [--json benchmarks/results/has_sky_<preset>.json]

Each photo is predicted as ``skyseg predict`` does (``predict_image``'s defaults), and its sky
fraction (share of pixels with probability >= 0.5) is computed. Every real set is read on its
**validation** part only (the 60/20/20 hash split of ``skyseg_tf.data.load_source``, the split
the presets were validated on; never train or test) from ``../shared/data`` (research-only
licences: never copied into the repository). The photos fall into groups:

* with sky: **LabelMeFacade** (its validation photos all show sky) and **MSRC-v2 with sky**;
* without sky: **MSRC-v2 without sky** (countryside close-ups, animals, objects), the
  **interiors** of ``houses_indoor`` (bathrooms, bedrooms, kitchens; split by house, every photo
  counted as "no sky", including the few whose window shows a little real sky), and
  **scikit-image & synthetic**: scikit-image's public-domain photos and textures without sky (a
  cup of coffee, a cat, a portrait, bricks, grass, gravel, coins, a clock, text, microscopy) and
  synthetic close-ups of a held-out seed (walls, foliage, ground filling the frame).

A masked photo shows sky when any pixel of its mask is ``1`` (sky); void pixels
(:data:`~skyseg_tf.outputs.VOID_LABEL`, ``2``) are not sky. A photo whose truth has no group in
its set (a LabelMeFacade photo without sky) is left out and counted.

The threshold chosen minimises the **balanced error**: the mean of the miss rate on the side
"with sky" and the false-alarm rate on the side "without sky", where each side's rate is the
mean of its groups' rates, **every group within a side weighing the same** whatever its number
of photos (so a few dozen scikit-image and synthetic images count as much as hundreds of
interiors, and no set dominates because it is large). Among thresholds of equal error, the middle of the interval.
The figures are printed for docs/benchmarks.md (``--json`` keeps every photo's fraction); the
value is ``skyseg_tf.inference.facts.DEFAULT_HAS_SKY_FRACTION``. ``--max-per-group N`` takes the
first N photos of each group, for a quick check of the script, not for a calibration.

The calibration says how the rule behaves on these groups, not on every photo collection.
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

DATA = LABELMEFACADE.parent
SPLIT = "validation"
SOURCES = {
    "LabelMeFacade": {"type": "folder", "images": str(LABELMEFACADE / "images"),
                      "masks": str(LABELMEFACADE / "labels"), "sky_color": list(SKY_COLOR)},
    "MSRC-v2": {"type": "folder", "images": str(DATA / "msrc_v2" / "images"),
                "masks": str(DATA / "msrc_v2" / "masks"), "void": str(DATA / "msrc_v2" / "void")},
    "interiors": {"type": "negatives", "images": str(DATA / "houses_indoor" / "images"),
                  "split_group": "^([^_]+)_", "window_policy": "none"},
}
"""The real sets, read with ``skyseg_tf.data.load_source(spec, SPLIT)``."""

GROUPS = {  # group: (set it comes from, whether its photos show sky)
    "LabelMeFacade": ("LabelMeFacade", True),
    "MSRC-v2 with sky": ("MSRC-v2", True),
    "MSRC-v2 without sky": ("MSRC-v2", False),
    "interiors": ("interiors", False),
    "scikit-image & synthetic": (None, False),
}
SKIMAGE_WITHOUT_SKY = ("coffee", "chelsea", "astronaut", "brick", "clock", "coins", "grass", "gravel",
                       "page", "text", "immunohistochemistry", "retina", "cell")

def sky_fraction(model, image) -> float:
    from skyseg_tf.inference import predict_image

    return float((predict_image(model, image) >= 0.5).mean())


def real_set(model, name: str, max_per_group: int | None) -> tuple[dict[str, list[tuple]], int]:
    """Set ``name``'s validation photos by group, and how many photos had no group.

    A row is ``(photo name, predicted sky fraction, true sky fraction)``.
    """
    from skyseg_tf.data import load_source
    from skyseg_tf.data.spec import FILE_NAME_KEY, IMAGE_KEY, MASK_KEY

    group_of = {shows_sky: group for group, (source, shows_sky) in GROUPS.items() if source == name}
    rows = {group: [] for group in group_of.values()}
    left_out = 0
    for element in load_source(SOURCES[name], SPLIT).as_numpy_iterator():
        sky = element[MASK_KEY] == 1  # void (2) is not sky
        group = group_of.get(bool(sky.any()))
        if group is None:
            left_out += 1
        elif max_per_group is None or len(rows[group]) < max_per_group:
            rows[group].append((element[FILE_NAME_KEY].decode(), sky_fraction(model, element[IMAGE_KEY]),
                                float(sky.mean())))
        if max_per_group is not None and all(len(r) >= max_per_group for r in rows.values()):
            break
    return rows, left_out


def skimage_and_synthetic(model, synthetic: int, max_per_group: int | None) -> list[tuple]:
    from skimage import data

    from skyseg_tf.data.synthetic import render_element, scene_features

    rows = []
    for name in SKIMAGE_WITHOUT_SKY:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        rows.append((f"skimage:{name}", sky_fraction(model, image[..., :3]), None))
        if max_per_group is not None and len(rows) >= max_per_group:
            return rows
    for index in range(synthetic):
        if scene_features(HARD_SEED, index).get("closeup"):
            element = render_element(HARD_SEED, index, (360, 480))
            rows.append((f"synthetic:{index}", sky_fraction(model, element["image"]), None))
            if max_per_group is not None and len(rows) >= max_per_group:
                break
    return rows


def group_rates(threshold: float, positives: list[np.ndarray], negatives: list[np.ndarray]):
    """Miss rate of each group with sky and false-alarm rate of each group without, at ``threshold``."""
    return ([float(np.mean(p < threshold)) for p in positives],
            [float(np.mean(n >= threshold)) for n in negatives])


def balanced_error(threshold: float, positives: list[np.ndarray], negatives: list[np.ndarray]) -> float:
    """Mean of the groups' miss rates and mean of the groups' false-alarm rates, averaged."""
    misses, alarms = group_rates(threshold, positives, negatives)
    return float((np.mean(misses) + np.mean(alarms)) / 2)


def choose(positives: list[np.ndarray], negatives: list[np.ndarray]) -> tuple[float, float]:
    """The threshold of lowest balanced error (middle of the best interval) and that error.

    ``positives``/``negatives``: one array of predicted sky fractions per group, each group
    weighing the same within its side.
    """
    candidates = np.unique(np.concatenate([*positives, *negatives, [0.0, 1.0]]))
    # The error at candidates[i] holds for every threshold in (candidates[i - 1], candidates[i]].
    errors = np.array([balanced_error(t, positives, negatives) for t in candidates])
    best = errors.min()
    first = int(np.flatnonzero(errors <= best + 1e-12)[0])
    last = first
    while last + 1 < len(errors) and errors[last + 1] <= best + 1e-12:
        last += 1
    low = candidates[first - 1] if first > 0 else candidates[0]
    return float((low + candidates[last]) / 2), float(best)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None,
                        help="A preset name or a folder written by save_preset (default: the default preset).")
    parser.add_argument("--synthetic", type=int, default=400, help="Held-out scenes to draw close-ups from.")
    parser.add_argument("--max-per-group", type=int, default=None,
                        help="Only the first N photos of each group: a quick check, not a calibration.")
    parser.add_argument("--json", help="Also write the figures here.")
    args = parser.parse_args(argv)
    if args.max_per_group is not None and args.max_per_group < 1:
        parser.error(f"--max-per-group: received {args.max_per_group}; pass a positive number of photos.")
    missing = [f"{name} ({spec['images']})" for name, spec in SOURCES.items()
               if not pathlib.Path(spec["images"]).is_dir()]
    if missing:
        print(f"not found: {', '.join(missing)}; every set is needed for the calibration.")
        return 1

    import skyseg_tf
    from skyseg_tf.inference.facts import DEFAULT_HAS_SKY_FRACTION

    model = skyseg_tf.from_preset(args.preset) if args.preset else skyseg_tf.from_preset()
    rows, left_out = {}, {}
    for name in SOURCES:
        by_group, left_out[name] = real_set(model, name, args.max_per_group)
        rows.update(by_group)
    rows["scikit-image & synthetic"] = skimage_and_synthetic(model, args.synthetic, args.max_per_group)
    empty = [group for group in GROUPS if not rows[group]]
    if empty:
        print(f"groups without photos: {', '.join(empty)}; the calibration needs every group.")
        return 1
    fractions = {group: np.array([p for _, p, _ in rows[group]]) for group in GROUPS}
    with_sky = [group for group, (_, shows_sky) in GROUPS.items() if shows_sky]
    without_sky = [group for group in GROUPS if group not in with_sky]
    positives, negatives = [fractions[g] for g in with_sky], [fractions[g] for g in without_sky]
    threshold, error = choose(positives, negatives)
    current = DEFAULT_HAS_SKY_FRACTION

    print(machine_info())
    print(f"preset {args.preset or 'default'}; {SPLIT} parts; "
          + (f"at most {args.max_per_group} photos per group (a check, not a calibration)"
             if args.max_per_group else "every photo"))
    print(f"photos with sky: {sum(len(rows[g]) for g in with_sky)} in {len(with_sky)} groups")
    for group in with_sky:
        pred, true = fractions[group], [t for *_, t in rows[group]]
        print(f"  {group}: {len(pred)} photos; true sky fraction min {min(true):.4f}, median "
              f"{np.median(true):.3f}; predicted min {pred.min():.4f}, 5th percentile {np.percentile(pred, 5):.4f}")
    print(f"photos without sky: {sum(len(rows[g]) for g in without_sky)} in {len(without_sky)} groups")
    for group in without_sky:
        pred = fractions[group]
        highest = sorted(rows[group], key=lambda r: -r[1])[:4]
        print(f"  {group}: {len(pred)} photos; predicted max {pred.max():.4f}, 95th percentile "
              f"{np.percentile(pred, 95):.4f}; highest: " + ", ".join(f"{n} {p:.4f}" for n, p, _ in highest))
    if any(left_out.values()):
        print("left out (no group for their truth): "
              + ", ".join(f"{name} {count}" for name, count in left_out.items() if count))
    print(f"best threshold {threshold:.4f}: balanced error {error:.4f} (each group weighs the same within its side)")
    table = []
    for t in sorted({current, round(threshold, 4), 0.005, 0.01, 0.02, 0.05}):
        misses, alarms = group_rates(t, positives, negatives)
        table.append({"has_sky_fraction": t, "balanced_error": balanced_error(t, positives, negatives),
                      "missed_sky": dict(zip(with_sky, misses)), "false_sky": dict(zip(without_sky, alarms))})
        print(f"  has_sky_fraction {t:.4f}: missed sky "
              + ", ".join(f"{g} {m:.3f}" for g, m in zip(with_sky, misses))
              + "; false sky " + ", ".join(f"{g} {a:.3f}" for g, a in zip(without_sky, alarms))
              + f"; balanced error {table[-1]['balanced_error']:.3f}"
              + ("  <- DEFAULT_HAS_SKY_FRACTION" if t == current else ""))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({
            "machine": machine_info(), "preset": args.preset, "split": SPLIT, "max_per_group": args.max_per_group,
            "threshold": threshold, "balanced_error": error, "current": current, "table": table,
            "left_out": left_out,
            "groups": {group: {"set": source, "with_sky": shows_sky, "photos": rows[group]}
                       for group, (source, shows_sky) in GROUPS.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
