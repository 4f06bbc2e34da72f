"""Peak memory (RSS) of predicting a 4000x3000 photo on CPU with ``predict_image``.

Each configuration runs in a fresh subprocess, which reads a 4000x3000 JPEG (a synthetic scene
written by the parent), builds the model (random weights: memory does not depend on them) and
predicts; the worker reports its peak resident set size (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``) after building the model and after predicting, and the prediction time. Target for
``unet_resnet50``: under 4 GB.

Run:
    python benchmarks/bench_predict_memory.py                       # unet_resnet50, all modes
    python benchmarks/bench_predict_memory.py --model unet_mobilenet_v3_large --modes resize

Example:
    >>> main(["--model", "unet_mobilenet_v3_large", "--modes", "resize"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    "resize": {"mode": "resize"},
    "resize+guided": {"mode": "resize", "refine": "guided"},
    "tile": {"mode": "tile", "tile_size": 512, "overlap": 64, "batch_size": 4},
}
TARGET_BYTES = 4 * 1024**3


def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def worker(model_name: str, photo: str, config: str) -> None:
    """Runs one configuration and prints a JSON line with the peak RSS and timings."""
    import skyseg_tf
    from skyseg_tf.data.folder import read_image
    from skyseg_tf.inference import predict_image

    model = skyseg_tf.build_model(model_name, encoder_weights=None)
    image = read_image(photo)
    after_build = _peak_rss_bytes()
    start = time.perf_counter()
    probability = predict_image(model, image, **CONFIGS[config])
    seconds = time.perf_counter() - start
    print("RESULT" + json.dumps({
        "config": config, "shape": list(probability.shape), "seconds": seconds,
        "peak_after_build": after_build, "peak": _peak_rss_bytes(),
    }))


def write_photo(path: str, height: int = 3000, width: int = 4000) -> None:
    import numpy as np
    from PIL import Image

    from skyseg_tf.data.synthetic import render_scene

    image, _ = render_scene(np.random.default_rng(0), height, width,
                            {"hills": True, "trees": True, "poles": True, "wires": True, "clouds": True})
    Image.fromarray(image).save(path, quality=92)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="unet_resnet50")
    parser.add_argument("--modes", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--worker", nargs=2, metavar=("PHOTO", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.model, *args.worker)
        return

    with tempfile.TemporaryDirectory() as folder:
        photo = os.path.join(folder, "photo_4000x3000.jpg")
        write_photo(photo)
        print(f"{args.model}, 4000x3000 photo, CPU ({os.cpu_count()} cores)")
        print()
        print("| configuration | peak RSS | of which model + photo | time | under 4 GB |")
        print("|---|---:|---:|---:|---|")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        for config in args.modes:
            done = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--model", args.model, "--worker", photo, config],
                capture_output=True, text=True, env=env)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
            if done.returncode != 0 or not lines:
                print(f"| {config} | failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]} |")
                continue
            result = json.loads(lines[0][len("RESULT"):])
            assert result["shape"] == [3000, 4000]
            gib = 1024**3
            print(f"| {config} | {result['peak'] / gib:.2f} GiB | {result['peak_after_build'] / gib:.2f} GiB "
                  f"| {result['seconds']:.1f} s | {'yes' if result['peak'] < TARGET_BYTES else 'NO'} |")


if __name__ == "__main__":
    main()
