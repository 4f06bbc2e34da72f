"""Does temporal smoothing stop sky masks flickering in video, without costing accuracy?

Synthetic clips with exact per-frame sky masks (``skyseg_tf.video.synthetic_clip``): scenes
rendered larger than the frame and seen by a panning camera (``pan``) or a fixed one
(``static``), with fresh sensor noise in every frame, then encoded as H.264 (``--crf``, 23 is
ffmpeg's default and about what phones and web video use) and decoded again, so the model sees
compression noise too. Every frame is predicted once with the pretrained model
(``skyseg_tf.from_preset()``, ``predict_image`` defaults), and the same per-frame probabilities
go through each smoothing variant side by side:

* ``off``: the frames' own masks;
* ``ema``: a plain exponential moving average (no motion model, no confidence);
* ``static``: ``TemporalSmoother(motion="static")`` (confidence from the frame difference);
* ``flow``: ``TemporalSmoother(motion="flow")`` (Farneback-warped average, confidence from the
  warped difference), at the weights of ``--weights``: past frames only;
* ``flow ... +8``: ``TwoSidedSmoother(motion="flow", lookahead=8)``, the default of
  ``predict_video``: the mean of that forward average and a backward one over up to 8 later
  frames, at the same weights.

Figures per variant, averaged over the clips of a camera:

* ``flicker``: mean fraction of pixels whose binary mask flips between consecutive frames
  (``skyseg_tf.video.mask_flicker``); the ground truth's own flicker is printed beside it
  (0 for a fixed camera; for a pan, the true sky moves);
* ``aligned``: the same after undoing the known camera motion (each mask compared with the
  previous one shifted by the camera's move, on the pixels both frames see): the flicker that
  motion does not explain; 0 for the ground truth in both cameras;
* ``IoU``: mean per-frame sky IoU against the exact masks;
* ``ms``: smoothing time per frame (the prediction itself is timed once, in the ``off`` row).

The target lines compare each smoothing with ``off`` clip by clip (the same frames and
probabilities): the mean change of per-frame IoU over the clips with its standard error, and how
many clips gain and lose. A change of a few thousandths of a point is the size of one clip's
chance; the standard error says how far the mean can be trusted.

Run:
    python benchmarks/bench_video.py                      # 30 clips x 2 cameras x 48 frames, 360x640
    python benchmarks/bench_video.py --scenes 2 --frames 16 --height 180 --width 320
    python benchmarks/bench_video.py --first-seed 30       # 30 other clips (seeds 30-59)

Example:
    >>> main(["--scenes", "1", "--frames", "4", "--height", "64", "--width", "96"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import describe_machine, machine_info  # noqa: E402

SCENES = (
    {"time_of_day": "day", "trees": True, "bare_trees": True, "hills": True, "clouds": True},
    {"time_of_day": "overcast", "buildings": True, "spires": True, "poles": True, "wires": True},
    {"time_of_day": "dusk", "mountains": True, "trees": True, "conifers": True, "water": True},
    {"time_of_day": "day", "hills": True, "poles": True, "wires": True, "clouds": True, "sun": True},
    {"time_of_day": "overcast", "trees": True, "hills": True, "road": True, "clouds": True},
    {"time_of_day": "dusk", "buildings": True, "trees": True, "clouds": True},
)
"""Scene elements of the clips, cycled: thin and ambiguous sky edges (bare trees, wires, spires,
reflections, overcast and dusk skies) are where per-frame masks flicker."""


def aligned_change(previous, mask, previous_offset, offset):
    """Fraction of the pixels seen by both frames whose mask flips, after undoing the camera move."""
    (top0, left0), (top1, left1) = previous_offset, offset
    height, width = mask.shape
    dy, dx = top1 - top0, left1 - left0  # scene point (y, x) of frame t is (y + dy, x + dx) in frame t-1
    ys0, ys1 = max(0, dy), min(height, height + dy)
    xs0, xs1 = max(0, dx), min(width, width + dx)
    now = mask[ys0 - dy:ys1 - dy, xs0 - dx:xs1 - dx]
    before = previous[ys0:ys1, xs0:xs1]
    return float(np.mean(now != before))


def iou(truth, mask):
    union = np.logical_or(truth, mask).sum()
    return float(np.logical_and(truth, mask).sum() / union) if union else 1.0


class Track:
    """Running figures of one variant on one clip."""

    def __init__(self):
        self.previous = None
        self.flicker, self.aligned, self.ious, self.seconds = [], [], [], 0.0

    def update(self, mask, truth, offset):
        if self.previous is not None:
            previous, previous_offset = self.previous
            self.flicker.append(float(np.mean(previous != mask)))
            self.aligned.append(aligned_change(previous, mask, previous_offset, offset))
        self.ious.append(iou(truth, mask))
        self.previous = (mask, offset)

    def figures(self):
        return {"flicker": float(np.mean(self.flicker)), "aligned": float(np.mean(self.aligned)),
                "iou": float(np.mean(self.ious)), "ms": 1000 * self.seconds / len(self.ious)}


def make_smoothers(weights, lookahead):
    """{variant: function(frames, raw probabilities) -> smoothed probabilities}."""
    from skyseg_tf.video import TemporalSmoother, TwoSidedSmoother

    def causal(*options, **keywords):
        def run(frames, raws):
            smoother = TemporalSmoother(*options, **keywords)
            return [smoother(frame, raw) for frame, raw in zip(frames, raws)]
        return run

    def two_sided(weight, motion):
        def run(frames, raws):
            smoother = TwoSidedSmoother(weight, motion=motion, lookahead=lookahead)
            return [smoothed for _, smoothed, _ in smoother.smooth(zip(frames, raws))]
        return run

    smoothers = {"off": lambda frames, raws: raws, "ema 0.8": causal(0.8, motion="static", tolerance=1e9),
                 "static 0.8": causal(0.8, motion="static"), f"static 0.8 +{lookahead}": two_sided(0.8, "static")}
    for weight in weights:
        smoothers[f"flow {weight:g}"] = causal(weight, motion="flow")
    for weight in weights:
        smoothers[f"flow {weight:g} +{lookahead}"] = two_sided(weight, "flow")
    return smoothers


def run_clip(model, camera, scene_index, args, workdir):
    """Encodes one clip, predicts it once, returns {variant: figures} and the ground truth's figures."""
    from skyseg_tf.inference import predict_image
    from skyseg_tf.video import iter_video_frames, synthetic_clip, write_video

    def clip():
        return synthetic_clip(args.frames, (args.height, args.width), camera=camera, seed=scene_index,
                              noise=args.noise, speed=args.speed, features=SCENES[scene_index % len(SCENES)])

    path = os.path.join(workdir, f"{camera}_{scene_index}.mp4")
    write_video(path, (frame.image for frame in clip()), fps=25, crf=args.crf)
    frames, raws, truth_frames = [], [], list(clip())
    started = time.perf_counter()
    for image in iter_video_frames(path):
        frames.append(image)
        raws.append(predict_image(model, image))
    predict_seconds = time.perf_counter() - started
    truth_track = Track()
    for truth_frame in truth_frames:
        truth_track.update(truth_frame.mask > 0, truth_frame.mask > 0, truth_frame.offset)
    results = {}
    for name, smooth in make_smoothers(args.weights, args.lookahead).items():
        started = time.perf_counter()
        probabilities = smooth(frames, raws)
        track = Track()
        track.seconds = time.perf_counter() - started
        for probability, truth_frame in zip(probabilities, truth_frames):
            track.update(probability >= 0.5, truth_frame.mask > 0, truth_frame.offset)
        results[name] = track.figures()
    results["off"]["ms"] = 1000 * predict_seconds / args.frames
    return results, truth_track.figures()


