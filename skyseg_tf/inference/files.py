"""Prediction of image files and folders: masks, mattes, overlays and one record per photo.

:func:`predict_paths` is what ``skyseg predict`` runs. For each photo it writes the outputs
chosen with ``save`` (:data:`OUTPUT_SUFFIXES`) and appends one record of facts
(:func:`skyseg_tf.inference.facts.sky_facts`) to ``predictions.jsonl`` and ``predictions.csv``
in the output folder.

Throughput: reading, predicting and writing overlap (photos are decoded by ``workers`` threads
ahead of the model, and outputs are encoded and written by ``workers`` threads behind it; Pillow,
OpenCV and TensorFlow release the GIL while they work), probabilities are upsampled and outputs
encoded with OpenCV (fast PNG compression), and with ``draft=True`` JPEGs are decoded at reduced
scale when no output needs the full-resolution pixels. ``benchmarks/bench_predict_throughput.py``
measures it against the one-photo-at-a-time path (figures in docs/benchmarks.md).

Photos whose outputs already exist are skipped (reported, not failed) unless ``overwrite=True``,
so an interrupted run over a large folder resumes where it stopped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import dataclasses
import glob
import io
import json
import os
import pathlib
import threading
import time
from typing import Sequence

import cv2
import numpy as np
import tensorflow as tf

from skyseg_tf import checks
from skyseg_tf.hemisphere.measure import LENSES
from skyseg_tf.hemisphere.measure import RECORD_COLUMNS as HEMISPHERE_RECORD_COLUMNS
from skyseg_tf.inference.facts import DEFAULT_HAS_SKY_FRACTION, FACT_FIELDS, sky_facts
from skyseg_tf.inference.predict import check_prediction_options, predict_image, resolve_mode, working_size
from skyseg_tf.inference.predictor import as_predictor
from skyseg_tf.inference.refine import DEFAULT_GUIDED_EPS, refine_probability
from skyseg_tf.inference.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE
from skyseg_tf.metrics import DEFAULT_THRESHOLD
from skyseg_tf.visualization import overlay_sky

SAVE_KINDS = ("mask", "probability", "overlay", "alpha", "rgba")
"""What :func:`predict_paths` can write for each image:

* ``mask``: 0 / 255 PNG, sky = 255 where the probability is ``>= threshold``;
* ``probability``: the probability as an 8- or 16-bit PNG;
* ``overlay``: the photo with the sky tinted magenta (JPEG);
* ``alpha``: the soft sky matte for compositing, 8-bit PNG (255 = sky): the probability refined
  by the guided filter at full resolution (refined once when ``refine="guided"``);
* ``rgba``: the photo with the sky made transparent (RGBA PNG, alpha = 255 minus the matte)."""

DEFAULT_SAVE = ("mask", "probability", "overlay")
"""What :func:`predict_paths` writes by default."""

PREDICT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes :func:`predict_paths` treats as images when it lists a folder."""

OUTPUT_SUFFIXES = {"mask": "_mask.png", "probability": "_probability.png", "overlay": "_overlay.jpg",
                   "alpha": "_alpha.png", "rgba": "_rgba.png"}
"""File-name endings of the outputs of :func:`predict_paths`."""

RECORDS_JSONL = "predictions.jsonl"
"""One JSON object per photo: path, outputs, the facts of :func:`sky_facts` (with the full
skyline profile), seconds."""

RECORDS_CSV = "predictions.csv"
"""The same records as a table: :data:`RECORD_COLUMNS` (the skyline summarised by min/mean/max)."""

RECORD_COLUMNS = ("path", *FACT_FIELDS, "seconds")
"""Columns of :data:`RECORDS_CSV`."""

FULL_RESOLUTION_KINDS = ("overlay", "alpha", "rgba")
"""Outputs that need the photo's full-resolution pixels (the others need only its size)."""

OVERLAY_JPEG_QUALITY = 90
PNG_COMPRESSION = 1
"""zlib level of the PNGs written (1: fastest; masks compress well at any level)."""

_PREFETCH = 2
"""Photos decoded ahead of the model, and outputs pending behind it, per worker (bounds memory:
a 12-megapixel photo with its probability map is about 80 MB)."""

_DRAFT_MARGIN = 2
"""Draft-decoded JPEGs keep at least this many pixels per model input pixel along each axis, so
the model input is still resized down from a sharper image (a larger margin did not bring the
masks closer to a full decode's in ``benchmarks/bench_predict_throughput.py``)."""

