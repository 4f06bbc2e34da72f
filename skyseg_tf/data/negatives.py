"""A ``tf.data`` source of photos without sky: every pixel's target is "not sky".

A folder of photos that hold no sky (interiors, close-ups, portraits) teaches a sky model what is
*not* sky: ceilings, bright walls, studio backdrops. It needs no masks: :func:`negatives_dataset`
yields elements whose mask is all ``0``, except where the *window policy* leaves pixels out.

Window policies (what to do with sky seen through a window of an interior photo, which other
datasets label as sky):

* ``"ignore_blue"`` (the default): pixels that look like clear blue sky (blue clearly above red
  and at least green, bright enough; see :func:`blue_sky_pixels`), in regions of at least 5x5
  pixels, become
  :data:`~skyseg_tf.data.spec.VOID_LABEL`: they count in no loss, so the model is not taught
  that blue sky through a window is "not sky". White and grey pixels (ceilings, walls, blown-out
  windows, overcast sky through a window) stay "not sky".
* ``"none"``: every pixel is "not sky".

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (8, 6), (240, 235, 225)).save(root / "1_kitchen.jpg")
    >>> element = next(iter(negatives_dataset(root)))
    >>> int(element["segmentation_mask"].numpy().max()), element["file_name"].numpy()
    (0, b'1_kitchen.jpg')
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from skyseg_tf.data import spec
from skyseg_tf.data.folder import (
    IMAGE_EXTENSIONS,
    _check_dir,
    _check_extensions,
    _files_by_stem,
    _header_size,
    _some,
    read_file_list,
    read_image,
    select_split,
)

WINDOW_POLICIES = ("ignore_blue", "none")
"""Values of ``negatives_dataset(window_policy=...)``; see the module docstring."""

DEFAULT_WINDOW_POLICY = "ignore_blue"


def blue_sky_pixels(image: np.ndarray) -> np.ndarray:
    """``bool [H, W]``: the pixels of an RGB ``uint8`` photo that look like clear blue sky.

    A pixel counts when its blue channel is at least 110, exceeds red by 25 or more and is not
    below green by more than 10: the colours of a clear or hazy blue sky, which white, cream and
    grey ceilings and walls are not.

    Example:
        >>> import numpy as np
        >>> pixels = np.array([[[90, 150, 230], [235, 230, 220], [60, 60, 70]]], np.uint8)
        >>> blue_sky_pixels(pixels).tolist()
        [[True, False, False]]
    """
    rgb = np.asarray(image, dtype=np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (b >= 110) & (b - r >= 25) & (b >= g - 10)


DEFAULT_WINDOW_MIN_REGION = 5
"""Side of the square opening that keeps only blue *regions* (windows), not specks of texture."""


def negative_void(image: np.ndarray, window_policy: str,
                  min_region: int = DEFAULT_WINDOW_MIN_REGION) -> np.ndarray | None:
    """The pixels of a sky-free photo that its window policy leaves out (``None``: none).

    ``"ignore_blue"``: :func:`blue_sky_pixels` after a ``min_region`` x ``min_region``
    morphological opening, so that blue regions (a window onto the sky) are left out and isolated
    blue pixels of a texture are not (``min_region=1``: every blue pixel).

    Example:
        >>> import numpy as np
        >>> negative_void(np.zeros((2, 2, 3), np.uint8), "none") is None
        True
    """
    if window_policy != "ignore_blue":
        return None
    blue = blue_sky_pixels(image)
    if min_region <= 1:
        return blue
    import cv2

    kernel = np.ones((min_region, min_region), np.uint8)
    return cv2.morphologyEx(blue.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)


def find_negative_images(images_dir: str | os.PathLike,
                         image_extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[pathlib.Path]:
    """The photos of a negatives folder (top level, sorted), or a clear error if it has none.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (4, 4)).save(root / "a.png")
        >>> [p.name for p in find_negative_images(root)]
        ['a.png']
    """
    images_dir = _check_dir(pathlib.Path(images_dir), "images_dir")
    extensions = _check_extensions(image_extensions, "image_extensions")
    files = sorted(_files_by_stem(images_dir, extensions, "images_dir").values())
    if not files:
        others = sorted(p.name for p in images_dir.iterdir() if not p.name.startswith("."))
        hint = f" It holds {len(others)} other files, e.g. {others[:3]}." if others else ""
        raise ValueError(
            f"negatives source: {str(images_dir)!r} holds no photos ending in "
            f"{', '.join(extensions)}.{hint} Point 'images' at a folder of photos without sky."
        )
    return files


def negatives_dataset(
    images_dir: str | os.PathLike,
    *,
    split: str | None = None,
    split_group: str | None = None,
    window_policy: str = DEFAULT_WINDOW_POLICY,
    window_min_region: int = DEFAULT_WINDOW_MIN_REGION,
    exclude: str | os.PathLike | Sequence[str] | None = None,
    image_extensions: Sequence[str] = IMAGE_EXTENSIONS,
    validate: bool = True,
    exif_transpose: bool = True,
) -> tf.data.Dataset:
    """A source over a folder of photos without sky: all-``0`` masks, by the window policy.

    Args:
        images_dir: the folder of photos (top level; ``.jpg``, ``.jpeg``, ``.png``).
        split: ``None`` or ``"all"`` for every photo, or ``"train"``, ``"validation"``,
            ``"test"``: the 60/20/20 hash split of the folder sources.
        split_group: a regular expression whose first group names a photo's group; a group's
            photos share a split (``"^([^_]+)_"`` keeps the rooms of one house together).
        window_policy: one of :data:`WINDOW_POLICIES` (see the module docstring).
        window_min_region: ``"ignore_blue"`` leaves out blue regions of at least this many
            pixels across (a morphological opening); ``1`` leaves out every blue pixel.
        exclude: photos to leave out, e.g. those whose windows show real sky: a text file of
            names (one per line, ``#`` comments allowed, with or without extension) or a list.
            A name that matches no photo is an error.
        image_extensions: suffixes of the photos.
        validate: read every photo's header now and raise one error naming unreadable files.
        exif_transpose: apply the EXIF orientation.

    Returns:
        A finite dataset of element dicts (:data:`skyseg_tf.data.spec.ELEMENT_SPEC`).

    Raises:
        ValueError: for a missing or empty folder, an unknown window policy, a split without
            photos, or unreadable photos (all named).

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (8, 6), (80, 140, 230)).save(root / "window.png")
        >>> mask = next(iter(negatives_dataset(root)))["segmentation_mask"].numpy()
        >>> sorted(set(mask.ravel().tolist()))  # blue window pixels are void (2)
        [2]
    """
    from skyseg_tf import checks

    checks.positive_int("window_min_region", window_min_region)
    if window_policy not in WINDOW_POLICIES:
        raise ValueError(f"window_policy: received {window_policy!r}; pass one of "
                         f"{', '.join(map(repr, WINDOW_POLICIES))}.")
    images = find_negative_images(images_dir, image_extensions)
    if exclude is not None:
        images = _without(images, exclude, images_dir)
    images = select_split(images, split, images_dir, split_group)
    if validate:
        unreadable = []
        for path in images:
            try:
                _header_size(path, exif_transpose)
            except OSError as error:
                unreadable.append((path.name, f"{type(error).__name__}: {error}"))
        if unreadable:
            raise ValueError(
                f"{len(unreadable)} files in {str(images_dir)!r} cannot be read as images: "
                f"{_some([name for name, _ in unreadable])} (the first: {unreadable[0][1]}). "
                "Remove or replace them."
            )

    def load(image_path):
        image_path = image_path.decode("utf-8")
        image = read_image(image_path, exif_transpose=exif_transpose)
        mask = np.zeros(image.shape[:2], np.uint8)
        return spec.make_element(image, mask, image_path,
                                 void=negative_void(image, window_policy, window_min_region))

    @tf.autograph.experimental.do_not_convert
    def to_element(image_path):
        return spec.numpy_element(load, [image_path])

    return tf.data.Dataset.from_tensor_slices([str(path) for path in images]).map(
        to_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _without(images, exclude, images_dir):
    """``images`` less the photos named in ``exclude`` (names with or without extension)."""
    names = read_file_list(exclude)
    by_name = {path.name: path for path in images} | {path.stem: path for path in images}
    missing = [name for name in names if pathlib.PurePath(name).name not in by_name]
    if missing:
        raise ValueError(
            f"exclude: {len(missing)} of {len(names)} names match no photo in {str(images_dir)!r}: "
            f"{_some(missing)}. Fix the list (one file name per line) or the folder."
        )
    dropped = {by_name[pathlib.PurePath(name).name] for name in names}
    return [path for path in images if path not in dropped]


__all__ = ["DEFAULT_WINDOW_MIN_REGION", "DEFAULT_WINDOW_POLICY", "WINDOW_POLICIES", "blue_sky_pixels", "find_negative_images",
           "negative_void", "negatives_dataset"]
