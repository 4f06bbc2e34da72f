"""unet_resnet50 against segmentation_models' Unet("resnet50"), side by side in one process.

Both U-Nets are built under the same Keras with random weights (speed does not depend on them):
ours with ``skyseg_tf.build_model("unet_resnet50")``, theirs with
``skyseg_tf.models.from_segmentation_models("Unet", "resnet50", encoder_weights=None)``, which
is segmentation_models' own model behind the same raw-RGB input. Every contender is timed by
``benchmarks/common.py``'s ``time_side_by_side``: same input tensor, same batch, the same
``tf.function`` wrapping with a fixed input signature (and the same ``--jit`` / ``--freeze``
setting), interleaved rounds, median reported.

Inference (default 512x512, batch 1) rows:

* ``sm_unet`` - segmentation_models' U-Net as its users get it: the baseline of the targets.
* ``unet`` - ours as built (what ``skyseg_tf.build_model`` returns).
* ``unet_folded`` - ours after ``fold_batch_norms``.
* ``unet_optimized`` - ours after ``optimize_for_inference`` (BatchNorm folding + sub-pixel
  convolutions for the nearest-upsampling decoder convs): the library's inference model.
* ``sm_unet_optimized`` - *their* model after *our* ``optimize_for_inference``, so the reader
  sees how much of the gap is our rewrites (which work on any functional Keras model) and how
  much is the architecture.
* ``resnet50`` / ``resnet50_folded`` - the bare ``keras.applications.ResNet50(include_top=False)``
  encoder on the same input, as built and folded.
* ``peak_conv`` / ``peak_matmul`` - a 64x64x256->256 3x3 conv and a 2048^3 matmul, timed in the
  same rounds: the machine's peak under the same load.

Training (default 256x256, batch 8: ``skyseg train``'s defaults; Dice loss, Adam 1e-4,
``train_on_batch``): ``sm_unet``, ``unet``, ``unet_split`` (ours after
``split_upsampling_convs``: the same parameters, outputs and gradients), ``unet_fast`` (ours
after ``optimize_for_training``: the split plus fused BatchNorms, what ``skyseg train`` trains),
and the same two rewrites applied to segmentation_models' U-Net (``sm_unet_split``,
``sm_unet_fast``) for reference.

Targets (CPU): inference >= 1.3x sm's images/s; time <= 1.6x the bare ResNet50's; training
>= 1.2x sm's; >= 60% of the measured conv peak. The script prints which hold.

Usage (from the repository root):
    python benchmarks/bench_vs_segmentation_models.py                    # both, ~10 min on 2 cores
    python benchmarks/bench_vs_segmentation_models.py --mode infer --steps 15 --json runs/bench/vs_sm.json
    python benchmarks/bench_vs_segmentation_models.py --mode train --train-steps 5
    python benchmarks/bench_vs_segmentation_models.py --mode infer --freeze   # constant-folded graphs, all rows
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

TARGET_INFERENCE_SPEEDUP = 1.3
TARGET_TIME_VS_ENCODER = 1.6
TARGET_TRAINING_SPEEDUP = 1.2
TARGET_PEAK_FRACTION = 0.6

INFERENCE_LABELS = {
    "sm_unet": "segmentation_models Unet('resnet50')",
    "unet": "unet_resnet50 (as built)",
    "unet_folded": "unet_resnet50 + fold_batch_norms",
    "unet_optimized": "unet_resnet50 + optimize_for_inference",
    "sm_unet_optimized": "sm Unet('resnet50') + our optimize_for_inference",
    "resnet50": "keras.applications.ResNet50 (bare encoder)",
    "resnet50_folded": "ResNet50 + fold_batch_norms",
    "resnet50_channels_first": "ResNet50, channels_first (layout probe)",
}
TRAINING_LABELS = {
    "sm_unet": "segmentation_models Unet('resnet50')",
    "unet": "unet_resnet50 (as built)",
    "unet_split": "unet_resnet50 + split_upsampling_convs",
    "unet_fast": "unet_resnet50 + optimize_for_training (skyseg train)",
    "sm_unet_split": "sm Unet('resnet50') + our split_upsampling_convs",
    "sm_unet_fast": "sm Unet('resnet50') + our optimize_for_training",
}


INFERENCE_COLUMNS = [
    ("model", "label", ""), ("median s", "median_s", ".3f"), ("min s", "min_s", ".3f"),
    ("CPU s", "cpu_median_s", ".3f"), ("images/s", "images_per_s", ".2f"), ("vs sm", "speedup_vs_sm", ".2f"),
    ("vs sm (CPU)", "cpu_speedup_vs_sm", ".2f"), ("/ ResNet50", "time_vs_resnet50", ".2f"),
    ("/ ResNet50 (CPU)", "cpu_time_vs_resnet50", ".2f"), ("GFLOPs", "gflops_per_image", ".1f"),
    ("executed GFLOPs", "executed_gflops_per_image", ".1f"), ("% peak", "fraction_of_conv_peak", ".0%"),
    ("% peak (CPU)", "cpu_fraction_of_conv_peak", ".0%"),
]
TRAINING_COLUMNS = [
    ("model", "label", ""), ("median s", "median_s", ".3f"), ("min s", "min_s", ".3f"),
    ("CPU s", "cpu_median_s", ".3f"), ("images/s", "images_per_s", ".2f"), ("vs sm", "speedup_vs_sm", ".2f"),
    ("vs sm (CPU)", "cpu_speedup_vs_sm", ".2f"),
]
TARGET_COLUMNS = [
    ("target", "target", ""), ("optimised, wall", "optimized_wall", ".2f"), ("optimised, CPU", "optimized_cpu", ".2f"),
    ("as built, wall", "built_wall", ".2f"), ("as built, CPU", "built_cpu", ".2f"), ("met (wall / CPU)", "met", ""),
]


def _build_unets(size: int):
    from skyseg_tf.models import build_model, from_segmentation_models

    shape = (size, size, 3)
    ours = build_model("unet_resnet50", encoder_weights=None, input_shape=shape)
    theirs = from_segmentation_models("Unet", "resnet50", encoder_weights=None, input_shape=shape)
    return ours, theirs


def run_inference(args) -> dict:
    import keras

    from skyseg_tf.models.optimize import fold_batch_norms, optimize_for_inference
    from skyseg_tf.models.summary import count_flops

    ours, theirs = _build_unets(args.size)
    encoder = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(args.size, args.size, 3))
    models = {
        "sm_unet": theirs,
        "unet": ours,
        "unet_folded": fold_batch_norms(ours),
        "unet_optimized": optimize_for_inference(ours),
        "sm_unet_optimized": optimize_for_inference(theirs),
        "resnet50": encoder,
        "resnet50_folded": fold_batch_norms(encoder),
    }
    images, _ = common.random_batch(args.batch, args.size)
    functions = {name: common.inference_function(model, images, args.jit, args.freeze)
                 for name, model in models.items()}
    # count_flops counts what each model executes (the rewrites' transposed convs included); the
    # nominal figure of a rewrite is that of the model it was rewritten from.
    executed = {name: count_flops(model) for name, model in models.items()}
    nominal = dict(executed)
    nominal["unet_optimized"], nominal["unet_folded"] = nominal["unet"], nominal["unet"]
    nominal["sm_unet_optimized"], nominal["resnet50_folded"] = nominal["sm_unet"], nominal["resnet50"]
    if args.probe_layout:
        keras.config.set_image_data_format("channels_first")
        try:
            probe = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(3, args.size, args.size))
        finally:
            keras.config.set_image_data_format("channels_last")
        functions["resnet50_channels_first"] = common.inference_function(
            probe, images.transpose(0, 3, 1, 2).copy(), args.jit, args.freeze)
        nominal["resnet50_channels_first"] = executed["resnet50_channels_first"] = nominal["resnet50"]
    peaks = common.peak_functions()
    for name, (function, _) in peaks.items():
        functions[name] = function

    times = common.time_side_by_side(functions, args.steps, args.warmup)
    stats = {name: common.summarize(samples) for name, samples in times.items()}
    peak = {name: flops / stats[name]["median_s"] for name, (_, flops) in peaks.items()}
    cpu_peak = {name: flops / stats[name]["cpu_median_s"] for name, (_, flops) in peaks.items()}
    rows = []
    for name in functions:
        if name in peaks:
            continue
        row = {"name": name, "label": INFERENCE_LABELS[name], **stats[name],
               "images_per_s": args.batch / stats[name]["median_s"],
               "gflops_per_image": nominal[name] / 1e9, "executed_gflops_per_image": executed[name] / 1e9}
        for prefix, key, conv_peak in (("", "median_s", peak), ("cpu_", "cpu_median_s", cpu_peak)):
            seconds = stats[name][key]
            row[prefix + "speedup_vs_sm"] = stats["sm_unet"][key] / seconds
            row[prefix + "time_vs_resnet50"] = seconds / stats["resnet50"][key]
            row[prefix + "time_vs_resnet50_folded"] = seconds / stats["resnet50_folded"][key]
            row[prefix + "fraction_of_conv_peak"] = nominal[name] * args.batch / seconds / conv_peak["peak_conv"]
            row[prefix + "executed_fraction_of_conv_peak"] = (
                executed[name] * args.batch / seconds / conv_peak["peak_conv"])
        rows.append(row)
    return {"rows": rows, "peak_flops_per_s": peak, "cpu_peak_flops_per_cpu_s": cpu_peak, "times_s": times}


def run_training(args) -> dict:
    from skyseg_tf.models.optimize import optimize_for_training, split_upsampling_convs

    ours, theirs = _build_unets(args.train_size)
    models = {
        "sm_unet": theirs,
        "unet": ours,
        "unet_split": split_upsampling_convs(ours),
        "unet_fast": optimize_for_training(ours),
        "sm_unet_split": split_upsampling_convs(theirs),
        "sm_unet_fast": optimize_for_training(theirs),
    }
    images, masks = common.random_batch(args.train_batch, args.train_size)
    functions = {name: common.training_function(model, images, masks, args.jit) for name, model in models.items()}
    times = common.time_side_by_side(functions, args.train_steps, args.train_warmup)
    stats = {name: common.summarize(samples) for name, samples in times.items()}
    rows = []
    for name in functions:
        rows.append({
            "name": name, "label": TRAINING_LABELS[name], **stats[name],
            "images_per_s": args.train_batch / stats[name]["median_s"],
            "speedup_vs_sm": stats["sm_unet"]["median_s"] / stats[name]["median_s"],
            "cpu_speedup_vs_sm": stats["sm_unet"]["cpu_median_s"] / stats[name]["cpu_median_s"],
        })
    return {"rows": rows, "times_s": times}


def _target(text, rows, key, optimized, built, threshold=None, at_most=False) -> dict:
    """One target row: our fast path and our model as built, on both clocks."""
    values = {
        "target": text,
        "optimized_wall": rows[optimized][key], "optimized_cpu": rows[optimized]["cpu_" + key],
        "built_wall": rows[built][key], "built_cpu": rows[built]["cpu_" + key],
    }
    if threshold is None:
        values["met"] = "-"
    else:
        met = [(value <= threshold) if at_most else (value >= threshold)
               for value in (values["optimized_wall"], values["optimized_cpu"])]
        values["met"] = " / ".join("yes" if m else "NO" for m in met)
    return values


def check_targets(inference: dict | None, training: dict | None) -> list[dict]:
    """One row per target, for the optimised model and as built, wall / CPU clocks."""
    targets = []
    if inference:
        rows = {r["name"]: r for r in inference["rows"]}
        targets += [
            _target(f"inference images/s vs sm Unet >= {TARGET_INFERENCE_SPEEDUP}x", rows, "speedup_vs_sm",
                    "unet_optimized", "unet", TARGET_INFERENCE_SPEEDUP),
            _target(f"time / bare ResNet50's <= {TARGET_TIME_VS_ENCODER}x", rows, "time_vs_resnet50",
                    "unet_optimized", "unet", TARGET_TIME_VS_ENCODER, at_most=True),
            _target("time / BN-folded bare ResNet50's (the fold on both sides)", rows, "time_vs_resnet50_folded",
                    "unet_optimized", "unet"),
            _target(f"fraction of measured conv peak >= {TARGET_PEAK_FRACTION:.0%} (nominal FLOPs)", rows,
                    "fraction_of_conv_peak", "unet_optimized", "unet", TARGET_PEAK_FRACTION),
            _target("fraction of measured conv peak (FLOPs executed)", rows, "executed_fraction_of_conv_peak",
                    "unet_optimized", "unet"),
            _target("sm Unet + our optimize_for_inference vs sm Unet (for reference)", rows, "speedup_vs_sm",
                    "sm_unet_optimized", "sm_unet"),
        ]
    if training:
        rows = {r["name"]: r for r in training["rows"]}
        targets.append(_target(f"training images/s vs sm Unet >= {TARGET_TRAINING_SPEEDUP}x", rows, "speedup_vs_sm",
                               "unet_fast", "unet", TARGET_TRAINING_SPEEDUP))
        targets.append(_target("split_upsampling_convs alone vs sm Unet", rows, "speedup_vs_sm",
                               "unet_split", "unet"))
        targets.append(_target("sm Unet + our optimize_for_training vs sm Unet (for reference)", rows,
                               "speedup_vs_sm", "sm_unet_fast", "sm_unet"))
    return targets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("infer", "train", "both"), default="both")
    parser.add_argument("--size", type=int, default=512, help="inference height and width")
    parser.add_argument("--batch", type=int, default=1, help="inference batch")
    parser.add_argument("--steps", type=int, default=15, help="timed inference rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed inference calls per model")
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=5, help="timed training rounds")
    parser.add_argument("--train-warmup", type=int, default=2, help="untimed steps per model (the first compiles)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile every contender (jit_compile=True)")
    parser.add_argument("--freeze", action="store_true",
                        help="inference: variables folded into graph constants, for every contender")
    parser.add_argument("--probe-layout", action="store_true", help="also time a channels_first ResNet50")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)

    info = common.machine_info()
    print(common.describe_machine(info))
    settings = f"jit_compile={args.jit}, freeze={args.freeze}"
    results = {"machine": info, "args": vars(args)}
    inference = training = None
    if args.mode in ("infer", "both"):
        inference = run_inference(args)
        results["inference"] = inference
        print(f"\nInference, {args.size}x{args.size}, batch {args.batch}, median of {args.steps} rounds ({settings})")
        print("conv / matmul peak measured in the same rounds: " + ", ".join(
            f"{name} {inference['peak_flops_per_s'][name] / 1e9:.1f} GFLOP/s "
            f"({inference['cpu_peak_flops_per_cpu_s'][name] / 1e9:.1f} per CPU-second)"
            for name in inference["peak_flops_per_s"]))
        print(common.markdown_table(inference["rows"], INFERENCE_COLUMNS))
    if args.mode in ("train", "both"):
        training = run_training(args)
        results["training"] = training
        print(f"\nTraining step, {args.train_size}x{args.train_size}, batch {args.train_batch}, Dice + Adam, "
              f"median of {args.train_steps} rounds (jit_compile={args.jit})")
        print(common.markdown_table(training["rows"], TRAINING_COLUMNS))
    results["targets"] = check_targets(inference, training)
    print("\nTargets: ours optimised (skyseg_tf.models.optimize) and as built; sm always as shipped; "
          "wall clock and CPU time")
    print(common.markdown_table(results["targets"], TARGET_COLUMNS))
    if args.json:
        common.write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
