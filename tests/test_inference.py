"""Full-resolution prediction: sizes, tiling, padding, guided filter, files and folders, examples."""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from PIL import Image  # noqa: E402

from skyseg_tf import inference  # noqa: E402
from skyseg_tf.inference import (  # noqa: E402
    SkyPredictor,
    guided_filter,
    load_model,
    pad_to_multiple,
    predict_image,
    predict_paths,
    resolve_mode,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def red_channel_model():
    """Pointwise stub: the sky probability of a pixel is its red value / 255."""
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1] / 255.0)(inputs), name="red")


class ShapeRecorder:
    """A callable model that records the batch shapes it is traced with."""

    def __init__(self):
        self.shapes = []

    def __call__(self, images):
        self.shapes.append(tuple(images.shape))
        return images[..., :1] / 255.0


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- predict_image


@pytest.mark.parametrize("shape", [(100, 150), (37, 61), (150, 40)])
def test_tiling_and_padding_reproduce_a_pointwise_model_exactly(shape):
    image = random_image(*shape)
    expected = image[..., 0] / 255.0
    for kwargs in ({"tile_size": 64, "overlap": 16, "batch_size": 3},
                   {"tile_size": 64, "overlap": 0, "batch_size": 1},
                   {"tile_size": 256}):  # one padded native pass
        probability = predict_image(red_channel_model(), image, mode="tile", **kwargs)
        assert probability.shape == shape and probability.dtype == np.float32
        np.testing.assert_allclose(probability, expected, atol=1e-6)


def test_tiles_are_predicted_in_batches_of_at_most_batch_size():
    recorder = ShapeRecorder()
    predict_image(recorder, random_image(200, 300), mode="tile", tile_size=64, overlap=16, batch_size=3)
    assert recorder.shapes and all(s[0] <= 3 and s[1:] == (64, 64, 3) for s in recorder.shapes)


def test_resize_mode_keeps_the_original_size(tiny_model):
    image = random_image(3000, 2000)
    probability = predict_image(tiny_model, image, input_size=(64, 64), mode="resize")
    assert probability.shape == (3000, 2000)
    assert 0.0 <= probability.min() <= probability.max() <= 1.0
    # A constant image gives a constant probability after the round trip through 64x64.
    flat = predict_image(red_channel_model(), np.full((301, 199, 3), 200, np.uint8), input_size=(64, 64),
                         mode="resize")
    np.testing.assert_allclose(flat, 200 / 255, atol=1e-6)


def test_input_size_not_divisible_by_the_stride_is_padded(tiny_model):
    probability = predict_image(tiny_model, random_image(50, 70), input_size=(50, 70), mode="resize")
    assert probability.shape == (50, 70)
    # With the image already at the input size, resize mode equals a padded native pass.
    native = predict_image(tiny_model, random_image(50, 70), mode="tile", tile_size=128)
    np.testing.assert_allclose(probability, native, atol=1e-5)


def test_auto_rule():
    predictor = SkyPredictor(red_channel_model())
    assert resolve_mode("auto", (512, 300), predictor) == "tile"
    assert resolve_mode("auto", (513, 300), predictor) == "resize"
    assert resolve_mode("auto", (3000, 4000), predictor, tile_size=4096) == "tile"
    fixed = keras.Model(*(lambda i: (i, keras.layers.Lambda(lambda x: x[..., :1])(i)))(keras.Input((64, 64, 3))))
    assert resolve_mode("auto", (32, 32), SkyPredictor(fixed)) == "resize"


def test_predict_image_errors_name_the_argument(tiny_model):
    image = random_image(40, 40)
    with pytest.raises(ValueError, match="mode"):
        predict_image(tiny_model, image, mode="fast")
    with pytest.raises(ValueError, match=r"tile_size.*divisible by 32.*tile_size=96"):
        predict_image(tiny_model, random_image(300, 300), mode="tile", tile_size=100)
    with pytest.raises(ValueError, match="overlap"):
        predict_image(tiny_model, image, mode="tile", tile_size=64, overlap=64)
    with pytest.raises(ValueError, match="refine"):
        predict_image(tiny_model, image, refine="crf")
    with pytest.raises(ValueError, match=r"image: expected an RGB array"):
        predict_image(tiny_model, np.zeros((4, 4, 5), np.uint8))