_GLOB_CHARACTERS = frozenset("*?[")


@dataclasses.dataclass
class PredictionSummary:
    """What :func:`predict_paths` did.

    Attributes:
        succeeded: Input files predicted and written.
        failed: ``(input file, reason)`` for files that could not be read, predicted or written.
        skipped: Files in the input folders that are not images by their suffix.
        written: Every output file.
        existing: Input files skipped because their outputs already existed (no ``overwrite``).
        records: One dict of facts per predicted photo (as appended to ``predictions.jsonl``,
            less the per-column ``skyline``, which stays on disk).
    """

    succeeded: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    written: list = dataclasses.field(default_factory=list)
    existing: list = dataclasses.field(default_factory=list)
    records: list = dataclasses.field(default_factory=list)

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
            "existing": [str(p) for p in self.existing],
            "written": [str(p) for p in self.written],
        }

    def __str__(self) -> str:
        lines = [f"{len(self.succeeded)} image(s) predicted, {len(self.failed)} failed, "
                 f"{len(self.skipped)} non-image file(s) skipped, {len(self.written)} file(s) written."]
        if self.existing:
            lines.append(f"{len(self.existing)} image(s) already had their outputs and were left as they "
                         "are (pass --overwrite / overwrite=True to predict them again).")
        lines += [f"  FAILED {p}: {r}" for p, r in self.failed]
        return "\n".join(lines)


