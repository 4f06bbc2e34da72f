"""Sky masks for video files, stable from frame to frame.

:func:`predict_video` reads a video frame by frame (``imageio`` with ``imageio-ffmpeg``, the
package that ships an ffmpeg binary: ``pip install 'skyseg-tf[video]'``), predicts each frame
with :func:`skyseg_tf.inference.predict_image` (same options), smooths the sky *probabilities*
over time with a :class:`TwoSidedSmoother`, and writes a mask video (``<stem>_mask.mp4``) and an
overlay video (``<stem>_overlay.mp4``) at the source's frame rate and size. It streams: memory
holds at most ``2 * lookahead`` frames (16 by default), whatever the video's length.

Temporal smoothing (on by default) is a motion-compensated exponential moving average. For
each frame, the dense optical flow (OpenCV's Farneback) from the frame to the previous one
warps the running average onto the new frame, so a panning camera does not drag old masks
across the picture; each pixel then mixes its new probability with the warped average,
``p_smooth = (1 - m) * p_new + m * p_warped``, where ``m = smoothing * confidence``. The
confidence is near 1 where the warped previous frame matches the new frame and falls to 0 where
it does not (occlusions, things entering the frame, scene cuts), so the smoothing steps aside
exactly where the past is no guide. ``motion="static"`` skips the flow (for tripod shots: the
running average is not warped, and the confidence compares the frames as they are).

A file also has a future: by default (``lookahead=8``) the same average is run backwards too,
from up to 8 later frames to the current one, and each frame's probability is the mean of the
forward and the backward average (:class:`TwoSidedSmoother`). A forward-only average judges each
frame by the frames before it, so it lags and leans on the start of a clip; the two-sided one
judges it by its neighbours on both sides. ``lookahead=0`` keeps the forward-only
:class:`TemporalSmoother` (for live streams, where no later frame exists).

The flicker of a mask sequence is the mean absolute change of the binary mask between
consecutive frames (:func:`mask_flicker`, :class:`FlickerMeter`): the fraction of pixels that
flip per frame. :func:`predict_video` reports it for the masks it wrote and for the masks the
frames would have had without smoothing.

:func:`synthetic_clip` renders test clips with exact per-frame sky masks: a scene from
:mod:`skyseg_tf.data.synthetic`, larger than the frame, seen by a panning camera or a static one,
with fresh sensor noise in every frame.

Example:
    >>> import os, tempfile
    >>> import skyseg_tf
    >>> folder = tempfile.mkdtemp()
    >>> clip = os.path.join(folder, "clip.mp4")
    >>> _ = write_video(clip, (frame.image for frame in synthetic_clip(6, (64, 96), seed=1)), fps=12)
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> summary = predict_video(model, clip, folder, progress=False)
    >>> summary.frames, summary.fps, [p.name for p in summary.written]
    (6, 12.0, ['clip_mask.mp4', 'clip_overlay.mp4'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import numbers
import os
import pathlib
import time
import uuid
import warnings
from typing import Iterable, Iterator, NamedTuple, Sequence

import cv2
import numpy as np

from skyseg_tf import checks
from skyseg_tf.metrics import DEFAULT_THRESHOLD

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                    ".ts", ".mts", ".m2ts", ".3gp", ".ogv")
"""File suffixes treated as videos (``skyseg predict clip.mp4`` routes them to :func:`predict_video`)."""

VIDEO_SAVE_KINDS = ("mask_video", "overlay_video")
"""What :func:`predict_video` can write."""

VIDEO_OUTPUT_SUFFIXES = {"mask_video": "_mask.mp4", "overlay_video": "_overlay.mp4"}
"""File-name endings of the outputs of :func:`predict_video`."""

MOTION_MODELS = ("flow", "static")
"""Values of ``motion``: warp the running average by optical flow, or leave it in place."""

DEFAULT_SMOOTHING = 0.8
"""Weight of the (motion-compensated) past in each frame's sky probability, where the past
matches the frame; chosen with ``benchmarks/bench_video.py`` (docs/video.md)."""

DEFAULT_MOTION = "flow"

DEFAULT_LOOKAHEAD = 8
"""Later frames each frame's mask may use when smoothing a video (:class:`TwoSidedSmoother`);
0 smooths over past frames only (a :class:`TemporalSmoother`, as for a live stream)."""

DEFAULT_TOLERANCE = 0.1
"""Grey-level difference (as a fraction of white) between a frame and the warped previous frame
at which a pixel's smoothing weight falls to ``exp(-1)`` of its full value. Sensor and
compression noise stay well below it after the downscaling and blur of the flow images; a scene
cut or an occlusion goes well above it."""

FLOW_SIZE = 128
"""Shorter side (pixels) of the grey images the optical flow and confidence are computed on
(128 steadied masks about as well as 256 in ``benchmarks/bench_video.py``, in a third of the time)."""

FARNEBACK_OPTIONS = {"pyr_scale": 0.5, "levels": 5, "winsize": 31, "iterations": 3, "poly_n": 7,
                     "poly_sigma": 1.5}
"""Options of ``cv2.calcOpticalFlowFarneback``: wider windows and more pyramid levels than
OpenCV's example values (15 and 3) give a smoother flow, less fooled by sensor noise; a little
less flicker in ``benchmarks/bench_video.py`` at the same cost."""

DEFAULT_FPS = 30.0
"""Frame rate written when a video's own cannot be read (a warning says so)."""