def test_two_channel_softmax_output_is_reduced_to_sky():
    inputs = keras.Input((None, None, 3))
    sky = keras.layers.Lambda(lambda x: x[..., :1] / 255.0)(inputs)
    both = keras.layers.Lambda(lambda s: keras.ops.concatenate([1.0 - s, s], axis=-1))(sky)
    image = random_image(33, 47)
    probability = predict_image(keras.Model(inputs, both), image, mode="tile")
    np.testing.assert_allclose(probability, image[..., 0] / 255.0, atol=1e-6)


def test_pad_to_multiple_mirrors_any_amount():
    x = np.arange(3, dtype=np.float32).reshape(1, 3, 1, 1)
    padded = pad_to_multiple(x, 8).numpy()[0, :, 0, 0]
    assert padded.tolist() == [0, 1, 2, 2, 1, 0, 0, 1]  # longer than the image: mirrored again
    assert pad_to_multiple(np.zeros((2, 64, 32, 3)), 32).shape == (2, 64, 32, 3)


# ----------------------------------------------------------------------------- guided filter


def brute_force_guided_filter(guide, source, radius, eps):
    """He et al.'s guided filter with explicit windows (symmetric borders, as cv2 BORDER_REFLECT)."""
    def box(x):
        padded = np.pad(x, radius, mode="symmetric")
        out = np.zeros_like(x, dtype=np.float64)
        size = 2 * radius + 1
        for dy in range(size):
            for dx in range(size):
                out += padded[dy:dy + x.shape[0], dx:dx + x.shape[1]]
        return out / size**2

    guide, source = guide.astype(np.float64), source.astype(np.float64)
    mean_i, mean_p = box(guide), box(source)
    a = (box(guide * source) - mean_i * mean_p) / (box(guide * guide) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def test_guided_filter_matches_the_definition():
    rng = np.random.default_rng(1)
    guide = rng.uniform(0, 1, (23, 31)).astype(np.float32)
    source = rng.uniform(0, 1, (23, 31)).astype(np.float32)
    for radius, eps in ((1, 1e-2), (3, 1e-4)):
        np.testing.assert_allclose(guided_filter(guide, source, radius, eps),
                                   brute_force_guided_filter(guide, source, radius, eps), atol=2e-5)


def test_guided_refinement_moves_a_blurred_edge_onto_the_image_edge():
    # True sky: rows 0-42 of 96; the image has a sharp edge there. The probability is that edge
    # downsampled 8x and upsampled bilinearly (blurred, and shifted off the block boundary).
    image = np.zeros((96, 64, 3), np.uint8)
    image[:43] = (90, 150, 235)
    image[43:] = (60, 50, 40)
    truth = np.zeros((96, 64), np.float32)
    truth[:43] = 1.0
    import cv2

    low = cv2.resize(truth, (8, 12), interpolation=cv2.INTER_AREA)
    up = inference.resize_probabilities(low[None, ..., None], (96, 64)).numpy()[0, ..., 0]
    refined = inference.refine_probability(image, up, radius=16)
    assert np.abs((up >= 0.5) - truth).sum() == 64  # one row of 64 pixels on the wrong side
    assert np.abs((refined >= 0.5) - truth).sum() == 0
    # The refined map jumps at the image's edge (rows 42 -> 43); the bilinear one ramps.
    assert refined[42, 0] - refined[43, 0] > 0.5 > up[42, 0] - up[43, 0]
    # Through predict_image: refine only changes the map at the edge, and keeps it in [0, 1].
    plain = predict_image(red_channel_model(), image, input_size=(32, 32), mode="resize")
    sharp = predict_image(red_channel_model(), image, input_size=(32, 32), mode="resize", refine="guided")
    assert sharp.shape == plain.shape and 0.0 <= sharp.min() and sharp.max() <= 1.0
    # Sharper at the image's edge (rows 42 -> 43), the same away from it.
    assert (sharp[42] - sharp[43]).mean() > 1.5 * (plain[42] - plain[43]).mean() > 0
    np.testing.assert_allclose(sharp[:30], plain[:30], atol=0.02)
    np.testing.assert_allclose(sharp[60:], plain[60:], atol=0.02)


# ----------------------------------------------------------------------------- files and folders


def write_photo(path, size=(60, 80), orientation=None, color=(200, 100, 50)):
    image = Image.new("RGB", (size[1], size[0]), color)
    if orientation is None:
        image.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(path, exif=exif)


def test_predict_paths_writes_outputs_reports_failures_and_continues(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "plain.png", color=(255, 10, 10))
    write_photo(photos / "rotated.jpg", size=(40, 90), orientation=6)  # shown as 90 x 40
    (photos / "broken.jpg").write_bytes(b"not a jpeg at all")
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    summary = predict_paths(red_channel_model(), photos, out, probability_bits=16, progress=False)

    assert sorted(p.name for p in summary.succeeded) == ["plain.png", "rotated.jpg"]
    assert [p.name for p, _ in summary.failed] == ["broken.jpg"]
    assert "broken.jpg" in str(summary) and not summary.ok
    assert [p.name for p in summary.skipped] == ["notes.txt"]
    assert len(summary.written) == 6
    mask = np.asarray(Image.open(out / "plain_mask.png"))
    assert mask.shape == (60, 80) and set(np.unique(mask)) == {255}  # red 255 -> sky everywhere
    probability = np.asarray(Image.open(out / "plain_probability.png"))
    assert probability.dtype == np.uint16 and int(probability.max()) == 65535
    assert Image.open(out / "rotated_mask.png").size == (40, 90)  # (width, height) after EXIF rotation
    assert (out / "rotated_overlay.jpg").exists()


def test_predict_paths_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        predict_paths(red_channel_model(), tmp_path / "missing.jpg", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found no images"):
        predict_paths(red_channel_model(), tmp_path / "empty", tmp_path / "out", progress=False)
    write_photo(tmp_path / "a.png")
    with pytest.raises(ValueError, match="save"):
        predict_paths(red_channel_model(), tmp_path / "a.png", tmp_path / "out", save=("jpeg",))


def test_load_model_keras_file_and_errors(tmp_path, tiny_model):
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    loaded = load_model(path)
    image = random_image(64, 64)
    np.testing.assert_allclose(predict_image(loaded, image, mode="tile"),
                               predict_image(tiny_model, image, mode="tile"), atol=1e-5)
    assert inference.model_stride(loaded) == 32
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="saved_model.pb"):
        load_model(tmp_path / "folder")


def test_training_and_prediction_resize_a_photo_to_the_same_pixels():
    """One resize for training and serving: the model sees in prediction what it saw in training."""
    from skyseg_tf.data.pipeline import make_dataset
    from skyseg_tf.data.spec import IMAGE_KEY, MASK_KEY

    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (123, 77, 3), dtype=np.uint8)
    source = tf.data.Dataset.from_tensors({IMAGE_KEY: photo, MASK_KEY: np.zeros((123, 77, 1), np.uint8)})
    trained_on, _ = next(iter(make_dataset(source, "validation", image_size=(64, 96), global_batch_size=1,
                                           augment=False)))
    seen = []

    def record(images):
        seen.append(images.copy())
        return images[..., :1] / 255.0

    def recorder(images):  # traced by the predictor's tf.function; records the concrete batch
        out = tf.numpy_function(record, [images], tf.float32, stateful=True)
        return tf.ensure_shape(out, [*images.shape[:-1], 1])

    predict_image(recorder, photo, input_size=(64, 96), mode="resize")
    assert seen, "the model was not called"
    np.testing.assert_array_equal(np.asarray(trained_on, np.float32)[0], seen[-1][0, :64, :96])


@pytest.mark.parametrize("shape", [(48, 40, 3), (300, 500, 3)])
def test_probabilities_go_back_to_the_photo_size_as_tensorflow_resizes_them(shape):
    """OpenCV upsamples (fast), TensorFlow shrinks (antialiased): both agree with tf.image.resize."""
    from skyseg_tf.image_ops import resize_probabilities

    photo = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    model = red_channel_model()
    got = predict_image(model, photo, input_size=(96, 128), mode="resize")
    low = inference.resize_images(photo[None].astype(np.float32), (96, 128))[..., :1] / 255.0
    want = resize_probabilities(low, shape[:2]).numpy()[0, ..., 0]
    np.testing.assert_allclose(got, want, atol=1e-4)
