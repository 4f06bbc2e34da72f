"""The ``tf.data`` input pipeline: source -> resize or crop -> cache -> shuffle -> augment -> batch.

:func:`load_source` turns a *source spec* into a ``tf.data.Dataset`` of element dicts (see
:mod:`skyseg_tf.data.spec`); :func:`make_dataset` turns a source spec into batches ready for
``model.fit``: ``(images float32 [B, h, w, 3] in [0, 255], masks float32 [B, h, w, 1] in {0, 1, 2})``, where
``2`` (:data:`~skyseg_tf.data.spec.VOID_LABEL`) marks unlabelled pixels that count in no loss
and no metric.
Models take raw RGB; normalisation for the encoder is a layer inside the model.

Source specs (what ``source`` may be):

* ``"synthetic"``: rendered scenes (:func:`synthetic_sky`, whose 60/20/20 partition gives the
  splits); keyword arguments ``num_examples`` (all splits together), ``image_size`` (render
  size), ``seed``.
* ``"ade20k_outdoors_sky"`` or ``"ade20k_outdoors_sky/<config>"``: the TFDS dataset through
  ``tfds.load``; keyword arguments ``data_dir``, ``download`` and the other ``tfds.load``
  arguments.
* ``("folder", images_dir, masks_dir)``: an image folder (:func:`folder_dataset`); keyword
  arguments such as ``sky_value`` go to ``folder_dataset``.
* A dict with a ``"type"``, as a config file would hold it: ``{"type": "folder", "images": ...,
  "masks": ...}``, ``{"type": "synthetic", ...}`` or ``{"type": "tfds", "name": ...}``; every
  other key is a keyword argument. ``"tfds"`` takes any TFDS name whose elements follow the
  element contract.
* A ``tf.data.Dataset`` of element dicts, used as it is.
* ``{"type": "mix", "sources": [spec, ...], "weights": [w, ...]}``: several sources in one
  pipeline. Each is resized (and, when training, cropped, cached and repeated) on its own, then
  ``tf.data.Dataset.sample_from_datasets`` draws from them with the weights (e.g. ``[0.7, 0.3]``
  for 70% real photos, 30% synthetic scenes); the mix is infinite when training, so pass
  ``steps_per_epoch``. Evaluation concatenates the sources, except those whose spec says
  ``"validate": false``. A source spec in ``sources`` may carry its own ``"weight"`` instead.

Example:
    >>> ds = make_dataset("synthetic", "train", image_size=(64, 64), global_batch_size=4,
    ...                   num_examples=10, seed=0)
    >>> images, masks = next(iter(ds))
    >>> images.shape.as_list(), masks.dtype.name
    ([4, 64, 64, 3], 'float32')
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import os
import re
import warnings
from typing import Any, Callable, Sequence

import tensorflow as tf

from skyseg_tf.data.augment import (
    TFAugment,
    _check_image_size,
    _check_scale_range,
    albumentations_augment,
    tf_augment,
    wrap_albumentations,
)
from skyseg_tf.data.folder import folder_dataset
from skyseg_tf.data.lens_view import VIEWS, fisheye_view_seeded
from skyseg_tf.data.negatives import negatives_dataset
from skyseg_tf.data.spec import FILE_NAME_KEY, IMAGE_KEY, MASK_KEY, VOID_LABEL
from skyseg_tf.data.synthetic import synthetic_sky
from skyseg_tf import checks
from skyseg_tf.data.sources import parse_source
from skyseg_tf.image_ops import resize_images
from skyseg_tf.preprocessing import RESIZE_MODES  # noqa: F401  (values of make_dataset(resize_mode=...))

VALID_SPLITS = ("train", "validation", "test")
"""Split names; TFDS sources also take slices and sums of them (``"train[:90%]"``)."""

AUGMENT_NAMES = ("tf", "albumentations")
"""Names accepted by ``make_dataset(augment=...)``; see :mod:`skyseg_tf.data.augment`."""

DEFAULT_SCALE_RANGE = (1.0, 1.6)
"""Scale jitter of ``resize_mode="short_side"`` when training: the shorter side is resized to
``min(image_size) * s`` with ``s`` drawn uniformly from this range, then a window is cropped."""

DEFAULT_SHUFFLE_BUFFER = 256
"""Shuffle buffer of :func:`make_dataset`, in elements (about 50 MB at 256 x 256)."""

SIZE_MULTIPLE = 32
"""Encoders downsample by 32; image sizes that are not multiples of it get a warning."""



# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _split_parts(split: Any) -> list[tuple[str, bool]]:
    """Returns ``[(base_name, is_sliced), ...]`` for a split string, or raises ValueError."""
    if not isinstance(split, str) or not split.strip():
        raise ValueError(
            f"split must be a string, one of {', '.join(map(repr, VALID_SPLITS))} (TFDS sources "
            f"also take slices such as 'train[:90%]'), received {split!r}."
        )
    parts = []
    for part in split.split("+"):
        match = re.fullmatch(r"\s*([A-Za-z_]+)\s*(\[.*\])?\s*", part)
        if match is None or match.group(1) not in VALID_SPLITS:
            raise ValueError(
                f"split {split!r} is not valid: each part must be one of "
                f"{', '.join(map(repr, VALID_SPLITS))}, optionally sliced for TFDS sources "
                f"('train[:90%]', 'train+validation')."
            )
        parts.append((match.group(1), match.group(2) is not None))
    return parts


def _derive_seed(seed: int | None, stream: int) -> int | None:
    """A distinct seed per random stream (shuffle, crop, augment), or None."""
    if seed is None:
        return None
    return (seed * 1_000_003 + stream * 0x9E3779B1) % 2**63


def _check_element_spec(dataset: tf.data.Dataset, where: str) -> None:
    spec = dataset.element_spec
    if not isinstance(spec, collections.abc.Mapping) or not {IMAGE_KEY, MASK_KEY} <= set(spec):
        raise ValueError(
            f"{where} must yield dicts with the keys {IMAGE_KEY!r} (uint8 [H, W, 3]) and "
            f"{MASK_KEY!r} (uint8 [H, W, 1], 1 = sky); received elements of spec {spec!r}. "
            "See skyseg_tf.data.spec."
        )
    for key, channels in ((IMAGE_KEY, 3), (MASK_KEY, 1)):
        tensor_spec = spec[key]
        shape = tensor_spec.shape
        if tensor_spec.dtype != tf.uint8 or shape.rank != 3 or shape[-1] not in (None, channels):
            raise ValueError(
                f"{where}: {key!r} must be uint8 [H, W, {channels}], received "
                f"{tensor_spec.dtype.name} {shape}."
            )


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _call_checked(function: Callable, what: str, *args: Any, **kwargs: Any):
    """Calls ``function``, first turning unknown keyword arguments into a clear TypeError."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        parameters = [
            name for name, p in inspect.signature(function).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ][len(args):]
        raise TypeError(f"{what}: {error}; valid keyword arguments are {parameters}.") from None
    return function(*args, **kwargs)


