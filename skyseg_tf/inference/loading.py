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
    any SavedModel whose ``serving_default`` maps float32 ``[B, H, W, 3]`` images to a
    ``sky_probability`` output) loads as a ``keras.layers.TFSMLayer``. A TF Serving base folder
    holding numbered versions (``export/1/``, ``export/2/``) loads its highest version.

    The working scale (:mod:`skyseg_tf.preprocessing`) is attached to the loaded model: from the
    ``.keras`` file's record, or from an export's info file ``assets.extra/skyseg.json``. A
    SavedModel not written by skyseg_tf has no such file and loads without a recorded scale
    (prediction then uses its defaults, or the ``input_size`` you pass); an export of this
    library whose info file is missing is refused (see Raises), since predicting it at a
    default scale would silently give other masks than the model was exported for.

    Args:
        path: The ``.keras`` file or the SavedModel folder.

    Returns:
        A ``keras.Model`` or ``keras.layers.TFSMLayer``, callable on a float32 batch of RGB
        images in ``[0, 255]``; every function of this module accepts it.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``path`` is neither a Keras file nor a SavedModel folder, or is a
            skyseg_tf export whose info file is missing or unreadable.

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
    recorded = _saved_model_preprocessing(saved_model_dir)  # before the (slow) load
    layer = keras.layers.TFSMLayer(
        str(saved_model_dir), call_endpoint="serving_default", name=f"saved_model_{path.name}"
    )
    return preprocessing.attach(layer, recorded)


def _saved_model_preprocessing(saved_model_dir: pathlib.Path):
    """The preprocessing an export recorded in its info file; ``None`` for a foreign SavedModel.

    A SavedModel with this library's ``serving_bytes`` signature but no info file is an export
    that lost its record of the working scale (copied without ``assets.extra/``, or cut short by
    a skyseg_tf older than the atomic export): it raises rather than run at a default scale.
    """
    from skyseg_tf.export import INFO_FILE, SERVING_BYTES  # here: export imports this package

    info = saved_model_dir / INFO_FILE
    if not info.is_file():
        if SERVING_BYTES in _signature_names(saved_model_dir):
            raise ValueError(
                f"model: {str(saved_model_dir)!r} was written by skyseg_tf's export (it has the "
                f"{SERVING_BYTES!r} signature) but its info file {INFO_FILE} is missing, so the "
                "working scale it was exported at is unknown. Export the model again (`skyseg "
                "export --overwrite`), or copy the export's assets.extra/ folder along with it."
            )
        return None
    try:
        record = json.loads(info.read_text()).get("preprocessing")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(
            f"model: {str(info)!r} is not the JSON object skyseg_tf's export writes ({error}); "
            "export the model again (`skyseg export --overwrite`)."
        ) from None
    return preprocessing.Preprocessing.from_dict(record) if record else None


def _signature_names(saved_model_dir: pathlib.Path) -> set[str]:
    """The signature names in a SavedModel's ``saved_model.pb``, read without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    return {name for graph in proto.meta_graphs for name in graph.signature_def}


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
