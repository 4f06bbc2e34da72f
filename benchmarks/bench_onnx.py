"""onnxruntime against TensorFlow on a pretrained preset, side by side in one process.

    python benchmarks/bench_onnx.py [--preset sky_unet_efficientnet_lite0] [--steps 30] [--batch 1] [--threads N]
                                    [--json PATH]

The input is what prediction feeds the model for a 1024x768 photo: the photo (scikit-image's
public-domain rocket, resized to 1024x768) resized to the preset's working scale (shorter side
256, aspect kept: 256x341) and mirror-padded to the model's stride (256x352), as
``predict_image`` does. Contenders, all on that same float32 batch:

* ``keras predict_on_batch``: the Keras model as loaded (``from_preset``);
* ``tf.function``: ``model(x, training=False)`` in a ``tf.function`` with a fixed signature, as
  loaded, and of ``optimize_for_inference``'s rewrite (what ``skyseg predict`` and the SavedModel
  export run);
* ``onnxruntime``: ``skyseg_tf.export.export_onnx``'s file (the model as built), CPU provider,
  default session options, and with ``session.intra_op.allow_spinning`` off (idle worker
  threads sleep instead of spinning, which matters when other jobs share the cores); and, for
  reference, an ONNX file of the rewrite.

``--threads N`` gives TensorFlow (intra- and inter-op) and onnxruntime (intra-op) N threads each;
by default each library uses all cores.

Each is warmed up, then timed in interleaved rounds (``common.time_side_by_side``: the order
rotates each round; wall-clock and process CPU seconds); the table gives medians and the ratios
to the Keras ``tf.function`` as loaded. The largest difference of each output from Keras is
printed as well.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    describe_machine, machine_info, markdown_table, summarize, time_side_by_side, write_json)

import numpy as np  # noqa: E402

PHOTO_SHAPE = (768, 1024)
"""(height, width) of the photo whose working size is measured."""


def working_batch(model, batch: int) -> np.ndarray:
    """The preset's input for a 1024x768 photo: resized to its working scale, padded to its stride."""
    from skimage import data

    from skyseg_tf import preprocessing
    from skyseg_tf.inference import model_stride, pad_to_multiple, resize_images

    photo = resize_images(np.asarray(data.rocket())[None], PHOTO_SHAPE)
    size = preprocessing.get(model).working_size(PHOTO_SHAPE)
    images = pad_to_multiple(resize_images(photo, size), model_stride(model)).numpy()
    return np.repeat(images, batch, axis=0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="sky_unet_efficientnet_lite0")
    parser.add_argument("--steps", type=int, default=30, help="Timed rounds (the median is reported).")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="Threads for TensorFlow (intra- and inter-op) and onnxruntime (intra-op); "
                             "0: each library's default (all cores).")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()

    import onnxruntime
    import tensorflow as tf

    import skyseg_tf
    from skyseg_tf.export import export_onnx
    from skyseg_tf.models.optimize import optimize_for_inference

    if args.threads:  # before TensorFlow runs any op
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    info = machine_info()
    info["threads"] = args.threads or "default"
    info["onnxruntime"] = onnxruntime.__version__
    print(describe_machine(info) + f"; onnxruntime {onnxruntime.__version__}; threads: {info['threads']}")
    model = skyseg_tf.from_preset(args.preset)
    optimized = optimize_for_inference(model)
    images = working_batch(model, args.batch)
    print(f"{args.preset}: input {list(images.shape)} (a {PHOTO_SHAPE[1]}x{PHOTO_SHAPE[0]} photo's working size, "
          f"padded to the stride)")
    tensor = tf.constant(images)
    signature = [tf.TensorSpec(images.shape, tf.float32)]

    def compiled(keras_model):
        function = tf.function(lambda x: keras_model(x, training=False), input_signature=signature, autograph=False)
        return lambda: function(tensor)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    quiet = onnxruntime.SessionOptions()  # idle threads sleep instead of spinning: kinder to a shared CPU
    quiet.intra_op_num_threads = args.threads
    quiet.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory() as folder:
        sessions = {}
        for name, exported in (("as built", model), ("optimize_for_inference", optimized)):
            path = export_onnx(exported, os.path.join(folder, f"{len(sessions)}.onnx"))
            sessions[name] = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            if name == "as built":
                sessions["no spinning"] = onnxruntime.InferenceSession(path, quiet, providers=["CPUExecutionProvider"])
    functions = {
        "keras predict_on_batch (as loaded)": lambda: model.predict_on_batch(images),
        "tf.function (as loaded)": compiled(model),
        "tf.function (optimize_for_inference)": compiled(optimized),
        "onnxruntime (export_onnx: as built)": lambda: sessions["as built"].run(None, {"images": images})[0],
        "onnxruntime (export_onnx), spinning off": lambda: sessions["no spinning"].run(None, {"images": images})[0],
        "onnxruntime (ONNX of optimize_for_inference)":
            lambda: sessions["optimize_for_inference"].run(None, {"images": images})[0],
    }
    reference = np.asarray(model(tensor, training=False))
    differences = {}
    for name, function in functions.items():
        output = function()
        differences[name] = float(np.abs(np.asarray(output) - reference).max())
    times = time_side_by_side(functions, steps=args.steps, warmup=args.warmup)
    base = summarize(times["tf.function (as loaded)"])
    rows = []
    for name in functions:
        summary = summarize(times[name])
        rows.append({
            "contender": name, **summary,
            "median_ms": 1e3 * summary["median_s"], "min_ms": 1e3 * summary["min_s"],
            "cpu_ms": 1e3 * summary["cpu_median_s"],
            "images_per_s": args.batch / summary["median_s"],
            "speedup": base["median_s"] / summary["median_s"],
            "speedup_cpu": base["cpu_median_s"] / summary["cpu_median_s"],
            "max_abs_diff": differences[name],
        })
    print()
    print(markdown_table(rows, [
        ("contender", "contender", ""), ("median ms", "median_ms", ".1f"), ("min ms", "min_ms", ".1f"),
        ("CPU ms", "cpu_ms", ".1f"), ("images/s", "images_per_s", ".1f"),
        ("vs tf.function (wall)", "speedup", ".2f"), ("(CPU)", "speedup_cpu", ".2f"),
        ("max abs diff vs Keras", "max_abs_diff", ".1e"),
    ]))
    by_name = {row["contender"]: row for row in rows}
    for ort_name in ("onnxruntime (export_onnx: as built)", "onnxruntime (export_onnx), spinning off"):
        ort = by_name[ort_name]
        print(f"\n{ort_name}: speed-up (time of the other / its time) over")
        for name in ("keras predict_on_batch (as loaded)", "tf.function (as loaded)",
                     "tf.function (optimize_for_inference)"):
            row = by_name[name]
            print(f"  {name}: {row['median_s'] / ort['median_s']:.2f}x (wall), "
                  f"{row['cpu_median_s'] / ort['cpu_median_s']:.2f}x (CPU)")
    if args.json:
        write_json(args.json, {"machine": info, "preset": args.preset, "input_shape": list(images.shape),
                               "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
