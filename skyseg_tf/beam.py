"""Batch prediction on Apache Beam: ``skyseg predict`` for folders too big for one machine.

:func:`predict_pipeline` builds and runs a Beam pipeline that does what
:func:`skyseg_tf.inference.predict_paths` does, on any Beam runner (the DirectRunner here,
Dataflow, Flink, Spark) and any Beam filesystem (local, ``gs://``, ``s3://``, ...):

1. **Match**: the inputs (files, folders, glob patterns) are matched with
   ``apache_beam.io.fileio.MatchAll`` and spread over the workers (``Reshuffle``);
2. **Read**: ``ReadMatches`` reads each photo's bytes, decoded as ``skyseg predict`` decodes a
   file (:func:`skyseg_tf.data.folder.read_photo`, EXIF orientation applied);
3. **Predict**: Beam's ``RunInference`` with :class:`SkyModelHandler`, which loads the model once
   per worker and runs :func:`skyseg_tf.inference.predict_image` on each photo at its own
   working size, so every probability map is exactly what ``predict_image`` gives;
4. **Write**: the outputs (:data:`skyseg_tf.inference.OUTPUT_SUFFIXES`, named as ``skyseg
   predict`` names them) through ``apache_beam.io.filesystems.FileSystems``, and one record per
   photo (:func:`skyseg_tf.inference.facts.sky_facts` and ``seconds``) into
   ``predictions.jsonl`` and ``predictions.csv``.

A photo that cannot be read, predicted or written goes to the dead-letter file
:data:`FAILED_JSONL` (``{"path", "reason", "stage"}`` per line) and the run goes on (Beam's
``with_exception_handling``). Inputs are listed before the pipeline starts, so a pattern that
matches nothing, a missing model and an output folder that already holds results are clear
errors, not failed jobs.

Why not Beam's ``TFModelHandlerNumpy``: its module imports ``tensorflow_hub``, which needs
``tf-keras``, which requires the ``tensorflow`` distribution, a second copy of TensorFlow beside
``tensorflow-cpu``; and its loader (``tf.keras.models.load_model``) drops the preprocessing
record a skyseg ``.keras`` file carries and cannot load presets. :class:`SkyModelHandler` is a
``ModelHandler`` of Beam's own ``RunInference`` API with the same batching arguments.

Needs ``pip install "skyseg-tf[beam]"``; docs/beam.md has the runner command lines.

Example:
    >>> import os, tempfile
    >>> from PIL import Image
    >>> import skyseg_tf
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (64, 48), (90, 150, 235)).save(os.path.join(folder, "blue.png"))
    >>> model_path = os.path.join(folder, "tiny.keras")
    >>> skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(model_path)
    >>> summary = predict_pipeline(folder, os.path.join(folder, "out"), model=model_path, save=("mask",))
    >>> summary.predicted, summary.failed, sorted(os.listdir(os.path.join(folder, "out")))
    (1, [], ['blue_mask.png', 'failed.jsonl', 'predictions.csv', 'predictions.jsonl'])
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import os
import posixpath
import shlex
import shutil
import tempfile
import time
from typing import Any, NamedTuple, Sequence

try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.localfilesystem import LocalFileSystem
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "skyseg_tf.beam needs Apache Beam. Install it with `pip install 'skyseg-tf[beam]'` "
        "(add `apache-beam[gcp]` or `apache-beam[aws]` for gs:// or s3:// paths)."
    ) from _error

from skyseg_tf import checks
from skyseg_tf.hemisphere.measure import LENSES
from skyseg_tf.inference.facts import DEFAULT_HAS_SKY_FRACTION, sky_facts
from skyseg_tf.inference.files import (
    DEFAULT_SAVE,
    OUTPUT_SUFFIXES,
    POLAR_SUFFIX,
    PREDICT_EXTENSIONS,
    RECORD_COLUMNS,
    RECORDS_CSV,
    RECORDS_JSONL,
    SAVE_KINDS,
    encode_image,
    record_columns,
    render_outputs,
)
from skyseg_tf.inference.predict import check_prediction_options
from skyseg_tf.inference.refine import DEFAULT_GUIDED_EPS
from skyseg_tf.inference.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE
from skyseg_tf.metrics import DEFAULT_THRESHOLD

FAILED_JSONL = "failed.jsonl"
"""Dead letters: one ``{"path", "reason", "stage"}`` object per photo that failed (stage:
``read``, ``predict`` or ``write``)."""

METRICS_NAMESPACE = "skyseg"
"""Namespace of the Beam counters ``photos_predicted`` and ``photos_failed``."""

_GLOB_CHARACTERS = frozenset("*?[")
_MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg"}
_SHOW = 5  # how many names an error message lists


class Photo(NamedTuple):
    """One decoded photo on its way through the pipeline."""

    path: str
    stem: str
    image: Any  # uint8 [H, W, 3]
    seconds: float  # spent reading and decoding


class Prediction(NamedTuple):
    """What :class:`SkyModelHandler` returns for a photo (``PredictionResult.inference``)."""

    probability: Any  # float32 [H, W]
    seconds: float  # spent in predict_image
    hemisphere: Any = None  # a skyseg_tf.hemisphere.HemispherePrediction for fisheye photos and panoramas


# ----------------------------------------------------------------------------- model


def _is_local(path: str) -> bool:
    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


def _local_copy(path: str) -> str:
    """A local path holding ``path``: itself when local, else a copy (a file or a folder tree)."""
    if _is_local(path):
        return path
    target = tempfile.mkdtemp(prefix="skyseg-model-")
    name = posixpath.basename(path.rstrip("/"))
    found = FileSystems.match([path])[0].metadata_list
    if found:  # a file, e.g. gs://bucket/model.keras
        files = [(found[0].path, os.path.join(target, name))]
    else:  # a SavedModel folder
        root = path.rstrip("/") + "/"
        files = [(m.path, os.path.join(target, name, *m.path[len(root):].split("/")))
                 for m in FileSystems.match([root + "**"])[0].metadata_list]
    for source, local in files:
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as reader, \
                open(local, "wb") as writer:
            writer.write(reader.read())
    return os.path.join(target, name)


def _model_source(model) -> str:
    """Checks ``model`` (None, a preset name, a local or remote path); returns the spec workers load."""
    from skyseg_tf.presets import DEFAULT_PRESET, list_presets

    if model is None:
        return DEFAULT_PRESET
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model: received a {type(model).__name__}; pass a preset name, a .keras file or a "
            "SavedModel folder (workers load the model themselves; save an in-memory model with "
            "model.save('model.keras') first)."
        )
    model = os.fspath(model)
    if model in list_presets() and not os.path.exists(model):
        return model
    try:
        exists = FileSystems.exists(model)
    except ValueError as error:  # no Beam filesystem for the scheme
        raise ValueError(f"model: {model!r}: {error}") from None
    if not exists:
        raise FileNotFoundError(
            f"model: {model!r} is neither a file or folder nor a preset ({', '.join(list_presets())}). "
            "Pass a .keras file, a SavedModel folder or a preset name."
        )
    return model


def load_model_source(model: str, optimize: bool = False):
    """Loads a model as :func:`predict_pipeline`'s workers do: a preset name or a (remote) path.

    Args:
        model: A preset name (:func:`skyseg_tf.list_presets`), or a ``.keras`` file or
            SavedModel folder on any Beam filesystem (remote ones are copied to a local
            temporary folder first).
        optimize: Run the inference rewrite (:func:`skyseg_tf.models.optimize.optimize_if_possible`):
            same outputs to float rounding, faster.

    Returns:
        The model, with its preprocessing record attached.

    Example:
        >>> load_model_source("sky_unet_mobilenet_v3").name
        'unet_mobilenet_v3_large'
    """
    from skyseg_tf.presets import from_preset, list_presets
    from skyseg_tf.preprocessing import attach, get

    if model in list_presets() and not os.path.exists(model):
        loaded = from_preset(model)
    else:
        from skyseg_tf.inference import load_model

        local = _local_copy(model)
        try:
            loaded = load_model(local)
        finally:  # the model is in memory now: no temporary copy is left behind
            if local != model:
                shutil.rmtree(os.path.dirname(local), ignore_errors=True)
    if optimize:
        from skyseg_tf.models.optimize import optimize_if_possible

        loaded = attach(optimize_if_possible(loaded)[0], get(loaded))
    return loaded


class SkyModelHandler(ModelHandler):
    """A Beam ``ModelHandler`` for ``RunInference``: sky probabilities of :class:`Photo` elements.

    Each worker loads the model once (:func:`load_model_source`); each photo is predicted by
    :func:`skyseg_tf.inference.predict_image` at its own working size (photos of different sizes
    do not stack into one tensor, and per-photo calls give exactly ``predict_image``'s result).
    A batch is a list of photos, predicted one after the other; ``max_batch_size=1`` (default)
    keeps a failure's dead letter to the photo that failed.

    Args:
        model: A preset name or a path (see :func:`load_model_source`).
        optimize: Run the inference rewrite of the model.
        max_batch_size: Photos per ``run_inference`` call.
        lens: ``"photo"``, ``"fisheye"`` or ``"panorama"``: the latter two go through
            :func:`skyseg_tf.hemisphere.predict_hemisphere` (with ``fisheye_lens`` and ``circle``),
            as ``skyseg predict --lens`` does.
        **predict_options: Arguments of :func:`skyseg_tf.inference.predict_image` (``mode``,
            ``input_size``, ``refine``, ...).

    Example:
        >>> import numpy as np
        >>> handler = SkyModelHandler("sky_unet_mobilenet_v3")
        >>> photo = Photo("a.jpg", "a", np.zeros((30, 40, 3), np.uint8), 0.0)
        >>> [result] = handler.run_inference([photo], handler.load_model())
        >>> result.inference.probability.shape
        (30, 40)
    """

    def __init__(self, model: str, *, optimize: bool = False, max_batch_size: int = 1, lens: str = "photo",
                 fisheye_lens=None, circle=None, threshold: float = DEFAULT_THRESHOLD, **predict_options):
        super().__init__(min_batch_size=1, max_batch_size=checks.positive_int("max_batch_size", max_batch_size))
        self._model = model
        self._optimize = optimize
        self._predict_options = predict_options
        self._lens = checks.choice("lens", lens, LENSES)
        self._hemisphere_options = dict(lens=lens, fisheye_lens=fisheye_lens, circle=circle, threshold=threshold)

    def load_model(self):
        from skyseg_tf.inference import as_predictor

        return as_predictor(load_model_source(self._model, self._optimize))

    def run_inference(self, batch: Sequence[Photo], model, inference_args=None) -> list:
        from skyseg_tf.inference import predict_image

        results = []
        for photo in batch:
            started = time.perf_counter()
            hemisphere = None
            if self._lens == "photo":
                probability = predict_image(model, photo.image, **self._predict_options)
            else:
                from skyseg_tf.hemisphere import predict_hemisphere

                hemisphere = predict_hemisphere(model, photo.image, **self._hemisphere_options,
                                                **self._predict_options)
                probability = hemisphere.written_probability
            results.append(PredictionResult(
                photo, Prediction(probability, time.perf_counter() - started, hemisphere), self._model))
        return results

    def get_num_bytes(self, batch: Sequence[Photo]) -> int:
        return sum(photo.image.nbytes for photo in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE


# ----------------------------------------------------------------------------- inputs


def _output_stem(path: str, roots: Sequence[str], duplicates: frozenset,
                 pattern_roots: Sequence[str] = ()) -> str | None:
    """The output stem of a matched file (``None``: skip it), named as ``skyseg predict`` names it
    (:func:`skyseg_tf.inference.files.collect_inputs`).

    A file of an input folder keeps its path relative to the folder, a file matched by a glob
    pattern its path relative to the pattern's fixed part (``shots/**/*.jpg``: below ``shots/``),
    any other file its file name. All drop the suffix; stems that two inputs share keep the file
    name whole (``a.jpg`` -> ``a.jpg_mask.png``). Hidden files are skipped, and in folders the
    files without an image suffix.
    """
    name = _basename(path)
    folder = max((r for r in roots if path.startswith(r)), key=len, default=None)
    if name.startswith(".") or (folder is not None and os.path.splitext(name)[1].lower() not in PREDICT_EXTENSIONS):
        return None
    root = max((r for r in (*roots, *pattern_roots) if path.startswith(r)), key=len, default=None)
    relative = path[len(root):].replace("\\", "/") if root is not None else name
    stem = os.path.splitext(relative)[0]
    if stem in duplicates:
        stem = relative[: len(relative) - len(name)] + name
    return stem


def _pattern_root(pattern: str) -> str:
    """The fixed part of a glob pattern, up to its last separator before the first wildcard."""
    cut = min((pattern.index(c) for c in _GLOB_CHARACTERS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    separator = max(head.rfind("/"), head.rfind(os.sep) if _is_local(pattern) else -1)
    return head[: separator + 1]


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _filesystem_of(entry: str, what: str = "inputs"):
    try:
        return FileSystems.get_filesystem(entry)
    except ValueError as error:  # e.g. gs:// without apache-beam[gcp]
        raise ValueError(f"{what}: {entry!r}: {error}") from None


def _is_folder(entry: str) -> bool:
    if _is_local(entry):
        return os.path.isdir(entry)
    if entry.endswith("/"):
        return True
    return not FileSystems.exists(entry) and bool(
        FileSystems.match([entry + "/*"], limits=[1])[0].metadata_list)


def _folder_root(entry: str) -> str:
    separator = os.sep if _is_local(entry) else "/"
    return entry if entry.endswith(("/", separator)) else entry + separator


class Inputs(NamedTuple):
    """What :func:`list_inputs` found."""

    patterns: list  # what the pipeline matches
    roots: list  # the input folders
    duplicates: frozenset  # stems several photos share (they keep their whole file name)
    items: list  # (path, output stem) of every photo
    skipped: list  # hidden files, and the non-image files of the input folders
    pattern_roots: list = []  # the fixed parts of the glob patterns (outputs keep the folders below)


def list_inputs(inputs, recursive: bool = False) -> Inputs:
    """Matches the inputs as :func:`predict_pipeline` does, before its pipeline runs.

    Args:
        inputs: A file, folder or glob pattern (``"gs://bucket/shots/*.jpg"``) on any Beam
            filesystem, or a list of them. Folders give their images by suffix
            (:data:`~skyseg_tf.inference.PREDICT_EXTENSIONS`), with ``recursive`` those of
            sub-folders too; files and patterns give every file they name. Hidden files are skipped.
        recursive: Also list the sub-folders of input folders.

    Returns:
        An :class:`Inputs`.

    Raises:
        FileNotFoundError: For an input that does not exist or a pattern that matches nothing.
        ValueError: For inputs without any image, or two photos that would write the same outputs.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.jpg").write_bytes(b""), (folder / "notes.txt").write_text("")
        >>> found = list_inputs(str(folder))
        >>> [stem for _, stem in found.items], [pathlib.Path(p).name for p in found.skipped]
        (['a'], ['notes.txt'])
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(entry) for entry in inputs]
    patterns, roots, pattern_roots = [], [], []
    for entry in inputs:
        _filesystem_of(entry)
        if _GLOB_CHARACTERS & set(entry) and not (_is_local(entry) and os.path.exists(entry)):
            patterns.append(entry)
            pattern_roots.append(_pattern_root(entry))
        elif _is_folder(entry):
            root = _folder_root(entry)
            roots.append(root)
            patterns.append(root + ("**" if recursive else "*"))
        elif FileSystems.exists(entry):
            patterns.append(entry)
        else:
            raise FileNotFoundError(
                f"inputs: {entry!r} does not exist. Pass image files, folders of images or glob "
                "patterns (on any Beam filesystem: local, gs://, s3://, ...)."
            )
    matched = []
    for entry, pattern, result in zip(inputs, patterns, FileSystems.match(patterns)):
        if not result.metadata_list and pattern == entry:
            raise FileNotFoundError(
                f"inputs: the pattern {pattern!r} matches no file. Check the folder and the pattern "
                "(quote it so that the shell does not expand it)."
            )
        matched += [m.path for m in result.metadata_list]
    stems = [_output_stem(path, roots, frozenset(), pattern_roots) for path in matched]
    counts = collections.Counter(stem for stem in stems if stem is not None)
    duplicates = frozenset(stem for stem, count in counts.items() if count > 1)
    items = [(path, _output_stem(path, roots, duplicates, pattern_roots))
             for path, stem in zip(matched, stems) if stem is not None]
    skipped = [path for path, stem in zip(matched, stems) if stem is None]
    clashes = sorted(stem for stem, count in collections.Counter(stem for _, stem in items).items() if count > 1)
    if clashes:
        raise ValueError(
            f"inputs: {len(clashes)} output name(s) would be written by two different photos, e.g. "
            f"{clashes[:_SHOW]} (photos of the same file name in different folders, or one photo named "
            "twice). Pass their common parent folder (with recursive=True / --recursive) so the "
            "outputs keep the sub-folders."
        )
    if not items:
        raise ValueError(
            f"inputs: found no images in {inputs!r} (image suffixes: {', '.join(PREDICT_EXTENSIONS)})"
            + (f"; {len(skipped)} other file(s) were skipped" if skipped else "")
            + (". Pass recursive=True to search sub-folders." if not recursive else ".")
        )
    return Inputs(patterns, roots, duplicates, items, skipped, pattern_roots)


