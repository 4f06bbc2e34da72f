"""Shared helpers of the model benchmarks: timing side by side, peak FLOP/s, machine facts, output.

Every measurement in ``bench_models.py`` and ``bench_vs_segmentation_models.py`` goes through
:func:`time_side_by_side`: the functions compared (and a reference convolution that measures the
machine's peak) are warmed up, then run in rounds, one call of each per round, the order rotating
from round to round. On a shared machine the load changes by the second; running the
contenders side by side makes them see the same load, so their *ratios* hold even when the
absolute figures drift. Each call is timed on two clocks, wall time and the process's CPU time
(see :func:`time_side_by_side`); report the median of the rounds on both.

These are plain scripts' helpers, not library code, and not tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PEAK_MATMUL_SIZE = 2048
"""n of the n x n x n float32 matmul that measures the machine's matmul peak."""

PEAK_CONV_SHAPE = (1, 64, 64, 256, 256)
"""(batch, height, width, in, out) of the 3x3 float32 convolution that measures the conv peak."""


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


def cpu_model_name() -> str:
    """The CPU's model name as ``lscpu`` prints it (``/proc/cpuinfo`` as a fallback)."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in output.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """CPU model and cores, accelerators, and the versions that the figures depend on."""
    import keras
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu_model_name(),
        "cores": cores,
        "load_average_1min_at_start": load,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 Linux)"),
    }


def describe_machine(info: dict) -> str:
    """One line for the top of a benchmark's output."""
    gpus = ", ".join(info["gpus"]) or "no GPU"
    return (f"{info['cpu']}, {info['cores']} cores, {gpus}; TensorFlow {info['tensorflow']}, "
            f"Keras {info['keras']}; load average {info['load_average_1min_at_start']}")


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _materialize(value: Any) -> None:
    """Waits for a result: converts every tensor in it to NumPy (a device sync on GPUs)."""
    if isinstance(value, dict):
        for item in value.values():
            _materialize(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _materialize(item)
    elif hasattr(value, "numpy"):
        value.numpy()


def time_side_by_side(functions: dict[str, Callable[[], Any]], steps: int, warmup: int) -> dict[str, dict]:
    """Wall-clock and CPU seconds per call of each function, measured in interleaved rounds.

    Each function is called ``warmup`` times (tracing, oneDNN primitive creation), then ``steps``
    rounds run one call of each; round ``r`` starts with function ``r mod n``, so no function
    always runs first or last. Results are materialised inside the timing.

    Two clocks: wall time (``time.perf_counter``) and this process's CPU time, all threads
    (``time.process_time``). On a machine shared with other jobs, wall time grows with every
    moment the scheduler gives our cores to someone else, while CPU time counts the work done
    and stays put; so CPU-time ratios are the stable ones there. On an idle machine, CPU time
    is about wall time x cores in use.

    Args:
        functions: Name to a function of no arguments.
        steps: Timed rounds.
        warmup: Untimed calls of each function before the first round.

    Returns:
        Name to ``{"wall": [seconds] * steps, "cpu": [seconds] * steps}``.
    """
    names = list(functions)
    for name in names:
        for _ in range(warmup):
            _materialize(functions[name]())
    times: dict[str, dict] = {name: {"wall": [], "cpu": []} for name in names}
    for round_index in range(steps):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            _materialize(functions[name]())
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times


def summarize(samples: dict) -> dict:
    """Median and minimum of the wall and CPU seconds of one function (see time_side_by_side)."""
    wall, cpu = samples["wall"], samples["cpu"]
    return {
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "max_s": max(wall),
        "cpu_median_s": statistics.median(cpu),
        "cpu_min_s": min(cpu),
        "steps": len(wall),
    }


# --------------------------------------------------------------------------------------------
# Peak FLOP/s
# --------------------------------------------------------------------------------------------


def peak_functions() -> dict[str, tuple[Callable[[], Any], int]]:
    """A large float32 matmul and a large 3x3 conv: name to (function, FLOPs per call).

    Put them in the same :func:`time_side_by_side` call as the models, so the peak is measured
    under the same load as the models it is compared with.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = PEAK_MATMUL_SIZE
    batch, height, width, cin, cout = PEAK_CONV_SHAPE
    a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    image = tf.constant(rng.standard_normal((batch, height, width, cin), dtype=np.float32))
    kernel = tf.constant(rng.standard_normal((3, 3, cin, cout), dtype=np.float32))
    matmul = tf.function(lambda: tf.matmul(a, b))
    conv = tf.function(lambda: tf.nn.conv2d(image, kernel, 1, "SAME"))
    return {
        "peak_matmul": (matmul, 2 * n**3),
        "peak_conv": (conv, 2 * batch * height * width * 9 * cin * cout),
    }


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def random_batch(batch: int, size: int, seed: int = 0):
    """A float32 batch of raw RGB images in [0, 255] and binary sky masks, as NumPy arrays."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 255.0, (batch, size, size, 3)).astype(np.float32)
    masks = (rng.uniform(size=(batch, size, size, 1)) > 0.5).astype(np.float32)
    return images, masks


def inference_function(model, images, jit_compile: bool = False, freeze: bool = False) -> Callable[[], Any]:
    """``model(images, training=False)`` in a ``tf.function`` with a fixed input signature.

    Args:
        model: A Keras model.
        images: The batch every call sees (NumPy or tensor); it is put on the device once.
        jit_compile: Compile with XLA.
        freeze: Turn the variables into graph constants (what TFLite / TF-TRT conversion does),
            which lets oneDNN cache its re-laid-out weights between calls.
    """
    import tensorflow as tf

    images = tf.constant(images)
    signature = [tf.TensorSpec(images.shape, images.dtype)]
    function = tf.function(lambda x: model(x, training=False), input_signature=signature,
                           jit_compile=jit_compile, autograph=False)
    if freeze:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        function = convert_variables_to_constants_v2(function.get_concrete_function())
    return lambda: function(images)


def training_function(model, images, masks, jit_compile: bool = False,
                      learning_rate: float = 1e-4) -> Callable[[], Any]:
    """One ``train_on_batch`` step with the Dice loss and Adam: what ``skyseg train`` runs."""
    import keras

    from skyseg_tf.losses import DiceLoss

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=DiceLoss(), jit_compile=jit_compile)
    return lambda: model.train_on_batch(images, masks)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table: ``columns`` are (header, row key, format spec); missing values print "-"."""
    lines = ["| " + " | ".join(header for header, _, _ in columns) + " |",
             "|" + "|".join("---" if not spec else "---:" for _, _, spec in columns) + "|"]
    for row in rows:
        cells = []
        for _, key, spec in columns:
            value = row.get(key)
            cells.append("-" if value is None else format(value, spec) if spec else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: str, payload: dict) -> None:
    """Writes ``payload`` as indented JSON, creating the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
    print(f"wrote {path}")
