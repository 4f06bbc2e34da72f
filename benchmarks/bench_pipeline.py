"""Does the input pipeline keep the model fed? Pipeline images/s against training images/s.

For each image size, the synthetic scenes are rendered once and held in memory (the render rate
is reported on its own), then :func:`skyseg_tf.data.make_dataset` runs as a training pipeline
with no augmentation, the TensorFlow fast path and the albumentations path. Beside it, a
U-Net-ResNet50 (random weights, Dice loss, Adam) trains on fixed batches of the same size. The
ratio pipeline / training step says how much headroom the input has; the target is >= 3x with
the fast path, so the pipeline stays ahead when it shares the CPU with the training step.

Usage (from the repository root, after `make install`):
    python benchmarks/bench_pipeline.py --sizes 256 512 --batch 8 --steps 20 --json bench.json
    python benchmarks/bench_pipeline.py --sizes 128 --batch 4 --steps 5 --train-steps 2  # quick

Both measurements run on this machine's devices; on a GPU machine the training step runs on
the GPU while the pipeline runs on the CPU, which is the situation the target is about.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from skyseg_tf.data import make_dataset, synthetic_sky  # noqa: E402

TARGET_RATIO = 3.0
AUGMENT_PATHS = (("none", False), ("tf", "tf"), ("albumentations", "albumentations"))


def render_in_memory(size: int, num_examples: int, seed: int) -> tuple[tf.data.Dataset, float]:
    """Renders the scenes once; returns an in-memory dataset and the render rate (images/s).

    Scenes are rendered at 1.25 x 1.5 times the output size (4:3-ish, like ADE20K photos), so the
    timed pipeline includes the resize that a real source needs.
    """
    render_size = (round(size * 1.25), round(size * 1.5))
    start = time.perf_counter()
    elements = list(
        synthetic_sky(num_examples, image_size=render_size, seed=seed).as_numpy_iterator())
    seconds = time.perf_counter() - start
    stacked = {key: np.stack([e[key] for e in elements]) for key in elements[0]}
    return tf.data.Dataset.from_tensor_slices(stacked), len(elements) / seconds


def pipeline_rate(source, size, batch, augment, steps, warmup, seed) -> float:
    """Images/s of a repeated training pipeline, after ``warmup`` batches."""
    dataset = make_dataset(source, "train", (size, size), batch, augment=augment, repeat=True,
                           seed=seed, shuffle_buffer=64)
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        images, _ = next(iterator)
    _ = images.numpy()
    return steps * batch / (time.perf_counter() - start)


def training_rate(size, batch, steps, warmup) -> float:
    """Images/s of U-Net-ResNet50 training steps (random weights, Dice loss) on fixed batches."""
    import keras

    from skyseg_tf.losses import DiceLoss
    from skyseg_tf.models import build_model

    model = build_model("unet_resnet50", encoder_weights=None, input_shape=(size, size, 3))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=DiceLoss())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    masks = (rng.uniform(size=(batch, size, size, 1)) > 0.5).astype("float32")
    for _ in range(warmup):
        model.train_on_batch(images, masks)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(images, masks)
    float(np.asarray(loss).ravel()[0])  # wait for the last step
    rate = steps * batch / (time.perf_counter() - start)
    keras.backend.clear_session()
    return rate


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, default=8, help="global batch size")
    parser.add_argument("--steps", type=int, default=20, help="timed pipeline batches")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="timed training steps (default: --steps)")
    parser.add_argument("--examples", type=int, default=64, help="scenes rendered per size")
    parser.add_argument("--skip-train", action="store_true", help="pipeline only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    train_steps = args.train_steps or args.steps

    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "tensorflow": tf.__version__,
        },
        "settings": vars(args),
        "target_ratio": TARGET_RATIO,
        "sizes": [],
    }
    header = (f"{'size':>5} {'render':>8} {'none':>8} {'tf':>8} {'albu':>8} {'train':>8} "
              f"{'tf/train':>9} {'albu/train':>11}  target>={TARGET_RATIO:g}x (tf)")
    rows = []
    for size in args.sizes:
        source, render = render_in_memory(size, args.examples, args.seed)
        entry = {"size": size, "render_images_per_s": render, "pipeline_images_per_s": {}}
        for name, augment in AUGMENT_PATHS:
            entry["pipeline_images_per_s"][name] = pipeline_rate(
                source, size, args.batch, augment, args.steps, args.warmup, args.seed)
        if not args.skip_train:
            train = training_rate(size, args.batch, train_steps, min(args.warmup, 2))
            entry["train_images_per_s"] = train
            entry["ratio"] = {name: rate / train
                              for name, rate in entry["pipeline_images_per_s"].items()}
            entry["meets_target"] = entry["ratio"]["tf"] >= TARGET_RATIO
        results["sizes"].append(entry)
        rates = entry["pipeline_images_per_s"]
        train = entry.get("train_images_per_s")
        ratio = entry.get("ratio", {})
        rows.append(
            f"{size:>5} {render:>8.1f} {rates['none']:>8.1f} {rates['tf']:>8.1f} "
            f"{rates['albumentations']:>8.1f} "
            + (f"{train:>8.2f} {ratio['tf']:>8.1f}x {ratio['albumentations']:>10.1f}x  "
               f"{'yes' if entry['meets_target'] else 'NO'}" if train else f"{'-':>8}")
        )
    print("images/s (render: synthetic scenes, not part of the timed pipeline)")
    print(header)
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
