"""The input scale a model was trained at, saved with the model and read back by prediction.

A sky model is only right at the scale it learned: a U-Net trained on whole scenes resized to
128x128 sees a different world when run on a 480x360 photo at native resolution. So a model
carries its :class:`Preprocessing`:

* ``resize_mode="short_side"``: the photo's shorter side is resized to ``min(image_size)``
  with its aspect ratio kept (then padded to the model's stride); what ``make_dataset(...,
  resize_mode="short_side")`` trains on;
* ``resize_mode="resize"``: the whole photo is resized to ``image_size``;
* ``resize_mode="crop"``: the model was trained on full-resolution crops and runs at the
  photo's native resolution (tiled when large).

:func:`skyseg_tf.training.train` records it in every ``.keras`` file it writes (as
``skyseg_preprocessing.json`` inside the ``.keras`` zip, which Keras ignores), the SavedModel
export in its info file, presets in their ``preset.json``. :func:`skyseg_tf.inference.load_model`
attaches it to the loaded model, and ``predict_image(mode="auto")``, ``skyseg evaluate`` and
``skyseg export`` use it by default.

Example:
    >>> prep = Preprocessing("short_side", (256, 256))
    >>> prep.working_size((768, 1024))
    (256, 341)
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Any, Sequence

RESIZE_MODES = ("resize", "crop", "short_side")
"""Values of :attr:`Preprocessing.resize_mode` (the training pipeline's ``resize_mode``)."""

VIEWS = ("photo", "fisheye")
"""Values of :attr:`Preprocessing.view`: what kind of photo the model was trained for. A
``"fisheye"`` model is run on the image circle of an upward fisheye photo (found in each photo,
or given), and every pixel outside the circle is "not sky"."""
ARCHIVE_ENTRY = "skyseg_preprocessing.json"
"""Name of the record inside a ``.keras`` zip."""

ATTRIBUTE = "skyseg_preprocessing"
"""Attribute of an in-memory model that holds its :class:`Preprocessing`."""

MAX_WORKING_SIDE = 2048
"""Longest side a ``"short_side"`` working size may have: a panorama or a one-pixel-high strip
is scaled so its long side fits (its short side then ends up below the trained size)."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a model's input was prepared in training (and must be at prediction time).

    Attributes:
        resize_mode: ``"short_side"``, ``"resize"`` or ``"crop"`` (see the module docstring).
        image_size: The training ``(height, width)``; for ``"short_side"`` the shorter side is
            ``min(image_size)``.
        view: ``"photo"`` or ``"fisheye"`` (see :data:`VIEWS`); records before 2026-12-08 have
            no view and are ``"photo"``.
    """

    resize_mode: str
    image_size: tuple
    view: str = "photo"

    def __post_init__(self):
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode: received {self.resize_mode!r}; valid values are {RESIZE_MODES}.")
        if self.view not in VIEWS:
            raise ValueError(f"view: received {self.view!r}; valid values are {VIEWS}.")
        size = self.image_size
        if isinstance(size, int):
            size = (size, size)
        if not (isinstance(size, Sequence) and len(size) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValueError(f"image_size: received {self.image_size!r}; pass (height, width), two positive ints.")
        object.__setattr__(self, "image_size", (int(size[0]), int(size[1])))

    def working_size(self, image_shape: Sequence[int]) -> tuple[int, int] | None:
        """The ``(height, width)`` a photo of this shape is resized to; ``None``: native.

        For ``"short_side"``, the shorter side becomes ``min(image_size)``, unless the longer
        side would then exceed :data:`MAX_WORKING_SIDE`.

        Example:
            >>> Preprocessing("resize", (128, 128)).working_size((360, 480))
            (128, 128)
            >>> Preprocessing("short_side", (256, 256)).working_size((10, 4000))
            (5, 2048)
        """
        height, width = int(image_shape[0]), int(image_shape[1])
        if self.resize_mode == "resize":
            return self.image_size
        if self.resize_mode == "crop":
            return None
        short = min(self.image_size)
        scale = min(short / min(height, width), MAX_WORKING_SIDE / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))

    def to_dict(self) -> dict:
        """JSON-ready form (``view`` only when it is not ``"photo"``, so older readers read it).

        Example:
            >>> Preprocessing("short_side", (256, 256)).to_dict()
            {'resize_mode': 'short_side', 'image_size': [256, 256]}
            >>> Preprocessing("short_side", (256, 256), "fisheye").to_dict()["view"]
            'fisheye'
        """
        record = {"resize_mode": self.resize_mode, "image_size": list(self.image_size)}
        if self.view != "photo":
            record["view"] = self.view
        return record

    @classmethod
    def from_dict(cls, values: Any) -> "Preprocessing":
        """Reads :meth:`to_dict`'s form, with a clear error for anything else.

        Example:
            >>> Preprocessing.from_dict({"resize_mode": "resize", "image_size": [64, 64]}).image_size
            (64, 64)
        """
        if not isinstance(values, dict) or not {"resize_mode", "image_size"} <= set(values) <= {
                "resize_mode", "image_size", "view"}:
            raise ValueError(f"preprocessing record: received {values!r}; expected "
                             "{'resize_mode': ..., 'image_size': [height, width]} and optionally 'view'.")
        return cls(values["resize_mode"], tuple(values["image_size"]), values.get("view", "photo"))


def attach(model, preprocessing: Preprocessing | None):
    """Sets a model's preprocessing (``None`` removes it) and returns the model.

    Example:
        >>> class Model: pass
        >>> get(attach(Model(), Preprocessing("resize", (64, 64)))).resize_mode
        'resize'
    """
    if preprocessing is not None and not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"preprocessing: received {type(preprocessing).__name__}; pass a Preprocessing or None.")
    try:
        object.__setattr__(model, ATTRIBUTE, preprocessing)
    except AttributeError:  # Objects without a __dict__ (plain functions have one).
        pass
    return model


def get(model) -> Preprocessing | None:
    """A model's preprocessing, or ``None`` if it has none recorded.

    Example:
        >>> get(object()) is None
        True
    """
    value = getattr(model, ATTRIBUTE, None)
    return value if isinstance(value, Preprocessing) else None


def write_to_keras_file(path: str | os.PathLike, preprocessing: Preprocessing) -> None:
    """Records ``preprocessing`` inside a saved ``.keras`` file (replacing an older record).

    Example:
        >>> import tempfile, os, keras
        >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
        >>> keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
        >>> write_to_keras_file(path, Preprocessing("resize", (64, 64)))
        >>> read_from_keras_file(path).image_size
        (64, 64)
    """
    path = os.fspath(path)
    payload = json.dumps(preprocessing.to_dict(), indent=2)
    with zipfile.ZipFile(path) as archive:
        present = ARCHIVE_ENTRY in archive.namelist()
    if not present:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(ARCHIVE_ENTRY, payload)
        return
    # Rewrite the archive without the old record (zip files cannot delete an entry in place).
    temporary = path + ".tmp"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != ARCHIVE_ENTRY:
                target.writestr(item, source.read(item.filename))
        target.writestr(ARCHIVE_ENTRY, payload)
    os.replace(temporary, path)


def read_from_keras_file(path: str | os.PathLike) -> Preprocessing | None:
    """The record inside a ``.keras`` file, or ``None`` (older files, other writers)."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            if ARCHIVE_ENTRY not in archive.namelist():
                return None
            values = json.loads(archive.read(ARCHIVE_ENTRY).decode("utf-8"))
    except zipfile.BadZipFile:
        return None
    return Preprocessing.from_dict(values)
