"""predict_image(model, photo) in a loop: one compiled predictor per model (now) vs one per call.

    python benchmarks/bench_predict_loop.py [--photos 100]

Before the fix, every ``predict_image(model, ...)`` call built a new ``SkyPredictor`` and so a new
``tf.function``, traced again for every photo; now the model keeps its predictor. Both paths run
side by side on the same 480x360 photos with the pretrained preset; prints seconds per photo and
the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import describe_machine, machine_info  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=100)
    args = parser.parse_args()
    import skyseg_tf
    from skyseg_tf.inference import SkyPredictor, predict_image

    print(describe_machine(machine_info()))
    model = skyseg_tf.from_preset()
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (360, 480, 3), dtype=np.uint8) for _ in range(args.photos)]
    predict_image(model, photos[0])  # the cached path compiles once, before timing
    timings = {"one predictor per call (before)": 0.0, "cached predictor (now)": 0.0}
    for photo in photos:
        start = time.perf_counter()
        predict_image(SkyPredictor(model), photo)
        timings["one predictor per call (before)"] += time.perf_counter() - start
        start = time.perf_counter()
        predict_image(model, photo)
        timings["cached predictor (now)"] += time.perf_counter() - start
    for name, seconds in timings.items():
        print(f"{name}: {1000 * seconds / len(photos):.1f} ms per photo ({len(photos)} photos, 480x360)")
    before, now = timings.values()
    print(f"speed-up: {before / now:.1f}x")


if __name__ == "__main__":
    main()