def _check_out_dir(out_dir: str, items, save, overwrite: bool) -> None:
    """Refuses an output folder that already holds records or outputs of these photos."""
    if overwrite:
        return
    _filesystem_of(out_dir, "out_dir")
    planned = {FileSystems.join(out_dir, name) for name in (RECORDS_JSONL, RECORDS_CSV, FAILED_JSONL)}
    planned |= {FileSystems.join(out_dir, stem + OUTPUT_SUFFIXES[kind]) for _, stem in items for kind in save}
    listing = FileSystems.match([FileSystems.join(out_dir, "**")])[0].metadata_list
    existing = sorted(m.path for m in listing if m.path in planned)
    if existing:
        raise FileExistsError(
            f"out_dir: {out_dir!r} already holds results of a run ({len(existing)} file(s) this run would "
            f"write, e.g. {[_basename(p) for p in existing[:_SHOW]]}). Pass another folder, or "
            "overwrite=True (--overwrite) to replace them."
        )


# ----------------------------------------------------------------------------- pipeline steps


def _name_files(readable, roots, duplicates, pattern_roots=()):
    stem = _output_stem(readable.metadata.path, roots, duplicates, pattern_roots)
    if stem is not None:
        yield stem, readable


def _decode(item):
    from skyseg_tf.data.folder import read_photo

    stem, readable = item
    started = time.perf_counter()
    data = io.BytesIO(readable.read())
    data.name = readable.metadata.path  # errors name the file
    image, _ = read_photo(data, exif_transpose=True)
    return Photo(readable.metadata.path, stem, image, time.perf_counter() - started)


