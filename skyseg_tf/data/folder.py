"""A ``tf.data`` source over a folder of photos and a folder of sky masks.

Images and masks are matched by file name without extension (``a.jpg`` with ``a.png``, or
``a_mask.png`` with ``mask_suffix="_mask"``). File matching is checked when the dataset is made;
with ``validate=True`` (the default) image sizes are also read from the file headers, which is
cheap. Pixels are decoded lazily, with Pillow, when the dataset is iterated: EXIF orientation is
applied, grayscale, palette, RGBA, CMYK and 16-bit images become RGB ``uint8``, and masks become
``1`` (sky) / ``0`` (other).

Mask conventions: binary masks holding ``0``/``1`` or ``0``/``255`` (``0``/``65535`` for 16-bit)
are read as they are; label maps need ``sky_value``, the label (or labels) that means sky, e.g.
``sky_value=3`` for ADE20K SceneParsing annotations. JPEG masks must be ``0``/``255``; they are
thresholded at 128 because compression blurs their values.

Example:
    >>> import tempfile
    >>> from skyseg_tf.data.synthetic import write_synthetic_folder
    >>> root = write_synthetic_folder(tempfile.mkdtemp(), num_examples=3, image_size=(32, 32))
    >>> ds = folder_dataset(root / "images", root / "masks")
    >>> len(ds), next(iter(ds))["file_name"].numpy()
    (3, b'synthetic_0_000000.png')
"""

from __future__ import annotations

import collections.abc
import os
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from skyseg_tf.data import spec

SPLITS = ("train", "validation", "test")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg")
LOSSY_EXTENSIONS = (".jpg", ".jpeg")

_EXIF_ORIENTATION = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # the ones that swap width and height
_SHOW = 5  # how many file names an error message lists


def find_image_mask_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    *,
    image_extensions: Sequence[str] = IMAGE_EXTENSIONS,
    mask_extensions: Sequence[str] = MASK_EXTENSIONS,
    mask_suffix: str = "",
) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """Lists ``(image, mask)`` file pairs, matched by file name without extension.

    Only the top level of each directory is read; hidden files and files with other extensions
    (compared case-insensitively) are ignored.

    Args:
        images_dir: directory of photos.
        masks_dir: directory of masks; it may be ``images_dir`` when the extensions differ or a
            ``mask_suffix`` tells masks apart.
        image_extensions: suffixes of image files, e.g. ``(".jpg",)``.
        mask_extensions: suffixes of mask files.
        mask_suffix: what the mask's name adds to the image's: ``"_mask"`` pairs ``a.jpg`` with
            ``a_mask.png``.

    Returns:
        The pairs, sorted by image file name.

    Raises:
        ValueError: for a missing or empty directory, two files with one name, or any image
            without a mask or mask without an image (the message lists some and how many).

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (4, 4)).save(root / "a.jpg")
        >>> Image.new("L", (4, 4)).save(root / "a_mask.png")
        >>> [(i.name, m.name) for i, m in find_image_mask_pairs(root, root, mask_suffix="_mask")]
        [('a.jpg', 'a_mask.png')]
    """
    image_extensions = _check_extensions(image_extensions, "image_extensions")
    mask_extensions = _check_extensions(mask_extensions, "mask_extensions")
    if not isinstance(mask_suffix, str):
        raise TypeError(f"mask_suffix: received {mask_suffix!r}; pass a str such as '_mask' or ''.")
    images_dir, masks_dir = pathlib.Path(images_dir), pathlib.Path(masks_dir)
    same_dir = _check_dir(images_dir, "images_dir").resolve() == _check_dir(
        masks_dir, "masks_dir").resolve()
    if same_dir and not mask_suffix and set(image_extensions) & set(mask_extensions):
        raise ValueError(
            f"images_dir and masks_dir are the same directory ({str(images_dir)!r}) and the "
            f"extensions {sorted(set(image_extensions) & set(mask_extensions))} are both image and "
            "mask extensions, so images and masks cannot be told apart. Pass a mask_suffix "
            "(e.g. mask_suffix='_mask' for 'a_mask.png'), or disjoint extensions (e.g. "
            "image_extensions=('.jpg',), mask_extensions=('.png',)), or move the masks."
        )
    is_mask = (lambda stem: stem.endswith(mask_suffix)) if same_dir and mask_suffix else None
    masks = _files_by_stem(masks_dir, mask_extensions, "masks_dir", keep=is_mask)
    images = _files_by_stem(
        images_dir, image_extensions, "images_dir",
        skip=set(masks.values()) if same_dir else set(),
    )
    for name, found, extensions in (("images_dir", images, image_extensions),
                                    ("masks_dir", masks, mask_extensions)):
        if not found:
            directory = images_dir if name == "images_dir" else masks_dir
            others = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
            hint = f" It holds {len(others)} other files, e.g. {others[:3]}." if others else ""
            raise ValueError(
                f"{name}: {str(directory)!r} holds no files ending in {', '.join(extensions)}."
                f"{hint} Point {name} at the right directory or pass "
                f"{'image' if name == 'images_dir' else 'mask'}_extensions=(...) with the "
                "suffixes your files use."
            )
    wanted = {stem + mask_suffix: stem for stem in images}
    lonely_images = sorted(images[stem].name for stem in images if stem + mask_suffix not in masks)
    lonely_masks = sorted(masks[stem].name for stem in masks if stem not in wanted)
    problems = []
    if lonely_images:
        problems.append(
            f"{len(lonely_images)} of {len(images)} images in {str(images_dir)!r} have no mask in "
            f"{str(masks_dir)!r}: {_some(lonely_images)}"
        )
    if lonely_masks:
        problems.append(
            f"{len(lonely_masks)} of {len(masks)} masks in {str(masks_dir)!r} have no image in "
            f"{str(images_dir)!r}: {_some(lonely_masks)}"
        )
    if problems:
        raise ValueError(
            "; ".join(problems) + ". Images and masks are matched by file name without extension"
            f"{f' plus mask_suffix={mask_suffix!r}' if mask_suffix else ''} ('a.jpg' pairs with "
            f"'a{mask_suffix}.png'). Add or remove the unmatched files, or pass mask_suffix=... "
            "if every mask's name adds the same ending (e.g. '_mask')."
        )
    return sorted(((images[stem], masks[stem + mask_suffix]) for stem in images),
                  key=lambda pair: pair[0].name)


