"""Training for upward fisheye photos: the fisheye view of a source, the recorded view, and
predict_image's image-circle handling."""

import numpy as np
import pytest

from skyseg_tf.data.lens_view import fisheye_view
from skyseg_tf.hemisphere.lens import ImageCircle, circle_mask
from skyseg_tf.preprocessing import Preprocessing


def _sky_top(size=96):
    image = np.zeros((size, size, 3), np.uint8)
    image[: size // 2] = (90, 150, 230)
    image[size // 2:] = (60, 60, 40)
    mask = np.zeros((size, size, 1), np.uint8)
    mask[: size // 2] = 1
    return image, mask


def test_fisheye_view_keeps_labels_with_their_pixels_and_blanks_the_surround():
    image, mask = _sky_top()
    seen_rotations = set()
    for seed in range(20):
        warped, labels = fisheye_view(image, mask, np.random.default_rng(seed))
        assert warped.shape == image.shape and labels.shape == mask.shape
        assert set(np.unique(labels)) <= {0, 1}
        sky = labels[..., 0] == 1
        # Labels move with their pixels: sky pixels are blue, the rest are not (the image is
        # interpolated and the mask is not, so the edge may differ by a pixel).
        assert sky.any()
        assert np.mean(warped[sky][:, 2] > 200) > 0.97
        assert np.mean(warped[~sky][:, 2] < 60) > 0.97
        # Where the sky lands tells the rotation: the centroid direction varies between seeds.
        rows, cols = np.nonzero(sky)
        seen_rotations.add(int(np.degrees(np.arctan2(rows.mean() - 48, cols.mean() - 48)) // 45))
    assert len(seen_rotations) >= 4


def test_fisheye_view_corners_are_not_sky_when_the_circle_is_inside_the_frame():
    image = np.full((64, 64, 3), 220, np.uint8)
    mask = np.ones((64, 64, 1), np.uint8)
    corners = [fisheye_view(image, mask, np.random.default_rng(seed))[1][0, 0, 0] for seed in range(30)]
    # Most circles sit inside the frame (a corner outside: 0); full-frame ones may reach a corner.
    assert sum(value == 0 for value in corners) >= 18


def test_fisheye_view_keeps_void_labels():
    image, mask = _sky_top(64)
    mask[40:, :] = 2
    _, labels = fisheye_view(image, mask, np.random.default_rng(3))
    assert 2 in np.unique(labels)


def test_fisheye_view_rejects_bad_shapes():
    with pytest.raises(ValueError, match="image"):
        fisheye_view(np.zeros((8, 8), np.uint8), np.zeros((8, 8, 1), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask"):
        fisheye_view(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 1), np.uint8), np.random.default_rng(0))


def test_make_dataset_fisheye_view_per_source_and_deterministic_validation():
    from skyseg_tf.data import make_dataset

    spec = {"type": "mix", "sources": [
        {"type": "synthetic", "num_examples": 10, "view": "fisheye", "name": "warped"},
        {"type": "synthetic", "num_examples": 10, "seed": 1, "name": "plain"}]}
    images, masks = next(iter(make_dataset(spec, "train", (64, 64), 8, seed=0)))
    assert images.shape == (8, 64, 64, 3)
    first = next(iter(make_dataset("synthetic", "validation", (64, 64), 2, num_examples=10, view="fisheye")))[1]
    again = next(iter(make_dataset("synthetic", "validation", (64, 64), 2, num_examples=10, view="fisheye")))[1]
    plain = next(iter(make_dataset("synthetic", "validation", (64, 64), 2, num_examples=10)))[1]
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), plain.numpy())
    assert float(np.asarray(first)[:, 0, 0].max()) == 0.0 or float(np.asarray(first)[:, -1, -1].max()) == 0.0


def test_bad_view_names_the_argument():
    from skyseg_tf.data import make_dataset

    with pytest.raises(ValueError, match="view"):
        make_dataset("synthetic", "train", (64, 64), 2, num_examples=5, view="fish")
    with pytest.raises(ValueError, match="view"):
        make_dataset({"type": "mix", "sources": [{"type": "synthetic", "view": "upside"}]}, "train", (64, 64), 2)


def test_preprocessing_records_the_view_and_reads_old_records():
    record = Preprocessing("short_side", (256, 256), "fisheye").to_dict()
    assert record["view"] == "fisheye"
    assert Preprocessing.from_dict(record).view == "fisheye"
    assert Preprocessing.from_dict({"resize_mode": "resize", "image_size": [64, 64]}).view == "photo"
    with pytest.raises(ValueError, match="view"):
        Preprocessing("resize", (64, 64), "panorama")


def test_train_config_checks_view():
    from skyseg_tf.training import TrainConfig
    from skyseg_tf.training.config import ConfigError

    assert TrainConfig(view="fisheye").validate().view == "fisheye"
    with pytest.raises(ConfigError, match="view"):
        TrainConfig(view="wide").validate()


def _bright_everywhere(batch):
    return np.ones(np.shape(batch)[:-1] + (1,), np.float32)


def test_predict_image_zeroes_everything_outside_a_given_circle():
    from skyseg_tf.inference import predict_image
    from skyseg_tf.inference.predictor import as_predictor

    photo = np.full((60, 80, 3), 128, np.uint8)
    circle = ImageCircle(40, 30, 25)
    probability = predict_image(as_predictor(_bright_everywhere), photo, circle=circle)
    inside = circle_mask(photo.shape, circle)
    assert probability.shape == (60, 80)
    assert np.all(probability[~inside] == 0) and np.all(probability[inside] == 1)
    same = predict_image(as_predictor(_bright_everywhere), photo, circle=(40, 30, 25))
    np.testing.assert_array_equal(probability, same)
    assert np.all(predict_image(as_predictor(_bright_everywhere), photo) == 1)  # a photo model: no circle


def test_predict_image_circle_with_output_size_scales_the_circle():
    from skyseg_tf.inference import predict_image
    from skyseg_tf.inference.predictor import as_predictor

    photo = np.full((50, 50, 3), 128, np.uint8)
    probability = predict_image(as_predictor(_bright_everywhere), photo, circle=(25, 25, 25),
                                output_size=(100, 100))
    assert probability.shape == (100, 100)
    expected = circle_mask((100, 100), ImageCircle(50, 50, 50))
    assert (probability > 0.5).sum() == pytest.approx(expected.sum(), rel=0.02)
    assert probability[0, 0] == 0 and probability[50, 50] == 1


def test_predict_image_rejects_a_circle_off_the_image():
    from skyseg_tf.inference import predict_image
    from skyseg_tf.inference.predictor import as_predictor

    with pytest.raises(ValueError, match="circle"):
        predict_image(as_predictor(_bright_everywhere), np.zeros((40, 40, 3), np.uint8), circle=(500, 500, 10))
    with pytest.raises(ValueError, match="circle"):
        predict_image(as_predictor(_bright_everywhere), np.zeros((40, 40, 3), np.uint8), circle="find")


def test_a_saved_model_export_keeps_the_fisheye_view(tiny_model, tmp_path):
    """`skyseg predict --model export/1` finds the image circle again for an exported fisheye model."""
    from skyseg_tf import preprocessing
    from skyseg_tf.export import export_saved_model
    from skyseg_tf.inference import load_model

    preprocessing.attach(tiny_model, Preprocessing("short_side", (64, 64), "fisheye"))
    try:
        folder = export_saved_model(tiny_model, tmp_path / "export")
        assert preprocessing.get(load_model(str(folder))).view == "fisheye"
    finally:
        preprocessing.attach(tiny_model, None)