def _write(result, out_dir, save, threshold, probability_bits, refined, has_sky_fraction):
    photo, prediction = result.example, result.inference
    started = time.perf_counter()
    written = []
    for kind, payload in render_outputs(photo.image, prediction.probability, save, threshold,
                                        probability_bits, refined).items():
        path = FileSystems.join(out_dir, photo.stem + OUTPUT_SUFFIXES[kind])
        _write_file(path, payload)
        written.append(path)
    facts = sky_facts(prediction.probability, threshold, has_sky_fraction)
    if prediction.hemisphere is not None:
        path = FileSystems.join(out_dir, photo.stem + POLAR_SUFFIX)
        _write_file(path, encode_image(".png", prediction.hemisphere.polar_plot(photo.image, threshold=threshold)))
        written.append(path)
        facts.update(prediction.hemisphere.record())
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, "photos_predicted").inc()
    seconds = photo.seconds + prediction.seconds + time.perf_counter() - started
    return {"path": photo.path, "outputs": written, **facts, "seconds": round(seconds, 4)}


def _write_file(path: str, payload: bytes) -> None:
    """Writes under a hidden temporary name beside ``path``, then renames it into place (as
    ``skyseg predict`` does): a reader never sees half an output."""
    folder, name = path[: len(path) - len(_basename(path))], _basename(path)
    partial = f"{folder}.{name}.partial"
    with FileSystems.create(partial, mime_type=_MIME_TYPES[os.path.splitext(name)[1]],
                            compression_type=CompressionTypes.UNCOMPRESSED) as writer:
        writer.write(payload)
    if FileSystems.exists(path):
        FileSystems.delete([path])  # a rerun with overwrite=True (rename does not replace everywhere)
    FileSystems.rename([partial], [path])