def print_table(camera, rows, truth):
    print(f"\n{camera} camera: ground truth flicker {100 * truth['flicker']:.3f}%, "
          f"aligned {100 * truth['aligned']:.3f}%")
    print("| variant | flicker | aligned flicker | vs off | mean IoU | ms/frame |")
    print("|---|---:|---:|---:|---:|---:|")
    off = rows["off"]["aligned"]
    for name, row in rows.items():
        ratio = f"{row['aligned'] / off:.2f}x" if off else "-"
        ms = f"{row['ms']:.1f} (predict)" if name == "off" else f"{row['ms']:.1f}"
        print(f"| {name} | {100 * row['flicker']:.3f}% | {100 * row['aligned']:.3f}% | {ratio} | "
              f"{100 * row['iou']:.3f}% | {ms} |")


def time_predict_video(model, args, workdir, rounds=3):
    """Wall time per frame of ``predict_video`` (read, predict, smooth, write both videos) on one pan clip:
    default smoothing, past frames only, and off, alternating; median of ``rounds`` runs each."""
    from skyseg_tf.video import DEFAULT_LOOKAHEAD, DEFAULT_SMOOTHING, predict_video

    path = os.path.join(workdir, f"pan_{args.first_seed}.mp4")
    settings = {f"on (lookahead {DEFAULT_LOOKAHEAD})": (DEFAULT_SMOOTHING, DEFAULT_LOOKAHEAD),
                "on, past frames only (lookahead 0)": (DEFAULT_SMOOTHING, 0), "off": (0, 0)}
    runs = {key: [] for key in settings}
    for _ in range(rounds):
        for key, (smoothing, lookahead) in settings.items():
            runs[key].append(predict_video(model, path, os.path.join(workdir, "out"), smoothing=smoothing,
                                           lookahead=lookahead, progress=False))
    figures = {}
    for key, summaries in runs.items():
        figures[key] = {"ms_per_frame": float(np.median([1000 * s.seconds / s.frames for s in summaries])),
                        "flicker": summaries[0].flicker, "flicker_unsmoothed": summaries[0].flicker_unsmoothed}
    return figures


