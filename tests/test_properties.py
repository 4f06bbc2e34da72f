"""Property-based tests (hypothesis): the image and mask readers and predict_image over
arbitrary sizes, dtypes and channel counts."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import skyseg_tf
from skyseg_tf import preprocessing
from skyseg_tf.data.folder import read_image, read_mask
from skyseg_tf.inference import predict_image

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
sizes = st.tuples(st.integers(1, 48), st.integers(1, 48))


@SETTINGS
@given(size=sizes, mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16"]), seed=st.integers(0, 2**16))
def test_read_image_gives_rgb_uint8_of_the_file_size(tmp_path, size, mode, seed):
    height, width = size
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        values = rng.integers(0, 65536, (height, width), dtype=np.uint16)
        image = Image.fromarray(values)
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "P": 1}[mode]
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, "L" if channels == 1 else mode)
        if mode == "P":
            image = image.convert("P")
    path = tmp_path / f"image_{seed}.png"
    image.save(path)
    array = read_image(path)
    assert array.shape == (height, width, 3) and array.dtype == np.uint8
    if mode == "RGB":
        np.testing.assert_array_equal(array, np.asarray(image))
    if mode == "L":
        np.testing.assert_array_equal(array, np.repeat(np.asarray(image)[..., None], 3, axis=-1))
    if mode == "I;16":  # 16-bit grey scaled to 8 bits
        np.testing.assert_array_equal(array[..., 0], np.round(values / 257.0).astype(np.uint8))


@SETTINGS
@given(size=sizes, high=st.sampled_from([1, 255]), mode=st.sampled_from(["L", "P", "1", "RGB"]),
       seed=st.integers(0, 2**16))
def test_read_mask_reads_binary_masks_of_any_form(tmp_path, size, high, mode, seed):
    height, width = size
    truth = np.random.default_rng(seed).random((height, width)) > 0.5
    if mode == "1":
        image = Image.fromarray(truth)
    else:
        image = Image.fromarray((truth * high).astype(np.uint8), "L")
        if mode != "L":
            image = image.convert(mode)
    path = tmp_path / f"mask_{seed}.png"
    image.save(path)
    mask = read_mask(path)
    assert mask.shape == (height, width, 1) and mask.dtype == np.uint8
    if truth.any() or mode == "1":
        np.testing.assert_array_equal(mask[..., 0].astype(bool), truth)


@pytest.fixture(scope="module")
def tiny_models():
    model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8))
    short_side = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
                                       decoder_filters=(8, 8, 8, 8, 8))
    preprocessing.attach(short_side, preprocessing.Preprocessing("short_side", (64, 64)))
    return model, short_side


@SETTINGS
@given(height=st.integers(1, 300), width=st.integers(1, 300),
       kind=st.sampled_from(["uint8", "float32", "float64", "gray", "rgba", "one_channel"]),
       with_scale=st.booleans(), seed=st.integers(0, 2**16))
def test_predict_image_returns_probabilities_of_the_image_size(tiny_models, height, width, kind, with_scale, seed):
    rng = np.random.default_rng(seed)
    if kind == "gray":
        image = rng.integers(0, 256, (height, width), dtype=np.uint8)
    elif kind == "rgba":
        image = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    elif kind == "one_channel":
        image = rng.integers(0, 256, (height, width, 1), dtype=np.uint8)
    elif kind == "uint8":
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        image = rng.uniform(0, 255, (height, width, 3)).astype(kind)
    model = tiny_models[1] if with_scale else tiny_models[0]
    probability = predict_image(model, image, input_size=None if with_scale else (64, 64))
    assert probability.shape == (height, width) and probability.dtype == np.float32
    assert np.isfinite(probability).all() and probability.min() >= 0.0 and probability.max() <= 1.0


@given(height=st.integers(1, 20000), width=st.integers(1, 20000), short=st.sampled_from([64, 256, 320]))
def test_short_side_working_size_is_bounded_and_keeps_the_aspect(height, width, short):
    size = preprocessing.Preprocessing("short_side", (short, short)).working_size((height, width))
    assert max(size) <= preprocessing.MAX_WORKING_SIDE and min(size) >= 1
    assert min(size) == short or max(size) >= preprocessing.MAX_WORKING_SIDE - 1
    if min(size) >= 16:
        assert abs(size[0] / size[1] - height / width) <= 0.1 * height / width
