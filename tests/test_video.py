"""skyseg_tf.video: video in, mask and overlay videos out, stable masks, clear errors, nothing half-written."""

import os
import subprocess
import sys

import numpy as np
import pytest

from skyseg_tf.video import (
    DEFAULT_LOOKAHEAD,
    VIDEO_EXTENSIONS,
    TemporalSmoother,
    TwoSidedSmoother,
    VideoError,
    iter_video_frames,
    iter_video_predictions,
    mask_flicker,
    predict_video,
    read_video_info,
    synthetic_clip,
    write_video,
)

SIZE = (64, 96)
FRAMES = 8


def grey_sky(images):
    """A stand-in model: sky probability from brightness, steep around grey 128, so noise flips it."""
    import tensorflow as tf

    grey = tf.reduce_mean(images, axis=-1, keepdims=True)
    return tf.sigmoid((grey - 128.0) / 4.0)


def left_half_sky(images):
    """A stand-in model whose answer is known: the left half of every frame is sky."""
    import tensorflow as tf

    width = tf.shape(images)[2]
    columns = tf.cast(tf.range(width) < width // 2, tf.float32)
    return tf.zeros_like(images[..., :1]) + columns[None, None, :, None]


def write_clip(path, camera="pan", frames=FRAMES, size=SIZE, fps=12, seed=0, noise=4.0):
    write_video(path, (frame.image for frame in synthetic_clip(frames, size, camera=camera, seed=seed, noise=noise)),
                fps=fps)
    return path


def read_back(path):
    """All frames of a written video, and its header."""
    return list(iter_video_frames(path)), read_video_info(path)


def ffmpeg(*args):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", *map(str, args)], check=True)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- writing videos


def test_predict_video_writes_mask_and_overlay_at_source_fps_and_size(tiny_model, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", fps=12)
    out = tmp_path / "out"
    summary = predict_video(tiny_model, clip, out, progress=False)
    assert (summary.frames, summary.fps, summary.size) == (FRAMES, 12.0, SIZE)
    assert summary.written == [out / "clip_mask.mp4", out / "clip_overlay.mp4"]
    assert listing(out) == ["clip_mask.mp4", "clip_overlay.mp4"]  # no temporary files left
    for path in summary.written:
        frames, info = read_back(path)
        assert len(frames) == FRAMES and info.fps == 12.0 and info.size == SIZE and info.codec == "h264"
        assert all(frame.shape == (*SIZE, 3) for frame in frames)
    masks, _ = read_back(out / "clip_mask.mp4")
    values = np.concatenate([frame.ravel() for frame in masks])
    assert np.mean((values > 20) & (values < 235)) < 0.01  # black and white, up to compression at edges
    # The reported flicker is that of the masks written (read back through H.264: up to compression).
    assert summary.flicker == pytest.approx(mask_flicker([frame[..., 0] > 127 for frame in masks]), abs=0.01)
    assert summary.to_dict()["written"][0].endswith("clip_mask.mp4")
    assert "8 frames of 96x64 at 12 fps" in str(summary)


def test_written_mask_is_the_thresholded_probability_and_overlay_tints_it(tmp_path):
    from skyseg_tf.inference import overlay_sky

    frames = [frame.image for frame in synthetic_clip(FRAMES, SIZE, camera="static", seed=3)]
    clip = tmp_path / "half.mp4"
    write_video(clip, frames, fps=10)
    summary = predict_video(left_half_sky, clip, tmp_path, progress=False)
    expected = np.zeros(SIZE, bool)
    expected[:, SIZE[1] // 2:] = False
    expected[:, :SIZE[1] // 2] = True
    masks, _ = read_back(tmp_path / "half_mask.mp4")
    for mask in masks:
        assert ((mask[..., 0] >= 128) == expected).all()
    assert summary.flicker == 0.0
    overlays, _ = read_back(tmp_path / "half_overlay.mp4")
    decoded, _ = read_back(clip)  # the frames the model saw (after the clip's own compression)
    want = overlay_sky(decoded[0], expected.astype(np.float32))
    assert np.abs(overlays[0].astype(int) - want.astype(int)).mean() < 3.0


def test_odd_frame_sizes_are_kept(tiny_model, tmp_path):
    clip = write_clip(tmp_path / "odd.mkv", frames=4, size=(63, 95))
    summary = predict_video(tiny_model, clip, tmp_path / "out", save="mask_video", progress=False)
    frames, info = read_back(summary.written[0])
    assert len(frames) == 4 and info.size == (63, 95) and summary.written[0].name == "odd_mask.mp4"


def test_iter_video_predictions_streams_a_path_and_smoothing_off_is_the_raw_probability(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=5)
    predictions = list(iter_video_predictions(grey_sky, clip, smoothing="none"))
    assert len(predictions) == 5
    for image, probability, raw in predictions:
        assert image.shape == (*SIZE, 3) and probability.shape == SIZE and probability.dtype == np.float32
        np.testing.assert_array_equal(probability, raw)


def test_video_suffixes_do_not_overlap_image_suffixes():
    from skyseg_tf.inference import PREDICT_EXTENSIONS

    assert ".mp4" in VIDEO_EXTENSIONS and ".mov" in VIDEO_EXTENSIONS
    assert not set(VIDEO_EXTENSIONS) & set(PREDICT_EXTENSIONS)
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in VIDEO_EXTENSIONS)


# ----------------------------------------------------------------------------- stable masks


def noisy_static_clip(tmp_path):
    """16 frames of a fixed camera with strong sensor noise: ``grey_sky`` flickers on them."""
    clip = tmp_path / "noisy.mp4"
    write_video(clip, (frame.image for frame in synthetic_clip(16, SIZE, camera="static", noise=10.0, seed=5)),
                fps=25)
    return clip


def test_smoothing_halves_flicker_on_a_noisy_static_clip(tmp_path):
    clip = noisy_static_clip(tmp_path)
    smoothed = predict_video(grey_sky, clip, tmp_path / "on", save="mask_video", progress=False)
    plain = predict_video(grey_sky, clip, tmp_path / "off", save="mask_video", smoothing=0, progress=False)
    assert plain.flicker_unsmoothed > 0.005  # the stand-in model does flicker on this clip
    assert plain.flicker == plain.flicker_unsmoothed and plain.smoothing == 0.0
    assert smoothed.flicker_unsmoothed == pytest.approx(plain.flicker_unsmoothed)
    assert smoothed.flicker < 0.5 * plain.flicker
    # The written videos hold what the summaries say.
    masks = [frame[..., 0] >= 128 for frame in iter_video_frames(smoothed.written[0])]
    assert mask_flicker(masks) == pytest.approx(smoothed.flicker, abs=0.002)


def perfect_probabilities(camera, frames=12, size=(96, 160), seed=1):
    clip = list(synthetic_clip(frames, size, camera=camera, seed=seed, noise=2.0, speed=3.0,
                               features={"time_of_day": "day", "hills": True, "buildings": True, "trees": True}))
    return [(frame.image, frame.mask.astype(np.float32)) for frame in clip]


def smoothed_iou(smoother, clip):
    ious = []
    for image, truth in clip:
        mask = smoother(image, truth) >= 0.5
        truth = truth > 0.5
        ious.append(np.logical_and(mask, truth).sum() / np.logical_or(mask, truth).sum())
    return float(np.mean(ious[1:]))


def test_flow_smoothing_follows_a_panning_camera_where_a_plain_average_lags():
    # A perfect per-frame model: any drop in IoU comes from the smoothing dragging the past along.
    clip = perfect_probabilities("pan")
    flow = smoothed_iou(TemporalSmoother(0.8, motion="flow"), clip)
    plain = smoothed_iou(TemporalSmoother(0.8, motion="static", tolerance=1e9), clip)
    assert flow > 0.97
    assert plain < flow - 0.02


def two_sided(clip, weight=0.8, motion="flow", lookahead=DEFAULT_LOOKAHEAD):
    return [smoothed for _, smoothed, _ in TwoSidedSmoother(weight, motion=motion, lookahead=lookahead).smooth(clip)]


def test_two_sided_smoothing_is_the_mean_of_a_forward_and_a_backward_average():
    clip = perfect_probabilities("pan", frames=10)
    rng = np.random.default_rng(0)
    clip = [(image, np.clip(truth + rng.normal(0, 0.3, truth.shape), 0, 1).astype(np.float32)) for image, truth in clip]
    forward_smoother, backward_smoother = TemporalSmoother(0.8), TemporalSmoother(0.8)
    forward = [forward_smoother(image, p) for image, p in clip]
    backward = [backward_smoother(image, p) for image, p in reversed(clip)][::-1]
    whole = two_sided(clip, lookahead=len(clip))  # lookahead past the end: one backward run over everything
    for got, ahead, behind in zip(whole, forward, backward):
        np.testing.assert_allclose(got, (ahead + behind) / 2, atol=1e-6)
    # Streaming in chunks: every frame comes out once, in order, with its own raw probability and extras.
    items = [(image, p, index) for index, (image, p) in enumerate(clip)]
    out = list(TwoSidedSmoother(0.8, lookahead=3).smooth(items))
    assert [extra for *_, extra in out] == list(range(10))
    for (_, smoothed, raw, index), (_, p) in zip(out, clip):
        assert raw is p and smoothed.shape == p.shape
    # The last frames see the true end, so they match the one-run answer; earlier ones see at least 3 frames ahead.
    np.testing.assert_allclose(out[-1][1], whole[-1], atol=1e-6)


def test_two_sided_smoothing_holds_at_most_twice_the_lookahead():
    consumed = []

    def frames():
        for index in range(11):
            consumed.append(index)
            yield np.full((8, 8, 3), 100, np.uint8), np.full((8, 8), index % 2, np.float32)

    for position, _ in enumerate(TwoSidedSmoother(0.5, motion="static", lookahead=2).smooth(frames())):
        assert len(consumed) - position <= 4  # read ahead: at most 2 x lookahead frames
        assert len(consumed) - 1 - position >= 2 or len(consumed) == 11  # at least 2 later frames, or the end


def test_two_sided_smoothing_follows_a_panning_camera():
    clip = perfect_probabilities("pan")
    ious = []
    for (image, truth), smoothed in zip(clip, two_sided(clip)):
        mask, truth = smoothed >= 0.5, truth > 0.5
        ious.append(np.logical_and(mask, truth).sum() / np.logical_or(mask, truth).sum())
    assert min(ious) > 0.97


def test_two_sided_smoothing_steadies_a_static_clip_more_than_the_past_alone(tmp_path):
    clip = noisy_static_clip(tmp_path)
    both = predict_video(grey_sky, clip, tmp_path / "both", save="mask_video", progress=False)
    past = predict_video(grey_sky, clip, tmp_path / "past", save="mask_video", lookahead=0, progress=False)
    assert both.lookahead == DEFAULT_LOOKAHEAD and past.lookahead == 0
    assert both.flicker < past.flicker < past.flicker_unsmoothed


def test_a_scene_cut_does_not_leak_backwards():
    first = next(synthetic_clip(1, (64, 96), camera="static", seed=1, features={"time_of_day": "day", "hills": True}))
    second = next(synthetic_clip(1, (64, 96), camera="static", seed=2,
                                 features={"time_of_day": "night", "buildings": True, "trees": True}))
    clip = [(first.image, np.ones((64, 96), np.float32))] * 3 + [(second.image, np.zeros((64, 96), np.float32))] * 3
    smoothed = two_sided(clip, weight=0.9)
    assert smoothed[2].mean() > 0.8 and smoothed[3].mean() < 0.2  # each side of the cut keeps its own answer


def test_two_sided_smoother_rejects_bad_settings():
    for lookahead in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="lookahead"):
            TwoSidedSmoother(lookahead=lookahead)
    with pytest.raises(ValueError, match="smoothing"):
        TwoSidedSmoother(smoothing=1.0)


def test_the_past_steps_aside_at_a_scene_cut():
    first = next(synthetic_clip(1, (64, 96), camera="static", seed=1, features={"time_of_day": "day", "hills": True}))
    second = next(synthetic_clip(1, (64, 96), camera="static", seed=2,
                                 features={"time_of_day": "night", "buildings": True, "trees": True}))
    smoother = TemporalSmoother(0.9)
    smoother(first.image, np.ones((64, 96), np.float32))
    after_cut = smoother(second.image, np.zeros((64, 96), np.float32))
    assert after_cut.mean() < 0.2  # mostly the new frame's own answer, not 0.9 of the old one
    smoother.reset()
    np.testing.assert_array_equal(smoother(first.image, np.ones((64, 96), np.float32)), 1.0)


def test_synthetic_clip_masks_are_crops_of_one_scene():
    pan = list(synthetic_clip(6, (48, 64), camera="pan", seed=4, speed=3.0))
    static = list(synthetic_clip(6, (48, 64), camera="static", seed=4))
    assert mask_flicker(frame.mask for frame in static) == 0.0
    assert not np.array_equal(static[0].image, static[1].image)  # fresh noise in each frame
    assert mask_flicker(frame.mask for frame in pan) > 0.0
    for before, after in zip(pan, pan[1:]):
        (top0, left0), (top1, left1) = before.offset, after.offset
        dy, dx = top1 - top0, left1 - left0
        assert dx == 3
        # The scene point at (y, x) of the later frame is at (y + dy, x + dx) in the earlier one.
        rows = slice(max(0, -dy), 48 - max(0, dy))
        shifted_rows = slice(max(0, -dy) + dy, 48 - max(0, dy) + dy)
        np.testing.assert_array_equal(after.mask[rows, :64 - dx], before.mask[shifted_rows, dx:])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("options, message", [
    ({"save": "probability"}, "save: received"),
    ({"smoothing": 1.5}, "smoothing: received 1.5"),
    ({"motion": "zoom"}, "motion: received 'zoom'"),
    ({"lookahead": -1}, "lookahead: received -1"),
    ({"lookahead": 2.5}, "lookahead: received 2.5"),
    ({"threshold": 2}, "threshold: received 2"),
    ({"mode": "fast"}, "mode: received 'fast'"),
])
def test_invalid_options_fail_before_anything_is_written(options, message, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        predict_video(grey_sky, clip, out, progress=False, **options)
    assert not out.exists() or listing(out) == []


def test_unknown_predict_option_is_named(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    with pytest.raises(TypeError, match="unknown option.*tile_sise.*tile_size"):
        predict_video(grey_sky, clip, tmp_path / "out", progress=False, tile_sise=256)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        predict_video(grey_sky, tmp_path / "nothing.mp4", tmp_path / "out", progress=False)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4.*empty \(0 bytes\)"):
        predict_video(grey_sky, tmp_path / "empty.mp4", tmp_path / "out", progress=False)


def test_a_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"notes\.mp4' cannot be read: .*corrupt, truncated, or not a video"):
        predict_video(grey_sky, path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("lookahead", [0, 4])
def test_truncated_video_with_its_index_in_front(tmp_path, lookahead):
    clip = write_clip(tmp_path / "clip.mp4", frames=24, noise=30.0)  # written with +faststart
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(VideoError, match=r"cut\.mp4' is truncated or damaged: ffmpeg decoded \d+ of the 24 frames"):
        predict_video(grey_sky, cut, out, progress=False, lookahead=lookahead)
    assert listing(out) == []  # both videos were being written (frames were smoothed and out): both removed


def test_truncated_video_without_its_index(tmp_path):
    frames = tmp_path / "frames.mp4"
    write_clip(frames, frames=12)
    plain = tmp_path / "plain.mp4"
    ffmpeg("-i", frames, "-c", "copy", "-movflags", "-faststart", plain)  # index (moov) at the end
    data = plain.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(VideoError, match=r"cut\.mp4' cannot be read: the MP4 is incomplete"):
        predict_video(grey_sky, cut, tmp_path / "out", progress=False)


def test_a_video_without_frames(tmp_path):
    audio = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", audio)
    with pytest.raises(VideoError, match=r"voice\.mp4' cannot be read: it holds no video frames"):
        predict_video(grey_sky, audio, tmp_path / "out", progress=False)


def test_an_unknown_codec(tmp_path):
    raw = tmp_path / "raw.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=1", "-c:v", "rawvideo", "-pix_fmt", "bgr24", raw)
    data = bytearray(raw.read_bytes())
    handler = data.find(b"vids") + 4
    data[handler:handler + 4] = b"ZZZZ"  # the stream's codec fourcc
    compression = data.find(b"strf") + 8 + 16
    data[compression:compression + 4] = b"ZZZZ"  # and the bitmap header's
    unknown = tmp_path / "unknown.avi"
    unknown.write_bytes(bytes(data))
    with pytest.raises(VideoError, match=r"unknown\.avi' cannot be read: its video codec is not one the bundled "
                                         r"ffmpeg can decode\. Re-encode it"):
        predict_video(grey_sky, unknown, tmp_path / "out", progress=False)


def test_missing_imageio_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # `import imageio_ffmpeg` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'skyseg-tf\[video\]'"):
        predict_video(grey_sky, clip, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_failure_mid_video_leaves_nothing_half_written(tmp_path, monkeypatch):
    import skyseg_tf.inference

    clip = write_clip(tmp_path / "clip.mp4", frames=6)
    out = tmp_path / "out"
    predict_video(left_half_sky, clip, out, progress=False)
    before = {name: (out / name).read_bytes() for name in listing(out)}
    predict_image, calls = skyseg_tf.inference.predict_image, []

    def breaks_on_frame_four(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the user presses Ctrl-C mid-video
        return predict_image(*args, **kwargs)

    monkeypatch.setattr(skyseg_tf.inference, "predict_image", breaks_on_frame_four)
    with pytest.raises(KeyboardInterrupt):
        predict_video(grey_sky, clip, out, progress=False)
    assert len(calls) == 4
    # The earlier run's outputs are untouched and no temporary file is left.
    assert {name: (out / name).read_bytes() for name in listing(out)} == before


def test_write_video_refuses_no_frames_and_leaves_no_file(tmp_path):
    with pytest.raises(VideoError, match="received no frames"):
        write_video(tmp_path / "none.mp4", [], fps=10)
    assert listing(tmp_path) == []


def test_smoother_rejects_bad_settings():
    for kwargs, message in (({"smoothing": -0.1}, "smoothing"), ({"smoothing": True}, "smoothing"),
                            ({"tolerance": 0}, "tolerance"), ({"flow_size": 4}, "flow_size")):
        with pytest.raises(ValueError, match=message):
            TemporalSmoother(**kwargs)
    with pytest.raises(ValueError, match="does not match the frame"):
        TemporalSmoother()(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), np.float32))


def test_probability_of_an_untrained_model_is_the_same_through_predict_image(tiny_model, tmp_path):
    # No smoothing: iter_video_predictions is predict_image frame by frame, options passed on.
    from skyseg_tf.inference import predict_image

    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    first = next(iter_video_predictions(tiny_model, clip, smoothing=0, mode="resize", input_size=(64, 64)))
    np.testing.assert_allclose(first.probability,
                               predict_image(tiny_model, first.image, mode="resize", input_size=(64, 64)), atol=1e-6)
    assert os.path.exists(clip)


def test_cli_predicts_a_video_beside_photos_and_keeps_its_outputs(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    import skyseg_tf
    from skyseg_tf.cli import main

    model_path = tmp_path / "tiny.keras"
    skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(model_path)
    write_clip(tmp_path / "clip.mp4", frames=4)
    Image.new("RGB", (64, 48), (90, 150, 235)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    arguments = ["predict", str(tmp_path / "clip.mp4"), str(tmp_path / "photo.png"), "--model", str(model_path),
                 "--out", str(out), "--save", "mask,overlay", "--smoothing", "0.5", "--motion", "static",
                 "--lookahead", "3"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert {"clip_mask.mp4", "clip_overlay.mp4", "photo_mask.png", "photo_overlay.jpg"} <= set(listing(out))
    assert "4 frames" in result.output and "smoothing 0.5 (static, 3 frames ahead)" in result.output
    frames, _ = read_back(out / "clip_mask.mp4")
    assert len(frames) == 4
    again = CliRunner().invoke(main, arguments)
    assert again.exit_code == 0 and "clip.mp4: its outputs already exist" in again.output
    folder = tmp_path / "footage"
    folder.mkdir()
    write_clip(folder / "walk.mp4", frames=3)
    from_folder = CliRunner().invoke(main, ["predict", str(folder), "--model", str(model_path), "--out", str(out),
                                            "--save", "mask", "--motion", "static"])
    assert from_folder.exit_code == 0, from_folder.output
    assert "walk_mask.mp4" in listing(out) and "3 frames" in from_folder.output
    (tmp_path / "empty").mkdir()
    empty = CliRunner().invoke(main, ["predict", str(tmp_path / "empty"), "--model", str(model_path), "--out", str(out)])
    assert empty.exit_code == 2 and "found no images" in empty.output
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    failed = CliRunner().invoke(main, ["predict", str(broken), "--model", str(model_path), "--out", str(out)])
    assert failed.exit_code == 1 and "FAILED" in failed.output and "broken.mp4" in failed.output
