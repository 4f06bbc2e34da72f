"""Scores models side by side on each real source of a training config, as users run them.

    python benchmarks/bench_real_sets.py --models sky_unet_efficientnet_lite0 runs/x/best.keras \\
        [--config configs/sky_real_lite0_negatives.yaml] [--splits validation test] [--out runs/bench_real_sets]

Every validated source of the config's ``mix`` (LabelMeFacade, MSRC-v2 with its void masks, the
interiors as a negatives source; synthetic scenes are skipped) is scored on each split with
``skyseg_tf.evaluation.evaluate_models`` and ``image_size=None``: each photo predicted with
``predict_image``'s defaults (the model's recorded scale) and scored at its own resolution. The
sources are read from the config, so the benchmark scores exactly the split the model was
validated on (a source's ``split_group`` included); photos without sky are scored on every pixel
(``--window-policy none``), so a window onto the sky counts as false sky. The real sets are research-only and are read
from ``../shared/data``; nothing of them is written into the repository.

Prints one table (dataset IoU, false-sky pixels, photos with more than 1% / 5% false sky) and
writes ``OUT/real_sets.json`` and, per source and split, ``OUT/<source>_<split>/`` with the
report and the worst-photo grids.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine_info  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def real_sources(config_path, window_policy="none"):
    """``[(name, spec)]`` of the validated, non-synthetic sources of a config's mix; negatives
    sources are scored with ``window_policy`` (default ``"none"``: every pixel of a photo
    without sky counts, as on the maintainers' unseen interiors)."""
    from skyseg_tf.data.sources import parse_source
    from skyseg_tf.training import TrainConfig
    from skyseg_tf.training.train import _source

    config = TrainConfig.from_file(str(config_path))
    _, arguments = parse_source(_source(config), {})
    return [(name, {**spec, "window_policy": window_policy} if spec.get("type") == "negatives" else spec)
            for spec, name, use in zip(arguments["sources"], arguments["names"], arguments["validate"])
            if use and spec.get("type") != "synthetic"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="preset names, .keras files or SavedModels")
    parser.add_argument("--config", default=str(ROOT / "configs" / "sky_real_lite0_negatives.yaml"))
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    parser.add_argument("--out", default="runs/bench_real_sets")
    parser.add_argument("--json", help="also write the results here (e.g. benchmarks/results/x.json)")
    parser.add_argument("--window-policy", default="none", choices=("none", "ignore_blue"),
                        help="window policy of the negatives sources when scoring (default: none, every pixel)")
    args = parser.parse_args(argv)

    from skyseg_tf.evaluation import evaluate_models

    os.chdir(ROOT)  # the config's data paths are relative to the repository root
    out = pathlib.Path(args.out)
    results = {"machine": machine_info(), "config": args.config, "models": args.models,
               "window_policy": args.window_policy, "sets": {}}
    rows = []
    for name, spec in real_sources(args.config, args.window_policy):
        for split in args.splits:
            report = evaluate_models(args.models, spec, split=split, image_size=None,
                                     out_dir=out / f"{name}_{split}", num_figure_examples=8,
                                     progress=False)
            entry = {}
            for model in report.models:
                entry[model.name] = {"iou": model.metrics["iou"] if model.has_sky else None,
                                     "num_images": model.num_images, **model.false_sky}
                rows.append((name, split, model.name, entry[model.name]))
            results["sets"][f"{name}/{split}"] = entry
    print("| source | split | model | photos | IoU | false-sky pixels | photos > 1% | photos > 5% |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, split, model, values in rows:
        iou = "-" if values["iou"] is None else f"{values['iou']:.4f}"
        print(f"| {name} | {split} | {model} | {values['num_images']} | {iou} | "
              f"{100 * values['false_sky']:.2f}% | {100 * values['over_1pct']:.1f}% | "
              f"{100 * values['over_5pct']:.1f}% |")
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (out / "real_sets.json").write_text(text)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
