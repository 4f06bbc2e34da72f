"""The element contract shared by every data source of skyseg-tf.

Every source (the ``ade20k_outdoors_sky`` TFDS builder, :func:`~skyseg_tf.data.folder.folder_dataset`
and :func:`~skyseg_tf.data.synthetic.synthetic_sky`) yields dictionaries with exactly these keys:

- ``image``: ``uint8`` ``[H, W, 3]``, RGB pixels in ``[0, 255]``;
- ``segmentation_mask``: ``uint8`` ``[H, W, 1]``, ``1`` = sky, ``0`` = anything else, and
  ``2`` (:data:`VOID_LABEL`) = unlabelled: a void pixel counts in no loss and no metric;
- ``file_name``: ``string`` ``[]``, the image's file name (no directory);
- ``sky_fraction``: ``float32`` ``[]``, the share of sky among the labelled pixels, in ``[0, 1]``.

Example:
    >>> from skyseg_tf.data.spec import ELEMENT_SPEC, MASK_KEY
    >>> ELEMENT_SPEC[MASK_KEY].shape.as_list()
    [None, None, 1]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from skyseg_tf.outputs import VOID_LABEL

IMAGE_KEY = "image"
MASK_KEY = "segmentation_mask"
FILE_NAME_KEY = "file_name"
SKY_FRACTION_KEY = "sky_fraction"

SKY_LABEL = 1
"""Value of sky pixels in ``segmentation_mask`` (labelled non-sky pixels are ``0``)."""

# VOID_LABEL (2): unlabelled pixels, defined with the target convention in skyseg_tf.outputs.


def element_spec(height: int | None = None, width: int | None = None) -> dict[str, tf.TensorSpec]:
    """Returns the element spec of a data source, optionally with a fixed image size.

    Args:
        height: image height in pixels, or ``None`` when it varies between elements.
        width: image width in pixels, or ``None`` when it varies between elements.

    Returns:
        A new dict mapping each key of the contract to its ``tf.TensorSpec``.

    Example:
        >>> spec = element_spec(64, 96)
        >>> spec["image"].shape.as_list()
        [64, 96, 3]
    """
    return {
        IMAGE_KEY: tf.TensorSpec(shape=(height, width, 3), dtype=tf.uint8),
        MASK_KEY: tf.TensorSpec(shape=(height, width, 1), dtype=tf.uint8),
        FILE_NAME_KEY: tf.TensorSpec(shape=(), dtype=tf.string),
        SKY_FRACTION_KEY: tf.TensorSpec(shape=(), dtype=tf.float32),
    }


ELEMENT_SPEC = element_spec()
"""The contract with ``H`` and ``W`` unknown; compare with ``dataset.element_spec`` after
relaxing fixed sizes, or use :func:`element_spec` for a fixed size."""


def make_element(image: np.ndarray, mask: np.ndarray, file_name: str | os.PathLike,
                 void: np.ndarray | None = None) -> dict:
    """Builds one element of the contract from numpy arrays, checking shapes and values.

    Args:
        image: ``uint8`` array ``[H, W, 3]``.
        mask: ``uint8`` array ``[H, W, 1]`` or ``[H, W]`` holding only ``0``, ``1`` and
            :data:`VOID_LABEL`.
        file_name: the image's file name; a path is reduced to its last component.
        void: optional boolean array ``[H, W, 1]`` or ``[H, W]``: where it is true the mask is
            set to :data:`VOID_LABEL`.

    Returns:
        A dict of numpy values with the contract's keys, dtypes and shapes
        (``sky_fraction`` is computed from the mask).

    Raises:
        ValueError: if a shape, dtype or mask value does not fit the contract.

    Example:
        >>> import numpy as np
        >>> element = make_element(np.zeros((2, 2, 3), np.uint8),
        ...                        np.array([[1, 1], [0, 0]], np.uint8), "a.png")
        >>> float(element["sky_fraction"]), element["segmentation_mask"].shape
        (0.5, (2, 2, 1))
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    name = os.path.basename(os.fspath(file_name))
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"image of {name!r}: expected a uint8 array of shape [H, W, 3], received "
            f"{image.dtype} {image.shape}. Convert it with np.asarray(PIL_image.convert('RGB'))."
        )
    if mask.ndim == 2:
        mask = mask[..., None]
    if mask.dtype != np.uint8 or mask.ndim != 3 or mask.shape[-1] != 1:
        raise ValueError(
            f"segmentation_mask of {name!r}: expected a uint8 array of shape [H, W, 1] or [H, W], "
            f"received {mask.dtype} {mask.shape}."
        )
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"{name!r}: the mask is {mask.shape[0]}x{mask.shape[1]} (HxW) but the image is "
            f"{image.shape[0]}x{image.shape[1]}; both must have the same size."
        )
    if mask.size and mask.max() > VOID_LABEL:
        raise ValueError(
            f"segmentation_mask of {name!r}: expected only 0 (other), {SKY_LABEL} (sky) and "
            f"{VOID_LABEL} (void), found values {np.unique(mask).tolist()[:10]}."
        )
    if void is not None:
        void = np.asarray(void, dtype=bool)
        if void.ndim == 2:
            void = void[..., None]
        if void.shape != mask.shape:
            raise ValueError(
                f"{name!r}: the void mask is {void.shape[0]}x{void.shape[1]} (HxW) but the image is "
                f"{mask.shape[0]}x{mask.shape[1]}; both must have the same size."
            )
        mask = np.where(void, np.uint8(VOID_LABEL), mask)
    labelled = mask != VOID_LABEL
    sky_fraction = (mask == SKY_LABEL).sum() / labelled.sum() if labelled.any() else 0.0
    return {
        IMAGE_KEY: image,
        MASK_KEY: mask,
        FILE_NAME_KEY: name.encode("utf-8"),
        SKY_FRACTION_KEY: np.float32(sky_fraction),
    }


def numpy_element(
    func: Callable[..., dict],
    inputs: Sequence[tf.Tensor],
    height: int | None = None,
    width: int | None = None,
) -> dict[str, tf.Tensor]:
    """Runs a numpy function that returns an element inside a ``tf.data`` map.

    ``func`` gets the numpy values of ``inputs`` and returns a dict like :func:`make_element`'s;
    it runs through ``tf.numpy_function`` (so it holds the GIL and the dataset cannot be
    serialized), and an exception it raises stops the iteration with its message.

    Args:
        func: the function, e.g. one that decodes a file pair or renders a scene.
        inputs: tensors passed to it.
        height: the image height when it is fixed, else ``None``.
        width: the image width when it is fixed, else ``None``.

    Returns:
        A dict of tensors whose shapes follow :func:`element_spec` ``(height, width)``.

    Example:
        >>> import numpy as np
        >>> def blank(n):
        ...     return make_element(np.zeros((n, 2, 3), np.uint8), np.ones((n, 2), np.uint8), "b.png")
        >>> ds = tf.data.Dataset.from_tensor_slices([1, 3]).map(lambda n: numpy_element(blank, [n]))
        >>> [float(e["sky_fraction"]) for e in ds]
        [1.0, 1.0]
    """
    keys = tuple(ELEMENT_SPEC)

    def call(*values):
        element = func(*values)
        return tuple(element[key] for key in keys)

    values = tf.numpy_function(
        call, list(inputs), [ELEMENT_SPEC[key].dtype for key in keys], stateful=False
    )
    shapes = element_spec(height, width)
    return {key: tf.ensure_shape(value, shapes[key].shape) for key, value in zip(keys, values)}
