"""Photos per second of `skyseg predict --runner beam` (DirectRunner) against `skyseg predict`.

Side by side in one run, on the same photos (scikit-image's public-domain sample photos upscaled
to 1600x1200 with sensor-like noise, JPEG quality 92; ``make_photos`` of
``bench_predict_throughput.py``), with the pretrained preset optimised for inference as
``skyseg predict`` runs it, writing masks, probability maps and overlays:

* ``predict_paths``: :func:`skyseg_tf.inference.predict_paths` in this process (``workers=2``:
  decoding and writing overlapped in threads), the model loaded inside the timing, as the CLI does;
* ``beam multi_processing x2``: :func:`skyseg_tf.beam.predict_pipeline` on the DirectRunner with
  ``--direct_running_mode=multi_processing --direct_num_workers=2`` (two worker processes, each
  loading the model);
* ``beam in_memory``: the same pipeline in this process (Beam's default DirectRunner mode).

Every configuration runs ``--rounds`` times, the order rotating from round to round; the table
gives the median wall time of the whole call (start-up, model loading, listing, predicting,
writing) and the photos per second that makes. A run on 2 photos per configuration measures the
fixed cost (start-up and model loading), and ``marginal photos/s`` is
``(N - 2) / (t_N - t_2)``: the rate once everything is loaded. Masks are compared with
``predict_paths``'s (pixels that differ).

Usage:
    python benchmarks/bench_beam.py [--photos 40] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_predict_throughput import make_photos  # noqa: E402
from common import describe_machine, machine_info, write_json  # noqa: E402

import numpy as np  # noqa: E402

SAVE = ("mask", "probability", "overlay")
PHOTO_SIZE = (1200, 1600)


def run_local(photos: pathlib.Path, out: pathlib.Path) -> int:
    """`skyseg predict` (local runner): load and optimise the preset, then predict_paths."""
    from skyseg_tf.beam import load_model_source
    from skyseg_tf.inference import predict_paths
    from skyseg_tf.presets import DEFAULT_PRESET

    summary = predict_paths(load_model_source(DEFAULT_PRESET, optimize=True), photos, out, save=SAVE,
                            progress=False)
    assert summary.ok, summary
    return len(summary.succeeded)


def run_beam(photos: pathlib.Path, out: pathlib.Path, flags) -> int:
    from skyseg_tf.beam import predict_pipeline

    summary = predict_pipeline(str(photos), str(out), save=SAVE, beam_options=flags, optimize=True)
    assert summary.ok, summary
    return summary.predicted


CONFIGURATIONS = {
    "predict_paths (1 process)": lambda photos, out: run_local(photos, out),
    "beam multi_processing x2": lambda photos, out: run_beam(
        photos, out, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
    "beam in_memory": lambda photos, out: run_beam(photos, out, ["--direct_running_mode=in_memory"]),
}


def differing_mask_pixels(reference: pathlib.Path, other: pathlib.Path) -> float:
    from PIL import Image

    differ = total = 0
    for path in sorted(reference.glob("*_mask.png")):
        a, b = np.asarray(Image.open(path)), np.asarray(Image.open(other / path.name))
        differ, total = differ + int(np.count_nonzero(a != b)), total + a.size
    return differ / total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)

    import logging

    logging.getLogger().setLevel(logging.WARNING)  # Beam's workers log every bundle at INFO
    info = machine_info()
    work = pathlib.Path(tempfile.mkdtemp(prefix="skyseg_bench_beam_"))
    for name, count in (("all", args.photos), ("two", 2)):
        (work / name).mkdir()
        make_photos(work / name, count, size=PHOTO_SIZE)
    run_local(work / "two", work / "warmup")  # this process traces the model once (beam in_memory shares it)

    seconds = {name: {"all": [], "two": []} for name in CONFIGURATIONS}
    names = list(CONFIGURATIONS)
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            for subset in ("all", "two"):
                out = work / "out" / f"{names.index(name)}_{subset}_{round_index}"
                started = time.perf_counter()
                predicted = CONFIGURATIONS[name](work / subset, out)
                seconds[name][subset].append(time.perf_counter() - started)
                assert predicted == (args.photos if subset == "all" else 2), (name, predicted)
                print(f"round {round_index} {name:28s} {subset}: {seconds[name][subset][-1]:6.1f} s", flush=True)

    last = args.rounds - 1
    reference = work / "out" / f"0_all_{last}"
    rows = []
    for name in names:
        total, fixed = statistics.median(seconds[name]["all"]), statistics.median(seconds[name]["two"])
        rows.append({
            "configuration": name,
            "seconds": round(total, 2),
            "photos_per_s": round(args.photos / total, 2),
            "fixed_seconds": round(fixed, 2),
            "marginal_photos_per_s": round((args.photos - 2) / (total - fixed), 2) if total > fixed else None,
            "differing_mask_pixels": differing_mask_pixels(reference, work / "out" / f"{names.index(name)}_all_{last}"),
            "all_seconds": [round(s, 2) for s in seconds[name]["all"]],
        })

    print(f"\n{args.photos} photos of {PHOTO_SIZE[1]}x{PHOTO_SIZE[0]} (JPEG q92), save={','.join(SAVE)}, "
          f"median of {args.rounds} rounds. {describe_machine(info)}")
    print("| configuration | wall s | photos/s | fixed s (2 photos) | marginal photos/s | mask pixels differing |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['configuration']} | {row['seconds']:.1f} | {row['photos_per_s']:.2f} | {row['fixed_seconds']:.1f} "
              f"| {row['marginal_photos_per_s']} | {row['differing_mask_pixels']:.2e} |")
    if args.json:
        write_json(args.json, {"photos": args.photos, "size": PHOTO_SIZE, "machine": info, "rows": rows})
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