def paired_change(report, camera, name):
    """Per-clip change of mean IoU (points) of variant ``name`` against ``off``: mean, standard error, gains, losses."""
    changes = 100 * np.array([clip[name]["iou"] - clip["off"]["iou"] for clip in report["cameras"][camera]["per_clip"]])
    error = float(changes.std(ddof=1) / np.sqrt(len(changes))) if len(changes) > 1 else float("nan")
    return {"mean": float(changes.mean()), "std_error": error, "gain": int((changes > 0).sum()),
            "lose": int((changes < 0).sum()), "clips": len(changes)}


def print_target(report, lookahead):
    """The issue's target: flicker at most half, per-frame IoU not lower; default and past-only smoothing."""
    from skyseg_tf.video import DEFAULT_LOOKAHEAD, DEFAULT_SMOOTHING

    names = {f"flow {DEFAULT_SMOOTHING:g} +{lookahead}": "default" if lookahead == DEFAULT_LOOKAHEAD else "",
             f"flow {DEFAULT_SMOOTHING:g}": "past frames only"}
    for name, label in names.items():
        print(f"\ntarget ({name}{', ' + label if label else ''}): flicker at most 0.5x of off, mean IoU not lower")
        for camera, figures in report["cameras"].items():
            if name not in figures["variants"]:
                print(f"  {camera}: the default weight {DEFAULT_SMOOTHING:g} was not among --weights")
                continue
            on, off = figures["variants"][name], figures["variants"]["off"]
            flicker, aligned = on["flicker"] / off["flicker"], on["aligned"] / off["aligned"]
            change = paired_change(report, camera, name)
            figures.setdefault("paired", {})[name] = change
            met = "met" if aligned <= 0.5 and change["mean"] >= 0 else "NOT met"
            print(f"  {camera}: flicker {flicker:.2f}x, aligned flicker {aligned:.2f}x, IoU {100 * on['iou']:.3f}% vs "
                  f"{100 * off['iou']:.3f}%: per clip {change['mean']:+.4f} points (standard error "
                  f"{change['std_error']:.4f}; {change['gain']} of {change['clips']} clips gain, {change['lose']} "
                  f"lose): {met}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Flicker and IoU of video sky masks with and without smoothing.")
    parser.add_argument("--scenes", type=int, default=30, help="clips per camera (default 30)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seed of the first clip: clips use seeds FIRST..FIRST+N-1 (default 0); "
                             "another range gives fresh clips to confirm a finding on")
    parser.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--noise", type=float, default=4.0, help="per-frame sensor noise, grey levels (default 4)")
    parser.add_argument("--speed", type=float, default=4.0, help="pan speed, pixels per frame (default 4)")
    parser.add_argument("--crf", type=int, default=23, help="x264 CRF of the encoded clips (default 23)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9],
                        help="smoothing weights of the flow variants")
    parser.add_argument("--lookahead", type=int, default=8, help="later frames of the two-sided variants (default 8)")
    parser.add_argument("--json", help="also write the figures here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import skyseg_tf

    model = skyseg_tf.from_preset()
    report = {"settings": vars(args), "machine": machine_info(), "cameras": {}}
    print(describe_machine(report["machine"]))
    print(f"{args.scenes} clip(s) per camera (seeds {args.first_seed}-{args.first_seed + args.scenes - 1}), "
          f"{args.frames} frames of {args.height}x{args.width}, noise {args.noise:g}, pan {args.speed:g} px/frame, x264 CRF {args.crf}; model {model.name} (from_preset())")
    with tempfile.TemporaryDirectory() as workdir:
        for camera in ("static", "pan"):
            per_clip, truths = [], []
            for scene_index in range(args.first_seed, args.first_seed + args.scenes):
                rows, truth = run_clip(model, camera, scene_index, args, workdir)
                per_clip.append(rows)
                truths.append(truth)
            names = list(per_clip[0])
            rows = {name: {key: float(np.mean([clip[name][key] for clip in per_clip])) for key in per_clip[0][name]}
                    for name in names}
            truth = {key: float(np.mean([t[key] for t in truths])) for key in truths[0]}
            report["cameras"][camera] = {"variants": rows, "truth": truth, "per_clip": per_clip}
            print_table(camera, rows, truth)
        report["predict_video"] = time_predict_video(model, args, workdir)
    print_target(report, args.lookahead)
    print(f"\npredict_video on one {args.height}x{args.width} pan clip (read, predict, smooth, write both videos; "
          "median of 3 runs):")
    for key, row in report["predict_video"].items():
        print(f"  smoothing {key}: {row['ms_per_frame']:.1f} ms/frame, flicker {100 * row['flicker']:.3f}% "
              f"(unsmoothed {100 * row['flicker_unsmoothed']:.3f}%)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
