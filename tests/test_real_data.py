"""Real datasets as they come: colour-coded label maps, file-list splits, separate validation
folders, weighted mixes of sources, short-side scale jitter and photo augmentation."""

import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from skyseg_tf.data import make_dataset, tf_augment
from skyseg_tf.data.folder import check_sky_color, folder_dataset, read_mask

SKY = (0, 128, 128)
LABELMEFACADE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "labelmefacade"


def _write_rgba16(path, rgb16):
    """A 16-bit RGBA PNG (what LabelMeFacade ships), written with OpenCV (BGRA order)."""
    import cv2

    alpha = np.full(rgb16.shape[:2] + (1,), 65535, np.uint16)
    bgra = np.concatenate([rgb16[..., ::-1], alpha], axis=-1)
    assert cv2.imwrite(str(path), bgra)


def _colour_folder(root, count=4, size=(24, 32), sixteen_bit=False):
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    truths = {}
    for i in range(count):
        label = np.zeros(size + (3,), np.uint8)
        label[:] = (128, 0, 0)  # building
        sky_rows = 4 + i * 2
        label[:sky_rows] = SKY
        label[-3:] = (128, 64, 0)  # road
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(images / f"p{i}.jpg")
        if sixteen_bit:
            # The low bytes are noise: only the high byte names the class.
            rgb16 = label.astype(np.uint16) * 256 + rng.integers(0, 256, label.shape).astype(np.uint16)
            _write_rgba16(labels / f"p{i}.png", rgb16)
        else:
            Image.fromarray(label).convert("RGBA").save(labels / f"p{i}.png")
        truths[f"p{i}.jpg"] = (np.arange(size[0]) < sky_rows)[:, None] * np.ones(size[1], bool)
    return images, labels, truths


@pytest.mark.parametrize("sixteen_bit", [False, True])
def test_read_mask_with_sky_color(tmp_path, sixteen_bit):
    _, labels, truths = _colour_folder(tmp_path, sixteen_bit=sixteen_bit)
    for i in range(4):
        mask = read_mask(labels / f"p{i}.png", sky_color=SKY)[..., 0]
        np.testing.assert_array_equal(mask.astype(bool), truths[f"p{i}.jpg"])


def test_sky_color_list_and_forms(tmp_path):
    _, labels, truths = _colour_folder(tmp_path)
    both = read_mask(labels / "p0.png", sky_color=[SKY, (128, 64, 0)])[..., 0].astype(bool)
    road = np.zeros_like(both)
    road[-3:] = True
    np.testing.assert_array_equal(both, truths["p0.jpg"] | road)
    assert check_sky_color("0,128,128").tolist() == [[0, 128, 128]]
    assert check_sky_color("0:128:128").tolist() == [[0, 128, 128]]
    with pytest.raises(ValueError, match="sky_color"):
        check_sky_color((0, 128))
    with pytest.raises(ValueError, match="sky_color"):
        check_sky_color((0, 300, 1))


def test_folder_dataset_sky_color(tmp_path):
    images, labels, truths = _colour_folder(tmp_path, sixteen_bit=True)
    dataset = folder_dataset(images, labels, sky_color=SKY)
    for element in dataset:
        name = element["file_name"].numpy().decode()
        np.testing.assert_array_equal(element["segmentation_mask"].numpy()[..., 0].astype(bool), truths[name])


def test_wrong_sky_color_names_the_colours_found(tmp_path):
    images, labels, _ = _colour_folder(tmp_path)
    with pytest.raises(ValueError) as error:
        folder_dataset(images, labels, sky_color=(0, 0, 255))
    message = str(error.value)
    assert "(0, 0, 255)" in message and "(0, 128, 128)" in message and "(128, 0, 0)" in message
    assert str(labels) in message


def test_sky_color_rejects_jpeg_masks_and_sky_value_together(tmp_path):
    images, labels, _ = _colour_folder(tmp_path, count=2)
    for i in range(2):
        Image.open(labels / f"p{i}.png").convert("RGB").save(labels / f"p{i}.jpg")
        (labels / f"p{i}.png").unlink()
    with pytest.raises(ValueError, match="JPEG"):
        folder_dataset(images, labels, sky_color=SKY)
    with pytest.raises(ValueError, match="not both"):
        folder_dataset(images, labels, sky_color=SKY, sky_value=3)


