"""Issue #21: exports are written atomically, and nothing falls back silently.

A failed SavedModel or TFLite export keeps the previous export and leaves no partial folder or
file; an export without its info file is refused on loading; a model output that is not a sky
probability (a dict without ``sky_probability``, logits taken as probabilities) is an error;
``write_video`` rounds float frames on the 0..255 scale and refuses values outside it.
"""

import pathlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from skyseg_tf import export, preprocessing  # noqa: E402
from skyseg_tf.inference import SkyPredictor, load_model, predict_image  # noqa: E402


def small_model(name="small"):
    """A two-layer sigmoid model: exports in seconds."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def snapshot(folder: pathlib.Path) -> dict:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def fail_late(monkeypatch):
    """Makes the export fail after the SavedModel is written, while its info file is made."""
    def broken():
        raise OSError("simulated failure late in the export")

    monkeypatch.setattr(export, "_version", broken)


# ----------------------------------------------------------------------------- atomic exports


def test_failed_saved_model_export_keeps_the_previous_one_and_leaves_nothing(tmp_path, monkeypatch):
    model, base = small_model(), tmp_path / "export"
    export.export_saved_model(model, base, version=1, image_size=64, threshold=0.5)
    before = snapshot(base)
    assert "1/assets.extra/skyseg.json" in before
    with monkeypatch.context() as patch:
        fail_late(patch)
        with pytest.raises(OSError, match="simulated failure"):
            export.export_saved_model(model, base, version=1, image_size=64, threshold=0.25, overwrite=True)
        with pytest.raises(OSError, match="simulated failure"):  # a new version: nothing appears
            export.export_saved_model(model, base, version=2, image_size=64)
    assert listing(base) == ["1"]  # no partial folder, no half-written version 2
    assert snapshot(base) == before  # version 1 as it was, info file included
    # Without the failure the overwrite goes through and leaves no folder aside.
    export.export_saved_model(model, base, version=1, image_size=64, threshold=0.25, overwrite=True)
    assert listing(base) == ["1"] and export.read_export_info(base / "1")["threshold"] == 0.25


def test_failed_tflite_export_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "sky.tflite"
    path.write_bytes(b"a previous export")
    write_bytes = pathlib.Path.write_bytes

    def disk_full(self, data):  # writes half the file, then fails, as a full disk does
        if "sky.tflite" in self.name:
            write_bytes(self, data[: len(data) // 2])
            raise OSError("simulated full disk")
        return write_bytes(self, data)

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "write_bytes", disk_full)
        with pytest.raises(OSError, match="simulated full disk"):
            export.export_tflite(small_model(), path, image_size=32)
    assert listing(tmp_path) == ["sky.tflite"] and path.read_bytes() == b"a previous export"
    export.export_tflite(small_model(), path, image_size=32)
    assert listing(tmp_path) == ["sky.tflite"] and path.read_bytes()[4:8] == b"TFL3"


# ----------------------------------------------------------------------------- reading exports back


def test_an_export_without_its_info_file_is_refused_not_run_at_a_default_scale(tmp_path):
    model = preprocessing.attach(small_model(), preprocessing.Preprocessing("short_side", (96, 96)))
    version_dir = export.export_saved_model(model, tmp_path / "export")
    assert preprocessing.get(load_model(version_dir)) == preprocessing.Preprocessing("short_side", (96, 96))
    (version_dir / export.INFO_FILE).unlink()
    with pytest.raises(ValueError, match=r"serving_bytes.*assets.extra/skyseg.json is missing.*export"):
        load_model(version_dir)


class ForeignModel(tf.Module):
    """A SavedModel not written by skyseg_tf: its serving_default names its output itself."""

    def __init__(self, key, offset):
        super().__init__()
        self.key, self.offset = key, offset

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def serve(self, images):
        return {self.key: images[..., :1] / 255.0 + self.offset}


def save_foreign(path, key, offset=0.0):
    module = ForeignModel(key, offset)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def test_a_foreign_saved_model_loads_without_a_scale_and_needs_a_sky_probability_output(tmp_path):
    image = np.full((32, 32, 3), 51, np.uint8)
    good = load_model(save_foreign(tmp_path / "good", "sky_probability"))
    assert preprocessing.get(good) is None  # no info file: no recorded scale, and that is fine
    np.testing.assert_allclose(predict_image(good, image, mode="resize", input_size=32), 0.2, atol=1e-6)
    other = load_model(save_foreign(tmp_path / "other", "output_0"))
    with pytest.raises(ValueError, match=r"outputs \['output_0'\], none named 'sky_probability'"):
        predict_image(other, image, mode="resize", input_size=32)


def test_logits_taken_as_probabilities_are_an_error_not_clipped(tmp_path):
    image = np.full((32, 32, 3), 200, np.uint8)
    logits = load_model(save_foreign(tmp_path / "logits", "sky_probability", offset=-3.0))
    with pytest.raises(ValueError, match=r"values in \[-2\.2.*outside \[0, 1\].*activation = 'linear'"):
        predict_image(logits, image, mode="resize", input_size=32)

    def logit_callable(images):  # a plain callable: no graph to read its activation from
        return images[..., :1] / 32.0 - 4.0

    with pytest.raises(ValueError, match="outside"):
        SkyPredictor(logit_callable)(np.full((1, 32, 32, 3), 200.0, np.float32))
    logit_callable.activation = "linear"  # declared: the sigmoid is applied
    expected = 1.0 / (1.0 + np.exp(-(200.0 / 32.0 - 4.0)))
    np.testing.assert_allclose(SkyPredictor(logit_callable)(np.full((1, 32, 32, 3), 200.0, np.float32)),
                               expected, rtol=1e-5)


# ----------------------------------------------------------------------------- video frames


def test_write_video_rounds_float_frames_on_the_0_255_scale(tmp_path):
    from skyseg_tf.video import iter_video_frames, synthetic_clip, write_video

    floats = [frame.image.astype(np.float32) * 0.9 + 0.6 for frame in synthetic_clip(3, (32, 48), seed=4)]
    write_video(tmp_path / "floats.mp4", floats, fps=10)
    write_video(tmp_path / "rounded.mp4", [np.rint(f).astype(np.uint8) for f in floats], fps=10)
    from_floats = list(iter_video_frames(tmp_path / "floats.mp4"))
    rounded = list(iter_video_frames(tmp_path / "rounded.mp4"))
    assert len(from_floats) == 3 and all(np.array_equal(a, b) for a, b in zip(from_floats, rounded))


@pytest.mark.parametrize("bad, message", [
    (np.full((16, 16, 3), 300.0, np.float32), r"frames\[1\]: received float32 values in \[300.0, 300.0\]"),
    (np.full((16, 16, 3), -2.0, np.float64), r"frames\[1\].*\[0, 255\]"),
    (np.full((16, 16, 3), np.nan, np.float32), r"frames\[1\].*nan"),
    (np.full((16, 16, 3), 256, np.int32), r"frames\[1\]: received int32 values"),
    (np.ones((16, 16), bool), r"frames\[1\]: received dtype bool.*np.where"),
])
def test_write_video_refuses_frames_off_the_0_255_scale_and_writes_nothing(tmp_path, bad, message):
    from skyseg_tf.video import write_video

    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "clip.mp4", [np.zeros(bad.shape, np.uint8), bad], fps=10)
    assert listing(tmp_path) == []