def read_image(path: str | os.PathLike, *, exif_transpose: bool = True) -> np.ndarray:
    """Reads a photo as an RGB ``uint8`` array ``[H, W, 3]``.

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted; 16-bit and
    32-bit grayscale values are scaled from ``[0, 65535]`` to ``[0, 255]``.

    Args:
        path: the image file.
        exif_transpose: rotate/flip the pixels as the file's EXIF orientation says, so the array
            looks the way photo viewers show the file.

    Returns:
        The pixels.

    Raises:
        ValueError: if the file cannot be read as an image.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
        >>> Image.new("L", (5, 4), 7).save(path)
        >>> read_image(path).shape, int(read_image(path)[0, 0, 0])
        ((4, 5, 3), 7)
    """
    return read_photo(path, exif_transpose=exif_transpose)[0]


def read_photo(path, *, exif_transpose: bool = True, min_size: Sequence[int] | None = None):
    """Reads a photo as :func:`read_image` does, optionally decoded at a reduced scale.

    With ``min_size=(height, width)``, a JPEG is decoded at the smallest of libjpeg's DCT scales
    (1/2, 1/4, 1/8) that still covers ``min_size`` (Pillow's ``Image.draft``): a 12-megapixel
    photo decodes several times faster when the model needs only a few hundred pixels. Other
    formats decode in full.

    Args:
        path: The image file, or a binary file object (its ``name``, if any, names it in errors).
        exif_transpose: As in :func:`read_image`.
        min_size: ``(height, width)`` the decoded pixels must cover, as displayed (after the
            EXIF rotation), or a function of the full displayed ``(height, width)`` returning
            one (or ``None``); ``None`` decodes in full.

    Returns:
        ``(pixels, full_size)``: the RGB ``uint8`` array and the ``(height, width)`` of the photo
        at full scale, as displayed.

    Raises:
        ValueError: if the file cannot be read as an image.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> data = io.BytesIO(); Image.new("RGB", (800, 600), (10, 20, 30)).save(data, "JPEG")
        >>> pixels, full_size = read_photo(io.BytesIO(data.getvalue()), min_size=(100, 100))
        >>> pixels.shape, full_size
        ((150, 200, 3), (600, 800))
    """
    with _open(path, exif_transpose, min_size=min_size) as image:
        full_size = image.info.pop(_FULL_SIZE_KEY, (image.height, image.width))
        return _rgb_pixels(image), full_size


_FULL_SIZE_KEY = "skyseg_full_size"


