"""Tests for the image-folder source (skyseg_tf.data.folder), on tiny files written to tmp_path."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from skyseg_tf.data import spec
from skyseg_tf.data.folder import (
    find_image_mask_pairs,
    folder_dataset,
    read_image,
    read_mask,
)
from skyseg_tf.data.synthetic import render_element, write_synthetic_folder

# A 4x6 (H x W) mask: sky in the top row and a half.
SKY = np.zeros((4, 6), np.uint8)
SKY[0] = 1
SKY[1, :3] = 1


def _dirs(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    return images, masks


def _photo(path, size=(6, 4), mode="RGB", value=(10, 120, 200)):
    Image.new(mode, size, value).save(path)


def _mask(path, values):
    Image.fromarray(np.asarray(values, np.uint8)).save(path)


def test_pairs_are_matched_by_stem_and_decoded_to_the_contract(tmp_path):
    images, masks = _dirs(tmp_path)
    _photo(images / "b.jpg")
    _photo(images / "a.PNG")
    (images / "notes.txt").write_text("ignored")
    _mask(masks / "a.png", SKY * 255)
    _mask(masks / "b.png", SKY)
    dataset = folder_dataset(images, masks)
    assert dataset.element_spec == spec.ELEMENT_SPEC
    assert int(dataset.cardinality()) == 2
    elements = list(dataset.as_numpy_iterator())
    assert [e["file_name"] for e in elements] == [b"a.PNG", b"b.jpg"]
    for element in elements:
        np.testing.assert_array_equal(element["segmentation_mask"][..., 0], SKY)
        assert element["image"].shape == (4, 6, 3) and element["image"].dtype == np.uint8
        assert element["sky_fraction"] == pytest.approx(9 / 24)
    np.testing.assert_array_equal(elements[0]["image"][0, 0], (10, 120, 200))


def test_reads_a_synthetic_folder_back_unchanged(tmp_path):
    root = write_synthetic_folder(tmp_path, num_examples=2, image_size=(32, 40), seed=4)
    elements = list(folder_dataset(root / "images", root / "masks").as_numpy_iterator())
    for index, element in enumerate(elements):
        expected = render_element(4, index, (32, 40))
        for key in (spec.IMAGE_KEY, spec.MASK_KEY, spec.FILE_NAME_KEY, spec.SKY_FRACTION_KEY):
            np.testing.assert_array_equal(element[key], expected[key])


@pytest.mark.parametrize(
    "mode, values",
    [
        ("L01", SKY),
        ("L255", SKY * 255),
        ("1", SKY.astype(bool)),
        ("I;16", SKY.astype(np.uint16) * 65535),
        ("RGB", np.repeat(SKY[..., None] * 255, 3, axis=-1)),
    ],
)
def test_binary_mask_formats(tmp_path, mode, values):
    path = tmp_path / "m.png"
    Image.fromarray(values).save(path)
    np.testing.assert_array_equal(read_mask(path)[..., 0], SKY)


def test_label_maps_need_sky_value(tmp_path):
    labels = np.where(SKY == 1, 3, 5).astype(np.uint8)
    labels[3, 5] = 7
    path = tmp_path / "labels.png"
    _mask(path, labels)
    np.testing.assert_array_equal(read_mask(path, sky_value=3)[..., 0], SKY)
    both = read_mask(path, sky_value=(3, 7))[..., 0]
    assert both.sum() == SKY.sum() + 1
    with pytest.raises(ValueError, match=r"'labels.png' holds 3 distinct values \(3, 5, 7\).*label map.*sky_value=<label>"):
        read_mask(path)
    palette = Image.fromarray(labels).convert("P")  # palette masks keep their indices
    palette.putpalette([0, 0, 0, 255, 255, 255] * 128)
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "palette.png", sky_value=3)[..., 0], SKY)


def test_non_binary_mask_fails_at_iteration_naming_the_file(tmp_path):
    images, masks = _dirs(tmp_path)
    _photo(images / "x.jpg")
    _mask(masks / "x.png", np.where(SKY == 1, 3, 0))
    dataset = folder_dataset(images, masks)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"'x.png' holds 2 distinct values \(0, 3\).*sky_value=3"):
        list(dataset)
    element = next(iter(folder_dataset(images, masks, sky_value=3)))
    np.testing.assert_array_equal(element["segmentation_mask"].numpy()[..., 0], SKY)


def test_missing_or_empty_directories(tmp_path):
    images, masks = _dirs(tmp_path)
    with pytest.raises(ValueError, match="images_dir: '.*nowhere' does not exist"):
        folder_dataset(tmp_path / "nowhere", masks)
    (images / "a.bmp").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"images_dir: .* holds no files ending in \.jpg, \.jpeg, \.png\. It holds 1 other files, e.g. \['a.bmp'\].*image_extensions"):
        folder_dataset(images, masks)
    _photo(images / "a.jpg")
    with pytest.raises(ValueError, match="masks_dir: .* holds no files ending in"):
        folder_dataset(images, masks)
    with pytest.raises(ValueError, match="masks_dir: .* is a file, not a directory"):
        folder_dataset(images, images / "a.jpg")


def test_unmatched_files_are_listed_with_counts(tmp_path):
    images, masks = _dirs(tmp_path)
    for index in range(8):
        _photo(images / f"img{index}.jpg")
    _mask(masks / "img0.png", SKY)
    _mask(masks / "stray.png", SKY)
    with pytest.raises(ValueError) as error:
        folder_dataset(images, masks)
    message = str(error.value)
    assert "7 of 8 images in" in message and "'img1.jpg'" in message and "and 2 more" in message
    assert "1 of 2 masks in" in message and "'stray.png'" in message
    assert "mask_suffix" in message


def test_mask_suffix_and_a_shared_directory(tmp_path):
    _photo(tmp_path / "a.jpg")
    _mask(tmp_path / "a_mask.png", SKY * 255)
    with pytest.raises(ValueError, match="same directory.*mask_suffix"):
        find_image_mask_pairs(tmp_path, tmp_path)
    pairs = find_image_mask_pairs(tmp_path, tmp_path, mask_suffix="_mask")
    assert [(i.name, m.name) for i, m in pairs] == [("a.jpg", "a_mask.png")]
    pairs = find_image_mask_pairs(tmp_path, tmp_path, image_extensions=(".jpg",),
                                  mask_extensions=(".png",), mask_suffix="_mask")
    assert len(pairs) == 1
    _photo(tmp_path / "a.png")
    with pytest.raises(ValueError, match="images_dir: 'a.jpg' and 'a.png'.*same name without extension"):
        find_image_mask_pairs(tmp_path, tmp_path, mask_suffix="_mask")


def test_size_mismatch_is_reported_eagerly_or_at_iteration(tmp_path):
    images, masks = _dirs(tmp_path)
    _photo(images / "a.jpg", size=(6, 4))
    _mask(masks / "a.png", np.zeros((5, 6)))
    with pytest.raises(ValueError, match="'a.jpg' is 6x4 but its mask 'a.png' is 6x5.*nearest"):
        folder_dataset(images, masks)
    lazy = folder_dataset(images, masks, validate=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="'a.jpg' is 6x4 but its mask 'a.png' is 6x5"):
        list(lazy)


def test_unreadable_files_are_named(tmp_path):
    images, masks = _dirs(tmp_path)
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    _mask(masks / "broken.png", SKY)
    with pytest.raises(ValueError, match="1 files cannot be read as images: 'broken.jpg'"):
        folder_dataset(images, masks)


def test_image_modes_become_rgb_uint8(tmp_path):
    Image.new("L", (6, 4), 77).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png")[0, 0].tolist() == [77, 77, 77]
    Image.new("RGBA", (6, 4), (1, 2, 3, 0)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [1, 2, 3]
    palette = Image.new("P", (6, 4), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png")[0, 0].tolist() == [200, 100, 50]
    deep = np.full((4, 6), 257 * 40, np.uint16)
    deep[0, 0] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    converted = read_image(tmp_path / "deep.png")
    assert converted.dtype == np.uint8 and converted.shape == (4, 6, 3)
    assert converted[0, 0].tolist() == [255] * 3 and converted[1, 1].tolist() == [40] * 3
    Image.new("CMYK", (6, 4), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    assert read_image(tmp_path / "cmyk.jpg").min() > 240  # no ink = white


def test_exif_orientation_is_applied_to_images_and_sizes(tmp_path):
    images, masks = _dirs(tmp_path)
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, :] = 255  # stored: white top row
    photo = Image.fromarray(pixels)
    exif = photo.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: the white row becomes the right column
    photo.save(images / "rot.png", exif=exif.tobytes())
    shown = read_image(images / "rot.png")
    assert shown.shape == (6, 4, 3)
    assert shown[:, -1].min() == 255 and shown[:, 0].max() == 0
    assert read_image(images / "rot.png", exif_transpose=False).shape == (4, 6, 3)
    _mask(masks / "rot.png", np.zeros((6, 4)))  # drawn on the displayed (upright) photo
    element = next(iter(folder_dataset(images, masks)))
    assert element["image"].shape.as_list() == [6, 4, 3]


def test_jpeg_masks(tmp_path):
    images, masks = _dirs(tmp_path)
    big = np.kron(SKY, np.ones((8, 8), np.uint8)) * 255
    _photo(images / "a.png", size=(48, 32))
    Image.fromarray(big).save(masks / "a.jpg", quality=70)
    element = next(iter(folder_dataset(images, masks)))
    np.testing.assert_array_equal(element["segmentation_mask"].numpy()[..., 0], big // 255)
    with pytest.raises(ValueError, match="sky_value=3 needs lossless masks.*'a.jpg'"):
        folder_dataset(images, masks, sky_value=3)


def test_colour_masks_and_bad_arguments(tmp_path):
    colour = np.zeros((4, 6, 3), np.uint8)
    colour[SKY == 1] = (6, 230, 230)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="'colour.png' is a colour image whose channels differ"):
        read_mask(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="sky_value: received -1"):
        read_mask(tmp_path / "colour.png", sky_value=-1)
    with pytest.raises(ValueError, match="sky_value: received True"):
        folder_dataset(tmp_path, tmp_path, sky_value=True)
    with pytest.raises(ValueError, match="image_extensions: received 'jpg'"):
        folder_dataset(tmp_path, tmp_path, image_extensions="jpg")


def test_folder_splits_follow_the_stable_file_name_hash(tmp_path):
    from skyseg_tf.data.synthetic import write_synthetic_folder
    from tfds_ade20k_outdoors import split_for_file_name

    root = write_synthetic_folder(tmp_path / "data", num_examples=30, image_size=(16, 16))
    names = {}
    for split in ("train", "validation", "test"):
        elements = list(folder_dataset(root / "images", root / "masks", split=split))
        names[split] = {e["file_name"].numpy().decode().rsplit("/", 1)[-1] for e in elements}
        assert names[split] and all(split_for_file_name(n) == split for n in names[split])
    assert sum(len(v) for v in names.values()) == 30
    assert not (names["train"] & names["validation"]) and not (names["train"] & names["test"])
    with pytest.raises(ValueError, match="split must be None, .all. or one of train, validation, test"):
        folder_dataset(root / "images", root / "masks", split="val")