FOLDER_KINDS = ("folder", "negatives")
"""Source kinds that also take ``split="all"`` (every photo of the folder)."""


def _load(kind: str, arguments: dict[str, Any], split: str) -> tf.data.Dataset:
    if split == "all":  # folder_dataset and negatives_dataset read every photo for it
        if kind not in FOLDER_KINDS:
            raise ValueError(f"split 'all' scores every photo of a folder source; the {kind!r} source "
                             f"takes one of {', '.join(map(repr, VALID_SPLITS))}.")
    else:
        parts = _split_parts(split)  # also checks the split names of TFDS sources
    if split != "all" and kind != "tfds" and (len(parts) > 1 or parts[0][1]):
        raise ValueError(
            f"split {split!r}: slices and sums of splits only work with TFDS sources; "
            f"the {kind!r} source takes one of {', '.join(map(repr, VALID_SPLITS))}."
        )
    if kind == "dataset":
        dataset = arguments["dataset"]
    elif kind == "synthetic":
        dataset = _call_checked(synthetic_sky, "the 'synthetic' source", split=split, **arguments)
    elif kind == "folder":
        if "split" in inspect.signature(folder_dataset).parameters:
            arguments.setdefault("split", split)
        dataset = _call_checked(folder_dataset, "the 'folder' source", **arguments)
    elif kind == "negatives":
        arguments.setdefault("split", split)
        dataset = _call_checked(negatives_dataset, "the 'negatives' source", **arguments)
    else:  # tfds
        import tensorflow_datasets as tfds  # only TFDS sources need it

        name = arguments.pop("name")
        dataset = _call_checked(tfds.load, f"the TFDS source {name!r}", name, split=split,
                                **arguments)
    _check_element_spec(dataset, f"the {kind!r} source")
    return dataset


