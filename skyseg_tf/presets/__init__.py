"""Pretrained models shipped inside the package, loaded the keras-hub way: ``from_preset(name)``.

A preset is a folder of package data, ``skyseg_tf/presets/<name>/``:

* ``preset.json``: the registry model and its builder arguments, the input scale it was
  trained at (:class:`skyseg_tf.preprocessing.Preprocessing`), and its card (description,
  data, licence of the weights, measured figures, the command that trained it);
* ``weights.npz``: every variable by its Keras path; kernels stored as float16 (half the bytes;
  outputs within about 1e-3 of float32, checked by the tests), biases and BatchNorm statistics
  as float32.

:func:`from_preset` builds the model, loads the weights and attaches the preprocessing, so
``predict_image(model, photo)`` runs it at its own scale. ``predict_image(photo)``,
``skyseg predict PHOTO`` and ``skyseg export`` without a model use :data:`DEFAULT_PRESET`.

Example:
    >>> "sky_unet_mobilenet_v3" in list_presets()
    True
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
from typing import Any

import numpy as np

from skyseg_tf import preprocessing as _preprocessing

DEFAULT_PRESET = "sky_unet_efficientnet_lite0"
"""The preset used when no model is given."""

FISHEYE_PRESET = "sky_unet_efficientnet_lite0_fisheye"
"""The preset for upward hemispherical (fisheye) photos (``configs/sky_fisheye_lite0.yaml``)."""

PRESET_FILE = "preset.json"
WEIGHTS_FILE = "weights.npz"
_ROOT = pathlib.Path(__file__).parent
_FLOAT16_MIN_SIZE = 1024
"""Weights with at least this many values (kernels) are stored as float16; smaller ones (biases,
BatchNorm statistics, whose variances can be tiny) as float32."""


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the presets shipped with the package, optionally filtered by a glob pattern.

    Example:
        >>> list_presets("sky_*")
        ['sky_unet_efficientnet_lite0', 'sky_unet_efficientnet_lite0_fisheye', 'sky_unet_efficientnet_lite0_streets', 'sky_unet_mobilenet_v3']
    """
    names = sorted(p.name for p in _ROOT.iterdir() if (p / PRESET_FILE).is_file())
    return [name for name in names if fnmatch.fnmatch(name, pattern)]


def preset_info(name: str) -> dict:
    """The ``preset.json`` of a preset: model, builder arguments, preprocessing, card.

    Example:
        >>> preset_info("sky_unet_mobilenet_v3")["model"]
        'unet_mobilenet_v3_large'
    """
    return json.loads((_preset_dir(name) / PRESET_FILE).read_text(encoding="utf-8"))


def _preset_dir(name: str) -> pathlib.Path:
    if isinstance(name, (str, os.PathLike)) and os.path.isdir(name) and (pathlib.Path(name) / PRESET_FILE).is_file():
        return pathlib.Path(name)  # a preset folder written by save_preset
    if not isinstance(name, str) or name not in list_presets():
        raise ValueError(
            f"Unknown preset {name!r}; the presets shipped are {', '.join(list_presets()) or 'none'} "
            "(`skyseg models` lists them). A folder written by skyseg_tf.presets.save_preset also works."
        )
    return _ROOT / name


def from_preset(name: str = DEFAULT_PRESET):
    """Builds a pretrained model: the architecture, its weights and its input scale.

    Args:
        name: A name from :func:`list_presets`, or a folder written by :func:`save_preset`.

    Returns:
        A ``keras.Model`` (float32 weights, not compiled) whose
        :func:`skyseg_tf.preprocessing.get` is the scale it was trained at.

    Raises:
        ValueError: For an unknown preset (the message lists the shipped ones).
        FileNotFoundError: If the preset's weights are missing from the installation.

    Example:
        >>> model = from_preset("sky_unet_mobilenet_v3")
        >>> from skyseg_tf import preprocessing
        >>> preprocessing.get(model).resize_mode
        'short_side'
    """
    from skyseg_tf.models import build_model

    folder = _preset_dir(name)
    info = json.loads((folder / PRESET_FILE).read_text(encoding="utf-8"))
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"preset {name!r}: {str(weights_path)!r} is missing; the package was installed "
            "without its data files. Reinstall skyseg-tf (pip install --force-reinstall skyseg-tf)."
        )
    model = build_model(info["model"], encoder_weights=None, **info.get("model_kwargs", {}))
    with np.load(weights_path) as stored:
        values = {key: stored[key] for key in stored.files}
    variables = model.weights
    missing = [v.path for v in variables if v.path not in values]
    extra = sorted(set(values) - {v.path for v in variables})
    if missing or extra:
        raise ValueError(
            f"preset {name!r}: the weights do not fit {info['model']} with {info.get('model_kwargs')}: "
            f"{len(missing)} variables missing (e.g. {missing[:3]}), {len(extra)} unknown (e.g. {extra[:3]})."
        )
    for variable in variables:
        variable.assign(values[variable.path].astype(variable.dtype))
    model.preset_name = info.get("name", folder.name)
    return _preprocessing.attach(model, _preprocessing.Preprocessing.from_dict(info["preprocessing"]))


def save_preset(model, folder: str | os.PathLike, *, model_name: str, model_kwargs: dict | None = None,
                preprocessing: _preprocessing.Preprocessing, card: dict | None = None) -> pathlib.Path:
    """Writes a preset folder (``preset.json`` + ``weights.npz``) for :func:`from_preset`.

    Args:
        model: The trained model, as built by ``build_model(model_name, **model_kwargs)``
            (see :func:`skyseg_tf.training.finalize_best_model`).
        folder: Output folder (created).
        model_name: Its registry name.
        model_kwargs: Its builder arguments.
        preprocessing: The scale it was trained at.
        card: Anything else for ``preset.json``: description, data, licence, figures.

    Returns:
        The folder.

    Example:
        >>> import tempfile, skyseg_tf
        >>> from skyseg_tf.preprocessing import Preprocessing
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> folder = save_preset(model, tempfile.mkdtemp(), model_name="unet_mobilenet_v3_large",
        ...                      preprocessing=Preprocessing("short_side", (256, 256)))
        >>> from_preset(str(folder)).count_params() == model.count_params()
        True
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for variable in model.weights:
        value = np.asarray(variable.numpy(), np.float32)
        arrays[variable.path] = value.astype(np.float16) if value.size >= _FLOAT16_MIN_SIZE else value
    if len(arrays) != len(model.weights):
        raise ValueError("save_preset: two variables of the model share a path; rename its layers.")
    np.savez_compressed(folder / WEIGHTS_FILE, **arrays)
    info = {"name": folder.name, "model": model_name, "model_kwargs": dict(model_kwargs or {}),
            "preprocessing": preprocessing.to_dict(), **(card or {})}
    (folder / PRESET_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


__all__ = ["DEFAULT_PRESET", "FISHEYE_PRESET", "from_preset", "list_presets", "preset_info", "save_preset"]
