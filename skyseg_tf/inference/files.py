"""Prediction of image files and folders: masks, probability maps and overlays on disk (:func:`predict_paths`)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np
import tensorflow as tf

from skyseg_tf import checks
from skyseg_tf.inference.predict import check_prediction_options, predict_image
from skyseg_tf.inference.predictor import as_predictor
from skyseg_tf.inference.refine import DEFAULT_GUIDED_EPS
from skyseg_tf.inference.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE
from skyseg_tf.metrics import DEFAULT_THRESHOLD
from skyseg_tf.visualization import overlay_sky

SAVE_KINDS = ("mask", "probability", "overlay")
"""What :func:`predict_paths` can write for each image."""

PREDICT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes :func:`predict_paths` treats as images when it lists a folder."""

OUTPUT_SUFFIXES = {"mask": "_mask.png", "probability": "_probability.png", "overlay": "_overlay.jpg"}
"""File-name endings of the outputs of :func:`predict_paths`."""


@dataclasses.dataclass
class PredictionSummary:
    """What :func:`predict_paths` did.

    Attributes:
        succeeded: Input files predicted and written.
        failed: ``(input file, reason)`` for files that could not be read or predicted.
        skipped: Files in the input folders that are not images by their suffix.
        written: Every output file.
    """

    succeeded: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    written: list = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file failed (the CLI exits non-zero otherwise)."""
        return not self.failed

    def to_dict(self) -> dict:
        """JSON-ready counts and lists."""
        return {
            "succeeded": [str(p) for p in self.succeeded],
            "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
            "skipped": [str(p) for p in self.skipped],
            "written": [str(p) for p in self.written],
        }

    def __str__(self) -> str:
        lines = [f"{len(self.succeeded)} image(s) predicted, {len(self.failed)} failed, "
                 f"{len(self.skipped)} non-image file(s) skipped, {len(self.written)} file(s) written."]
        lines += [f"  FAILED {p}: {r}" for p, r in self.failed]
        return "\n".join(lines)


def _collect_inputs(inputs, recursive: bool):
    """Returns ``([(path, output stem relative to out_dir)], skipped)``."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    items, skipped = [], []
    for entry in inputs:
        path = pathlib.Path(entry)
        if path.is_file():
            items.append((path, pathlib.Path(path.stem)))
        elif path.is_dir():
            files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
            for file in files:
                if file.name.startswith("."):
                    continue
                if file.suffix.lower() in PREDICT_EXTENSIONS:
                    items.append((file, file.relative_to(path).with_suffix("")))
                else:
                    skipped.append(file)
        else:
            raise FileNotFoundError(
                f"inputs: {str(path)!r} does not exist. Pass image files or folders of images."
            )
    stems = [stem for _, stem in items]
    duplicates = {stem for stem in stems if stems.count(stem) > 1}
    items = [(p, stem.with_name(p.name) if stem in duplicates else stem) for p, stem in items]
    return items, skipped


def _write_outputs(image, probability, out_stem: pathlib.Path, save, threshold, probability_bits):
    from PIL import Image

    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in save:
        path = out_stem.with_name(out_stem.name + OUTPUT_SUFFIXES[kind])
        if kind == "mask":
            Image.fromarray(np.where(probability >= threshold, 255, 0).astype(np.uint8)).save(path)
        elif kind == "probability":
            if probability_bits == 16:
                values = np.round(probability * 65535.0).astype(np.uint16)
                Image.fromarray(values).save(path)
            else:
                Image.fromarray(np.round(probability * 255.0).astype(np.uint8)).save(path)
        else:
            Image.fromarray(overlay_sky(image, probability)).save(path, quality=90)
        written.append(path)
    return written