def load_source(source: Any, split: str, **kwargs: Any) -> tf.data.Dataset:
    """Loads a data source as a ``tf.data.Dataset`` of element dicts (unbatched, unresized).

    Args:
        source: a source spec, one of (see the module docstring for details):
            ``"synthetic"``; ``"ade20k_outdoors_sky"`` or ``"ade20k_outdoors_sky/<config>"``;
            ``("folder", images_dir, masks_dir)``; a dict with a ``"type"`` of ``"folder"``
            (keys ``images``, ``masks``), ``"synthetic"`` or ``"tfds"`` (key ``name``); or a
            ``tf.data.Dataset`` of element dicts, returned as it is.
        split: ``"train"``, ``"validation"`` or ``"test"``; TFDS sources also take slices and
            sums (``"train[:90%]"``, ``"train+validation"``).
        **kwargs: arguments of the source: ``num_examples``, ``image_size`` (render size),
            ``seed`` for ``"synthetic"``; ``data_dir``, ``download``, ``shuffle_files``,
            ``read_config``... for TFDS (``tfds.load``); ``folder_dataset`` arguments (e.g.
            ``sky_value``) for folders.

    Returns:
        A dataset of dicts ``{"image": uint8 [H, W, 3], "segmentation_mask": uint8 [H, W, 1],
        "file_name": string, "sky_fraction": float32}``.

    Raises:
        ValueError: for an unknown source spec (the message lists the valid forms), an invalid
            split, or a dataset whose elements do not follow the element contract.
        TypeError: for a keyword argument that the source does not take.

    Example:
        >>> ds = load_source("synthetic", "validation", num_examples=5, image_size=(32, 48))
        >>> element = next(iter(ds))
        >>> element["image"].shape.as_list(), element["segmentation_mask"].dtype.name
        ([32, 48, 3], 'uint8')
    """
    kind, arguments = parse_source(source, kwargs)
    return _load(kind, arguments, split)


# --------------------------------------------------------------------------------------------
# Per-element steps
# --------------------------------------------------------------------------------------------


def standard_mask(mask: tf.Tensor) -> tf.Tensor:
    """A source's mask as ``uint8`` ``0`` (other), ``1`` (sky), :data:`VOID_LABEL` (void).

    ``VOID_LABEL`` stays void; every other non-zero value is sky (so ``0``/``255`` masks work).

    Example:
        >>> standard_mask(tf.constant([0, 1, 2, 255], tf.uint8)).numpy().tolist()
        [0, 1, 2, 1]
    """
    void = tf.equal(mask, tf.cast(VOID_LABEL, mask.dtype))
    return tf.where(void, tf.cast(VOID_LABEL, tf.uint8), tf.cast(mask > 0, tf.uint8))


def _resize(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int]):
    """Bilinear (antialiased when shrinking) for the image, nearest for the mask; uint8 out."""

    def resize():
        resized = tf.cast(resize_images(image, size), tf.uint8)
        return resized, tf.image.resize(mask, size, method="nearest")

    static = image.shape[:2]
    if static.is_fully_defined() and tuple(static) == size:
        return image, mask
    if static.is_fully_defined():
        new_image, new_mask = resize()
    else:
        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
        new_image, new_mask = tf.cond(same, lambda: (image, mask), resize)
    return tf.ensure_shape(new_image, [*size, 3]), tf.ensure_shape(new_mask, [*size, 1])