def _rgb_pixels(image) -> np.ndarray:
    """RGB ``uint8`` pixels of an opened Pillow image (16/32-bit gray scaled, alpha dropped)."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "F" and values.size and values.max() <= 1.0:
            values = values * 255.0
        elif mode != "F":
            values = values / 257.0
        gray = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("P", "PA") or (mode == "L" and "transparency" in image.info):
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_mask(
    path: str | os.PathLike,
    *,
    sky_value: int | Iterable[int] | None = None,
    exif_transpose: bool = True,
    sky_color: Sequence[int] | Iterable[Sequence[int]] | None = None,
    void_value: int | Iterable[int] | None = None,
) -> np.ndarray:
    """Reads a sky mask as a ``uint8`` array ``[H, W, 1]`` of ``1`` (sky) and ``0`` (other).

    With ``void_value``, pixels holding that value (or values) are unlabelled and come back as
    :data:`~skyseg_tf.data.spec.VOID_LABEL` (``2``); the other values are read as usual.

    Args:
        path: the mask file: a single-channel image (``1``, ``L``, ``P``, 16-bit), or an RGB(A)
            one whose colour channels are equal.
        sky_value: ``None`` for binary masks (``0``/``1``, ``0``/``255`` or ``0``/``65535``;
            JPEG masks are thresholded at 128), or the label or labels that mean sky in a label
            map (e.g. ``3`` for ADE20K); every other value is "other".
        exif_transpose: apply the file's EXIF orientation, as :func:`read_image` does.
        sky_color: for colour-coded label maps (8- or 16-bit RGB/RGBA PNG), the ``(r, g, b)``
            colour, or a list of colours, that means sky, in 8-bit units (e.g. ``(0, 128, 128)``
            for LabelMeFacade). 16-bit files are compared by the high byte of each channel;
            alpha is ignored. Excludes ``sky_value``.

    Returns:
        The mask.

    Raises:
        ValueError: if the file is no image, its channels differ, its values are not binary
            when ``sky_value`` is ``None`` (the message lists the values found), or
            ``sky_value`` or ``sky_color`` is given for a JPEG mask.

    A colour-coded label map whose colours do not include ``sky_color`` is read as "no sky";
    :func:`folder_dataset` checks that the colour occurs in the folder at all.

    Example:
        >>> import tempfile, os
        >>> import numpy as np
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "labels.png")
        >>> Image.fromarray(np.array([[3, 3], [5, 0]], np.uint8)).save(path)
        >>> read_mask(path, sky_value=3)[..., 0].tolist()
        [[1, 1], [0, 0]]
    """
    sky_values = _check_sky_value(sky_value)
    sky_colors = check_sky_color(sky_color)
    void_values = _check_sky_value(void_value, "void_value")
    if void_values is not None and sky_colors is not None:
        raise ValueError("read_mask: void_value works with masks of values (binary or label "
                         "maps), not with sky_color; pass void masks as their own folder instead.")
    if sky_values is not None and sky_colors is not None:
        raise ValueError(
            f"read_mask: received sky_value={sky_value!r} and sky_color={sky_color!r}; pass "
            "sky_value for label maps of class numbers or sky_color for colour-coded ones, not both."
        )
    path = pathlib.Path(path)
    lossy = path.suffix.lower() in LOSSY_EXTENSIONS
    if lossy and sky_values is not None:
        raise ValueError(_lossy_label_message([path.name], sky_value))
    if lossy and sky_colors is not None:
        raise ValueError(_lossy_label_message([path.name], sky_color, "sky_color"))
    if sky_colors is not None:
        colours = read_label_colors(path, exif_transpose=exif_transpose)
        return _colour_match(colours, sky_colors)[..., None]
    with _open(path, exif_transpose) as image:
        if image.mode == "1":
            return np.asarray(image, dtype=np.uint8)[..., None]
        values = np.asarray(image)
        mode = image.mode
    if values.ndim == 3:
        colour = values[..., :3] if mode in ("RGB", "RGBA", "RGBX") else values[..., :1]
        if mode not in ("RGB", "RGBA", "RGBX", "LA", "PA", "La"):
            raise ValueError(
                f"mask {path.name!r}: Pillow mode {mode!r} is not a mask format; save masks as "
                "single-channel (grayscale 'L', palette 'P' or 16-bit) PNG files."
            )
        if (colour != colour[..., :1]).any():
            raise ValueError(
                f"mask {path.name!r} is a colour image whose channels differ; masks must be "
                "single-channel. If sky is drawn in one colour, convert the file to a 0/255 "
                "grayscale PNG where sky is 255 (e.g. with numpy: (rgb == sky_rgb).all(-1) * 255)."
            )
        values = colour[..., 0]
    if void_values is not None:
        void = np.isin(values, void_values)
        values = np.where(void, 0, values)
        mask = _values_to_mask(path, values, sky_values, lossy)
        return np.where(void[..., None], np.uint8(spec.VOID_LABEL), mask)
    return _values_to_mask(path, values, sky_values, lossy)


def _values_to_mask(path, values, sky_values, lossy):
    """``uint8 [H, W, 1]`` 0/1 from the single-channel values of a mask file."""
    if sky_values is not None:
        return np.isin(values, sky_values).astype(np.uint8)[..., None]
    if lossy:
        return (values >= 128).astype(np.uint8)[..., None]
    found = np.unique(values)
    for high in (1, 255, 65535):
        if np.isin(found, (0, high)).all():
            return (values == high).astype(np.uint8)[..., None]
    shown = ", ".join(str(v) for v in found[:12].tolist()) + (", ..." if len(found) > 12 else "")
    raise ValueError(
        f"mask {path.name!r} holds {len(found)} distinct values ({shown}); with sky_value=None a "
        "mask must be binary: 0/1 or 0/255 (0 = other). If it is a label map, pass the label "
        "that means sky, one of those values: sky_value=<label> (ADE20K annotations use "
        "sky_value=3)."
    )


def folder_dataset(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    sky_value: int | Iterable[int] | None = None,
    image_extensions: Sequence[str] = IMAGE_EXTENSIONS,
    *,
    mask_extensions: Sequence[str] = MASK_EXTENSIONS,
    mask_suffix: str = "",
    validate: bool = True,
    exif_transpose: bool = True,
    split: str | None = None,
    sky_color: Sequence[int] | Iterable[Sequence[int]] | None = None,
    file_list: str | os.PathLike | Sequence[str] | None = None,
    void_masks: str | os.PathLike | None = None,
    void_value: int | Iterable[int] | None = None,
    split_group: str | None = None,
) -> tf.data.Dataset:
    """A ``tf.data`` source over a folder of photos and a folder of masks.

    Elements follow :data:`skyseg_tf.data.spec.ELEMENT_SPEC` (``H``, ``W`` vary), in the order
    of the image file names; ``file_name`` is the image's name. Pairs are found by
    :func:`find_image_mask_pairs`, pixels are read by :func:`read_image` and :func:`read_mask`
    when the dataset is iterated. A mask that is not binary or whose size differs from its
    image's then stops the iteration with a ``tf.errors.InvalidArgumentError`` whose message
    names the file (``validate=True`` finds size problems up front).

    Args:
        images_dir: directory of photos (``.jpg``, ``.jpeg``, ``.png`` by default).
        masks_dir: directory of masks with the same file names (any extension in
            ``mask_extensions``); may equal ``images_dir``, see :func:`find_image_mask_pairs`.
        sky_value: ``None`` for binary masks (``0``/``1`` or ``0``/``255``), or the label or
            labels that mean sky in label-map masks (e.g. ``3`` for ADE20K annotations).
        image_extensions: suffixes of image files.
        mask_extensions: suffixes of mask files.
        mask_suffix: what each mask's name adds to its image's (``"_mask"``: ``a_mask.png``).
        validate: read every file's header now and raise one ``ValueError`` listing unreadable
            files and images whose mask has another size (well under a millisecond per pair).
        exif_transpose: apply EXIF orientation to images and masks (photo viewers do).
        split: ``None`` or ``"all"`` for every pair, or ``"train"``, ``"validation"`` or
            ``"test"`` for the 60/20/20 part chosen by a stable hash of each image's file stem,
            the same rule as the ``ade20k_outdoors_sky`` TFDS builder (adding files never moves
            the others). Ignored when ``file_list`` is given (the list is the split).
        sky_color: the colour (or colours) of sky in colour-coded label maps, e.g.
            ``(0, 128, 128)``; see :func:`read_mask`. Checked up front: if no label map of the
            (first 50 of the) pairs holds it, a ``ValueError`` lists the colours found.
        file_list: only the images named in a text file (one name per line, with or without
            extension, e.g. a dataset's ``train.txt``; ``#`` comments and blank lines ignored),
            or in a list of names: a pre-made split. Names that match no image are an error.
        void_masks: a directory of void masks, one per photo with the same file stem (any
            extension in ``mask_extensions``): non-zero pixels are unlabelled and become
            :data:`~skyseg_tf.data.spec.VOID_LABEL`, which counts in no loss and no metric.
            Every photo needs one and every file needs a photo; sizes must match the photos'.
        void_value: the value (or values) of unlabelled pixels in the masks themselves, like
            ``ignore_index`` elsewhere: e.g. ``void_value=0`` with ``sky_value=3`` for ADE20K
            label maps, or ``void_value=128`` in 0/128/255 masks.
        split_group: a regular expression whose first group names the group a photo belongs
            to; photos of one group fall in one split (the hash is of the group, not the stem).
            E.g. ``"^([^_]+)_"`` keeps the rooms of one house (``101_kitchen.jpg``) together.
            Photos it does not match are hashed by their stem.

    Returns:
        A finite ``tf.data.Dataset`` of dicts with known cardinality.

    Raises:
        ValueError: for missing or empty directories, unmatched files, bad arguments, a
            ``sky_value`` or ``sky_color`` with JPEG masks, a ``sky_color`` found in no label
            map, names of ``file_list`` without an image, or (with ``validate``) unreadable
            files and size mismatches.

    Example:
        >>> import tempfile
        >>> from skyseg_tf.data.synthetic import write_synthetic_folder
        >>> root = write_synthetic_folder(tempfile.mkdtemp(), num_examples=2, image_size=(24, 40))
        >>> element = next(iter(folder_dataset(root / "images", root / "masks")))
        >>> element["image"].shape.as_list(), element["segmentation_mask"].dtype.name
        ([24, 40, 3], 'uint8')
    """
    sky_values = _check_sky_value(sky_value)
    sky_colors = check_sky_color(sky_color)
    if sky_values is not None and sky_colors is not None:
        raise ValueError(
            f"folder_dataset: received sky_value={sky_value!r} and sky_color={sky_color!r}; pass "
            "sky_value for label maps of class numbers or sky_color for colour-coded ones, not both."
        )
    void_values = _check_sky_value(void_value, "void_value")
    if void_values is not None and sky_values is not None and set(void_values) & set(sky_values):
        raise ValueError(f"void_value={void_value!r} and sky_value={sky_value!r} share values; a "
                         "label is either sky or void.")
    pairs = find_image_mask_pairs(
        images_dir, masks_dir, image_extensions=image_extensions,
        mask_extensions=mask_extensions, mask_suffix=mask_suffix,
    )
    # Void masks are matched (and, with validate, checked) against the whole folder.
    void_of = None if void_masks is None else dict(zip(
        [image for image, _ in pairs],
        find_void_masks([image for image, _ in pairs], void_masks, mask_extensions)))
    if file_list is not None:
        pairs = _select_listed(pairs, file_list, images_dir)
    else:
        pairs = select_split(pairs, split, images_dir, split_group)
    voids = None if void_of is None else [void_of[image] for image, _ in pairs]
    if sky_values is not None or sky_colors is not None:
        lossy = [m.name for _, m in pairs if m.suffix.lower() in LOSSY_EXTENSIONS]
        if lossy:
            if sky_colors is not None:
                raise ValueError(_lossy_label_message(lossy, sky_color, "sky_color"))
            raise ValueError(_lossy_label_message(lossy, sky_value))
    if validate:
        _validate_headers(pairs, exif_transpose)
        if void_of is not None:  # every void mask of the folder: a wrong one fails any split
            _validate_headers(list(void_of.items()), exif_transpose, what="void masks")
    if sky_colors is not None:
        _check_colour_present(pairs, sky_colors, sky_color, masks_dir)

    def load(image_path, mask_path, void_path):
        image_path, mask_path = image_path.decode("utf-8"), mask_path.decode("utf-8")
        void_path = void_path.decode("utf-8")
        image = read_image(image_path, exif_transpose=exif_transpose)
        mask = read_mask(mask_path, sky_value=sky_values, sky_color=sky_colors,
                         exif_transpose=exif_transpose, void_value=void_values)
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(_size_message([(image_path, image.shape[1::-1], mask_path,
                                              mask.shape[1::-1])]))
        void = None
        if void_path:
            void = read_void_mask(void_path, exif_transpose=exif_transpose)
            if void.shape[:2] != image.shape[:2]:
                raise ValueError(_size_message([(image_path, image.shape[1::-1], void_path,
                                                  void.shape[1::-1])], "void masks"))
        return spec.make_element(image, mask, image_path, void=void)

    @tf.autograph.experimental.do_not_convert
    def to_element(image_path, mask_path, void_path):
        return spec.numpy_element(load, [image_path, mask_path, void_path])

    image_paths = [str(image) for image, _ in pairs]
    mask_paths = [str(mask) for _, mask in pairs]
    void_paths = [""] * len(pairs) if voids is None else [str(v) for v in voids]
    return tf.data.Dataset.from_tensor_slices((image_paths, mask_paths, void_paths)).map(
        to_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def select_split(items, split, images_dir, split_group=None):
    """The items (paths, or tuples whose first entry is the image path) of one split.

    ``split`` is ``None`` or ``"all"`` (every item), or one of :data:`SPLITS`: the 60/20/20 part
    chosen by :func:`tfds_ade20k_outdoors.split_for_file_name` of each image's stem, or of its
    group when ``split_group`` (a regular expression whose first group names the group) matches.

    Example:
        >>> import pathlib
        >>> from tfds_ade20k_outdoors import split_for_file_name
        >>> rooms = [pathlib.Path(f"7_{room}.jpg") for room in ("bath", "bed", "kitchen")]
        >>> house_split = split_for_file_name("7")  # every room of house 7 falls in its split
        >>> len(select_split(rooms, house_split, ".", split_group=r"^([^_]+)_"))
        3
    """
    from tfds_ade20k_outdoors import split_for_file_name

    if split is None or split == "all":
        return list(items)
    if split not in SPLITS:
        raise ValueError(f"split must be None, 'all' or one of {', '.join(SPLITS)}; received "
                         f"{split!r}.")
    pattern = None
    if split_group is not None:
        try:
            pattern = re.compile(split_group)
        except (re.error, TypeError) as error:
            raise ValueError(f"split_group: {split_group!r} is not a regular expression ({error}); "
                             r"pass one whose first group names the group, e.g. '^([^_]+)_'.") from None
        if pattern.groups < 1:
            raise ValueError(f"split_group: {split_group!r} has no group; put the part that names "
                             r"the group in parentheses, e.g. '^([^_]+)_'.")

    def key(item):
        path = pathlib.Path(item[0] if isinstance(item, tuple) else item)
        match = pattern.search(path.stem) if pattern is not None else None
        return match.group(1) if match and match.group(1) else path.name

    chosen = [item for item in items if split_for_file_name(key(item)) == split]
    if not chosen:
        raise ValueError(
            f"No image of {images_dir} falls in the {split!r} split ({len(items)} image(s) in all; "
            "the split is 60/20/20 by a hash of the file name). Add images, pass split='all', or "
            "pass the folders of each split separately."
        )
    return chosen


def find_void_masks(images, void_dir, extensions=MASK_EXTENSIONS) -> list[pathlib.Path]:
    """The void mask of each image (same stem) in ``void_dir``, checked both ways.

    Raises:
        ValueError: naming the images without a void mask and the void masks without an image.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("L", (4, 4)).save(root / "a.png")
        >>> [p.name for p in find_void_masks([pathlib.Path("photos/a.jpg")], root)]
        ['a.png']
    """
    void_dir = _check_dir(pathlib.Path(void_dir), "void_masks")
    files = _files_by_stem(void_dir, _check_extensions(extensions, "mask_extensions"), "void_masks")
    stems = {pathlib.Path(image).stem for image in images}
    lonely_images = sorted(pathlib.Path(i).name for i in images if pathlib.Path(i).stem not in files)
    lonely_voids = sorted(path.name for stem, path in files.items() if stem not in stems)
    problems = []
    if lonely_images:
        problems.append(f"{len(lonely_images)} of {len(images)} photos have no void mask in "
                        f"{str(void_dir)!r}: {_some(lonely_images)}")
    if lonely_voids:
        problems.append(f"{len(lonely_voids)} of {len(files)} void masks in {str(void_dir)!r} "
                        f"have no photo: {_some(lonely_voids)}")
    if problems:
        raise ValueError(
            "; ".join(problems) + ". A void mask pairs with the photo of the same file name "
            "without extension; give every photo one (all zero where nothing is void) and remove "
            "the others."
        )
    return [files[pathlib.Path(image).stem] for image in images]


def read_void_mask(path: str | os.PathLike, *, exif_transpose: bool = True) -> np.ndarray:
    """Reads a void mask: ``bool [H, W, 1]``, true where the file is non-zero (JPEG: >= 128).

    Example:
        >>> import tempfile, os
        >>> import numpy as np
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "void.png")
        >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save(path)
        >>> read_void_mask(path)[..., 0].tolist()
        [[False, True]]
    """
    with _open(path, exif_transpose) as image:
        values = np.asarray(image.convert("L") if image.mode in ("RGB", "RGBA", "P", "LA", "PA")
                            else image)
    if values.ndim == 3:
        values = values[..., 0]
    lossy = pathlib.Path(path).suffix.lower() in LOSSY_EXTENSIONS
    return ((values >= 128) if lossy else (values > 0))[..., None]


def check_sky_color(sky_color) -> np.ndarray | None:
    """Returns ``None`` or an ``int32 [N, 3]`` array of 8-bit RGB colours, else raises.

    Example:
        >>> check_sky_color((0, 128, 128)).tolist()
        [[0, 128, 128]]
    """
    if sky_color is None:
        return None
    if isinstance(sky_color, str):
        parts = [p for p in re.split(r"[\s,:;/]+", sky_color.strip()) if p]
        try:
            sky_color = [int(p) for p in parts]
        except ValueError:
            sky_color = None
    try:
        colours = np.asarray(sky_color, dtype=object)
        if colours.ndim == 1:
            colours = colours[None]
        valid = colours.ndim == 2 and colours.shape[1] == 3 and colours.shape[0] > 0 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255
            for v in colours.ravel())
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"sky_color: received {sky_color!r}; pass the (r, g, b) colour of sky in a "
            "colour-coded label map as three ints in [0, 255], e.g. sky_color=(0, 128, 128) for "
            "LabelMeFacade (16-bit maps are compared by their high byte), or a list of such colours."
        )
    return colours.astype(np.int32)


def read_label_colors(path: str | os.PathLike, *, exif_transpose: bool = True) -> np.ndarray:
    """Reads a colour-coded label map as ``uint8 [H, W, 3]`` RGB (16-bit: the high bytes).

    Pillow reads 16-bit RGB(A) PNGs as 8-bit by keeping each channel's high byte, which is the
    comparison label maps such as LabelMeFacade's need (``tests/test_folder.py`` checks it).

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "labels.png")
        >>> Image.new("RGB", (2, 1), (0, 128, 128)).save(path)
        >>> read_label_colors(path).tolist()
        [[[0, 128, 128], [0, 128, 128]]]
    """
    with _open(path, exif_transpose) as image:
        mode = image.mode
        if mode in ("RGB", "RGBA", "RGBX"):
            return np.asarray(image, dtype=np.uint8)[..., :3]
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "L", "P", "LA", "PA"):
            if mode in ("P", "PA"):
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
            values = np.asarray(image)
            if values.ndim == 3:
                values = values[..., 0]
            if mode != "L":
                values = values >> 8
            return np.repeat(values.astype(np.uint8)[..., None], 3, axis=-1)
    raise ValueError(
        f"label map {pathlib.Path(path).name!r}: Pillow mode {mode!r} is not a colour-coded label "
        "map; sky_color needs RGB or RGBA PNG files (8- or 16-bit)."
    )


def _colour_match(colours: np.ndarray, sky_colors: np.ndarray) -> np.ndarray:
    """``uint8 [H, W]``: 1 where the pixel's colour is one of ``sky_colors``."""
    packed = (colours[..., 0].astype(np.int32) << 16) | (colours[..., 1].astype(np.int32) << 8) \
        | colours[..., 2].astype(np.int32)
    keys = (sky_colors[:, 0] << 16) | (sky_colors[:, 1] << 8) | sky_colors[:, 2]
    return np.isin(packed, keys).astype(np.uint8)


