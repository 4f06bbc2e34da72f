"""Tests of skyseg_tf.data.pipeline: load_source and make_dataset, on tiny CPU shapes."""

import glob
import importlib.util

import numpy as np
import pytest
import tensorflow as tf

from skyseg_tf.data import load_source, make_dataset, tf_augment
from skyseg_tf.data.spec import FILE_NAME_KEY, IMAGE_KEY, MASK_KEY, SKY_FRACTION_KEY


def striped_elements(num, height, width, start=0, seed=0):
    """Element dicts whose brightness encodes the mask: sky (left third) bright, the rest dark."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((num, height, width, 1), np.uint8)
    masks[:, :, : width // 3] = 1
    texture = rng.integers(0, 40, (num, height, width, 3))
    images = np.where(masks == 1, 255 - texture, texture).astype(np.uint8)
    return {
        IMAGE_KEY: images,
        MASK_KEY: masks,
        FILE_NAME_KEY: [f"img_{start + i}.png" for i in range(num)],
        SKY_FRACTION_KEY: masks.reshape(num, -1).mean(axis=1).astype(np.float32),
    }


def tiny_source(num=10, height=40, width=56):
    return tf.data.Dataset.from_tensor_slices(striped_elements(num, height, width))


def mixed_size_source():
    """10 elements of 40x56 then 4 of 20x24 (smaller than the output: crop mode must pad)."""
    big = tiny_source(10, 40, 56)
    small = tf.data.Dataset.from_tensor_slices(striped_elements(4, 20, 24, start=10))
    return big.concatenate(small)


def relation_agreement(images, masks):
    """Share of pixels where ``mask == (mean brightness > 127.5)``."""
    return float(np.mean((images.mean(-1, keepdims=True) > 127.5) == (masks > 0.5)))


def collect(dataset):
    return [tuple(t.numpy() for t in batch) for batch in dataset]


def batch_sizes(dataset):
    return [int(batch[0].shape[0]) for batch in dataset]


def test_training_batches_have_the_contract_shapes_dtypes_and_ranges():
    dataset = make_dataset(tiny_source(), "train", (32, 64), 4, seed=0)
    batches = list(dataset)
    assert len(batches) == 2  # 10 elements, drop_remainder for training
    for images, masks in batches:
        assert images.dtype == tf.float32 and masks.dtype == tf.float32
        assert images.shape == (4, 32, 64, 3) and masks.shape == (4, 32, 64, 1)
        assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 255.0
        assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
    assert dataset.element_spec[0].shape.as_list() == [4, 32, 64, 3]


def test_synthetic_source_end_to_end():
    dataset = make_dataset("synthetic", "train", 32, 2, num_examples=10, seed=0)
    shapes = [(tuple(i.shape), tuple(m.shape)) for i, m in dataset]
    assert shapes == [((2, 32, 32, 3), (2, 32, 32, 1))] * 3  # 6 of the 10 scenes are "train"


@pytest.mark.parametrize("resize_mode", ["resize", "crop"])
@pytest.mark.parametrize("augment", [False, "tf", "albumentations"])
def test_masks_stay_binary_and_aligned_with_images(augment, resize_mode):
    dataset = make_dataset(mixed_size_source(), "train", (32, 32), 7, augment=augment,
                           resize_mode=resize_mode, seed=1)
    images, masks = (np.concatenate(t) for t in zip(*collect(dataset)))
    assert images.shape == (14, 32, 32, 3) and masks.shape == (14, 32, 32, 1)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert images.min() >= 0.0 and images.max() <= 255.0
    assert relation_agreement(images, masks) > 0.93


def test_crop_mode_crops_at_full_resolution_when_training_and_resizes_otherwise():
    source = tiny_source(4, 64, 96)
    originals = striped_elements(4, 64, 96)[IMAGE_KEY].astype(np.float32)
    train = make_dataset(source, "train", (32, 32), 4, augment=False, resize_mode="crop",
                         shuffle=False, seed=0)
    images, _ = next(iter(train))
    windows = np.lib.stride_tricks.sliding_window_view(originals, (32, 32, 3), axis=(1, 2, 3))
    for index, image in enumerate(images.numpy()):
        # Each output is an unscaled 32x32 window of its 64x96 source image.
        matches = np.all(windows[index] == image, axis=(-3, -2, -1))
        assert matches.any()
    evaluation = make_dataset(source, "validation", (32, 32), 4, resize_mode="crop")
    resized = make_dataset(source, "validation", (32, 32), 4, resize_mode="resize")
    for (a_images, a_masks), (b_images, b_masks) in zip(collect(evaluation), collect(resized)):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_masks, b_masks)
    _, eval_masks = collect(resized)[0]
    np.testing.assert_allclose(eval_masks.mean(), 1 / 3, atol=0.02)  # whole image, resized


@pytest.mark.parametrize("augment", ["tf", "albumentations"])
def test_a_seed_with_deterministic_order_repeats_exactly(augment):
    def build(seed):
        return make_dataset(mixed_size_source(), "train", (32, 32), 4, augment=augment,
                            resize_mode="crop", seed=seed, deterministic=True)

    first, second = build(11), build(11)
    assert first.options().deterministic
    run_1, run_2 = collect(first), collect(second)
    for batch_1, batch_2 in zip(run_1, run_2, strict=True):
        for a, b in zip(batch_1, batch_2):
            np.testing.assert_array_equal(a, b)
    other = collect(build(12))
    assert not np.array_equal(run_1[0][0], other[0][0])
    next_epoch = collect(first)  # same pipeline, next epoch: a new shuffle and new draws
    assert not np.array_equal(run_1[0][0], next_epoch[0][0])


def test_global_batch_size_and_drop_remainder():
    source = tiny_source(10)
    assert batch_sizes(make_dataset(source, "train", 32, 4)) == [4, 4]
    # An unseeded training pipeline is not deterministic (tf.data may emit the short batch
    # first); the sizes are what this checks.
    assert sorted(batch_sizes(make_dataset(source, "train", 32, 4, drop_remainder=False))) == [2, 4, 4]
    assert batch_sizes(make_dataset(source, "validation", 32, 4)) == [4, 4, 2]
    assert batch_sizes(make_dataset(source, "test", 32, 4, drop_remainder=True)) == [4, 4]
    assert batch_sizes(make_dataset(source, "train", 32, 10)) == [10]


def test_repeat_and_evaluation_order():
    repeated = make_dataset(tiny_source(10), "train", 32, 4, repeat=True, seed=0)
    assert len(list(repeated.take(5))) == 5  # more than the 2 batches of one epoch
    names = make_dataset(tiny_source(10), "validation", 32, 4, with_file_names=True)
    seen = [name.decode() for batch in names for name in batch[2].numpy()]
    assert seen == [f"img_{i}.png" for i in range(10)]  # no shuffling outside training


def test_with_file_names_yields_a_third_item():
    dataset = make_dataset("synthetic", "validation", 32, 2, num_examples=10,
                           with_file_names=True)
    images, masks, names = next(iter(dataset))
    assert images.shape == (2, 32, 32, 3) and masks.shape == (2, 32, 32, 1)
    assert names.dtype == tf.string and names.shape == (2,)
    assert names.numpy()[0].decode().endswith(".png")


def test_cache_to_a_file_path(tmp_path):
    prefix = tmp_path / "cache" / "validation"
    dataset = make_dataset(tiny_source(6), "validation", 32, 4, cache=prefix)
    first, second = collect(dataset), collect(dataset)
    assert glob.glob(str(prefix) + "*.index"), "the cache files were not written"
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    # A new pipeline on the same path reads the cache, not the source.
    cached = make_dataset(tiny_source(6).map(lambda e: {**e, IMAGE_KEY: e[IMAGE_KEY] * 0}),
                          "validation", 32, 4, cache=prefix)
    np.testing.assert_array_equal(collect(cached)[0][0], first[0][0])
    in_memory = make_dataset(tiny_source(6), "train", 32, 2, cache=True, seed=0)
    assert len(list(in_memory)) == 3


def test_augment_accepts_a_tfaugment_a_transform_or_a_function(monkeypatch):
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check (offline tests)
    import albumentations as A

    flip = tf_augment(flip_prob=1.0, scale_range=(1.0, 1.0), color_prob=0.0, noise_prob=0.0)
    for augment in (flip, A.Compose([A.HorizontalFlip(p=1.0)]),
                    lambda image, mask: (image[:, ::-1], mask[:, ::-1])):
        dataset = make_dataset(tiny_source(4, 32, 64), "train", (32, 64), 4, augment=augment,
                               shuffle=False)
        _, masks = next(iter(dataset))
        # Sky was the left 21 columns; flipped, it is the right 21.
        np.testing.assert_allclose(masks.numpy()[:, :, -21:].mean(), 1.0)
        np.testing.assert_allclose(masks.numpy()[:, :, :-21].mean(), 0.0)


def test_deterministic_defaults():
    assert not make_dataset(tiny_source(), "train", 32, 2).options().deterministic
    assert make_dataset(tiny_source(), "train", 32, 2, seed=0).options().deterministic
    assert make_dataset(tiny_source(), "validation", 32, 2).options().deterministic
    assert not make_dataset(tiny_source(), "validation", 32, 2,
                            deterministic=False).options().deterministic


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=(0, 32)),
         r"image_size: received \(0, 32\); pass \(height, width\) as two positive ints"),
        (dict(image_size=(32, 32, 3)), "image_size: received .*; pass \\(height, width\\)"),
        (dict(global_batch_size=0), "global_batch_size: received 0; pass a positive int"),
        (dict(split="training"), "each part must be one of 'train', 'validation', 'test'"),
        (dict(augment="imgaug"), "augment must be .* 'tf', 'albumentations'.*received 'imgaug'"),
        (dict(resize_mode="pad"), "resize_mode must be one of 'resize', 'crop'"),
        (dict(seed=-1), "seed: received -1; pass an int >= 0"),
        (dict(shuffle_buffer=0), "shuffle_buffer: received 0; pass a positive int"),
        (dict(cache=""), "cache must be False, True"),
    ],
)
def test_argument_errors_name_the_argument_and_the_valid_values(kwargs, message):
    arguments = dict(source=tiny_source(), split="train", image_size=32, global_batch_size=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_dataset(**arguments)


def test_image_size_not_a_multiple_of_32_warns():
    with pytest.warns(UserWarning, match=r"not a multiple of 32.*Consider \(64, 32\)"):
        make_dataset(tiny_source(), "train", (40, 32), 2)


def test_unknown_source_lists_the_valid_forms():
    with pytest.raises(ValueError, match=r"unknown source 'coco'. Valid forms: \"synthetic\""):
        load_source("coco", "train")
    with pytest.raises(ValueError, match="Valid forms"):
        make_dataset({"type": "s3"}, "train", 32, 2)


def test_load_source_synthetic_forms():
    by_name = load_source("synthetic", "test", num_examples=10, image_size=(24, 40), seed=2)
    by_dict = load_source({"type": "synthetic", "num_examples": 10, "image_size": (24, 40),
                           "seed": 2}, "test")
    a, b = next(iter(by_name)), next(iter(by_dict))
    assert a[IMAGE_KEY].shape == (24, 40, 3)
    np.testing.assert_array_equal(a[IMAGE_KEY].numpy(), b[IMAGE_KEY].numpy())
    with pytest.raises(TypeError, match="valid keyword arguments are .*num_examples"):
        load_source("synthetic", "train", sky_value=255)
    with pytest.raises(ValueError, match="only work with TFDS sources"):
        load_source("synthetic", "train[:50%]")
    with pytest.raises(ValueError, match="given both in the dict and as keyword arguments"):
        load_source({"type": "synthetic", "seed": 1}, "train", seed=2)


def test_load_source_passes_a_dataset_through_and_checks_its_elements():
    source = tiny_source(3)
    assert load_source(source, "train") is source
    tuples = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3), np.uint8),
                                                 np.zeros((2, 8, 8, 1), np.uint8)))
    with pytest.raises(ValueError, match="must yield dicts with the keys 'image'"):
        load_source(tuples, "train")
    elements = striped_elements(2, 32, 32)
    elements[MASK_KEY] = elements[MASK_KEY] * 255  # 0/255 masks: any non-zero value is sky
    _, masks = next(iter(make_dataset(tf.data.Dataset.from_tensor_slices(elements),
                                      "validation", 32, 2)))
    np.testing.assert_array_equal(masks.numpy(), striped_elements(2, 32, 32)[MASK_KEY])
    floats = tf.data.Dataset.from_tensor_slices({IMAGE_KEY: np.zeros((2, 8, 8, 3), np.float32),
                                                 MASK_KEY: np.zeros((2, 8, 8, 1), np.uint8)})
    with pytest.raises(ValueError, match=r"'image' must be uint8 \[H, W, 3\], received float32"):
        load_source(floats, "train")


def write_png_pairs(tmp_path, sizes=((30, 40), (36, 36), (28, 50))):
    from PIL import Image

    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    for index, (height, width) in enumerate(sizes):
        element = striped_elements(1, height, width, seed=index)
        Image.fromarray(element[IMAGE_KEY][0]).save(images_dir / f"scene_{index}.png")
        Image.fromarray(element[MASK_KEY][0, ..., 0] * 255).save(masks_dir / f"scene_{index}.png")
    return images_dir, masks_dir


def test_load_source_folder_forms(tmp_path):
    images_dir, masks_dir = write_png_pairs(tmp_path)
    as_tuple = load_source(("folder", images_dir, masks_dir), "train")  # 0/255 masks
    as_dict = load_source({"type": "folder", "images": str(images_dir), "masks": str(masks_dir),
                           "sky_value": 255}, "train")
    for dataset in (as_tuple, as_dict):
        elements = list(dataset)
        assert sorted(e[FILE_NAME_KEY].numpy().decode() for e in elements) == [
            "scene_0.png", "scene_1.png", "scene_2.png"]
        for element in elements:
            mask = element[MASK_KEY].numpy()
            assert set(np.unique(mask)) == {0, 1}
            np.testing.assert_allclose(mask.mean(), (mask.shape[1] // 3) / mask.shape[1])
    # Folder splits follow the stable file-name hash; these three names all hash into "train".
    batches = make_dataset(("folder", images_dir, masks_dir), "train", 32, 3, sky_value=255,
                           augment=False, shuffle=False)
    images, masks = next(iter(batches))
    assert images.shape == (3, 32, 32, 3) and masks.shape == (3, 32, 32, 1)
    assert relation_agreement(images.numpy(), masks.numpy()) > 0.97
    with pytest.raises(ValueError, match=r"No image of .* falls in the 'validation' split"):
        load_source(("folder", images_dir, masks_dir), "validation")
    with pytest.raises(ValueError, match=r"lacks the key\(s\) \['masks'\]"):
        load_source({"type": "folder", "images": str(images_dir)}, "train")


@pytest.mark.skipif(importlib.util.find_spec("tfds_ade20k_outdoors") is None,
                    reason="the tfds_ade20k_outdoors builder package is not installed")
def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        elements = list(load_source("ade20k_outdoors_sky", "validation"))
        assert len(elements) == 5
        assert elements[0][IMAGE_KEY].dtype == tf.uint8
        dataset = make_dataset("ade20k_outdoors_sky/scene_parse", "train[:80%]", 32, 2, seed=0)
        images, masks = next(iter(dataset))
    assert images.shape == (2, 32, 32, 3) and masks.shape == (2, 32, 32, 1)
    # Mock masks hold random values: 0 is other, 2 (VOID_LABEL) void, every other value sky.
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0, 2.0}