def _random_crop_or_pad(image: tf.Tensor, mask: tf.Tensor, size: tuple[int, int], seed):
    """Pads (centred, zeros) up to ``size`` where smaller, then crops a random ``size`` window."""
    both = tf.concat([image, mask], axis=-1)
    shape = tf.shape(both)
    pad_h = tf.maximum(size[0] - shape[0], 0)
    pad_w = tf.maximum(size[1] - shape[1], 0)
    paddings = [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2], [0, 0]]
    both = tf.pad(both, paddings)
    both = tf.image.stateless_random_crop(both, [size[0], size[1], 4], seed=seed)
    return both[..., :3], both[..., 3:]


def _short_side_size(shape: tf.Tensor, short_side: tf.Tensor) -> tf.Tensor:
    """``[height, width]`` int32 with the shorter side ``short_side``, aspect ratio kept."""
    hw = tf.cast(shape[:2], tf.float32)
    scale = tf.cast(short_side, tf.float32) / tf.reduce_min(hw)
    return tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), 1)


def _resize_to(image: tf.Tensor, mask: tf.Tensor, size: tf.Tensor):
    """Resizes to a dynamic ``[height, width]`` (bilinear, antialiased; nearest for the mask)."""
    resized = tf.cast(resize_images(image, size), tf.uint8)
    return resized, tf.image.resize(mask, size, method="nearest")


def _limit_short_side(image: tf.Tensor, mask: tf.Tensor, limit: int):
    """Shrinks an element whose shorter side exceeds ``limit`` (what the cache keeps)."""
    shape = tf.shape(image)
    return tf.cond(
        tf.reduce_min(shape[:2]) > limit,
        lambda: _resize_to(image, mask, _short_side_size(shape, limit)),
        lambda: (image, mask),
    )


def _short_side_crop(image, mask, size, seed, scale_range):
    """Training view: shorter side to ``min(size) * s`` (``s`` random), then a random window."""
    low, high = scale_range
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    s = tf.random.stateless_uniform([], seeds[0], low, high)
    target = tf.cast(tf.round(min(size) * s), tf.int32)
    image, mask = _resize_to(image, mask, _short_side_size(tf.shape(image), target))
    image, mask = _random_crop_or_pad(image, mask, size, seeds[1])
    return tf.ensure_shape(image, [*size, 3]), tf.ensure_shape(mask, [*size, 1])


def _short_side_centre(image, mask, size):
    """Evaluation view: shorter side to ``min(size)``, then the centred ``size`` window."""
    image, mask = _resize_to(image, mask, _short_side_size(tf.shape(image), min(size)))
    image = tf.image.resize_with_crop_or_pad(image, size[0], size[1])
    mask = tf.image.resize_with_crop_or_pad(mask, size[0], size[1])
    return tf.ensure_shape(image, [*size, 3]), tf.ensure_shape(mask, [*size, 1])


def _stateless_seed(random_int: tf.Tensor) -> tf.Tensor:
    """A shape [2] stateless seed from one int64 drawn by ``tf.data.Dataset.random``."""
    return tf.stack([random_int, tf.constant(0, tf.int64)])


def _with_random(dataset: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    """Zips each element with an int64 that is reproducible for a seed and new each epoch."""
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, randoms))


def _is_albumentations(augment: Any) -> bool:
    module = type(augment).__module__ or ""
    return module.split(".")[0] == "albumentations"


def _indexed_cache(cache, index):
    """A mix's sources each get their own file cache (``<prefix>_<index>``)."""
    if cache is True or not cache:
        return cache
    return f"{os.fspath(cache)}_{index}"


