"""Resizing and padding ops shared by the training pipeline, prediction and the exported models.

One resize for training and serving: :func:`resize_images` is what ``make_dataset`` resizes with
(it stores the result as ``uint8``) and what :func:`skyseg_tf.inference.predict_image` and the
SavedModel's ``serving_bytes`` signature feed the model, so a model never sees pixels resampled
another way than in training (``tests/test_inference.py`` checks they agree to the pixel).

Example:
    >>> import numpy as np
    >>> resize_images(np.zeros((1, 10, 20, 3), np.float32), (4, 8)).shape
    TensorShape([1, 4, 8, 3])
"""

from __future__ import annotations

import tensorflow as tf


def resize_images(images, size) -> tf.Tensor:
    """Resizes a float batch of RGB images as the training pipeline does.

    Bilinear with antialiasing, clipped to ``[0, 255]`` and rounded to whole values, as
    ``make_dataset`` resizes (it stores ``uint8``), so the model sees what it saw in training.

    Args:
        images: ``[B, H, W, 3]`` in ``[0, 255]``.
        size: ``(height, width)``.

    Returns:
        float32 ``[B, height, width, 3]``.

    Example:
        >>> import numpy as np
        >>> resize_images(np.zeros((1, 10, 20, 3), np.float32), (4, 8)).shape
        TensorShape([1, 4, 8, 3])
    """
    resized = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear", antialias=True)
    return tf.round(tf.clip_by_value(resized, 0.0, 255.0))


def resize_probabilities(probabilities, size) -> tf.Tensor:
    """Resizes ``[B, h, w, 1]`` probabilities bilinearly to ``size``, clipped to ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> resize_probabilities(np.ones((1, 2, 2, 1), np.float32), (5, 3)).shape
        TensorShape([1, 5, 3, 1])
    """
    resized = tf.image.resize(tf.cast(probabilities, tf.float32), size, method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)


def _mirror_indices(length, padded_length):
    """Indices 0..length-1 followed by their mirror image (edge repeated), any padding size."""
    index = tf.range(padded_length)
    period = 2 * length
    folded = tf.math.floormod(index, period)
    return tf.where(folded < length, folded, period - 1 - folded)


def pad_to_multiple(images, multiple: int) -> tf.Tensor:
    """Pads a batch at the bottom and right, mirroring the image, to sizes divisible by ``multiple``.

    Works for paddings larger than the image and for sizes known only at run time (it gathers
    mirrored indices), so the exported SavedModel uses it too. Crop with ``[:, :H, :W]``.

    Example:
        >>> import numpy as np
        >>> x = np.arange(3, dtype=np.float32).reshape(1, 1, 3, 1)
        >>> pad_to_multiple(x, 4)[0, 0, :, 0].numpy().tolist()
        [0.0, 1.0, 2.0, 2.0]
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    # Python ints where the size is known, so the padded shape stays static.
    height = images.shape[1] if images.shape[1] is not None else shape[1]
    width = images.shape[2] if images.shape[2] is not None else shape[2]
    padded_height = (height + multiple - 1) // multiple * multiple
    padded_width = (width + multiple - 1) // multiple * multiple
    images = tf.gather(images, _mirror_indices(height, padded_height), axis=1)
    return tf.gather(images, _mirror_indices(width, padded_width), axis=2)

__all__ = ["pad_to_multiple", "resize_images", "resize_probabilities"]