def test_file_list_split(tmp_path):
    images, labels, _ = _colour_folder(tmp_path)
    split = tmp_path / "train.txt"
    split.write_text("# the training part\np0.jpg\n\np2\n")
    names = [e["file_name"].numpy().decode() for e in folder_dataset(images, labels, sky_color=SKY, file_list=split)]
    assert names == ["p0.jpg", "p2.jpg"]
    split.write_text("p0.jpg\nmissing.jpg\n")
    with pytest.raises(ValueError, match="missing.jpg"):
        folder_dataset(images, labels, sky_color=SKY, file_list=split)


@pytest.mark.skipif(not LABELMEFACADE.is_dir(), reason="needs ../shared/data/labelmefacade")
def test_labelmefacade_labels_match_its_derived_masks():
    """The colour-coded 16-bit labels read with sky_color give the dataset's own binary masks."""
    names = sorted(os.listdir(LABELMEFACADE / "labels"))[::97][:10]
    for name in names:
        from_labels = read_mask(LABELMEFACADE / "labels" / name, sky_color=SKY)
        derived = read_mask(LABELMEFACADE / "masks" / name)
        np.testing.assert_array_equal(from_labels, derived)


def _names(batch_names):
    return [n.decode() for n in np.asarray(batch_names).ravel()]


def test_mix_draws_with_weights_and_validates_on_chosen_sources(tmp_path):
    images, labels, _ = _colour_folder(tmp_path, count=10)
    source = {"type": "mix", "sources": [
        {"type": "folder", "images": str(images), "masks": str(labels), "sky_color": list(SKY), "split": None},
        {"type": "synthetic", "num_examples": 20, "image_size": [32, 48], "validate": False},
    ], "weights": [0.7, 0.3]}
    train = make_dataset(source, "train", (32, 32), 50, seed=0, with_file_names=True, augment=False,
                         resize_mode="short_side")
    names = _names(next(iter(train))[2])
    synthetic = sum(n.startswith("synthetic") for n in names)
    assert 5 <= synthetic <= 25, synthetic  # about 30% of 50
    validation = make_dataset(source, "validation", (32, 32), 4, with_file_names=True, resize_mode="short_side")
    names = [n for batch in validation for n in _names(batch[2])]
    assert names and not any(n.startswith("synthetic") for n in names)
    with pytest.raises(ValueError, match="weights"):
        make_dataset({**source, "weights": [1.0]}, "train", 32, 4)


def test_short_side_training_crops_keep_the_aspect_and_jitter_the_scale(tmp_path):
    """A 40x80 image whose top 10 rows are sky: crops of 32x32 from a shorter side of 32..64."""
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = np.zeros((40, 80, 3), np.uint8)
    mask = np.zeros((40, 80), np.uint8)
    mask[:10] = 255
    image[:10] = (90, 150, 235)
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(mask).save(root / "masks" / "a.png")
    source = {"type": "folder", "images": str(root / "images"), "masks": str(root / "masks"), "split": None}
    fractions = []
    dataset = make_dataset(source, "train", (32, 32), 1, augment=False, resize_mode="short_side",
                           scale_range=(1.0, 2.0), repeat=True, seed=3)
    for images, masks in dataset.take(40):
        assert images.shape == (1, 32, 32, 3)
        m = masks.numpy()[0, ..., 0]
        # sky never below ground: rows are sky only from the top
        rows = m.mean(axis=1)
        assert np.all(np.diff(rows) <= 0)
        fractions.append(m.mean())
    assert min(fractions) < max(fractions)  # the scale (and the window) vary
    evaluation = make_dataset(source, "validation", (32, 32), 1, resize_mode="short_side")
    (images, masks), = list(evaluation)
    # shorter side 40 -> 32: 32x64, centre window 32x32; sky is the top quarter
    np.testing.assert_allclose(masks.numpy()[0, :, :, 0].mean(axis=1)[:7], 1.0)
    np.testing.assert_allclose(masks.numpy()[0, :, :, 0].mean(axis=1)[9:], 0.0)


