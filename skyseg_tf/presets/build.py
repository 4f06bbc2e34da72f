"""Turns a finished training run into a preset folder (what ships in ``skyseg_tf/presets/``).

Usage (how the default ``sky_unet_efficientnet_lite0`` was made by the last of its three
stages, ``configs/sky_real_lite0_stage3.yaml``; ``sky_unet_efficientnet_lite0_streets`` the same
way from ``configs/sky_real_lite0.yaml``, ``sky_unet_mobilenet_v3`` from ``configs/sky_real.yaml``)::

    skyseg train --config configs/sky_real_lite0_stage3.yaml
    python -m skyseg_tf.presets.build runs/sky_real_lite0_stage3 skyseg_tf/presets/sky_unet_efficientnet_lite0 \\
        --card configs/sky_real_lite0_stage3.card.json

It reads ``run_dir/best.keras`` (made canonical and given its preprocessing record by
:func:`skyseg_tf.training.finalize_best_model`), writes ``preset.json`` and ``weights.npz``
(float16 kernels), and checks the float16 preset against the float32 model on real photos
(scikit-image's) and random ones: the largest difference of the sky probability goes into the
card as ``float16_max_abs_diff``.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def build_preset(run_dir: str, out_dir: str, card: dict | None = None) -> dict:
    """Writes the preset of a run; returns its ``preset.json`` contents.

    Example:
        >>> build_preset("runs/sky_real", "/tmp/preset")  # doctest: +SKIP
    """
    from skyseg_tf import preprocessing
    from skyseg_tf.inference import load_model
    from skyseg_tf.presets import from_preset, save_preset
    from skyseg_tf.training import TrainConfig, finalize_best_model

    config = TrainConfig.from_file(os.path.join(run_dir, "config.json"))
    model = load_model(finalize_best_model(run_dir, config))
    card = dict(card or {})
    card.setdefault("config", {k: v for k, v in config.to_dict().items() if k != "run_dir"})
    folder = save_preset(model, out_dir, model_name=config.model, model_kwargs=config.model_kwargs,
                         preprocessing=preprocessing.get(model), card=card)
    restored = from_preset(str(folder))
    difference = max(float(np.max(np.abs(np.asarray(model(batch)) - np.asarray(restored(batch)))))
                     for batch in _check_images())
    card["float16_max_abs_diff"] = round(difference, 6)
    save_preset(model, out_dir, model_name=config.model, model_kwargs=config.model_kwargs,
                preprocessing=preprocessing.get(model), card=card)
    with open(os.path.join(folder, "preset.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _check_images():
    rng = np.random.default_rng(0)
    yield rng.uniform(0, 255, (1, 256, 352, 3)).astype("float32")
    try:
        from skimage import data
    except ImportError:
        return
    for name in ("rocket", "coffee"):
        image = np.asarray(getattr(data, name)(), np.float32)
        yield image[None, : image.shape[0] // 32 * 32, : image.shape[1] // 32 * 32]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--card", help="JSON file of card fields (description, data, licence...).")
    args = parser.parse_args(argv)
    card = None
    if args.card:
        with open(args.card, encoding="utf-8") as handle:
            card = json.load(handle)
    info = build_preset(args.run_dir, args.out_dir, card)
    size = os.path.getsize(os.path.join(args.out_dir, "weights.npz"))
    print(f"Wrote {args.out_dir}: {info['model']}, {size / 2**20:.2f} MiB of weights, "
          f"float16 vs float32 max |diff| {info['float16_max_abs_diff']:.2e}")


if __name__ == "__main__":  # pragma: no cover
    main()