def _element_stage(kind, arguments, split, *, size, training, shuffle, shuffle_buffer, cache,
                   seed, resize_mode, scale_range, with_file_names, repeat, view="photo"):
    """load -> resize (or limit) -> cache -> shuffle -> repeat -> crop -> view: uint8 elements."""
    if kind == "synthetic":
        arguments.setdefault("image_size", size)
    elif kind == "tfds":
        arguments.setdefault("shuffle_files", shuffle)
        if seed is not None and "read_config" not in arguments:
            import tensorflow_datasets as tfds

            arguments["read_config"] = tfds.ReadConfig(shuffle_seed=_derive_seed(seed, 0))
    dataset = _load(kind, arguments, split)
    if with_file_names and FILE_NAME_KEY not in dataset.element_spec:
        raise ValueError(f"with_file_names=True needs elements with a {FILE_NAME_KEY!r} key.")

    autotune = tf.data.AUTOTUNE
    crop = training and resize_mode == "crop"
    jitter = training and resize_mode == "short_side"
    # What the cache keeps of a short-side training element: enough for the largest scale.
    limit = int(math.ceil(min(size) * scale_range[1]))

    def standardise(element):
        image = element[IMAGE_KEY]
        # The contract says 1 = sky, VOID_LABEL = unlabelled; any other non-zero value is sky,
        # so 0/255 masks work too.
        mask = standard_mask(element[MASK_KEY])
        if jitter:
            image, mask = _limit_short_side(image, mask, limit)
        elif resize_mode == "short_side":
            image, mask = _short_side_centre(image, mask, size)
        elif not crop:
            image, mask = _resize(image, mask, size)
        names = (element[FILE_NAME_KEY],) if with_file_names else ()
        return (image, mask, *names)

    dataset = dataset.map(standardise, num_parallel_calls=autotune)
    if cache is True:
        dataset = dataset.cache()
    elif cache:
        path = os.fspath(cache)
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        dataset = dataset.cache(path)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=_derive_seed(seed, 1),
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    if crop or jitter:
        def random_crop(element, random_int):
            if jitter:
                image, mask = _short_side_crop(element[0], element[1], size,
                                               _stateless_seed(random_int), scale_range)
            else:
                image, mask = _random_crop_or_pad(element[0], element[1], size,
                                                  _stateless_seed(random_int))
            return (image, mask, *element[2:])

        dataset = _with_random(dataset, _derive_seed(seed, 2)).map(
            random_crop, num_parallel_calls=autotune)
    if view == "fisheye":
        dataset = _fisheye_stage(dataset, size, seed, training)
    return dataset