def collect_inputs(inputs, recursive: bool = False):
    """Lists the photos to predict, with the output stem (relative to the output folder) of each.

    ``inputs`` are files, folders (their images, by suffix; with ``recursive``, sub-folders too,
    whose layout the outputs keep) or glob patterns (``"shots/*.jpg"``, ``"**/*.jpg"`` with
    ``recursive``; outputs keep the sub-folders below the pattern's fixed part). Photos of the
    same stem get their full file name as stem (``a.jpg`` and ``a.png`` -> ``a.jpg_mask.png``,
    ``a.png_mask.png``); photos that would still write the same files are an error.

    Returns:
        ``([(path, stem)], skipped)``: ``skipped`` lists the non-image files of input folders.

    Raises:
        FileNotFoundError: For an input that does not exist, or a pattern that matches nothing.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.jpg").write_bytes(b""), (folder / "notes.txt").write_text("")
        >>> items, skipped = collect_inputs(folder)
        >>> [stem.name for _, stem in items], [p.name for p in skipped]
        (['a'], ['notes.txt'])
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    items, skipped = [], []
    for entry in inputs:
        path = pathlib.Path(entry)
        if not path.exists() and _GLOB_CHARACTERS & set(str(entry)):
            matches = sorted(pathlib.Path(p) for p in glob.glob(str(entry), recursive=recursive))
            files = [p for p in matches if p.is_file() and not p.name.startswith(".")]
            if not files:
                raise FileNotFoundError(
                    f"inputs: the pattern {str(entry)!r} matches no file. Check the folder and the "
                    "pattern (quote it so that the shell does not expand it; '**' needs --recursive)."
                )
            root = _pattern_root(str(entry))
            items += [(p, p.relative_to(root).with_suffix("") if p.is_relative_to(root) else pathlib.Path(p.stem))
                      for p in files]
        elif path.is_file():
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
                f"inputs: {str(path)!r} does not exist. Pass image files, folders of images or "
                "glob patterns."
            )
    counts = collections.Counter(stem for _, stem in items)
    items = [(p, stem.with_name(p.name) if counts[stem] > 1 else stem) for p, stem in items]
    counts = collections.Counter(stem for _, stem in items)
    clashes = sorted(str(p) for p, stem in items if counts[stem] > 1)
    if clashes:
        raise ValueError(
            f"inputs: {len(clashes)} photos would write the same output files ({', '.join(clashes[:4])}"
            f"{' ...' if len(clashes) > 4 else ''}): they have the same name in different input folders. "
            "Predict those folders into different --out folders, or pass their common parent folder "
            "with --recursive (outputs then keep the sub-folders)."
        )
    return items, skipped


def _pattern_root(pattern: str) -> pathlib.Path:
    """The folder a glob pattern starts from: its leading parts without wildcards."""
    parts = []
    for part in pathlib.Path(pattern).parts:
        if _GLOB_CHARACTERS & set(part):
            break
        parts.append(part)
    return pathlib.Path(*parts) if parts else pathlib.Path(".")


def output_paths(out_stem: pathlib.Path, save: Sequence[str]) -> dict:
    """``{kind: path}`` of the outputs of one photo.

    Example:
        >>> output_paths(pathlib.Path("out/photo"), ("mask", "overlay"))["overlay"].as_posix()
        'out/photo_overlay.jpg'
    """
    return {kind: out_stem.with_name(out_stem.name + OUTPUT_SUFFIXES[kind]) for kind in save}


def encode_image(extension: str, pixels: np.ndarray) -> bytes:
    """PNG or JPEG bytes of an RGB(A) or gray ``uint8``/``uint16`` array (OpenCV, GIL released)."""
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[-1] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    params = ([cv2.IMWRITE_JPEG_QUALITY, OVERLAY_JPEG_QUALITY] if extension == ".jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    ok, data = cv2.imencode(extension, pixels, params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} array as {extension}")
    return data.tobytes()


def matte(image: np.ndarray | None, probability: np.ndarray, refined: bool = False,
          refine_eps: float = DEFAULT_GUIDED_EPS) -> np.ndarray:
    """The soft sky matte in ``[0, 1]`` for compositing: the probability refined by the guided
    filter (radius 2 at full resolution), or as it is when ``refined`` (already refined).

    Example:
        >>> matte(np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 0.5, np.float32)).shape
        (4, 4)
    """
    if refined:
        return probability
    return refine_probability(image, probability, radius=2, eps=refine_eps)


def render_outputs(image: np.ndarray | None, probability: np.ndarray, save: Sequence[str] = DEFAULT_SAVE,
                   threshold: float = DEFAULT_THRESHOLD, probability_bits: int = 8,
                   refined: bool = False) -> dict:
    """Encodes the outputs of one photo: ``{kind: bytes}`` of the files :func:`predict_paths` writes.

    Args:
        image: The photo, ``uint8 [H, W, 3]`` at full resolution; may be ``None`` when ``save``
            holds none of :data:`FULL_RESOLUTION_KINDS`.
        probability: float ``[H, W]`` sky probability at full resolution.
        save: Kinds of :data:`SAVE_KINDS`.
        threshold: Probability at or above which a pixel is sky in the mask.
        probability_bits: 8 or 16.
        refined: The probability is already guided-filter refined (``refine="guided"``), so the
            ``alpha`` and ``rgba`` mattes use it as it is.

    Example:
        >>> data = render_outputs(None, np.array([[0.2, 0.9]], np.float32), save=("mask",))
        >>> data["mask"][:4]
        b'\\x89PNG'
    """
    out = {}
    soft = None
    for kind in save:
        extension = pathlib.PurePath(OUTPUT_SUFFIXES[kind]).suffix
        if kind == "mask":
            pixels = np.greater_equal(probability, threshold).view(np.uint8)
            pixels *= np.uint8(255)
        elif kind == "probability" and probability_bits == 8:
            # round(255 p), saturated to uint8 (OpenCV: one multithreaded pass, as np.round).
            pixels = cv2.convertScaleAbs(np.asarray(probability, np.float32), alpha=255.0)
        elif kind == "probability":
            pixels = np.round(probability * 65535.0).astype(np.uint16)
        elif kind == "overlay":
            pixels = overlay_sky(image, probability)
        else:
            if soft is None:
                soft = np.round(matte(image, probability, refined) * 255.0).astype(np.uint8)
            pixels = soft if kind == "alpha" else np.dstack([image, 255 - soft])
        out[kind] = encode_image(extension, pixels)
    return out


def write_outputs(image: np.ndarray | None, probability: np.ndarray, out_stem: str | os.PathLike,
                  save: Sequence[str] = DEFAULT_SAVE, threshold: float = DEFAULT_THRESHOLD,
                  probability_bits: int = 8, refined: bool = False) -> list:
    """Writes the outputs of one photo beside ``out_stem`` (``out/photo`` -> ``out/photo_mask.png``).

    Each file is written to a temporary name and renamed, so an interrupted run never leaves a
    half-written output that a rerun would take for a finished one.

    Returns:
        The paths written.

    Example:
        >>> import tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> [p.name for p in write_outputs(None, np.zeros((2, 2), np.float32), folder / "a", ("mask",))]
        ['a_mask.png']
    """
    out_stem = pathlib.Path(out_stem)
    data = render_outputs(image, probability, save, threshold, probability_bits, refined)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, path in output_paths(out_stem, save).items():
        _write_atomically(path, data[kind])
        written.append(path)
    return written


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Writes to a hidden temporary name, then renames: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def record_columns(lens: str = "photo") -> tuple:
    """Columns of ``predictions.csv``: :data:`RECORD_COLUMNS`, and for fisheye photos and
    panoramas the sky view factor and canopy openness before ``seconds``.

    Example:
        >>> record_columns("fisheye")[-3:]
        ('svf', 'canopy_openness', 'seconds')
    """
    if checks.choice("lens", lens, LENSES) == "photo":
        return RECORD_COLUMNS
    return RECORD_COLUMNS[:-1] + HEMISPHERE_RECORD_COLUMNS + RECORD_COLUMNS[-1:]


POLAR_SUFFIX = "_polar.png"
"""Suffix of the polar plot of the sky that ``predict_paths(lens="fisheye" | "panorama")`` writes."""



class _RecordWriter:
    """Writes one record per photo to predictions.jsonl and predictions.csv (header once):
    appended to an earlier run's records (a resumed run), or replacing them (``fresh``).

    Thread-safe: the writer threads record each photo as soon as its outputs are written, so a
    photo has outputs and a record, or is predicted again when the run resumes."""

    def __init__(self, out_dir: pathlib.Path, fresh: bool = False, columns: Sequence[str] = RECORD_COLUMNS,
                 drop: set = frozenset()):
        self.jsonl_path = out_dir / RECORDS_JSONL
        self.csv_path = out_dir / RECORDS_CSV
        if drop and not fresh:
            self._drop(drop)
        mode = "w" if fresh else "a"
        new_csv = fresh or not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._lock = threading.Lock()
        self._jsonl = open(self.jsonl_path, mode, encoding="utf-8")
        self._csv_file = open(self.csv_path, mode, encoding="utf-8", newline="")
        if not fresh:  # a run killed mid-line left a line without its end: start on a new one
            for handle, path in ((self._jsonl, self.jsonl_path), (self._csv_file, self.csv_path)):
                if path.stat().st_size and not _ends_with_newline(path):
                    handle.write("\n")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=list(columns), extrasaction="ignore")
        if new_csv:
            self._csv.writeheader()

    def _drop(self, paths: set) -> None:
        """Rewrites both record files without the records of ``paths`` (absolute), atomically."""
        def kept(path_value) -> bool:
            return os.path.abspath(path_value) not in paths

        if self.jsonl_path.is_file():
            lines = []
            for line in self.jsonl_path.read_text(encoding="utf-8").splitlines():
                try:
                    keep = kept(json.loads(line)["path"])
                except (ValueError, KeyError, TypeError):
                    keep = False  # a line cut short by a killed run
                if keep:
                    lines.append(line + "\n")
            _write_atomically(self.jsonl_path, "".join(lines).encode("utf-8"))
        if self.csv_path.is_file():
            with open(self.csv_path, encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
            if rows:
                index = rows[0].index("path") if "path" in rows[0] else 0
                buffer = io.StringIO()
                csv.writer(buffer).writerows([rows[0]] + [row for row in rows[1:]
                                                           if len(row) > index and kept(row[index])])
                _write_atomically(self.csv_path, buffer.getvalue().encode("utf-8"))

    def write(self, record: dict) -> None:
        with self._lock:
            self._jsonl.write(json.dumps(record) + "\n")
            self._csv.writerow(record)
            self._jsonl.flush()
            self._csv_file.flush()

    def close(self) -> None:
        with self._lock:
            self._jsonl.close()
            self._csv_file.close()


def _ends_with_newline(path: pathlib.Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def recorded_paths(out_dir: str | os.PathLike) -> set:
    """Absolute paths of the photos ``out_dir/predictions.jsonl`` holds a record of (what a resumed
    run skips); a line cut short by a killed run is ignored.

    Example:
        >>> import tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> lines = ['{"path": "a.jpg"}', '{"path": "b.j']  # the second cut short
        >>> _ = (folder / RECORDS_JSONL).write_text(chr(10).join(lines))
        >>> sorted(os.path.basename(p) for p in recorded_paths(folder))
        ['a.jpg']
    """
    path = pathlib.Path(out_dir) / RECORDS_JSONL
    if not path.is_file():
        return set()
    paths = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                paths.add(os.path.abspath(json.loads(line)["path"]))
            except (ValueError, KeyError, TypeError):
                continue
    return paths


def _draft_size(predictor, mode, input_size, refine, save, tile_size):
    """The ``min_size`` a photo may be decoded at, or None when full resolution is needed."""
    if refine is not None or any(kind in FULL_RESOLUTION_KINDS for kind in save):
        return None

    def min_size(full_shape):
        if resolve_mode(mode, full_shape, predictor, tile_size) != "resize":
            return None
        size = working_size(predictor, full_shape, input_size)
        return (size[0] * _DRAFT_MARGIN, size[1] * _DRAFT_MARGIN)

    return min_size


def _read(path, draft):
    """``(pixels, full size, seconds)`` of a photo, draft-decoded where ``draft`` allows."""
    from skyseg_tf.data.folder import read_photo

    started = time.perf_counter()
    image, full_size = read_photo(path, min_size=draft)
    return image, full_size, time.perf_counter() - started


def predict_paths(
    model,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    save: Sequence[str] = DEFAULT_SAVE,
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
    *,
    overwrite: bool = False,
    workers: int = 2,
    draft: bool = False,
    has_sky_fraction: float = DEFAULT_HAS_SKY_FRACTION,
    records: bool = True,
    lens: str = "photo",
    fisheye_lens=None,
    circle=None,
) -> PredictionSummary:
    """Predicts image files and folders; writes masks, probability maps, overlays, mattes and records.

    For an input ``photo.jpg`` it writes ``photo_mask.png`` (0 / 255, sky = 255 where the
    probability is ``>= threshold``), ``photo_probability.png`` (probability scaled to 8 or 16
    bits) and ``photo_overlay.jpg`` (sky tinted magenta) into ``out_dir``, and with ``save``
    also ``photo_alpha.png`` (soft matte) and ``photo_rgba.png`` (sky transparent); see
    :data:`SAVE_KINDS`. Images of an input folder keep their relative sub-folders (with
    ``recursive``). Pixels are read the way photo viewers show them (EXIF orientation applied).
    One record per photo (:mod:`skyseg_tf.inference.facts`: sky fraction, has_sky, mean
    confidence, skyline profile, seconds) is appended to ``predictions.jsonl`` and
    ``predictions.csv``. A file that cannot be read, predicted or written is reported with its
    reason and skipped; the others go on. In folders, files without an image suffix
    (:data:`PREDICT_EXTENSIONS`) are listed as skipped, not failed.

    Args:
        model: A model, a path to one (see :func:`~skyseg_tf.inference.load_model`) or a
            :class:`~skyseg_tf.inference.SkyPredictor`.
        inputs: An image file, a folder, a glob pattern, or a list of them.
        out_dir: Output folder (created).
        save: Any of :data:`SAVE_KINDS`.
        input_size, mode, tile_size, overlap, refine, batch_size, refine_radius, refine_eps: As in
            :func:`~skyseg_tf.inference.predict_image`; checked once, before any file is read.
        threshold: Probability at or above which a pixel is sky in the mask.
        probability_bits: 8 or 16 (bits per pixel of the probability PNG).
        recursive: Also predict images in sub-folders of input folders.
        progress: Show a tqdm progress bar over the files.
        overwrite: Predict every photo again, and start the record files afresh. By default a
            run resumes: photos with a record in ``predictions.jsonl`` are left as they are (with
            ``records=False``: photos whose outputs all exist), and new records are appended.
            Each record is written as soon as its photo's outputs are, so an interrupted run
            (Ctrl-C, a crash) loses nothing and repeats nothing; queued photos are cancelled
            on the way out.
        workers: Threads that decode photos ahead of the model and encode and write outputs
            behind it (``0``: one photo at a time, nothing overlapped).
        draft: Decode JPEGs at reduced scale (libjpeg DCT scaling) when no output needs
            full-resolution pixels (``save`` of masks and probabilities only, no refinement):
            faster, but the model sees a slightly different resampling of the photo, so masks
            differ where the probability is near the threshold (dataset IoU 0.994-0.996 against a
            full decode in ``benchmarks/bench_predict_throughput.py``); off by default.
        has_sky_fraction: Sky fraction from which a record says ``has_sky``.
        records: Append the per-photo records to ``predictions.jsonl`` / ``predictions.csv``.
        lens: ``"photo"``; ``"fisheye"`` for upward hemispherical photos (the model runs on each
            photo's image circle, see ``circle``) or ``"panorama"`` for equirectangular
            360-degree panoramas (perspective views stitched back; the upper hemisphere
            projected to an upward fisheye). Both also write ``photo_polar.png`` (the sky in
            polar form, :func:`skyseg_tf.hemisphere.polar_plot`) and add the sky view factor,
            canopy openness, gap fraction per zenith ring and sky fraction per azimuth sector to
            each record (:func:`skyseg_tf.hemisphere.predict_hemisphere`).
        fisheye_lens: The fisheye camera's :class:`~skyseg_tf.hemisphere.FisheyeLens`
            (default equidistant, 180 degrees), or the lens a panorama is projected with.
        circle: For ``lens="fisheye"``: ``None`` (found in each photo) or the image circle of
            every photo, ``(cx, cy, radius)`` in pixels.

    Returns:
        A :class:`PredictionSummary`; ``summary.ok`` is False when any file failed.

    Raises:
        FileNotFoundError: If an input does not exist or a pattern matches nothing.
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
        >>> summary.ok, [p.name for p in summary.written], sorted(summary.records[0])[:3]
        (True, ['blue_mask.png'], ['has_sky', 'height', 'mean_confidence'])
    """
    from PIL import Image

    save = checks.choices("save", save, SAVE_KINDS)
    if probability_bits not in (8, 16):
        raise ValueError(f"probability_bits: received {probability_bits!r}; pass 8 or 16.")
    checks.probability("threshold", threshold)
    checks.probability("has_sky_fraction", has_sky_fraction)
    workers = checks.non_negative_int("workers", workers)
    input_size = check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size,
                                          refine_radius, refine_eps)
    hemisphere = checks.choice("lens", lens, LENSES) != "photo"
    if hemisphere and draft:
        raise ValueError(f"draft: received True with lens={lens!r}; the sky view factor is measured on "
                         "the full photo, so pass draft=False (or leave it out).")
    if circle is not None and lens != "fisheye":
        raise ValueError(f"circle: received {circle!r} with lens={lens!r}; an image circle belongs to "
                         "lens='fisheye'.")
    items, skipped = collect_inputs(inputs, recursive)
    if not items:
        raise ValueError(
            f"inputs: found no images in {inputs!r} (image suffixes: {', '.join(PREDICT_EXTENSIONS)})"
            + (f"; {len(skipped)} other file(s) were skipped" if skipped else "")
            + (". Pass recursive=True to search sub-folders." if not recursive else ".")
        )
    predictor = as_predictor(model)
    out_dir = pathlib.Path(out_dir)
    summary = PredictionSummary(skipped=skipped)
    if not overwrite:
        # A photo is done when all its outputs exist and (with records) it has its record, which
        # is written right after them. A recorded photo whose outputs are gone is predicted again,
        # and its old record dropped.
        recorded = recorded_paths(out_dir) if records else set()
        todo = []
        for path, stem in items:
            expected = list(output_paths(out_dir / stem, save).values())
            if hemisphere:
                expected.append(out_dir / f"{stem}{POLAR_SUFFIX}")
            done = all(p.exists() for p in expected) and (not records or os.path.abspath(path) in recorded)
            (summary.existing.append(path) if done else todo.append((path, stem)))
        items = todo
        stale = recorded & {os.path.abspath(path) for path, _ in items}
    else:
        stale = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    draft_size = _draft_size(predictor, mode, input_size, refine, save, tile_size) if draft else None
    options = dict(input_size=input_size, mode=mode, tile_size=tile_size, overlap=overlap, refine=refine,
                   batch_size=batch_size, refine_radius=refine_radius, refine_eps=refine_eps)
    full_pixels = refine is not None or any(kind in FULL_RESOLUTION_KINDS for kind in save)
    failures = (ValueError, OSError, tf.errors.OpError, MemoryError, Image.DecompressionBombError)
    columns = record_columns(lens)
    recorder = _RecordWriter(out_dir, fresh=overwrite, columns=columns, drop=stale) if records else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="predict", unit="image")

    def predict_one(image, full_size):
        started = time.perf_counter()
        if hemisphere:
            from skyseg_tf.hemisphere.measure import predict_hemisphere

            result = predict_hemisphere(predictor, image, lens=lens, fisheye_lens=fisheye_lens, circle=circle,
                                        threshold=threshold, **options)
            return result, time.perf_counter() - started
        if full_size != image.shape[:2]:  # draft-decoded: predict small, map at full size
            probability = predict_image(predictor, image, output_size=full_size, **options)
        else:
            probability = predict_image(predictor, image, **options)
        return probability, time.perf_counter() - started

    def finish(path, stem, image, probability, seconds):
        started = time.perf_counter()
        result = None
        if hemisphere:
            result, probability = probability, probability.written_probability
        written = write_outputs(image if full_pixels else None, probability, out_dir / stem, save,
                                threshold, probability_bits, refined=refine == "guided")
        facts = sky_facts(probability, threshold, has_sky_fraction)
        extra = {}
        if result is not None:
            polar = out_dir / f"{stem}{POLAR_SUFFIX}"
            _write_atomically(polar, encode_image(".png", result.polar_plot(image, threshold=threshold)))
            written.append(polar)
            extra = result.record()
        record = {"path": str(path), "outputs": [str(p) for p in written], **facts, **extra,
                  "seconds": round(seconds + time.perf_counter() - started, 4)}
        if recorder is not None:  # recorded as soon as its outputs are written (resume reads it)
            recorder.write(record)
        return written, record

    def collect(path, future_or_result):
        try:
            written, record = (future_or_result.result() if isinstance(future_or_result, concurrent.futures.Future)
                               else future_or_result)
        except failures as error:
            summary.failed.append((path, f"{type(error).__name__}: {error}".splitlines()[0]))
        else:
            summary.written += written
            summary.succeeded.append(path)
            summary.records.append({k: v for k, v in record.items() if k != "skyline"})
        if bar is not None:
            bar.update(1)

    try:
        if workers == 0:
            for path, stem in items:
                try:
                    image, full_size, read_seconds = _read(path, draft_size)
                    probability, seconds = predict_one(image, full_size)
                    result = finish(path, stem, image, probability, read_seconds + seconds)
                except failures as error:
                    result = _failed_future(error)
                collect(path, result)
        else:
            _predict_overlapped(items, workers, draft_size, predict_one, finish, collect, failures)
    finally:
        if recorder is not None:
            recorder.close()
        if bar is not None:
            bar.close()
    return summary


def _failed_future(error) -> concurrent.futures.Future:
    future = concurrent.futures.Future()
    future.set_exception(error)
    return future


def _predict_overlapped(items, workers, draft_size, predict_one, finish, collect, failures):
    """Reads ahead with ``workers`` threads, predicts in this thread, writes behind with ``workers``
    threads; at most ``_PREFETCH * workers`` photos wait on each side."""
    depth = _PREFETCH * workers
    readers = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="skyseg-read")
    writers = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="skyseg-write")
    try:
        reads = collections.deque()
        writes = collections.deque()
        queue = iter(items)

        def refill():
            while len(reads) < depth:
                item = next(queue, None)
                if item is None:
                    return
                reads.append((item, readers.submit(_read, item[0], draft_size)))

        refill()
        while reads:
            (path, stem), future = reads.popleft()
            refill()
            try:
                image, full_size, read_seconds = future.result()
                probability, seconds = predict_one(image, full_size)
            except failures as error:
                writes.append((path, _failed_future(error)))
            else:
                writes.append((path, writers.submit(finish, path, stem, image, probability,
                                                    read_seconds + seconds)))
            while writes and (len(writes) > depth or writes[0][1].done()):
                collect(*writes.popleft())
        while writes:
            collect(*writes.popleft())
    finally:
        # On the way out (done, Ctrl-C or an unexpected error): reads and writes not started are
        # cancelled; those running finish (a photo's outputs and record are written together).
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "DEFAULT_SAVE",
    "POLAR_SUFFIX",
    "encode_image",
    "record_columns",
    "FULL_RESOLUTION_KINDS",
    "OUTPUT_SUFFIXES",
    "PREDICT_EXTENSIONS",
    "PredictionSummary",
    "RECORDS_CSV",
    "RECORDS_JSONL",
    "RECORD_COLUMNS",
    "SAVE_KINDS",
    "collect_inputs",
    "matte",
    "output_paths",
    "predict_paths",
    "render_outputs",
    "write_outputs",
]