def test_photo_augmentation_changes_pixels_not_masks():
    augment = tf_augment("photo", flip_prob=0.0, jpeg_prob=1.0, blur_prob=1.0, color_prob=1.0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    masks = (rng.random((4, 32, 32, 1)) > 0.5).astype(np.float32)
    out_images, out_masks = augment(images, masks, seed=[1, 2])
    again, _ = augment(images, masks, seed=[1, 2])
    np.testing.assert_array_equal(out_masks.numpy(), masks)
    np.testing.assert_array_equal(out_images.numpy(), again.numpy())  # seeded
    assert out_images.numpy().min() >= 0 and out_images.numpy().max() <= 255
    assert np.abs(out_images.numpy() - images).mean() > 5.0


def test_blur_smooths_and_jpeg_compresses():
    from skyseg_tf.data.augment import TFAugment

    checker = (np.indices((32, 32)).sum(axis=0) % 2 * 255.0).astype(np.float32)
    images = np.repeat(checker[None, ..., None], 3, axis=-1)
    masks = np.zeros((1, 32, 32, 1), np.float32)
    plain = dict(flip_prob=0.0, scale_range=(1.0, 1.0), color_prob=0.0, noise_prob=0.0)
    blurred, _ = TFAugment(**plain, blur_prob=1.0, blur_sigma=2.0)(images, masks, seed=[0, 5])
    assert blurred.numpy().std() < 0.95 * images.std()  # a random share of a sigma-2 blur
    jpeg, _ = TFAugment(**plain, jpeg_prob=1.0, jpeg_quality=(10, 10))(images, masks, seed=[0, 5])
    assert 1.0 < np.abs(jpeg.numpy() - images).mean()
    with pytest.raises(ValueError, match="jpeg_quality"):
        TFAugment(jpeg_quality=(0, 50))


@pytest.mark.skipif(not LABELMEFACADE.is_dir(), reason="needs ../shared/data/labelmefacade")
def test_the_ade20k_recipe_is_the_shipped_one_plus_ade20k_and_reads_its_sources(monkeypatch):
    """configs/sky_real_lite0_ade20k.yaml (not run here: no ADE20K) trains as far as its first batches.

    ADE20K-Outdoors is TFDS's mock data here; LabelMeFacade and the synthetic scenes are real.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from skyseg_tf.training import TrainConfig
    from skyseg_tf.training.train import _datasets

    root = pathlib.Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # the config's folder paths are relative to the repository
    config = TrainConfig.from_file(root / "configs" / "sky_real_lite0_ade20k.yaml").to_dict()
    shipped = TrainConfig.from_file(root / "configs" / "sky_real_lite0.yaml").to_dict()
    differ = {key for key in config if config[key] != shipped[key]}
    assert differ == {"data_kwargs", "steps_per_epoch", "run_dir"}
    sources = config["data_kwargs"]["sources"]
    assert [s["type"] for s in sources] == ["tfds", "folder", "synthetic"]
    assert sources[1:] == [{**s, "weight": w} for s, w in zip(shipped["data_kwargs"]["sources"], (0.35, 0.15))]
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        train, validation, per_source = _datasets(TrainConfig.from_dict(config), tf.distribute.get_strategy())
        images, masks = next(iter(train))
        # One validated source (LabelMeFacade): Keras validates on it, no per-source figures.
        assert per_source is None
        val_images, _ = next(iter(validation))
    assert images.shape == (16, 256, 256, 3) and masks.shape == (16, 256, 256, 1)
    # TFDS mock masks hold random values (2 = void); the real sources only 0 and 1.
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0, 2.0} and val_images.shape[-1] == 3


MSRC = LABELMEFACADE.parent / "msrc_v2"
INTERIORS = LABELMEFACADE.parent / "houses_indoor"


@pytest.mark.skipif(not (LABELMEFACADE.is_dir() and MSRC.is_dir() and INTERIORS.is_dir()),
                    reason="needs ../shared/data/{labelmefacade,msrc_v2,houses_indoor}")
def test_the_shipped_recipe_reads_its_four_sources_and_validates_each(monkeypatch):
    """configs/sky_real_lite0_negatives.yaml: street photos, MSRC-v2 with void pixels, interiors
    as a negatives source and synthetic scenes; three validated one by one."""
    import tensorflow as tf

    from skyseg_tf.training import TrainConfig
    from skyseg_tf.training.train import _datasets

    root = pathlib.Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    config = TrainConfig.from_file(root / "configs" / "sky_real_lite0_negatives.yaml")
    assert config.monitor == "val_score" and config.initial_weights == "sky_unet_efficientnet_lite0_streets"
    train, validation, per_source = _datasets(config, tf.distribute.get_strategy())
    assert validation is None
    assert [(s.name, s.negative) for s in per_source] == [
        ("labelmefacade", False), ("msrc", False), ("interiors", True)]
    images, masks = next(iter(train))
    assert images.shape == (16, 256, 256, 3)
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0, 2.0}
    _, msrc_masks = next(iter(per_source[1].dataset))
    assert 2.0 in np.unique(msrc_masks.numpy())  # MSRC's unlabelled pixels are void
    _, interior_masks = next(iter(per_source[2].dataset))
    assert not (interior_masks.numpy() == 1.0).any()  # photos without sky: no sky target