MASK_CRF = 10
"""x264 constant rate factor of mask videos (near lossless: read masks back with a threshold at 128)."""

OVERLAY_CRF = 18
"""x264 constant rate factor of overlay videos (visually lossless)."""

_TRUNCATION_TOLERANCE = 0.05
"""Fraction of the frames a header announces that may be missing before a video counts as
truncated (container durations include audio, which often runs a little longer)."""


class VideoError(ValueError):
    """A video that cannot be read or written; the message names the file and what to do."""


# --------------------------------------------------------------------------------------------
# Reading and writing (imageio's ffmpeg plugin)
# --------------------------------------------------------------------------------------------


def _imageio():
    """``imageio.v2`` with its ffmpeg backend, or an ImportError that says what to install."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio's FFMPEG plugin runs)
    except ImportError as error:
        raise ImportError(
            f"Reading and writing videos needs imageio and imageio-ffmpeg ({error}). Install them with "
            "`pip install 'skyseg-tf[video]'` (or `pip install imageio imageio-ffmpeg`)."
        ) from error
    return imageio


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video's header says.

    Attributes:
        path: The file.
        fps: Frames per second (:data:`DEFAULT_FPS` if the header has none).
        size: ``(height, width)`` of the decoded frames.
        duration: Seconds (0 if unknown).
        codec: The video codec's name as ffmpeg reports it (e.g. ``"h264"``).
    """

    path: pathlib.Path
    fps: float
    size: tuple
    duration: float
    codec: str

    @property
    def expected_frames(self) -> int:
        """Frames the header's duration and frame rate announce (0 if unknown; an estimate)."""
        return int(round(self.duration * self.fps)) if self.duration > 0 and self.fps > 0 else 0


_NOT_A_VIDEO = ("ffmpeg cannot read it as a video: the file is corrupt, truncated, or not a video. Check that "
                "it plays, or re-encode it with ffmpeg")

_FFMPEG_REASONS = (
    ("misdetection possible", _NOT_A_VIDEO),  # no container signature: ffmpeg guessed from the suffix
    ("moov atom not found", "the MP4 is incomplete (its index is missing): the recording was cut off or "
                            "the file was truncated while copying. Copy or export it again"),
    ("does not contain any stream", "it holds no video frames (no video stream, or an empty one). "
                                    "Pass a video with at least one frame"),
    ("no decoder found", "its video codec is not one the bundled ffmpeg can decode. Re-encode it, "
                         "e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"),
    ("unknown codec", "its video codec is not one the bundled ffmpeg can decode. Re-encode it, "
                      "e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"),
    ("Invalid data found", _NOT_A_VIDEO),
)
"""(text in ffmpeg's log, the cause in words and what to do), first match wins."""


def _ffmpeg_reason(text: str) -> str:
    """The cause of an ffmpeg failure, in words, from ffmpeg's log; plus ffmpeg's own last line."""
    log = text.split("=== stderr ===")[-1]
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith(" ")]
    lines = [line for line in lines if not line.startswith(("ffmpeg version", "Input #", "Output #"))]
    detail = lines[-1] if lines else text.strip().splitlines()[0] if text.strip() else "no output"
    for needle, reason in _FFMPEG_REASONS:
        if needle.lower() in log.lower():
            break
    else:
        reason = "ffmpeg could not decode it. Check that the file plays, or re-encode it with ffmpeg"
    return f"{reason} (ffmpeg: {detail})"


def _check_video_path(path) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(2, f"video: {str(path)!r} does not exist. Pass a video file "
                                   f"({', '.join(VIDEO_EXTENSIONS[:6])}, ...).", str(path))
    if not path.is_file():
        raise VideoError(f"video: {str(path)!r} is not a file. Pass a video file.")
    if path.stat().st_size == 0:
        raise VideoError(f"video: {str(path)!r} is empty (0 bytes): it holds no frames. Copy or export it again.")
    return path


@contextlib.contextmanager
def _open_reader(path: pathlib.Path):
    imageio = _imageio()
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
    except (OSError, RuntimeError) as error:
        raise VideoError(f"video: {str(path)!r} cannot be read: {_ffmpeg_reason(str(error))}.") from None
    try:
        yield reader
    finally:
        reader.close()


def _info_from_meta(path: pathlib.Path, meta: dict) -> VideoInfo:
    fps = float(meta.get("fps") or 0.0)
    if not fps > 0:
        warnings.warn(f"{path}: the frame rate is unknown; writing {DEFAULT_FPS:g} frames per second.",
                      stacklevel=3)
        fps = DEFAULT_FPS
    width, height = meta.get("size") or (0, 0)
    duration = float(meta.get("duration") or 0.0)
    codec = str(meta.get("codec") or "").rstrip(",")
    return VideoInfo(path=path, fps=fps, size=(int(height), int(width)), duration=duration, codec=codec)


def read_video_info(path: str | os.PathLike) -> VideoInfo:
    """Reads a video's header: frame rate, frame size, duration, codec.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        VideoError: If ffmpeg cannot open it (the message says why and what to do).
        ImportError: If imageio or imageio-ffmpeg is missing.

    Example:
        >>> import os, tempfile
        >>> clip = os.path.join(tempfile.mkdtemp(), "grey.mp4")
        >>> _ = write_video(clip, [np.full((32, 48, 3), 128, np.uint8)] * 5, fps=10)
        >>> info = read_video_info(clip)
        >>> info.fps, info.size, info.codec, info.expected_frames
        (10.0, (32, 48), 'h264', 5)
    """
    path = _check_video_path(path)
    with _open_reader(path) as reader:
        return _info_from_meta(path, reader.get_meta_data())