def _fisheye_stage(dataset: tf.data.Dataset, size, seed, training: bool) -> tf.data.Dataset:
    """Every element seen through a random fisheye lens (:func:`~skyseg_tf.data.lens_view.fisheye_view`):
    new lenses each training epoch; the same lens per element in every evaluation pass."""
    def warp(element, random_int):
        image, mask = tf.numpy_function(fisheye_view_seeded, [element[0], element[1], random_int],
                                        [tf.uint8, tf.uint8], stateful=False)
        image = tf.ensure_shape(image, [*size, 3])
        mask = tf.ensure_shape(mask, [*size, 1])
        return (image, mask, *element[2:])

    if training:
        dataset = _with_random(dataset, _derive_seed(seed, 6))
    else:
        randoms = tf.data.Dataset.random(seed=_derive_seed(0 if seed is None else seed, 6),
                                         rerandomize_each_iteration=False)
        dataset = tf.data.Dataset.zip((dataset, randoms))
    return dataset.map(warp, num_parallel_calls=tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# make_dataset
# --------------------------------------------------------------------------------------------


def make_dataset(
    source: Any,
    split: str,
    image_size: int | Sequence[int],
    global_batch_size: int,
    *,
    augment: str | Callable | bool | None = None,
    cache: bool | str | os.PathLike = False,
    shuffle: bool | None = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    deterministic: bool | None = None,
    seed: int | None = None,
    resize_mode: str = "resize",
    scale_range: Sequence[float] = DEFAULT_SCALE_RANGE,
    drop_remainder: bool | None = None,
    repeat: bool = False,
    training: bool | None = None,
    with_file_names: bool = False,
    options: tf.data.Options | None = None,
    view: str = "photo",
    **source_kwargs: Any,
) -> tf.data.Dataset:
    """Builds the batched input pipeline for training or evaluation.

    Steps: load the source (sources yield decoded ``uint8`` images) -> resize to ``image_size``
    (bilinear with antialiasing for images, nearest for masks), or with ``resize_mode="crop"``
    a random crop (zero-padded where the image is smaller) when training -> cache -> shuffle ->
    repeat -> augment -> batch -> prefetch. Maps run with ``num_parallel_calls=AUTOTUNE``.

    **Augmentation.** ``augment=None`` means ``"tf"`` when training and none otherwise. ``"tf"``
    is :func:`~skyseg_tf.data.augment.tf_augment` applied to whole batches (vectorised, stateless
    random ops); ``"albumentations"`` is :func:`~skyseg_tf.data.augment.albumentations_augment`
    applied per element through ``tf.numpy_function``. ``"tf"`` is the default because it keeps
    the model fed with the most headroom: it runs no Python per image, several times faster than
    the albumentations path, whose per-image Python the GIL serialises (figures from
    ``benchmarks/bench_pipeline.py`` in ``docs/benchmarks.md`` and ``docs/training.md``), and
    it leaves the most CPU for feeding a GPU. Use albumentations for its richer transforms (rotation,
    blur, weather) when the CPU has cores to spare. ``augment`` may also be a
    :class:`~skyseg_tf.data.augment.TFAugment` (applied per batch), an albumentations transform
    (applied per element), or any callable ``fn(image, mask) -> (image, mask)`` on one element
    (float32 ``[h, w, 3]`` in ``[0, 255]`` and ``[h, w, 1]`` in ``{0, 1, 2}``, 2 = void; the returned mask is
    thresholded at 0.5). An explicit ``augment`` is applied whatever the split.

    **Distribution.** Batch with the *global* batch size. Under ``strategy.scope()``,
    ``model.fit(dataset)`` distributes the dataset itself (there is no need to call
    ``strategy.experimental_distribute_dataset``), and each of ``N`` replicas receives
    ``global_batch_size / N`` examples per step.

    **Determinism.** With ``seed`` set, shuffling, random crops and augmentation are reproducible
    (a new draw each epoch, the same sequence each run), and ``deterministic=None`` becomes
    ``True``. Without a seed, training pipelines default to ``deterministic=False`` (faster), and
    evaluation pipelines to ``True``.

    Args:
        source: a source spec; see :func:`load_source`.
        split: ``"train"``, ``"validation"`` or ``"test"`` (TFDS sources take slices too);
            folder and negatives sources also take ``"all"``, every photo of the folder.
        image_size: output ``(height, width)``, or one int for a square. Multiples of 32 suit
            every encoder; other sizes get a warning.
        global_batch_size: examples per step over all replicas.
        augment: ``None``, ``False``, ``"tf"``, ``"albumentations"`` or a callable (see above).
        cache: ``False``; ``True`` caches the resized ``uint8`` elements in memory (the
            full-size ones when ``"crop"`` crops); a path caches them to files with that
            prefix. A file cache is keyed by the path alone: delete it (or pick another path)
            after changing the source, split, ``image_size`` or ``resize_mode``. It is complete
            only after one full pass over the data.
        shuffle: shuffle the elements; ``None`` means ``True`` when training. TFDS sources also
            shuffle their files then.
        shuffle_buffer: shuffle buffer size in elements.
        deterministic: keep the element order fixed across runs (``tf.data.Options``); ``None``
            decides as described under *Determinism*.
        seed: seed of every random step, or ``None``.
        resize_mode: ``"resize"`` (whole image, aspect ratio not kept), ``"crop"`` (a random
            ``image_size`` window at full resolution when training; evaluation resizes), or
            ``"short_side"`` (the scale a photo model is run at: the shorter side resized to
            ``min(image_size)`` with the aspect ratio kept; when training, times a random
            factor from ``scale_range``, then a random ``image_size`` window; evaluation takes
            the centred window). Training crops never flip vertically: sky stays on top.
        scale_range: ``(low, high)`` scale jitter of ``"short_side"`` training crops.
        drop_remainder: drop a last, smaller batch; ``None`` means ``True`` when training.
        repeat: repeat the data forever (then pass ``steps_per_epoch`` to ``fit``).
        training: whether this is a training pipeline; ``None`` means the split is ``"train"``
            (or slices of it). Decides the defaults of ``augment``, ``shuffle``,
            ``drop_remainder`` and ``deterministic`` and whether ``"crop"`` crops.
        with_file_names: also yield the file names, ``(images, masks, file_names)``, for
            evaluation reports. Not for ``model.fit``/``evaluate``, which would read the third
            item as sample weights.
        options: extra ``tf.data.Options`` merged into the pipeline's.
        view: ``"photo"`` (as it is) or ``"fisheye"``: every element (after resizing and
            cropping, before augmentation) re-imaged through a random upward fisheye lens with
            a random rotation and image circle (:func:`~skyseg_tf.data.lens_view.fisheye_view`);
            for training hemispherical-photo models. In a mix, each source spec takes its own
            ``"view"``.
        **source_kwargs: arguments of the source (see :func:`load_source`). For
            ``"synthetic"``, ``image_size`` defaults to the output size; to render at another
            size use ``{"type": "synthetic", "image_size": ...}``.

    Returns:
        A dataset of ``(images, masks)``: ``float32 [B, h, w, 3]`` in ``[0, 255]`` and
        ``float32 [B, h, w, 1]`` in ``{0, 1, 2}`` (2 = void); ``(images, masks, file_names)`` with
        ``with_file_names``.

    Raises:
        ValueError: for an invalid argument; the message names it and the valid values.

    Example:
        >>> train = make_dataset("synthetic", "train", (64, 64), 4, num_examples=8, seed=1)
        >>> val = make_dataset("synthetic", "validation", (64, 64), 4, num_examples=20,
        ...                    with_file_names=True)
        >>> [tuple(t.shape) for t in next(iter(val))]
        [(4, 64, 64, 3), (4, 64, 64, 1), (4,)]
        >>> next(iter(train))[0].shape.as_list()
        [4, 64, 64, 3]
    """
    size = _check_image_size(image_size)
    if size[0] % SIZE_MULTIPLE or size[1] % SIZE_MULTIPLE:
        warnings.warn(
            f"image_size={size} is not a multiple of {SIZE_MULTIPLE}; encoders downsample by "
            f"{SIZE_MULTIPLE} and some decoders need that divisibility. Consider "
            f"{tuple(-(-v // SIZE_MULTIPLE) * SIZE_MULTIPLE for v in size)}.",
            stacklevel=2,
        )
    checks.positive_int("global_batch_size", global_batch_size)
    checks.positive_int("shuffle_buffer", shuffle_buffer)
    seed = checks.optional_seed("seed", seed)
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"resize_mode must be one of {', '.join(map(repr, RESIZE_MODES))}, "
            f"received {resize_mode!r}."
        )
    if isinstance(augment, str) and augment not in AUGMENT_NAMES:
        raise ValueError(
            f"augment must be None, False, one of {', '.join(map(repr, AUGMENT_NAMES))} or a "
            f"callable, received {augment!r}."
        )
    if not (augment is None or augment is False or isinstance(augment, str) or callable(augment)):
        raise ValueError(
            f"augment must be None, False, one of {', '.join(map(repr, AUGMENT_NAMES))} or a "
            f"callable, received {augment!r}."
        )
    if not isinstance(cache, (bool, str, os.PathLike)) or cache == "":
        raise ValueError(
            f"cache must be False, True (memory) or a file path prefix, received {cache!r}."
        )
    parts = [("all", False)] if split == "all" else _split_parts(split)
    if training is None:
        training = all(base == "train" for base, _ in parts)
    shuffle = training if shuffle is None else bool(shuffle)
    drop_remainder = training if drop_remainder is None else bool(drop_remainder)
    if deterministic is None:
        deterministic = seed is not None or not training
    if augment is None:
        augment = "tf" if training else False

    scale_range = _check_scale_range(scale_range)
    checks.choice("view", view, VIEWS)
    kind, arguments = parse_source(source, source_kwargs)
    stage = dict(size=size, training=training, shuffle=shuffle, shuffle_buffer=shuffle_buffer,
                 cache=cache, seed=seed, resize_mode=resize_mode, scale_range=scale_range,
                 with_file_names=with_file_names)
    if kind == "mix":
        sources = []
        for index, (spec, use) in enumerate(zip(arguments["sources"], arguments["validate"])):
            if training or use:
                sub_kind, sub_arguments = parse_source(spec, {})
                sources.append(_element_stage(
                    sub_kind, sub_arguments, split,
                    **{**stage, "repeat": training or repeat, "view": arguments["views"][index],
                       "cache": _indexed_cache(cache, index),
                       "seed": None if seed is None else _derive_seed(seed, 10 + index)}))
        if training:
            dataset = tf.data.Dataset.sample_from_datasets(
                sources, weights=arguments["weights"], seed=_derive_seed(seed, 5),
                stop_on_empty_dataset=False)
        else:
            dataset = sources[0]
            for part in sources[1:]:
                dataset = dataset.concatenate(part)
            if repeat:
                dataset = dataset.repeat()
    else:
        dataset = _element_stage(kind, arguments, split, repeat=repeat, view=view, **stage)
    autotune = tf.data.AUTOTUNE

    batch_augment = None
    if augment == "tf":
        batch_augment = tf_augment()
    elif isinstance(augment, TFAugment):
        batch_augment = augment
    elif augment == "albumentations" or _is_albumentations(augment):
        # Every element is reseeded from the zipped random stream; the Compose's own seed
        # does not matter.
        transform = albumentations_augment(size) if augment == "albumentations" else augment
        apply = wrap_albumentations(transform, output_size=size)

        def albumentations_step(element, random_int):
            image, mask = apply(element[0], element[1], random_int)
            return (image, mask, *element[2:])

        dataset = _with_random(dataset, _derive_seed(seed, 3)).map(
            albumentations_step, num_parallel_calls=autotune)
    elif callable(augment):
        def user_step(*element):
            image, mask = augment(tf.cast(element[0], tf.float32), tf.cast(element[1], tf.float32))
            image = tf.ensure_shape(tf.cast(image, tf.float32), [*size, 3])
            mask = tf.cast(mask, tf.float32)
            mask = tf.where(mask >= 0.5 * (1 + VOID_LABEL), float(VOID_LABEL),
                            tf.cast(mask >= 0.5, tf.float32))
            mask = tf.ensure_shape(mask, [*size, 1])
            return (image, mask, *element[2:])

        dataset = dataset.map(user_step, num_parallel_calls=autotune)

    dataset = dataset.batch(global_batch_size, drop_remainder=drop_remainder,
                            num_parallel_calls=autotune)

    def to_float(*element):
        return (tf.cast(element[0], tf.float32), tf.cast(element[1], tf.float32), *element[2:])

    if batch_augment is not None:
        def batch_step(element, random_int):
            images, masks = batch_augment(tf.cast(element[0], tf.float32),
                                          tf.cast(element[1], tf.float32),
                                          _stateless_seed(random_int))
            return (images, masks, *element[2:])

        dataset = _with_random(dataset, _derive_seed(seed, 4)).map(
            batch_step, num_parallel_calls=autotune)
    else:
        dataset = dataset.map(to_float, num_parallel_calls=autotune)

    dataset = dataset.prefetch(autotune)
    pipeline_options = tf.data.Options()
    pipeline_options.deterministic = bool(deterministic)
    if options is not None:
        pipeline_options = pipeline_options.merge(options)
    return dataset.with_options(pipeline_options)
