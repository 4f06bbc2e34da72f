"""Predict sky masks for every photo in a folder (or for single files).

For each image ``photo.jpg`` this writes ``photo_mask.png`` (0/255), ``photo_probability.png``
and ``photo_overlay.jpg`` into the output folder, at the photo's own resolution. Unreadable files
are reported by name and skipped; the exit status is 1 when any file failed.

Run:
    python examples/predict_folder.py model.keras photos/ out/
    python examples/predict_folder.py export/1 photo.jpg out/ --save mask --refine guided
    python examples/predict_folder.py model.keras photos/ out/ --mode tile --tile-size 512

Example:
    >>> main(["model.keras", "photos", "out", "--save", "mask"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv=None):
    from skyseg_tf import inference

    parser = argparse.ArgumentParser(
        description="Predict sky masks, probability maps and overlays for image files and folders.",
        epilog="The 'auto' mode predicts images up to --tile-size at native resolution and resizes "
               "larger ones to --input-size; 'tile' keeps native resolution with overlapping tiles.",
    )
    parser.add_argument("model", help=".keras file or SavedModel folder (e.g. export/1)")
    parser.add_argument("inputs", nargs="+", help="image files and/or folders; the last path is the output folder")
    parser.add_argument("--save", nargs="+", choices=inference.SAVE_KINDS, default=list(inference.DEFAULT_SAVE),
                        help="what to write per image (default: all)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="size the model sees in resize mode (its training size)")
    parser.add_argument("--mode", choices=inference.MODES, default="auto")
    parser.add_argument("--tile-size", type=int, default=inference.DEFAULT_TILE_SIZE)
    parser.add_argument("--overlap", type=int, default=inference.DEFAULT_OVERLAP)
    parser.add_argument("--batch-size", type=int, default=inference.DEFAULT_BATCH_SIZE, help="tiles per forward pass")
    parser.add_argument("--refine", choices=("none", "guided"), default="none",
                        help="guided-filter edge refinement at full resolution")
    parser.add_argument("--probability-bits", type=int, choices=(8, 16), default=8)
    parser.add_argument("--recursive", action="store_true", help="also predict images in sub-folders")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="predict photos whose outputs exist again (default: keep them, so a rerun resumes)")
    args = parser.parse_args(argv)
    if len(args.inputs) < 2:
        parser.error("give at least one input and the output folder: INPUT [INPUT ...] OUT_DIR")
    return args


def main(argv=None) -> int:
    """Parses ``argv``, predicts, prints the summary; returns the exit status."""
    args = parse_args(argv)
    from skyseg_tf.inference import load_model, predict_paths

    *inputs, out_dir = args.inputs
    try:
        summary = predict_paths(
            load_model(args.model), inputs, out_dir, save=args.save,
            input_size=tuple(args.input_size) if args.input_size else None, mode=args.mode,
            tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size,
            refine=None if args.refine == "none" else args.refine,
            probability_bits=args.probability_bits, recursive=args.recursive, progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