def _reason(error_info) -> str:
    """``"Type: message"`` (first line) from ``with_exception_handling``'s error tuple."""
    _, _, trace = error_info
    lines = "".join(trace).strip().splitlines()
    return lines[-1] if lines else "unknown error"


def _dead_letter(path: str, error_info, stage: str) -> dict:
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, "photos_failed").inc()
    return {"path": path, "reason": _reason(error_info), "stage": stage}


def _failed_read(item, error_info) -> dict:
    return _dead_letter(item[1].metadata.path, error_info, "read")


def _failed_write(result, error_info) -> dict:
    return _dead_letter(result.example.path, error_info, "write")


def _failed_batch(bad):
    batch, error_info = bad
    for photo in batch:
        yield _dead_letter(photo.path, error_info, "predict")


def _csv_line(record: dict, columns: Sequence[str] = RECORD_COLUMNS) -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="").writerow(record)
    return buffer.getvalue()


def _write_lines(lines, label: str, path: str, header: str | None = None):
    """One text file (a single shard) of ``lines``."""
    return lines | label >> beam.io.WriteToText(path, shard_name_template="", num_shards=1, header=header)


class PredictSky(beam.PTransform):
    """The prediction as a Beam transform, to use inside a pipeline of your own.

    Takes a ``PCollection`` of file patterns; predicts every matched photo, writes its outputs
    under ``out_dir`` and returns ``(records, failed)``: a ``PCollection`` of the per-photo record
    dicts and one of dead-letter dicts (``path``, ``reason``, ``stage``). :func:`predict_pipeline`
    lists the inputs first (``roots``, ``duplicates``: see :func:`list_inputs`) and writes both
    collections to files.

    Args:
        handler: A :class:`SkyModelHandler`.
        out_dir: Output folder on any Beam filesystem.
        save, threshold, probability_bits, refined, has_sky_fraction: As in :func:`predict_pipeline`.
        roots: Input folders (their files keep their relative paths; non-images are skipped).
        pattern_roots: The fixed parts of glob patterns (their files keep the folders below).
        duplicates: Output stems shared by several photos (they keep their full file name).

    Example:
        >>> transform = PredictSky(SkyModelHandler("sky_unet_mobilenet_v3"), "out")
        >>> transform.label
        'PredictSky'
    """

    def __init__(self, handler: SkyModelHandler, out_dir: str, save: Sequence[str] = DEFAULT_SAVE,
                 threshold: float = DEFAULT_THRESHOLD, probability_bits: int = 8, refined: bool = False,
                 has_sky_fraction: float = DEFAULT_HAS_SKY_FRACTION, roots: Sequence[str] = (),
                 duplicates: frozenset = frozenset(), pattern_roots: Sequence[str] = ()):
        super().__init__()
        self._handler = handler
        self._out_dir = out_dir
        self._write_args = (tuple(save), threshold, probability_bits, refined, has_sky_fraction)
        self._roots = tuple(roots)
        self._pattern_roots = tuple(pattern_roots)
        self._duplicates = frozenset(duplicates)

    def expand(self, patterns):
        files = (
            patterns
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.ALLOW_IF_WILDCARD)
            | "Spread" >> beam.Reshuffle()
            | "Open" >> fileio.ReadMatches(compression=CompressionTypes.UNCOMPRESSED)
            | "Name" >> beam.FlatMap(_name_files, self._roots, self._duplicates, self._pattern_roots)
        )
        photos, read_failed = files | "Decode" >> beam.Map(_decode).with_exception_handling()
        predictions, inference_failed = photos | "Predict" >> RunInference(self._handler).with_exception_handling()
        records, write_failed = predictions | "Write" >> beam.Map(
            _write, self._out_dir, *self._write_args).with_exception_handling()
        failed = (
            read_failed | "ReadFailed" >> beam.MapTuple(_failed_read),
            inference_failed.failed_inferences | "PredictFailed" >> beam.FlatMap(_failed_batch),
            write_failed | "WriteFailed" >> beam.MapTuple(_failed_write),
        ) | "Failed" >> beam.Flatten()
        return records, failed