class _Frames:
    """Iterates a video's RGB frames (uint8 ``[H, W, 3]``) and checks that none are missing."""

    def __init__(self, path):
        self.path = _check_video_path(path)
        self.info = read_video_info(self.path)

    def __len__(self) -> int:
        return self.info.expected_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        path, count = self.path, 0
        with _open_reader(path) as reader:
            frames = iter(reader)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except (OSError, RuntimeError) as error:
                    raise VideoError(f"video: {str(path)!r}: frame {count + 1} cannot be decoded: "
                                     f"{_ffmpeg_reason(str(error))}.") from None
                count += 1
                yield np.asarray(frame)
        expected = self.info.expected_frames
        if count == 0:
            raise VideoError(f"video: {str(path)!r} holds no video frames. Pass a video with at least one frame.")
        if expected and count < expected * (1.0 - _TRUNCATION_TOLERANCE) - 1:
            raise VideoError(
                f"video: {str(path)!r} is truncated or damaged: ffmpeg decoded {count} of the {expected} "
                f"frames its header announces ({self.info.duration:g} s at {self.info.fps:g} fps). Copy or "
                "export the video again, or re-encode the readable part with `ffmpeg -i IN -c:v libx264 OUT.mp4`."
            )


def iter_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yields a video's frames one at a time, as RGB ``uint8`` ``[H, W, 3]`` arrays.

    The header is read before the first frame is yielded, so an unreadable file fails at once.
    After the last frame, a video with no frames, or with clearly fewer frames than its header
    announces (a truncated file), raises :class:`VideoError`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        VideoError: For a file ffmpeg cannot read, a video without frames, a truncated video.
        ImportError: If imageio or imageio-ffmpeg is missing.

    Example:
        >>> import os, tempfile
        >>> clip = os.path.join(tempfile.mkdtemp(), "grey.mp4")
        >>> _ = write_video(clip, [np.full((32, 48, 3), 128, np.uint8)] * 3, fps=10)
        >>> [frame.shape for frame in iter_video_frames(clip)]
        [(32, 48, 3), (32, 48, 3), (32, 48, 3)]
    """
    return iter(_Frames(path))


def _temporary_path(final: pathlib.Path) -> pathlib.Path:
    """A hidden sibling of ``final`` with the same suffix (ffmpeg picks the container by suffix)."""
    return final.with_name(f".{final.stem}.partial-{uuid.uuid4().hex[:8]}{final.suffix}")


class _AtomicVideoWriter:
    """An H.264 video written to a hidden temporary file, renamed into place by :meth:`commit`.

    Frames are RGB ``[H, W, 3]`` or grey ``[H, W]`` ``uint8``. Even sizes are written in yuv420p
    (plays everywhere); odd sizes, which yuv420p cannot hold, in yuv444p, so the size is kept.
    """

    def __init__(self, path, fps: float, crf: int):
        self.path = pathlib.Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.temporary = _temporary_path(self.path)
        self._writer = None
        self.frames = 0

    def append(self, frame: np.ndarray):
        if self._writer is None:
            height, width = frame.shape[:2]
            pixel_format = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _imageio().get_writer(
                self.temporary, format="FFMPEG", mode="I", fps=self.fps, codec="libx264", quality=None,
                pixelformat=pixel_format, macro_block_size=1, ffmpeg_log_level="error",
                output_params=["-crf", str(self.crf), "-movflags", "+faststart"],
            )
        self._writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def _close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def commit(self) -> pathlib.Path:
        """Finishes the file and moves it to its final name."""
        self._close()
        if not self.frames or not self.temporary.is_file() or self.temporary.stat().st_size == 0:
            self.discard()
            raise OSError(f"ffmpeg wrote no video to {str(self.temporary)!r} (its errors are printed above).")
        os.replace(self.temporary, self.path)
        return self.path

    def discard(self):
        """Stops writing and removes the temporary file."""
        try:
            self._close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.temporary.unlink()


def _frame_as_uint8(frame, index: int) -> np.ndarray:
    """A frame on the 0..255 scale as ``uint8``: integers kept, floats rounded; out of range raises."""
    array = np.asarray(frame)
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(
            f"frames[{index}]: received dtype {array.dtype}; pass uint8, or integers or floats in "
            "[0, 255] (a boolean mask as np.where(mask, 255, 0).astype(np.uint8))."
        )
    rounded = np.rint(array) if np.issubdtype(array.dtype, np.floating) else array
    if array.size and not (rounded.min() >= 0 and rounded.max() <= 255):  # NaN fails too
        raise ValueError(
            f"frames[{index}]: received {array.dtype} values in [{array.min()}, {array.max()}]; pass "
            "values in [0, 255] (floats in [0, 1]: multiply by 255 first)."
        )
    return rounded.astype(np.uint8)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = OVERLAY_CRF) -> int:
    """Writes frames as an H.264 video; the file appears only when every frame is written.

    Args:
        path: The output file (``.mp4``, ``.mkv``, ``.mov``...).
        frames: RGB ``[H, W, 3]`` (or grey ``[H, W]``) arrays, all the same size, consumed one
            at a time: ``uint8``, or other integers or floats on the same ``0..255`` scale (as
            :func:`skyseg_tf.inference.predict_image` takes images), rounded to the nearest
            integer. Floats in ``[0, 1]`` must be multiplied by 255 first: a value that rounds
            outside ``0..255`` (or NaN) is an error, not wrapped or clipped.
        fps: Frames per second.
        crf: x264 quality (0 lossless, 18 visually lossless, 23 ffmpeg's default).

    Returns:
        The number of frames written.

    Raises:
        VideoError: If ``frames`` is empty.
        ValueError: If a frame is not numeric, or has values outside ``0..255``; nothing is
            written then.

    Example:
        >>> import os, tempfile
        >>> write_video(os.path.join(tempfile.mkdtemp(), "black.mp4"), [np.zeros((16, 16, 3), np.uint8)] * 4, fps=8)
        4
    """
    writer = _AtomicVideoWriter(path, fps, crf)
    try:
        for index, frame in enumerate(frames):
            writer.append(_frame_as_uint8(frame, index))
        if not writer.frames:
            raise VideoError(f"frames: received no frames for {str(path)!r}; pass at least one.")
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return writer.frames


# --------------------------------------------------------------------------------------------
# Temporal smoothing and flicker
# --------------------------------------------------------------------------------------------


def _check_smoothing(smoothing) -> float:
    if smoothing is None or (isinstance(smoothing, str) and smoothing.lower() in ("none", "off")):
        return 0.0
    if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) or not 0.0 <= smoothing < 1.0:
        raise ValueError(
            f"smoothing: received {smoothing!r}; pass a number in [0, 1) (the weight of the past; "
            f"default {DEFAULT_SMOOTHING}), or 0 / None / 'none' to turn smoothing off."
        )
    return float(smoothing)


class TemporalSmoother:
    """Motion-compensated exponential moving average of per-frame sky probabilities.

    Call it on each frame and its probability, in order; it returns the smoothed probability.
    See the module docstring for the method.

    Args:
        smoothing: Weight of the past in ``[0, 1)`` where the warped past matches the frame
            (0: no smoothing; 0.8 averages over about 5 frames of a steady scene).
        motion: ``"flow"`` (warp the average by Farneback optical flow) or ``"static"`` (do not).
        tolerance: Grey-level difference (a fraction of white) at which the weight of the past
            falls to ``exp(-1)`` of ``smoothing`` (:data:`DEFAULT_TOLERANCE`).
        flow_size: Shorter side of the images the flow and the confidence are computed on.

    Example:
        >>> smoother = TemporalSmoother(smoothing=0.5, motion="static")
        >>> frame = np.full((8, 8, 3), 100, np.uint8)
        >>> _ = smoother(frame, np.ones((8, 8), np.float32))
        >>> float(smoother(frame, np.zeros((8, 8), np.float32))[0, 0])  # half of the past kept
        0.5
    """

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING, motion: str = DEFAULT_MOTION,
                 tolerance: float = DEFAULT_TOLERANCE, flow_size: int = FLOW_SIZE):
        self.smoothing = _check_smoothing(smoothing)
        if motion not in MOTION_MODELS:
            raise ValueError(f"motion: received {motion!r}; valid values are {MOTION_MODELS} "
                             "('flow' for a moving camera, 'static' for a fixed one).")
        if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance > 0:
            raise ValueError(f"tolerance: received {tolerance!r}; pass a positive grey-level difference "
                             f"(a fraction of white) such as {DEFAULT_TOLERANCE}.")
        if isinstance(flow_size, bool) or not isinstance(flow_size, numbers.Integral) or flow_size < 16:
            raise ValueError(f"flow_size: received {flow_size!r}; pass an int >= 16 such as {FLOW_SIZE}.")
        self.motion = motion
        self.tolerance = float(tolerance)
        self.flow_size = int(flow_size)
        self.flow_options = dict(FARNEBACK_OPTIONS)
        self.reset()

    def reset(self):
        """Forgets the past (call it at a scene cut you know of, or between videos)."""
        self._average = None
        self._grey = None
        self._grids = None

    def _small_grey(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        scale = min(1.0, self.flow_size / min(height, width))
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey.astype(np.float32)  # grey levels 0..255: Farneback's thresholds assume that range

    @staticmethod
    def _grid(height: int, width: int):
        return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def _confidence_and_flow(self, grey: np.ndarray):
        """Per-pixel trust in the (warped) past at flow resolution, and the flow (or None)."""
        previous = self._grey
        flow = None
        if self.motion == "flow":
            flow = cv2.calcOpticalFlowFarneback(grey, previous, None, flags=0, **self.flow_options)
            height, width = grey.shape
            grid_x, grid_y = self._grid(height, width)
            map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
            previous = cv2.remap(previous, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        difference = cv2.GaussianBlur(np.abs(grey - previous), (0, 0), sigmaX=1.0)
        confidence = np.exp(-np.square(difference / np.float32(255.0 * self.tolerance)))
        if flow is not None:
            confidence *= inside
        return confidence.astype(np.float32), flow

    def __call__(self, frame: np.ndarray, probability: np.ndarray) -> np.ndarray:
        probability = np.asarray(probability, np.float32)
        frame = np.asarray(frame)
        if frame.shape[:2] != probability.shape:
            raise ValueError(f"probability: shape {probability.shape} does not match the frame's "
                             f"{frame.shape[:2]}.")
        if self.smoothing == 0.0:
            return probability
        grey = self._small_grey(frame)
        if self._average is None or self._average.shape != probability.shape:
            self._average, self._grey = probability.copy(), grey
            return probability
        confidence, flow = self._confidence_and_flow(grey)
        height, width = probability.shape
        small_h, small_w = grey.shape
        past = self._average
        if flow is not None:
            if flow.shape[:2] != (height, width):
                flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
                flow *= np.array([width / small_w, height / small_h], np.float32)
            if self._grids is None or self._grids[0].shape != (height, width):
                self._grids = self._grid(height, width)
            past = cv2.remap(past, self._grids[0] + flow[..., 0], self._grids[1] + flow[..., 1],
                             cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if confidence.shape != (height, width):
            confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
        weight = confidence
        weight *= np.float32(self.smoothing)
        average = probability + weight * (past - probability)
        self._average, self._grey = average, grey
        return np.clip(average, 0.0, 1.0)


def _check_lookahead(lookahead) -> int:
    if isinstance(lookahead, bool) or not isinstance(lookahead, numbers.Integral) or lookahead < 0:
        raise ValueError(
            f"lookahead: received {lookahead!r}; pass an int >= 0: the number of later frames each "
            f"frame's mask may use (default {DEFAULT_LOOKAHEAD}; 0 smooths over past frames only)."
        )
    return int(lookahead)


class TwoSidedSmoother:
    """Smoothing over past *and* later frames: the mean of a forward and a backward average.

    A :class:`TemporalSmoother` run forwards sees only the past; on a file the frames after the
    current one are available too. This smoother runs one forward over the frames as they come
    and, per chunk, one backward (the same motion-compensated, confidence-weighted average, from
    the later frames back to the current one), and returns ``(forward + backward) / 2``: each
    frame is steadied by its neighbours on both sides, so a mask neither lags behind the scene
    nor leans on the first frames of a clip.

    It streams with bounded memory: :meth:`smooth` holds at most ``2 * lookahead`` frames and
    yields them in chunks of ``lookahead``, each frame after at least ``lookahead`` later frames
    (or the end) have been read. The backward average of a frame therefore reaches at least
    ``lookahead`` frames ahead (with weight 0.8 the eighth frame ahead would count 0.8^8 = 17% as
    much as the frame itself); each frame passes through two backward runs, so the smoothing
    costs about three times the forward-only one.

    Args:
        smoothing, motion, tolerance, flow_size: As :class:`TemporalSmoother`, for both
            directions.
        lookahead: Later frames each frame's mask may use, at least 1 (:data:`DEFAULT_LOOKAHEAD`).

    Example:
        >>> smoother = TwoSidedSmoother(0.5, motion="static", lookahead=2)
        >>> frame = np.full((4, 4, 3), 100, np.uint8)
        >>> items = [(frame, np.full((4, 4), value, np.float32)) for value in (0.0, 1.0, 0.0)]
        >>> [round(float(p[0, 0]), 3) for _, p, _ in smoother.smooth(items)]
        [0.125, 0.5, 0.125]
    """

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING, motion: str = DEFAULT_MOTION,
                 lookahead: int | None = None, tolerance: float = DEFAULT_TOLERANCE, flow_size: int = FLOW_SIZE):
        lookahead = DEFAULT_LOOKAHEAD if lookahead is None else _check_lookahead(lookahead)
        if lookahead < 1:
            raise ValueError(f"lookahead: received {lookahead!r}; a two-sided smoother needs at least 1 "
                             "later frame (use TemporalSmoother for past frames only).")
        self.lookahead = lookahead
        self._forward = TemporalSmoother(smoothing, motion, tolerance, flow_size)
        self._options = (self._forward.smoothing, motion, tolerance, flow_size)

    @property
    def smoothing(self) -> float:
        """The weight of the (warped) neighbouring average, in both directions."""
        return self._forward.smoothing

    def smooth(self, items: Iterable[tuple]) -> Iterator[tuple]:
        """Smooths a sequence of ``(frame, probability, *extra)`` tuples.

        Yields:
            ``(frame, smoothed probability, probability, *extra)`` per item, in order.
        """
        self._forward.reset()
        pending: list[tuple] = []  # (item, forward average)
        for item in items:
            frame, probability = item[0], np.asarray(item[1], np.float32)
            pending.append((item, self._forward(frame, probability)))
            if len(pending) >= 2 * self.lookahead:
                done = len(pending) - self.lookahead
                yield from self._emit(pending[:done], pending)
                del pending[:done]
        yield from self._emit(pending, pending)

    def _emit(self, ready, window):
        """The items of ``ready`` (the start of ``window``), smoothed with a backward run over ``window``."""
        if not ready:
            return
        if self._forward.smoothing == 0.0:
            for item, forward in ready:
                yield (item[0], forward, item[1], *item[2:])
            return
        backward_smoother = TemporalSmoother(*self._options)
        backward = [backward_smoother(item[0], np.asarray(item[1], np.float32)) for item, _ in reversed(window)]
        backward.reverse()
        for (item, forward), behind in zip(ready, backward):
            yield (item[0], (forward + behind) * np.float32(0.5), item[1], *item[2:])


def mask_change(previous: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of pixels whose binary mask differs between two frames.

    Example:
        >>> mask_change(np.array([[0, 1], [1, 1]]), np.array([[1, 1], [1, 1]]))
        0.25
    """
    previous, mask = np.asarray(previous), np.asarray(mask)
    if previous.shape != mask.shape:
        raise ValueError(f"mask_change: masks of different shapes {previous.shape} and {mask.shape}.")
    return float(np.mean((previous > 0) != (mask > 0)))


class FlickerMeter:
    """Running mean of :func:`mask_change` between consecutive masks (streams; keeps one mask).

    Example:
        >>> meter = FlickerMeter()
        >>> for mask in ([[0, 0]], [[0, 1]], [[0, 1]]):
        ...     meter.update(np.array(mask))
        >>> meter.result()  # (0.5 + 0.0) / 2
        0.25
    """

    def __init__(self):
        self._previous = None
        self._total = 0.0
        self.pairs = 0

    def update(self, mask: np.ndarray):
        """Adds the next frame's binary mask."""
        mask = np.asarray(mask) > 0
        if self._previous is not None:
            self._total += mask_change(self._previous, mask)
            self.pairs += 1
        self._previous = mask

    def result(self) -> float:
        """Mean change per consecutive pair (0.0 before two masks)."""
        return self._total / self.pairs if self.pairs else 0.0


def mask_flicker(masks: Iterable[np.ndarray]) -> float:
    """Mean absolute change of a binary mask sequence between consecutive frames.

    0 means no pixel ever flips; 0.01 means 1% of the pixels flip from one frame to the next on
    average. A moving camera changes the true mask too: compare with the flicker of the ground
    truth, or align the masks first.

    Example:
        >>> mask_flicker([np.zeros((2, 2)), np.ones((2, 2)), np.ones((2, 2))])
        0.5
    """
    meter = FlickerMeter()
    for mask in masks:
        meter.update(mask)
    return meter.result()


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


class FramePrediction(NamedTuple):
    """One frame of :func:`iter_video_predictions`."""

    image: np.ndarray
    """The RGB frame, ``uint8`` ``[H, W, 3]``."""
    probability: np.ndarray
    """The smoothed sky probability, float32 ``[H, W]``."""
    raw_probability: np.ndarray
    """The frame's own sky probability, before smoothing."""


def _predict_options(options: dict) -> dict:
    """Checks that ``options`` are keyword arguments of ``predict_image``."""
    from skyseg_tf.inference import predict_image

    valid = [name for name in inspect.signature(predict_image).parameters if name not in ("model", "image")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; options passed on to predict_image are "
                        f"{', '.join(valid)}.")
    return options


def iter_video_predictions(model, frames: str | os.PathLike | Iterable[np.ndarray],
                           smoothing: float | str | None = DEFAULT_SMOOTHING, motion: str = DEFAULT_MOTION,
                           lookahead: int = DEFAULT_LOOKAHEAD, **predict_options) -> Iterator[FramePrediction]:
    """Predicts a sequence of frames with temporal smoothing, streaming.

    The per-frame loop of :func:`predict_video`, for callers that do their own thing with each
    frame (a sky replacement, a metric).

    Args:
        model: As in :func:`skyseg_tf.inference.predict_image` (``None``: the pretrained model).
        frames: A video file, or an iterable of RGB frames.
        smoothing: Weight of the past in ``[0, 1)``; 0, None or ``"none"`` turns smoothing off.
        motion: ``"flow"`` or ``"static"`` (see :class:`TemporalSmoother`).
        lookahead: Later frames each frame's smoothing may use (:class:`TwoSidedSmoother`;
            :data:`DEFAULT_LOOKAHEAD`). Frames are then yielded in chunks, each after at least
            ``lookahead`` later frames were read (at most ``2 * lookahead`` frames are held);
            0 smooths over past frames only and yields each frame at once (for a live stream).
        **predict_options: Options of ``predict_image`` (``input_size``, ``mode``, ``refine``...).

    Yields:
        :class:`FramePrediction` tuples, in order, one per frame.

    Example:
        >>> import skyseg_tf
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> frames = (frame.image for frame in synthetic_clip(3, (32, 48), camera="static"))
        >>> [p.probability.shape for p in iter_video_predictions(model, frames)]
        [(32, 48), (32, 48), (32, 48)]
    """
    from skyseg_tf.inference import as_predictor, predict_image

    lookahead = _check_lookahead(lookahead)
    smoother = TemporalSmoother(smoothing, motion)
    predict_options = _predict_options(predict_options)
    predictor = as_predictor(model)
    if isinstance(frames, (str, os.PathLike)):
        frames = iter_video_frames(frames)
    raw_predictions = ((frame, predict_image(predictor, frame, **predict_options)) for frame in frames)
    if lookahead == 0 or smoother.smoothing == 0.0:
        for frame, raw in raw_predictions:
            yield FramePrediction(frame, smoother(frame, raw), raw)
        return
    smoothed = TwoSidedSmoother(smoother.smoothing, motion, lookahead).smooth(raw_predictions)
    try:
        for frame, probability, raw in smoothed:
            yield FramePrediction(frame, probability, raw)
    finally:  # closing this generator closes the reader now (an ffmpeg process for a file)
        smoothed.close()
        raw_predictions.close()


@dataclasses.dataclass
class VideoSummary:
    """What :func:`predict_video` did.

    Attributes:
        path: The input video.
        frames: Frames predicted.
        fps: Frame rate of the input and of the written videos.
        size: ``(height, width)`` of the frames.
        smoothing: The smoothing weight used (0: off).
        motion: The motion model of the smoothing.
        lookahead: Later frames the smoothing used (0: past frames only).
        flicker: :func:`mask_flicker` of the written masks.
        flicker_unsmoothed: The same for the frames' own masks, before smoothing.
        seconds: Wall time of the whole call.
        written: The output files.
    """

    path: pathlib.Path
    frames: int
    fps: float
    size: tuple
    smoothing: float
    motion: str
    lookahead: int
    flicker: float
    flicker_unsmoothed: float
    seconds: float
    written: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready values."""
        values = dataclasses.asdict(self)
        values.update(path=str(self.path), size=list(self.size), written=[str(p) for p in self.written])
        return values

    def __str__(self) -> str:
        smoothing = (f"smoothing {self.smoothing:g} ({self.motion}, {self.lookahead} frames ahead)"
                     if self.smoothing else "no smoothing")
        return (f"{self.path}: {self.frames} frames of {self.size[1]}x{self.size[0]} at {self.fps:g} fps, "
                f"{smoothing}; flicker {100 * self.flicker:.2f}% of pixels per frame "
                f"({100 * self.flicker_unsmoothed:.2f}% unsmoothed); {self.frames / max(self.seconds, 1e-9):.1f} "
                f"frames/s; wrote {', '.join(str(p) for p in self.written)}")


def predict_video(
    model,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    save: Sequence[str] = VIDEO_SAVE_KINDS,
    smoothing: float | str | None = DEFAULT_SMOOTHING,
    motion: str = DEFAULT_MOTION,
    lookahead: int = DEFAULT_LOOKAHEAD,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = True,
    **predict_options,
) -> VideoSummary:
    """Predicts every frame of a video and writes a mask video and an overlay video.

    For ``clip.mp4`` it writes ``clip_mask.mp4`` (white sky on black, where the smoothed
    probability is ``>= threshold``) and ``clip_overlay.mp4`` (sky tinted magenta) into
    ``out_dir``, H.264 at the source's frame rate and size (no audio). Frames stream through (at
    most ``2 * lookahead`` held at once). Outputs are written to hidden temporary files in
    ``out_dir`` and renamed when the whole video is done; on any failure they are removed, so
    nothing half-written is left.

    Args:
        model: A model, a path to one, a preset model, or ``None`` for the pretrained model
            (as in :func:`skyseg_tf.inference.predict_image`).
        path: The video file (any container and codec ffmpeg reads: :data:`VIDEO_EXTENSIONS`).
        out_dir: Output folder (created).
        save: Any of :data:`VIDEO_SAVE_KINDS`.
        smoothing: Weight of the motion-compensated past in ``[0, 1)``
            (:data:`DEFAULT_SMOOTHING`); 0, None or ``"none"`` turns temporal smoothing off.
        motion: ``"flow"`` (camera may move; default) or ``"static"`` (fixed camera, cheaper).
        lookahead: Later frames each frame's smoothing may use (:data:`DEFAULT_LOOKAHEAD`; see
            :class:`TwoSidedSmoother`); 0 smooths over past frames only.
        threshold: Probability at or above which a pixel is sky in the mask video.
        progress: Show a tqdm progress bar over the frames.
        **predict_options: Passed to ``predict_image``: ``input_size``, ``mode``, ``tile_size``,
            ``overlap``, ``refine``, ``batch_size``, ``refine_radius``, ``refine_eps``.

    Returns:
        A :class:`VideoSummary` (frames, fps, flicker with and without smoothing, files).

    Raises:
        FileNotFoundError: If the video does not exist.
        VideoError: For a video ffmpeg cannot read (corrupt, unknown codec, not a video), one
            without frames, or a truncated one (fewer frames than its header announces).
        ValueError, TypeError: For invalid options (before any file is written).
        ImportError: If imageio or imageio-ffmpeg is missing (``pip install 'skyseg-tf[video]'``).

    Example:
        >>> import os, tempfile
        >>> import skyseg_tf
        >>> folder = tempfile.mkdtemp()
        >>> clip = os.path.join(folder, "pan.mp4")
        >>> _ = write_video(clip, (frame.image for frame in synthetic_clip(4, (32, 48))), fps=25)
        >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
        >>> summary = predict_video(model, clip, folder, save="mask_video", smoothing="none", progress=False)
        >>> summary.smoothing, [p.name for p in summary.written]
        (0.0, ['pan_mask.mp4'])
    """
    from skyseg_tf.inference import overlay_sky

    started = time.perf_counter()
    save = checks.choices("save", save, VIDEO_SAVE_KINDS)
    smoothing = _check_smoothing(smoothing)
    lookahead = _check_lookahead(lookahead)
    checks.probability("threshold", threshold)
    frames = _Frames(path)  # reads the header: an unreadable file fails here
    info = frames.info
    out_dir = pathlib.Path(out_dir)
    writers = {kind: _AtomicVideoWriter(out_dir / (info.path.stem + VIDEO_OUTPUT_SUFFIXES[kind]), info.fps,
                                        MASK_CRF if kind == "mask_video" else OVERLAY_CRF) for kind in save}
    smoothed_flicker, raw_flicker = FlickerMeter(), FlickerMeter()
    bar, count, size = None, 0, info.size
    predictions = iter_video_predictions(model, frames, smoothing, motion, lookahead, **predict_options)
    try:
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(frames) or None, desc=info.path.name, unit="frame")
        for image, probability, raw in predictions:
            mask = probability >= threshold
            smoothed_flicker.update(mask)
            raw_flicker.update(raw >= threshold)
            size = probability.shape
            if "mask_video" in writers:
                writers["mask_video"].append(np.where(mask, 255, 0).astype(np.uint8))
            if "overlay_video" in writers:
                writers["overlay_video"].append(overlay_sky(image, probability))
            count += 1
            if bar is not None:
                bar.update(1)
        written = [writer.commit() for writer in writers.values()]
    except BaseException:
        predictions.close()  # stops the ffmpeg reader now, not when the generator is collected
        for writer in writers.values():
            writer.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
    return VideoSummary(path=info.path, frames=count, fps=info.fps, size=tuple(size), smoothing=smoothing,
                        motion=motion, lookahead=lookahead if smoothing else 0, flicker=smoothed_flicker.result(),
                        flicker_unsmoothed=raw_flicker.result(), seconds=time.perf_counter() - started,
                        written=written)


# --------------------------------------------------------------------------------------------
# Synthetic clips
# --------------------------------------------------------------------------------------------

CAMERAS = ("pan", "static")
"""Camera motions of :func:`synthetic_clip`."""


class ClipFrame(NamedTuple):
    """One frame of :func:`synthetic_clip`."""

    image: np.ndarray
    """RGB ``uint8`` ``[H, W, 3]``."""
    mask: np.ndarray
    """The exact sky mask, ``uint8`` ``[H, W]`` (1 = sky)."""
    offset: tuple
    """``(top, left)`` of the frame in the scene: the camera's position."""


