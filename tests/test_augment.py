"""Tests of skyseg_tf.data.augment: the TensorFlow fast path and the albumentations path."""

import os

import numpy as np
import pytest
import tensorflow as tf

from skyseg_tf.data.augment import (
    TFAugment,
    albumentations_augment,
    tf_augment,
    wrap_albumentations,
)

GEOMETRY_ONLY = dict(color_prob=0.0, noise_prob=0.0)


def striped_batch(batch=4, height=24, width=30, seed=0):
    """Images whose brightness encodes the mask: sky (left third) white, the rest dark.

    The mask depends on the column only, so it is left-right asymmetric (a flip moves it) and
    bilinear image sampling thresholded at 127.5 agrees with nearest-neighbour mask sampling.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros((batch, height, width, 1), np.float32)
    mask[:, :, : width // 3] = 1.0
    texture = rng.uniform(0, 40, (batch, height, width, 3)).astype(np.float32)
    images = np.where(mask > 0, 255.0 - texture, texture)
    return images, mask


def relation_agreement(images, masks):
    """Share of pixels where ``mask == (mean brightness > 127.5)``."""
    images, masks = np.asarray(images, np.float32), np.asarray(masks)
    return float(np.mean((images.mean(-1, keepdims=True) > 127.5) == (masks > 0.5)))


@pytest.mark.parametrize("dtype", [tf.float32, tf.uint8])
def test_tf_augment_keeps_shape_dtype_range_and_binary_mask(dtype):
    images, masks = striped_batch()
    augment = tf_augment("strong")  # includes zoom-out (zero border) and noise
    out_images, out_masks = augment(tf.cast(images, dtype), tf.cast(masks, dtype), seed=[3, 4])
    assert out_images.dtype == dtype and out_masks.dtype == dtype
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    values = out_images.numpy().astype(np.float32)
    assert values.min() >= 0.0 and values.max() <= 255.0
    assert set(np.unique(out_masks.numpy())) <= {0, 1}


def test_tf_augment_works_on_one_element():
    images, masks = striped_batch(batch=1)
    out_image, out_mask = tf_augment()(images[0], masks[0], seed=[0, 1])
    assert out_image.shape == images.shape[1:] and out_mask.shape == masks.shape[1:]


def test_tf_augment_flip_moves_image_and_mask_together():
    images, masks = striped_batch()
    augment = tf_augment(flip_prob=1.0, scale_range=(1.0, 1.0), **GEOMETRY_ONLY)
    out_images, out_masks = augment(images, masks, seed=[0, 0])
    np.testing.assert_allclose(out_images.numpy(), images[:, :, ::-1], atol=1e-3)
    np.testing.assert_array_equal(out_masks.numpy(), masks[:, :, ::-1])


def test_tf_augment_zoom_and_flip_keep_the_image_mask_relation():
    images, masks = striped_batch(batch=8)
    augment = tf_augment(flip_prob=0.5, scale_range=(0.8, 2.0), **GEOMETRY_ONLY)
    out_images, out_masks = augment(images, masks, seed=[5, 6])
    assert relation_agreement(out_images, out_masks) > 0.99
    # Something moved: some images are flipped (sky on the right now).
    right_sky = out_masks.numpy()[:, :, -1].mean(axis=(1, 2))
    assert right_sky.max() == 1.0


def test_tf_augment_default_keeps_the_relation_and_changes_colours_only_in_images():
    images, masks = striped_batch(batch=8)
    out_images, out_masks = tf_augment()(images, masks, seed=[1, 2])
    assert relation_agreement(out_images, out_masks) > 0.97
    colour_only = tf_augment(flip_prob=0.0, scale_range=(1.0, 1.0), color_prob=1.0,
                             noise_prob=1.0)
    changed_images, same_masks = colour_only(images, masks, seed=[1, 2])
    np.testing.assert_array_equal(same_masks.numpy(), masks)
    assert np.abs(changed_images.numpy() - images).mean() > 1.0


def test_tf_augment_is_deterministic_for_a_seed():
    images, masks = striped_batch()
    augment = tf_augment("strong")
    first = augment(images, masks, seed=[7, 8])
    second = augment(images, masks, seed=[7, 8])
    other = augment(images, masks, seed=[7, 9])
    np.testing.assert_array_equal(first[0].numpy(), second[0].numpy())
    np.testing.assert_array_equal(first[1].numpy(), second[1].numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def test_tf_augment_argument_errors():
    with pytest.raises(ValueError, match="strength must be one of 'light', 'default', 'strong'"):
        tf_augment("extreme")
    with pytest.raises(TypeError, match="unknown argument.*'flip'"):
        tf_augment(flip=True)
    with pytest.raises(ValueError, match=r"flip_prob: received 2.0; pass a probability in \[0, 1\]"):
        TFAugment(flip_prob=2.0)
    with pytest.raises(ValueError, match="scale_range must be"):
        TFAugment(scale_range=(2.0, 1.0))


def test_albumentations_builder_uses_the_2x_api_and_keeps_masks_binary():
    transform = albumentations_augment((32, 40), strength="strong", seed=0)
    images, masks = striped_batch(batch=6, height=32, width=40)
    for image, mask in zip(images.astype(np.uint8), masks.astype(np.uint8)):
        out = transform(image=image, mask=mask)
        assert out["image"].shape == (32, 40, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (32, 40, 1)
        assert set(np.unique(out["mask"])) <= {0, 1}


def test_albumentations_import_leaves_the_environment_alone():
    before = os.environ.get("NO_ALBUMENTATIONS_UPDATE")
    albumentations_augment(32)
    assert os.environ.get("NO_ALBUMENTATIONS_UPDATE") == before


def test_albumentations_argument_errors():
    with pytest.raises(ValueError, match=r"image_size: received .*; pass \(height, width\)"):
        albumentations_augment((0, 32))
    with pytest.raises(ValueError, match="strength must be one of"):
        albumentations_augment(32, strength="max")


def test_wrapped_albumentations_flip_moves_image_and_mask_together(monkeypatch):
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check (offline tests)
    import albumentations as A

    images, masks = striped_batch(batch=1)
    apply = wrap_albumentations(A.Compose([A.HorizontalFlip(p=1.0)]))
    out_image, out_mask = apply(tf.constant(images[0].astype(np.uint8)),
                                tf.constant(masks[0].astype(np.uint8)), tf.constant(1, tf.int64))
    np.testing.assert_array_equal(out_image.numpy(), images[0, :, ::-1].astype(np.uint8))
    np.testing.assert_array_equal(out_mask.numpy(), masks[0, :, ::-1].astype(np.uint8))


def test_wrapped_albumentations_default_keeps_the_relation_and_is_seeded():
    images, masks = striped_batch(batch=8, height=32, width=48)
    apply = wrap_albumentations(albumentations_augment((32, 48)), output_size=(32, 48))
    outputs = []
    for index, (image, mask) in enumerate(zip(images.astype(np.uint8), masks.astype(np.uint8))):
        out_image, out_mask = apply(image, mask, tf.constant(index, tf.int64))
        assert out_image.shape == (32, 48, 3) and out_mask.shape == (32, 48, 1)
        assert set(np.unique(out_mask.numpy())) <= {0, 1}
        outputs.append((out_image.numpy(), out_mask.numpy()))
    out_images = np.stack([o[0] for o in outputs])
    out_masks = np.stack([o[1] for o in outputs])
    assert relation_agreement(out_images, out_masks) > 0.95
    again = apply(images[3].astype(np.uint8), masks[3].astype(np.uint8), tf.constant(3, tf.int64))
    np.testing.assert_array_equal(again[0].numpy(), outputs[3][0])
    np.testing.assert_array_equal(again[1].numpy(), outputs[3][1])