def label_colors_found(paths: Sequence[str | os.PathLike], *, limit: int = 12) -> list[tuple[int, int, int]]:
    """The distinct colours of some label maps, most frequent first (for error messages)."""
    counts: dict = {}
    for path in paths:
        colours = read_label_colors(path)[::4, ::4].reshape(-1, 3)
        unique, number = np.unique(colours, axis=0, return_counts=True)
        for colour, n in zip(map(tuple, unique.tolist()), number.tolist()):
            counts[colour] = counts.get(colour, 0) + n
    return [c for c, _ in sorted(counts.items(), key=lambda item: -item[1])][:limit]


_COLOUR_CHECK_FILES = 50
"""How many label maps :func:`folder_dataset` reads up front to check that ``sky_color`` occurs."""


def _check_colour_present(pairs, sky_colors, sky_color, masks_dir):
    """Raises if none of the first label maps holds a sky colour (a wrong colour, not no sky)."""
    sample = [mask for _, mask in pairs[:_COLOUR_CHECK_FILES]]
    for mask in sample:
        if _colour_match(read_label_colors(mask)[::2, ::2], sky_colors).any():
            return
    found = ", ".join(str(c) for c in label_colors_found(sample[:10]))
    raise ValueError(
        f"sky_color={sky_color!r} occurs in none of the {len(sample)} label maps checked in "
        f"{str(masks_dir)!r} (e.g. {sample[0].name!r}); their colours are {found}. Pass the colour "
        "that marks sky, one of those (8-bit units; 16-bit maps are compared by the high byte), "
        "or sky_value=... for label maps of class numbers."
    )