def predict_paths(
    model,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    save: Sequence[str] = SAVE_KINDS,
    input_size: int | Sequence[int] | None = None,
    mode: str = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    refine: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    probability_bits: int = 8,
    recursive: bool = False,
    progress: bool = True,
    refine_radius: int | None = None,
    refine_eps: float = DEFAULT_GUIDED_EPS,
) -> PredictionSummary:
    """Predicts image files and folders and writes masks, probability maps and overlays.

    For an input ``photo.jpg`` it writes ``photo_mask.png`` (0 / 255, sky = 255 where the
    probability is ``>= threshold``), ``photo_probability.png`` (probability scaled to 8 or 16
    bits) and ``photo_overlay.jpg`` (sky tinted magenta) into ``out_dir``; images of an input
    folder keep their relative sub-folders (with ``recursive``). Pixels are read the way photo
    viewers show them (EXIF orientation applied). A file that cannot be read or predicted is
    reported with its reason and skipped; the others go on. In folders, files without an image
    suffix (:data:`PREDICT_EXTENSIONS`) are listed as skipped, not failed.

    Args:
        model: A model, a path to one (see :func:`load_model`) or a :class:`SkyPredictor`.
        inputs: An image file, a folder, or a list of them.
        out_dir: Output folder (created).
        save: Any of ``"mask"``, ``"probability"``, ``"overlay"``.
        input_size, mode, tile_size, overlap, refine, batch_size, refine_radius, refine_eps: As in
            :func:`predict_image`; checked once, before any file is read.
        threshold: Probability at or above which a pixel is sky in the mask.
        probability_bits: 8 or 16 (bits per pixel of the probability PNG).
        recursive: Also predict images in sub-folders of input folders.
        progress: Show a tqdm progress bar over the files.

    Returns:
        A :class:`PredictionSummary`; ``summary.ok`` is False when any file failed.

    Raises:
        FileNotFoundError: If an input does not exist.
        ValueError: For an invalid option, or inputs without any image.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> import skyseg_tf
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("RGB", (80, 60), (90, 150, 235)).save(os.path.join(folder, "blue.png"))
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> summary = predict_paths(model, folder, os.path.join(folder, "out"), save=("mask",),
        ...                         progress=False)
        >>> summary.ok, [p.name for p in summary.written]
        (True, ['blue_mask.png'])
    """
    from PIL import Image

    from skyseg_tf.data.folder import read_image

    if isinstance(save, str):
        save = (save,)
    save = tuple(save)
    unknown = [kind for kind in save if kind not in SAVE_KINDS]
    if unknown or not save:
        raise ValueError(f"save: received {save!r}; pass one or more of {SAVE_KINDS}.")
    if probability_bits not in (8, 16):
        raise ValueError(f"probability_bits: received {probability_bits!r}; pass 8 or 16.")
    checks.probability("threshold", threshold)
    check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size, refine_radius, refine_eps)
    items, skipped = _collect_inputs(inputs, recursive)
    if not items:
        raise ValueError(
            f"inputs: found no images in {inputs!r} (image suffixes: {', '.join(PREDICT_EXTENSIONS)})"
            + (f"; {len(skipped)} other file(s) were skipped" if skipped else "")
            + (". Pass recursive=True to search sub-folders." if not recursive else ".")
        )
    predictor = as_predictor(model)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary(skipped=skipped)
    iterator = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="predict", unit="image")
    for path, stem in iterator:
        try:
            image = read_image(path, exif_transpose=True)
            probability = predict_image(
                predictor, image, input_size=input_size, mode=mode, tile_size=tile_size,
                overlap=overlap, refine=refine, batch_size=batch_size, refine_radius=refine_radius,
                refine_eps=refine_eps,
            )
            summary.written += _write_outputs(image, probability, out_dir / stem, save, threshold,
                                              probability_bits)
        except (ValueError, OSError, tf.errors.OpError, MemoryError, Image.DecompressionBombError) as error:
            summary.failed.append((path, f"{type(error).__name__}: {error}".splitlines()[0]))
            continue
        summary.succeeded.append(path)
    return summary


__all__ = ["OUTPUT_SUFFIXES", "PREDICT_EXTENSIONS", "PredictionSummary", "SAVE_KINDS", "predict_paths"]
