"""Inference and training images/s of every registry model, with FLOPs and the fraction of peak.

For each model of ``skyseg_tf.list_models()`` (or ``--models``), each size and each batch, on
whatever machine runs it (TensorFlow places the work on a GPU when it sees one):

* inference: ``model(x, training=False)`` in a ``tf.function`` with a fixed input signature,
  for the model as built and after ``skyseg_tf.models.optimize.optimize_for_inference``;
* training: ``train_on_batch`` with the Dice loss and Adam, for the model as built and after
  ``optimize_for_training`` as ``skyseg train`` applies it (fused BatchNorms; sub-pixel
  upsampling convs in the U-Nets from a batch of 8, on CPUs);
* a 64x64x256->256 3x3 convolution timed in the same interleaved rounds, whose FLOP/s is the
  peak the models are compared with (``common.time_side_by_side``).

FLOPs per image are ``skyseg_tf.models.summary.count_flops`` of the model as built (2 x the
multiply-adds of its convs); the optimised variants execute fewer (``executed GFLOPs``: their own
``count_flops``, which counts the transposed convs they run), so their "% peak" is an effective
figure. Training FLOPs are counted as 3x the forward pass. Times are
taken on the wall clock and in CPU seconds (``common.time_side_by_side``); on a shared machine
quote the CPU-time columns.

All 9 models x 2 sizes x 2 batches x train + infer takes hours on a 2-core CPU; pick a subset.

Usage (from the repository root):
    python benchmarks/bench_models.py                                   # everything (slow on a CPU)
    python benchmarks/bench_models.py --models unet_resnet50 unet_mobilenet_v3_large \\
        --sizes 256 512 --batches 1 --mode infer --steps 7
    python benchmarks/bench_models.py --models unet_mobilenet_v3_large --sizes 256 --batches 8 \\
        --mode train --steps 3 --json runs/benchmarks/train.json
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

TRAINING_FLOPS_FACTOR = 3
"""A training step costs about 3 forward passes (forward, gradient of inputs, of weights)."""

VARIANTS = ("built", "optimized")


def _variants(model, mode: str, wanted, batch: int) -> dict:
    """The models to time: as built, and the mode's rewrite as the library applies it."""
    from skyseg_tf.models.optimize import optimize_for_inference, optimize_for_training

    models = {"built": model} if "built" in wanted else {}
    if "optimized" in wanted:
        if mode == "infer":
            models["optimized"] = optimize_for_inference(model)
        else:
            models["optimized"] = optimize_for_training(model, split_upsampling="auto", replica_batch=batch)
    return models


def bench_one(name: str, size: int, batches, modes, wanted, steps: int, warmup: int, jit: bool) -> list[dict]:
    """Rows for one registry model at one size: every batch, mode and variant."""
    import keras

    from skyseg_tf.models import build_model
    from skyseg_tf.models.summary import count_flops

    rows = []
    for mode in modes:
        for batch in batches:
            keras.backend.clear_session()
            model = build_model(name, encoder_weights=None, input_shape=(size, size, 3))
            flops = count_flops(model)
            models = _variants(model, mode, wanted, batch)
            images, masks = common.random_batch(batch, size)
            if mode == "infer":
                functions = {v: common.inference_function(m, images, jit) for v, m in models.items()}
            else:
                functions = {v: common.training_function(m, images, masks, jit) for v, m in models.items()}
            peak_function, peak_flops = common.peak_functions()["peak_conv"]
            functions["peak_conv"] = peak_function
            times = common.time_side_by_side(functions, steps, warmup)
            stats = {key: common.summarize(samples) for key, samples in times.items()}
            peak = peak_flops / stats["peak_conv"]["median_s"]
            cpu_peak = peak_flops / stats["peak_conv"]["cpu_median_s"]
            work = (1 if mode == "infer" else TRAINING_FLOPS_FACTOR) * flops * batch
            for variant, variant_model in models.items():
                row = stats[variant]
                built = stats.get("built")
                rows.append({
                    "model": name, "size": size, "batch": batch, "mode": mode, "variant": variant, **row,
                    "images_per_s": batch / row["median_s"],
                    "speedup_vs_built": built["median_s"] / row["median_s"] if built else None,
                    "cpu_speedup_vs_built": built["cpu_median_s"] / row["cpu_median_s"] if built else None,
                    "gflops_per_image": flops / 1e9,
                    "executed_gflops_per_image": count_flops(variant_model) / 1e9,
                    "effective_gflops_per_s": work / row["median_s"] / 1e9,
                    "peak_conv_gflops_per_s": peak / 1e9,
                    "fraction_of_peak": work / row["median_s"] / peak,
                    "cpu_fraction_of_peak": work / row["cpu_median_s"] / cpu_peak,
                })
                print(_format_row(rows[-1]), flush=True)
    return rows


def _format_row(row: dict) -> str:
    return (f"{row['model']:34s} {row['size']:4d} b{row['batch']:<2d} {row['mode']:5s} {row['variant']:9s} "
            f"{row['images_per_s']:8.2f} img/s  ({row['fraction_of_peak']:.0%} of {row['peak_conv_gflops_per_s']:.0f} "
            f"GFLOP/s conv peak; {row['cpu_fraction_of_peak']:.0%} in CPU time)")


COLUMNS = [
    ("model", "model", ""), ("size", "size", "d"), ("batch", "batch", "d"), ("mode", "mode", ""),
    ("variant", "variant", ""), ("median s", "median_s", ".3f"), ("CPU s", "cpu_median_s", ".3f"),
    ("images/s", "images_per_s", ".2f"), ("vs built", "speedup_vs_built", ".2f"),
    ("vs built (CPU)", "cpu_speedup_vs_built", ".2f"), ("GFLOPs/image", "gflops_per_image", ".1f"),
    ("executed GFLOPs", "executed_gflops_per_image", ".1f"), ("GFLOP/s", "effective_gflops_per_s", ".1f"),
    ("conv peak GFLOP/s", "peak_conv_gflops_per_s", ".1f"), ("% peak", "fraction_of_peak", ".0%"),
    ("% peak (CPU)", "cpu_fraction_of_peak", ".0%"),
]


def main(argv=None):
    from skyseg_tf.models import list_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--mode", choices=("infer", "train", "both"), default="both")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per model (the first traces)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile every model (jit_compile=True)")
    parser.add_argument("--json", default="runs/benchmarks/bench_models.json", help="where to write the results")
    args = parser.parse_args(argv)

    names = args.models or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}")
    modes = ("infer", "train") if args.mode == "both" else (args.mode,)

    info = common.machine_info()
    print(common.describe_machine(info), flush=True)
    rows = []
    for name in names:
        for size in args.sizes:
            rows += bench_one(name, size, args.batches, modes, args.variants, args.steps, args.warmup, args.jit)
    print()
    print(common.markdown_table(rows, COLUMNS))
    common.write_json(args.json, {"machine": info, "args": vars(args), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
