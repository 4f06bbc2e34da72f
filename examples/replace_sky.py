"""Replace the sky of a photo, or of every frame of a video, with another sky, using the model's soft sky mask.

The sky probability is the alpha of the composite: ``out = p * new_sky + (1 - p) * photo``,
so soft edges (hair-thin branches, haze) blend instead of showing a cut-out line. Options:

* ``--feather SIGMA``: blur the alpha by a Gaussian of SIGMA pixels (hides small mask errors).
* ``--match-colors STRENGTH``: tint the foreground towards the new sky's light (0 = off,
  1 = full): the foreground's RGB gains follow the ratio of the new sky's mean colour to the old
  sky's, normalised to keep the brightness.
* The new sky is scaled to cover the photo (aspect ratio kept) and centre-cropped.

A video (a file with a suffix of ``skyseg_tf.video.VIDEO_EXTENSIONS``: .mp4, .mov, .mkv...) is
read frame by frame, its sky probabilities are smoothed over time as ``predict_video`` smooths
them (``--smoothing``, ``--motion``, ``--lookahead``; see docs/video.md), and the composites are written as an
H.264 video at the source's frame rate and size (no audio). The new sky is a still image: it
stays put in the frame while the camera moves.

Run:
    python examples/replace_sky.py photo.jpg sunset.jpg --model model.keras --out replaced.jpg
    python examples/replace_sky.py photo.jpg sunset.jpg --model export/1 --refine guided --feather 2
    python examples/replace_sky.py clip.mp4 sunset.jpg --model model.keras --out replaced.mp4

Example:
    >>> main(["photo.jpg", "sky.jpg", "--model", "model.keras", "--out", "out.jpg"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scales ``image`` to cover ``height x width`` (aspect ratio kept) and centre-crops it.

    Example:
        >>> cover(np.zeros((10, 40, 3), np.uint8), 20, 20).shape
        (20, 20, 3)
    """
    import cv2

    scale = max(height / image.shape[0], width / image.shape[1])
    new_h, new_w = max(height, round(image.shape[0] * scale)), max(width, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return resized[top:top + height, left:left + width]


def replace_sky(photo: np.ndarray, new_sky: np.ndarray, probability: np.ndarray,
                feather: float = 0.0, match_colors: float = 0.0) -> np.ndarray:
    """Composites ``new_sky`` into ``photo`` with the sky probability as alpha.

    Args:
        photo: ``uint8`` ``[H, W, 3]``.
        new_sky: ``uint8`` ``[h, w, 3]``, any size (scaled to cover the photo).
        probability: ``[H, W]`` sky probability of ``photo``.
        feather: Gaussian sigma in pixels for the alpha (0: none).
        match_colors: 0..1, how far the foreground takes the new sky's colour cast.

    Returns:
        ``uint8`` ``[H, W, 3]``.

    Example:
        >>> photo = np.zeros((4, 4, 3), np.uint8)
        >>> sky = np.full((4, 4, 3), 200, np.uint8)
        >>> p = np.zeros((4, 4), np.float32); p[:2] = 1
        >>> replace_sky(photo, sky, p)[:, 0, 0].tolist()
        [200, 200, 0, 0]
    """
    import cv2

    if not 0.0 <= match_colors <= 1.0:
        raise ValueError(f"match_colors: received {match_colors!r}; pass a number in [0, 1].")
    if feather < 0:
        raise ValueError(f"feather: received {feather!r}; pass a sigma >= 0 pixels.")
    height, width = photo.shape[:2]
    alpha = np.asarray(probability, np.float32)
    if alpha.shape != (height, width):
        raise ValueError(f"probability: shape {alpha.shape} does not match the photo's {(height, width)}.")
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=feather)
    sky = cover(new_sky, height, width).astype(np.float32)
    foreground = photo.astype(np.float32)
    if match_colors > 0 and alpha.sum() > 1.0 and (1.0 - alpha).sum() > 1.0:
        old_mean = (foreground * alpha[..., None]).sum((0, 1)) / alpha.sum()
        new_mean = sky.mean((0, 1))
        gains = (new_mean + 1.0) / (old_mean + 1.0)
        gains /= gains.mean()  # a colour cast, not a brightness change
        foreground *= 1.0 + match_colors * (gains - 1.0)
    out = alpha[..., None] * sky + (1.0 - alpha[..., None]) * foreground
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def is_video(path) -> bool:
    """Whether ``path`` names a video, by its suffix (``skyseg_tf.video.VIDEO_EXTENSIONS``).

    Example:
        >>> is_video("clip.MP4"), is_video("photo.jpg")
        (True, False)
    """
    from skyseg_tf.video import VIDEO_EXTENSIONS

    return os.path.splitext(str(path))[1].lower() in VIDEO_EXTENSIONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Replace the sky of a photo or a video with another sky image.")
    parser.add_argument("photo", help="the photo or video whose sky is replaced")
    parser.add_argument("sky", help="the new sky image (scaled to cover the photo)")
    parser.add_argument("--model", required=True, help=".keras file or SavedModel folder")
    parser.add_argument("--out", help="output image or video (default: replaced.jpg, or replaced.mp4 for a video)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="size the model sees (its training size)")
    parser.add_argument("--mode", choices=("auto", "resize", "tile"), default="auto")
    parser.add_argument("--refine", choices=("none", "guided"), default="guided",
                        help="guided-filter edge refinement (default: guided)")
    parser.add_argument("--feather", type=float, default=1.0, help="alpha blur sigma in pixels (default 1)")
    parser.add_argument("--match-colors", type=float, default=0.3,
                        help="0..1, tint the foreground towards the new sky's colour (default 0.3)")
    parser.add_argument("--smoothing", type=float,
                        help="video only: weight of the past in each frame's sky probability, in [0, 1); "
                             "0 turns temporal smoothing off (default: skyseg_tf.video.DEFAULT_SMOOTHING)")
    parser.add_argument("--motion", choices=("flow", "static"),
                        help="video only: 'flow' follows a moving camera, 'static' is for a fixed one "
                             "(default: skyseg_tf.video.DEFAULT_MOTION, flow)")
    parser.add_argument("--lookahead", type=int,
                        help="video only: later frames each frame's smoothing may use; 0 uses past frames only "
                             "(default: skyseg_tf.video.DEFAULT_LOOKAHEAD, 8)")
    return parser.parse_args(argv)


def replace_sky_in_video(args, model, new_sky, options) -> int:
    """Replaces the sky of every frame of ``args.photo`` (a video); writes ``args.out``; returns the frame count.

    The frames stream through (a few held for the two-sided smoothing); ``args.out`` appears only once
    every frame is written.
    """
    from skyseg_tf.video import (DEFAULT_LOOKAHEAD, DEFAULT_MOTION, DEFAULT_SMOOTHING, iter_video_predictions,
                                 read_video_info, write_video)

    fps = read_video_info(args.photo).fps
    smoothing = DEFAULT_SMOOTHING if args.smoothing is None else args.smoothing
    lookahead = DEFAULT_LOOKAHEAD if args.lookahead is None else args.lookahead
    predictions = iter_video_predictions(model, args.photo, smoothing=smoothing, motion=args.motion or DEFAULT_MOTION,
                                         lookahead=lookahead, **options)
    composites = (replace_sky(frame, new_sky, probability, feather=args.feather, match_colors=args.match_colors)
                  for frame, probability, _ in predictions)
    return write_video(args.out, composites, fps=fps)


def main(argv=None) -> int:
    """Parses ``argv``, replaces the sky of the photo or video, writes ``--out``; returns the exit status."""
    args = parse_args(argv)
    from PIL import Image

    from skyseg_tf.data.folder import read_image
    from skyseg_tf.inference import load_model, predict_image

    options = {"input_size": tuple(args.input_size) if args.input_size else None, "mode": args.mode,
               "refine": None if args.refine == "none" else args.refine}
    video = is_video(args.photo)
    if args.out is None:
        args.out = "replaced.mp4" if video else "replaced.jpg"
    try:
        new_sky = read_image(args.sky)
        if video:
            frames = replace_sky_in_video(args, load_model(args.model), new_sky, options)
            print(f"wrote {args.out} ({frames} frames)")
            return 0
        photo = read_image(args.photo)
        probability = predict_image(load_model(args.model), photo, **options)
        result = replace_sky(photo, new_sky, probability, feather=args.feather, match_colors=args.match_colors)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    Image.fromarray(result).save(args.out, quality=95)
    print(f"wrote {args.out} (sky {100 * float(np.mean(probability >= 0.5)):.1f}% of the photo)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