def read_file_list(file_list: str | os.PathLike | Sequence[str]) -> list[str]:
    """Names from a split file (one per line, ``#`` comments and blank lines skipped) or a list.

    Example:
        >>> read_file_list(["a.jpg", "b"])
        ['a.jpg', 'b']
    """
    if isinstance(file_list, (str, os.PathLike)):
        path = pathlib.Path(file_list)
        if not path.is_file():
            raise ValueError(
                f"file_list: {str(path)!r} does not exist. Pass a text file with one image name "
                "per line (e.g. the dataset's train.txt), or a list of names."
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        names = [line.split("#", 1)[0].strip() for line in lines]
        names = [name for name in names if name]
        if not names:
            raise ValueError(f"file_list: {str(path)!r} names no image (it is empty).")
        return names
    if not isinstance(file_list, collections.abc.Sequence) or not all(
            isinstance(n, str) for n in file_list) or not file_list:
        raise ValueError(f"file_list: received {file_list!r}; pass a split file path or a "
                         "non-empty list of image names.")
    return list(file_list)


def _select_listed(pairs, file_list, images_dir):
    names = read_file_list(file_list)
    by_name = {image.name: (image, mask) for image, mask in pairs}
    by_stem = {image.stem: (image, mask) for image, mask in pairs}
    chosen, missing = [], []
    for name in names:
        stem = pathlib.PurePath(name).name
        pair = by_name.get(stem) or by_stem.get(stem) or by_stem.get(pathlib.PurePath(stem).stem)
        (chosen.append(pair) if pair else missing.append(name))
    if missing:
        raise ValueError(
            f"file_list: {len(missing)} of {len(names)} names match no image with a mask in "
            f"{str(images_dir)!r}: {_some(missing)}. Fix the list or the folder."
        )
    return sorted(set(chosen), key=lambda pair: pair[0].name)


def _open(path, exif_transpose, min_size=None):
    """Opens an image with Pillow (EXIF orientation applied), with an error naming the file.

    ``path`` may be a binary file object. With ``min_size``, a JPEG is decoded at the smallest
    DCT scale covering it, and the full displayed ``(height, width)`` is left in
    ``image.info[_FULL_SIZE_KEY]``.
    """
    named = isinstance(path, (str, os.PathLike))
    name = str(path) if named else str(getattr(path, "name", "<bytes>"))
    full_size = None
    try:
        image = Image.open(pathlib.Path(path) if named else path)
        if min_size is not None and image.format == "JPEG":
            width, height = image.size
            swap = exif_transpose and image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS
            full_size = (width, height) if swap else (height, width)
            wanted = min_size(full_size) if callable(min_size) else min_size
            if wanted is not None:
                want_h, want_w = wanted
                image.draft(image.mode, (want_h, want_w) if swap else (want_w, want_h))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{name!r} cannot be read as an image ({error}). Remove or replace the file."
        ) from None
    if exif_transpose:
        transposed = ImageOps.exif_transpose(image)
        if transposed is not image:
            image.close()
            image = transposed
    if full_size is not None:
        image.info[_FULL_SIZE_KEY] = full_size
    return image