# ----------------------------------------------------------------------------- entry point


@dataclasses.dataclass
class BeamPredictionSummary:
    """What :func:`predict_pipeline` did.

    Attributes:
        state: The pipeline's final state (``"DONE"``).
        predicted: Photos predicted and written (Beam counter; ``None`` if the runner reports
            no metrics).
        failed: The dead letters, ``{"path", "reason", "stage"}`` each (read back from
            :data:`FAILED_JSONL`).
        skipped: Hidden files, and the non-image files of the input folders.
        records_jsonl, records_csv, failed_jsonl: The files written.
    """

    state: str
    predicted: int | None
    failed: list
    skipped: list
    records_jsonl: str
    records_csv: str
    failed_jsonl: str

    @property
    def ok(self) -> bool:
        """True when no photo failed."""
        return not self.failed

    def __str__(self) -> str:
        predicted = "?" if self.predicted is None else self.predicted
        lines = [f"{predicted} image(s) predicted, {len(self.failed)} failed, {len(self.skipped)} non-image "
                 f"file(s) skipped (Beam pipeline {self.state}).",
                 f"Records: {self.records_jsonl}, {self.records_csv}; dead letters: {self.failed_jsonl}"]
        lines += [f"  FAILED {r['path']}: {r['reason']}" for r in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more in {self.failed_jsonl}")
        return "\n".join(lines)


def pipeline_options(beam_options=None) -> PipelineOptions:
    """``PipelineOptions`` from ``None``, a command-line string, a list of flags, or options.

    Example:
        >>> pipeline_options("--runner=DirectRunner --direct_num_workers=2").get_all_options()["direct_num_workers"]
        2
    """
    if beam_options is None:
        return PipelineOptions([])
    if isinstance(beam_options, PipelineOptions):
        return beam_options
    if isinstance(beam_options, str):
        return PipelineOptions(shlex.split(beam_options))
    if isinstance(beam_options, (list, tuple)) and all(isinstance(flag, str) for flag in beam_options):
        return PipelineOptions(list(beam_options))
    raise TypeError(
        f"beam_options: received {type(beam_options).__name__}; pass None, a string of flags "
        "('--runner=DataflowRunner --project=...'), a list of them, or PipelineOptions."
    )


def _counter(result, name: str) -> int | None:
    try:
        from apache_beam.metrics.metric import MetricsFilter

        found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))
    except (NotImplementedError, AttributeError):
        return None
    counters = found.get("counters", [])
    return sum(c.committed or 0 for c in counters) if counters else 0


