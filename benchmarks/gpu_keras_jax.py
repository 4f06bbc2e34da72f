"""GPU throughput of the model zoo under Keras 3's JAX backend (for GPU machines without TensorFlow).

skyseg_tf's models, losses and metrics are written against ``keras`` / ``keras.ops`` only, so
they run unchanged on Keras's JAX backend. This script measures, on the GPU it finds:

- inference images/s (``predict_on_batch``, jit-compiled) at batch 1 and 8,
- training images/s (``train_on_batch`` with the Dice loss, Adam) at batch 8,
- in float32 and under the ``mixed_bfloat16`` policy,
- the bare ``keras.applications.ResNet50`` encoder, for the decoder-cost ratio,
- with ``--variants built optimized``, each model also after ``optimize_for_inference`` (inference
  rows) and ``optimize_for_training`` (training rows; under JAX its fused BatchNorm runs Keras's
  own code, so only the sub-pixel split differs),
- a large bf16 / fp32 matmul, for the fraction of the measured peak.

It does not import ``skyseg_tf``'s package root (which needs TensorFlow for the data and
training parts); it loads ``skyseg_tf.models`` and ``skyseg_tf.losses`` directly.

Usage::

    KERAS_BACKEND=jax python benchmarks/gpu_keras_jax.py --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_skyseg_models():
    """Imports skyseg_tf.models and skyseg_tf.losses without the TensorFlow-only package root."""
    package = types.ModuleType("skyseg_tf")
    package.__path__ = [os.path.join(ROOT, "skyseg_tf")]
    sys.modules.setdefault("skyseg_tf", package)
    from skyseg_tf import losses, models
    from skyseg_tf.models import optimize
    from skyseg_tf.models.summary import count_flops

    return models, losses, count_flops, optimize


def _time(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _matmul_peak(dtype, n=8192, steps=10):
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), dtype)
    b = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    seconds = _time(lambda: f(a, b).block_until_ready(), steps, 3)
    return 2 * n**3 / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unet_resnet50", "deeplabv3_resnet50", "deeplabv3plus_resnet50",
                                                         "unet_mobilenet_v3_large", "unet_resnet101"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train-models", nargs="+", default=["unet_resnet50", "deeplabv3_resnet50"])
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--variants", nargs="+", choices=("built", "optimized"), default=["built"],
                        help="optimized: also time optimize_for_inference / optimize_for_training")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import jax
    import keras
    import numpy as np

    models, losses, count_flops, optimize = _load_skyseg_models()
    device = str(jax.devices()[0])
    print(f"device: {device}, keras {keras.__version__} ({keras.backend.backend()}), jax {jax.__version__}", flush=True)
    peak = {"bf16": _matmul_peak("bfloat16", args.matmul_size), "fp32": _matmul_peak("float32", args.matmul_size)}
    print(f"measured matmul peak: bf16 {peak['bf16'] / 1e12:.0f} TFLOP/s, fp32 {peak['fp32'] / 1e12:.0f} TFLOP/s", flush=True)
    size = args.size
    rng = np.random.default_rng(0)
    rows = []

    def record(**row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    for policy in ("float32", "mixed_bfloat16"):
        keras.config.set_dtype_policy(policy)
        peak_key = "bf16" if policy == "mixed_bfloat16" else "fp32"
        encoder = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(size, size, 3))
        x1 = rng.uniform(0, 255, (1, size, size, 3)).astype("float32")
        seconds = _time(lambda: encoder.predict_on_batch(x1), args.steps, args.warmup)
        record(model="keras.applications.ResNet50 (encoder only)", policy=policy, mode="infer", batch=1,
               images_per_s=1 / seconds, ms_per_batch=seconds * 1e3)
        for name in args.models:
            keras.utils.clear_session()
            built = models.build_model(name, encoder_weights=None, input_shape=(size, size, 3))
            flops = count_flops(built)
            variants = {"built": lambda: built, "optimized": lambda: optimize.optimize_for_inference(built)}
            for variant in args.variants:
                model = variants[variant]()
                for batch in (1, 8):
                    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
                    seconds = _time(lambda: model.predict_on_batch(x), args.steps, args.warmup)
                    record(model=name, variant=variant, policy=policy, mode="infer", batch=batch,
                           images_per_s=batch / seconds, ms_per_batch=seconds * 1e3, gflops_per_image=flops / 1e9,
                           fraction_of_matmul_peak=flops * batch / seconds / peak[peak_key])
            if name in args.train_models:
                batch = 8
                x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
                y = (rng.uniform(size=(batch, size, size, 1)) > 0.5).astype("float32")
                variants = {"built": lambda: built, "optimized": lambda: optimize.optimize_for_training(built)}
                for variant in args.variants:
                    model = variants[variant]()
                    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=losses.DiceLoss(), jit_compile=True)
                    seconds = _time(lambda: model.train_on_batch(x, y), args.steps, args.warmup)
                    record(model=name, variant=variant, policy=policy, mode="train", batch=batch,
                           images_per_s=batch / seconds, ms_per_batch=seconds * 1e3, gflops_per_image=3 * flops / 1e9,
                           fraction_of_matmul_peak=3 * flops * batch / seconds / peak[peak_key])
    keras.config.set_dtype_policy("float32")
    result = {"device": device, "size": size, "keras": keras.__version__, "backend": "jax",
              "matmul_peak_flops": peak, "rows": rows}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