def _check_dir(path: pathlib.Path, name: str) -> pathlib.Path:
    if not path.exists():
        raise ValueError(f"{name}: {str(path)!r} does not exist. Pass the directory that holds "
                         f"the {'images' if name == 'images_dir' else 'masks'}.")
    if not path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a file, not a directory. Pass its directory.")
    return path


def _check_extensions(extensions, name: str) -> tuple[str, ...]:
    if isinstance(extensions, str) or not extensions or not all(
            isinstance(e, str) and e.startswith(".") for e in extensions):
        raise ValueError(
            f"{name}: received {extensions!r}; pass a tuple of suffixes that start with a dot, "
            "e.g. ('.jpg', '.png')."
        )
    return tuple(e.lower() for e in extensions)


def _check_sky_value(sky_value, argument="sky_value"):
    """Returns ``None`` or a tuple of non-negative ints."""
    if sky_value is None:
        return None
    values = [sky_value] if isinstance(sky_value, (int, np.integer)) else sky_value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if not values or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 65535
        for v in values
    ):
        if argument != "sky_value":
            raise ValueError(f"{argument}: received {sky_value!r}; pass the label of unlabelled "
                             "pixels as an int in [0, 65535] (e.g. 0 for ADE20K), or a tuple.")
        raise ValueError(
            f"sky_value: received {sky_value!r}; pass None for binary 0/1 or 0/255 masks, or the "
            "sky label of a label-map mask as an int in [0, 65535] (e.g. sky_value=3 for "
            "ADE20K), or a tuple of such labels."
        )
    return tuple(int(v) for v in values)


