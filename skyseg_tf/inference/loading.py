"""Loading models for prediction: ``.keras`` files and exported SavedModel folders (:func:`load_model`)."""

from __future__ import annotations

import json
import os
import pathlib

from skyseg_tf import preprocessing


def load_model(path: str | os.PathLike):
    """Loads a model for prediction: a ``.keras`` file or a SavedModel folder.

    ``.keras`` (and ``.h5``) files load with ``keras.saving.load_model`` after importing
    skyseg_tf, which registers its layers, losses and metrics, so no ``custom_objects`` are
    needed. A SavedModel folder (one written by :func:`skyseg_tf.export.export_saved_model`, or
    any SavedModel whose ``serving_default`` maps float32 ``[B, H, W, 3]`` images to sky
    probabilities) loads as a ``keras.layers.TFSMLayer``. A TF Serving base folder holding
    numbered versions (``export/1/``, ``export/2/``) loads its highest version.

    Args:
        path: The ``.keras`` file or the SavedModel folder.

    Returns:
        A ``keras.Model`` or ``keras.layers.TFSMLayer``, callable on a float32 batch of RGB
        images in ``[0, 255]``; every function of this module accepts it.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``path`` is neither a Keras file nor a SavedModel folder.

    Example:
        >>> import os, tempfile
        >>> import skyseg_tf
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.keras")
        >>> skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(path)
        >>> load_model(path).name
        'unet_mobilenet_v3_large'
    """
    import keras

    import skyseg_tf  # noqa: F401  (registers the serializable skyseg_tf objects)

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"model: {str(path)!r} does not exist. Pass a .keras file written by training or "
            "model.save(), or a SavedModel folder written by `skyseg export`."
        )
    if path.is_file():
        if path.suffix.lower() not in (".keras", ".h5"):
            raise ValueError(
                f"model: {str(path)!r} is a file but not a .keras or .h5 model. Pass a .keras "
                "file or a SavedModel folder."
            )
        model = keras.saving.load_model(path, compile=False)
        return preprocessing.attach(model, preprocessing.read_from_keras_file(path))
    saved_model_dir = _find_saved_model_dir(path)
    layer = keras.layers.TFSMLayer(
        str(saved_model_dir), call_endpoint="serving_default", name=f"saved_model_{path.name}"
    )
    return preprocessing.attach(layer, _saved_model_preprocessing(saved_model_dir))


def _saved_model_preprocessing(saved_model_dir: pathlib.Path):
    """The preprocessing an export recorded in its info file, if any."""


    info = saved_model_dir / "assets.extra" / "skyseg.json"
    if not info.is_file():
        return None
    record = json.loads(info.read_text()).get("preprocessing")
    return preprocessing.Preprocessing.from_dict(record) if record else None


def _find_saved_model_dir(path: pathlib.Path) -> pathlib.Path:
    if (path / "saved_model.pb").exists():
        return path
    versions = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit()
                and (p / "saved_model.pb").exists()]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    raise ValueError(
        f"model: the folder {str(path)!r} holds no saved_model.pb, nor numbered version folders "
        "with one (TF Serving layout, e.g. export/1/saved_model.pb). Pass a .keras file or a "
        "SavedModel folder."
    )

__all__ = ["load_model"]