def _read_failed(path: str) -> list:
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as reader:
        return [json.loads(line) for line in reader.read().decode("utf-8").splitlines() if line.strip()]


def predict_pipeline(
    inputs,
    out_dir: str | os.PathLike,
    model: str | os.PathLike | None = None,
    save: Sequence[str] = DEFAULT_SAVE,
    threshold: float = DEFAULT_THRESHOLD,
    refine: str | None = None,
    beam_options=None,
    overwrite: bool = False,
    *,
    input_size: int | Sequence[int] | None = None,
    mode: str = "auto",
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    refine_radius: int | None = None,
    refine_eps: float = DEFAULT_GUIDED_EPS,
    probability_bits: int = 8,
    recursive: bool = False,
    optimize: bool = False,
    has_sky_fraction: float = DEFAULT_HAS_SKY_FRACTION,
    lens: str = "photo",
    fisheye_lens=None,
    circle=None,
) -> BeamPredictionSummary:
    """Predicts photos with an Apache Beam pipeline; writes what ``skyseg predict`` writes.

    Lists the inputs, checks every option, the model and the output folder, then builds and runs
    the pipeline (see the module docstring) and waits for it to finish. Outputs are named and
    encoded as :func:`skyseg_tf.inference.predict_paths` names and encodes them; the records go
    to ``out_dir/predictions.jsonl`` and ``out_dir/predictions.csv``, the dead letters to
    ``out_dir/failed.jsonl`` (one file each).

    Args:
        inputs: Files, folders or glob patterns on any Beam filesystem (see :func:`list_inputs`).
        out_dir: Output folder on any Beam filesystem.
        model: ``None`` (the pretrained :data:`skyseg_tf.presets.DEFAULT_PRESET`), a preset
            name, or a ``.keras`` file or SavedModel folder (local, or remote: workers copy it).
        save: Kinds of :data:`skyseg_tf.inference.SAVE_KINDS`.
        threshold: Probability at or above which a pixel is sky (mask, records).
        refine: ``None`` or ``"guided"``, as in :func:`skyseg_tf.inference.predict_image`.
        beam_options: Pipeline options: ``None`` (Beam's defaults: the DirectRunner), a string
            of flags (``"--runner=DataflowRunner --project=P --region=R --temp_location=gs://..."``),
            a list of flags, or ``PipelineOptions``.
        overwrite: Replace the results of an earlier run in ``out_dir`` (default: refuse).
        input_size, mode, tile_size, overlap, batch_size, refine_radius, refine_eps: As in
            :func:`skyseg_tf.inference.predict_image`.
        probability_bits: 8 or 16 (bits per pixel of the probability PNG).
        recursive: Also predict the images in sub-folders of input folders.
        optimize: Run the inference rewrite of a ``.keras`` model (``skyseg predict`` does by default).
        has_sky_fraction: Sky fraction from which a record says ``has_sky``.
        lens, fisheye_lens, circle: As in :func:`skyseg_tf.inference.predict_paths`: fisheye
            photos and panoramas also get ``PHOTO_polar.png`` and the sky view factor, canopy
            openness and gap fractions in their records. With ``model=None`` and
            ``lens="fisheye"`` the model is :data:`skyseg_tf.presets.FISHEYE_PRESET`.

    Returns:
        A :class:`BeamPredictionSummary`; ``summary.ok`` is False when any photo failed.

    Raises:
        FileNotFoundError: For a missing input, a pattern that matches nothing, or a missing model.
        FileExistsError: If ``out_dir`` already holds results and ``overwrite`` is False.
        ValueError: For an invalid option, or inputs without any image.

    Example:
        >>> predict_pipeline("no_such_folder/*.jpg", "out")
        Traceback (most recent call last):
            ...
        FileNotFoundError: inputs: the pattern 'no_such_folder/*.jpg' matches no file. ...
    """
    save = checks.choices("save", save, SAVE_KINDS)
    if probability_bits not in (8, 16):
        raise ValueError(f"probability_bits: received {probability_bits!r}; pass 8 or 16.")
    checks.probability("threshold", threshold)
    checks.probability("has_sky_fraction", has_sky_fraction)
    input_size = check_prediction_options(input_size, mode, tile_size, overlap, refine, batch_size,
                                          refine_radius, refine_eps)
    checks.choice("lens", lens, LENSES)
    if circle is not None and lens != "fisheye":
        raise ValueError(f"circle: received {circle!r} with lens={lens!r}; an image circle belongs to lens='fisheye'.")
    if model is None and lens == "fisheye":
        from skyseg_tf.presets import FISHEYE_PRESET

        model = FISHEYE_PRESET
    options = pipeline_options(beam_options)
    out_dir = os.fspath(out_dir)
    found = list_inputs(inputs, recursive)
    source = _model_source(model)
    _check_out_dir(out_dir, found.items, save, overwrite)
    load_model_source(source)  # a model that does not load fails here, not on every worker
    handler = SkyModelHandler(
        source, optimize=optimize, input_size=input_size, mode=mode, tile_size=tile_size, overlap=overlap,
        refine=refine, batch_size=batch_size, refine_radius=refine_radius, refine_eps=refine_eps,
        lens=lens, fisheye_lens=fisheye_lens, circle=circle, threshold=threshold,
    )
    columns = record_columns(lens)
    paths = {name: FileSystems.join(out_dir, name) for name in (RECORDS_JSONL, RECORDS_CSV, FAILED_JSONL)}
    pipeline = beam.Pipeline(options=options)
    records, failed = (
        pipeline
        | "Inputs" >> beam.Create(found.patterns)
        | "PredictSky" >> PredictSky(handler, out_dir, save, threshold, probability_bits, refine == "guided",
                                     has_sky_fraction, found.roots, found.duplicates, found.pattern_roots)
    )
    _write_lines(records | "RecordJson" >> beam.Map(json.dumps), "WriteJsonl", paths[RECORDS_JSONL])
    _write_lines(records | "RecordCsv" >> beam.Map(_csv_line, columns), "WriteCsv", paths[RECORDS_CSV],
                 ",".join(columns))
    _write_lines(failed | "FailedJson" >> beam.Map(json.dumps), "WriteFailed", paths[FAILED_JSONL])
    result = pipeline.run()
    state = result.wait_until_finish()
    return BeamPredictionSummary(
        state=str(state), predicted=_counter(result, "photos_predicted"), failed=_read_failed(paths[FAILED_JSONL]),
        skipped=found.skipped, records_jsonl=paths[RECORDS_JSONL], records_csv=paths[RECORDS_CSV],
        failed_jsonl=paths[FAILED_JSONL],
    )


__all__ = [
    "BeamPredictionSummary",
    "FAILED_JSONL",
    "Inputs",
    "METRICS_NAMESPACE",
    "Photo",
    "PredictSky",
    "Prediction",
    "SkyModelHandler",
    "list_inputs",
    "load_model_source",
    "pipeline_options",
    "predict_pipeline",
]