def synthetic_clip(num_frames: int = 48, frame_size: Sequence[int] = (360, 640), camera: str = "pan",
                   seed: int = 0, noise: float = 4.0, speed: float = 4.0, features=None
                   ) -> Iterator[ClipFrame]:
    """Yields the frames of a synthetic clip with an exact sky mask per frame.

    One scene of :func:`skyseg_tf.data.synthetic.render_scene` is rendered larger than the frame
    and cropped: ``camera="pan"`` moves the crop ``speed`` pixels to the right per frame, with a
    slow vertical sway of up to ``speed`` pixels; ``camera="static"`` keeps it still. Each frame
    gets fresh Gaussian sensor noise of ``noise`` grey levels; its mask is the same crop of the
    scene's mask, so it is exact.

    Args:
        num_frames: Frames in the clip.
        frame_size: ``(height, width)``, each at least 16.
        camera: ``"pan"`` or ``"static"``.
        seed: Seed of the scene and of the noise.
        noise: Standard deviation of the per-frame noise, in grey levels.
        speed: Pan speed in pixels per frame.
        features: Scene elements for ``render_scene`` (None: drawn from the seed, never a
            close-up without sky).

    Yields:
        :class:`ClipFrame` tuples ``(image, mask, offset)``.

    Example:
        >>> clip = list(synthetic_clip(3, (32, 48), camera="pan", speed=2, seed=2))
        >>> [frame.image.shape for frame in clip], [frame.offset[1] for frame in clip]
        ([(32, 48, 3), (32, 48, 3), (32, 48, 3)], [0, 2, 4])
    """
    from skyseg_tf.data.synthetic import FRAME_KINDS, render_scene, sample_scene_features

    if camera not in CAMERAS:
        raise ValueError(f"camera: received {camera!r}; valid values are {CAMERAS}.")
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral) or num_frames < 1:
        raise ValueError(f"num_frames: received {num_frames!r}; pass a positive int.")
    height, width = (int(v) for v in frame_size)
    rng = np.random.default_rng([seed, 7919])
    if features is None:
        features = sample_scene_features(rng)
        features.update(dict.fromkeys(FRAME_KINDS, False))  # clips are outdoor scenes
        if not any(features[name] for name in ("mountains", "hills", "buildings", "trees", "water")):
            features["hills"] = True
    moving = camera == "pan"
    sway = int(np.ceil(speed)) if moving else 0
    travel = int(np.ceil(speed * (num_frames - 1))) if moving else 0
    scene, scene_mask = render_scene(rng, height + 2 * sway, width + travel, features)
    scene_mask = scene_mask[..., 0]
    phase = rng.uniform(0, 2 * np.pi)
    for index in range(num_frames):
        left = int(round(speed * index)) if moving else 0
        top = sway + int(round(sway * np.sin(phase + 2 * np.pi * index / max(num_frames, 24)))) if moving else 0
        crop = scene[top:top + height, left:left + width].astype(np.float32)
        crop += np.float32(noise) * rng.standard_normal(crop.shape, dtype=np.float32)
        frame = np.clip(crop + 0.5, 0, 255).astype(np.uint8)
        yield ClipFrame(frame, scene_mask[top:top + height, left:left + width].copy(), (top, left))


__all__ = [
    "CAMERAS",
    "ClipFrame",
    "DEFAULT_LOOKAHEAD",
    "DEFAULT_MOTION",
    "DEFAULT_SMOOTHING",
    "DEFAULT_TOLERANCE",
    "FLOW_SIZE",
    "FlickerMeter",
    "FramePrediction",
    "MOTION_MODELS",
    "TemporalSmoother",
    "TwoSidedSmoother",
    "VIDEO_EXTENSIONS",
    "VIDEO_OUTPUT_SUFFIXES",
    "VIDEO_SAVE_KINDS",
    "VideoError",
    "VideoInfo",
    "VideoSummary",
    "iter_video_frames",
    "iter_video_predictions",
    "mask_change",
    "mask_flicker",
    "predict_video",
    "read_video_info",
    "synthetic_clip",
    "write_video",
]
