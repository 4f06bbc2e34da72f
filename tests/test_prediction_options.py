"""predict_image and predict_paths options: one compiled predictor per model, bad options refused
before any file is read, refinement options passed through."""

import numpy as np
import pytest
from PIL import Image

import skyseg_tf
from skyseg_tf.inference import as_predictor, predict_image, predict_paths


@pytest.fixture(scope="module")
def model():
    return skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, decoder_filters=(16, 16, 8, 8, 8))


def test_predict_image_in_a_loop_reuses_one_compiled_predictor(model):
    images = [np.random.default_rng(i).integers(0, 256, (60, 80, 3), dtype=np.uint8) for i in range(5)]
    for image in images:
        predict_image(model, image, input_size=(64, 96))
    predictor = as_predictor(model)
    assert predictor is as_predictor(model)
    assert predictor._function.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("option, value", [("tile_size", 0), ("overlap", -1), ("batch_size", 0),
                                           ("input_size", (0, 4)), ("refine", "bilateral"),
                                           ("refine_radius", 0), ("refine_eps", -1.0)])
def test_predict_paths_rejects_a_bad_option_once_before_reading_any_file(model, tmp_path, option, value):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30)).save(photos / name)
    with pytest.raises(ValueError, match=option):
        predict_paths(model, photos, tmp_path / "out", progress=False, **{option: value})
    assert not (tmp_path / "out").exists()


def test_predict_paths_passes_the_refinement_options(model, tmp_path, monkeypatch):
    import skyseg_tf.inference.predict as inference

    seen = []
    original = inference.refine_probability

    def spy(image, probability, radius, eps):
        seen.append((radius, eps))
        return original(image, probability, radius, eps)

    monkeypatch.setattr(inference, "refine_probability", spy)
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    predict_paths(model, tmp_path / "a.png", tmp_path / "out", progress=False, refine="guided",
                  refine_radius=5, refine_eps=1e-3, input_size=(32, 32))
    assert seen == [(5, 1e-3)]