def _files_by_stem(directory, extensions, name, keep=None, skip=frozenset()):
    """Maps file stem to path for the files with these extensions, rejecting stems seen twice."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in extensions or path in skip:
            continue
        if keep is not None and not keep(path.stem):
            continue
        if not path.is_file():
            continue
        if path.stem in files:
            raise ValueError(
                f"{name}: {files[path.stem].name!r} and {path.name!r} in {str(directory)!r} have "
                "the same name without extension, so the match is ambiguous. Remove or rename "
                "one of them."
            )
        files[path.stem] = path
    return files


def _some(names):
    shown = ", ".join(repr(n) for n in names[:_SHOW])
    return shown + (f" and {len(names) - _SHOW} more" if len(names) > _SHOW else "")


def _lossy_label_message(names, sky_value, argument="sky_value"):
    return (
        f"{argument}={sky_value!r} needs lossless masks, but {len(names)} masks are JPEG "
        f"({_some(names)}): JPEG compression changes label values. Save the label maps as PNG, "
        f"or, for 0/255 JPEG masks, pass {argument}=None."
    )


def _size_message(mismatches, what="masks"):
    lines = [
        f"{pathlib.Path(image).name!r} is {iw}x{ih} but its {what[:-1]} {pathlib.Path(mask).name!r} is "
        f"{mw}x{mh}"
        for image, (iw, ih), mask, (mw, mh) in mismatches[:_SHOW]
    ]
    more = f" and {len(mismatches) - _SHOW} more" if len(mismatches) > _SHOW else ""
    return (
        f"{len(mismatches)} {what} differ in size from their images (width x height): "
        f"{'; '.join(lines)}{more}. A mask must have its image's size; resize the {what} with "
        "nearest-neighbour interpolation (or re-export them) to match."
    )


def _header_size(path, exif_transpose):
    """Width and height as displayed, from the file header (no pixel decoding)."""
    with Image.open(path) as image:
        width, height = image.size
        if exif_transpose and image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
    return width, height


def _validate_headers(pairs, exif_transpose, what="masks"):
    unreadable, mismatches = [], []
    for image_path, mask_path in pairs:
        sizes = []
        for path in (image_path, mask_path):
            try:
                sizes.append(_header_size(path, exif_transpose))
            except (UnidentifiedImageError, OSError) as error:
                unreadable.append((path.name, f"{type(error).__name__}: {error}"))
        if len(sizes) == 2 and sizes[0] != sizes[1]:
            mismatches.append((image_path, sizes[0], mask_path, sizes[1]))
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} files cannot be read as images: "
            f"{_some([name for name, _ in unreadable])} (the first: {unreadable[0][1]}). Remove "
            "or replace them."
        )
    if mismatches:
        raise ValueError(_size_message(mismatches, what))
