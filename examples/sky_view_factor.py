"""Sky view factor from an upward fisheye photo and from a 360-degree panorama, step by step.

Without photos of your own, the script first writes two procedural ones with exact sky masks into
``--out``: ``up.png``, an upward fisheye photo of a street (``skyseg_tf.data.synthetic_upward``),
and ``panorama.png``, an equirectangular panorama of a street whose buildings rise to known
elevation angles. Then, for each photo:

1. :func:`skyseg_tf.hemisphere.predict_hemisphere` predicts the sky (a fisheye photo with the
   fisheye preset, on its image circle found in the photo; a panorama with the default preset, on
   perspective views stitched back and its upper hemisphere projected to an upward fisheye);
2. the sky view factor, canopy openness and gap fractions are measured on that hemisphere;
3. the polar plot is written beside the photo (``*_polar.png``), and for the procedural photos the
   figures of the exact mask are printed beside the model's.

Run:
    python examples/sky_view_factor.py --out runs/hemisphere_demo
    python examples/sky_view_factor.py my_fisheye.jpg --lens fisheye --projection equisolid --out runs/mine
    python examples/sky_view_factor.py street_pano.jpg --lens panorama --out runs/mine

Example:
    >>> main(["--out", "runs/hemisphere_demo"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def procedural_panorama(height: int = 1024, seed: int = 0):
    """An equirectangular street panorama and its exact sky mask: sky above a skyline of buildings.

    Buildings are blocks of azimuth with a flat roof at a random elevation angle (10 to 55 degrees),
    some gaps show open sky to the horizon; below the horizon is the street.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    width = 2 * height
    latitude = 90.0 - (np.arange(height) + 0.5) / height * 180.0
    skyline = np.zeros(width)
    column = 0
    while column < width:
        span = int(rng.integers(width // 40, width // 10))
        skyline[column:column + span] = 0.0 if rng.random() < 0.15 else rng.uniform(10, 55)
        column += span
    sky = latitude[:, None] > skyline[None, :]
    t = np.clip(latitude / 90.0, 0, 1)[:, None, None]
    sky_colour = (1 - t) * np.array([200, 215, 235]) + t * np.array([70, 125, 215])
    image = np.broadcast_to(sky_colour, (height, width, 3)).copy()
    clouds = rng.normal(0, 1, (height // 32, width // 32))
    import cv2

    clouds = cv2.resize(cv2.GaussianBlur(clouds, (0, 0), 1.5), (width, height))
    image += np.clip(clouds, 0, None)[..., None] * 60 * (latitude[:, None, None] > 5)
    facade = rng.uniform(90, 170, (width // 8 + 1, 3))[np.arange(width) // 8]
    windows = ((np.arange(height)[:, None] // 12) % 3 == 0) & ((np.arange(width)[None, :] // 10) % 3 == 0)
    building = ~sky & (latitude[:, None] >= 0)
    image[building] = facade[np.nonzero(building)[1]] * np.where(windows[building], 0.55, 1.0)[:, None]
    image[latitude < 0] = (65, 62, 60)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), sky


def write_procedural_photos(out_dir: str) -> dict:
    """Writes ``up.png`` and ``panorama.png`` (and their masks); returns {name: (path, lens, mask, circle)}."""
    import numpy as np
    from PIL import Image

    from skyseg_tf.data.synthetic_upward import render_upward_scene
    from skyseg_tf.hemisphere import FisheyeLens, ImageCircle

    os.makedirs(out_dir, exist_ok=True)
    circle = ImageCircle(500, 500, 470)
    image, mask = render_upward_scene(np.random.default_rng(2024), 1000, 1000, lens=FisheyeLens(), circle=circle,
                                      kind="street")
    Image.fromarray(image).save(os.path.join(out_dir, "up.png"))
    panorama, sky = procedural_panorama()
    Image.fromarray(panorama).save(os.path.join(out_dir, "panorama.png"))
    return {"up.png": ("fisheye", mask[..., 0] == 1, circle), "panorama.png": ("panorama", sky, None)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="*", help="your photos (default: write two procedural ones into --out)")
    parser.add_argument("--lens", choices=["fisheye", "panorama"], help="what your photos are")
    parser.add_argument("--projection", default="equidistant",
                        choices=["equidistant", "equisolid", "stereographic", "orthographic"])
    parser.add_argument("--fov", type=float, default=180.0, help="the fisheye lens's field of view, degrees")
    parser.add_argument("--model", default=None, help="a preset name or model file (default: the right preset)")
    parser.add_argument("--out", required=True, help="folder for the photos, polar plots and figures.json")
    parser.add_argument("--figure", default=None,
                        help="also write one picture of every photo beside its polar plot (docs/images/...)")
    args = parser.parse_args(argv)
    if args.photos and args.lens is None:
        parser.error("--lens: say whether your photos are fisheye photos or panoramas")

    import numpy as np
    from PIL import Image

    from skyseg_tf import from_preset
    from skyseg_tf.hemisphere import FisheyeLens, hemisphere_figures, panorama_to_fisheye, predict_hemisphere
    from skyseg_tf.presets import DEFAULT_PRESET, FISHEYE_PRESET

    lens = FisheyeLens(args.projection, args.fov)
    if args.photos:
        jobs = {path: (args.lens, None, None) for path in args.photos}
    else:
        jobs = {os.path.join(args.out, name): job for name, job in write_procedural_photos(args.out).items()}
    os.makedirs(args.out, exist_ok=True)
    models = {}
    results = {}
    for path, (kind, truth, circle) in jobs.items():
        name = args.model or (FISHEYE_PRESET if kind == "fisheye" else DEFAULT_PRESET)
        if name not in models:
            models[name] = name if os.path.exists(name) else from_preset(name)
        model = models[name]
        image = np.asarray(Image.open(path).convert("RGB"))
        result = predict_hemisphere(model, image, lens=kind, fisheye_lens=lens)
        stem = os.path.splitext(os.path.basename(path))[0]
        Image.fromarray(result.polar_plot(image)).save(os.path.join(args.out, f"{stem}_polar.png"))
        entry = {"model": name, **result.record()}
        if truth is not None:  # a procedural photo: the exact mask's figures beside the model's
            if kind == "panorama":
                exact, exact_circle = panorama_to_fisheye(truth.astype(np.float32), size=result.fisheye.shape[0],
                                                          lens=lens)
            else:
                exact, exact_circle = truth, circle
            entry["exact_svf"] = hemisphere_figures(exact, exact_circle, lens)["svf"]
        results[path] = entry
        exact_text = f"  (exact mask: {entry['exact_svf']:.3f})" if "exact_svf" in entry else ""
        print(f"{path}: SVF {entry['svf']:.3f}{exact_text}, canopy openness {entry['canopy_openness']:.3f}")
    if args.figure:
        rows = []
        for path in jobs:
            stem = os.path.splitext(os.path.basename(path))[0]
            photo = Image.open(path).convert("RGB")
            photo.thumbnail((1024, 512))
            polar = Image.open(os.path.join(args.out, f"{stem}_polar.png")).convert("RGB").resize((512, 512))
            row = Image.new("RGB", (photo.width + 512, 512), "white")
            row.paste(photo, (0, (512 - photo.height) // 2))
            row.paste(polar, (photo.width, 0))
            rows.append(row)
        sheet = Image.new("RGB", (max(r.width for r in rows), 512 * len(rows)), "white")
        for index, row in enumerate(rows):
            sheet.paste(row, (0, 512 * index))
        sheet.save(args.figure)
        print(f"figure: {args.figure}")
    with open(os.path.join(args.out, "figures.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print(f"polar plots and figures.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
