"""Joint image/mask augmentation for sky segmentation, two ways.

* :func:`tf_augment` builds a :class:`TFAugment`: pure TensorFlow, vectorised over a batch, driven
  by stateless random ops so that a seed fixes every draw. Horizontal flip, random zoom with a
  random crop position, brightness / contrast / saturation / hue, Gaussian noise. Geometry moves
  the image and the mask together; colour and noise touch only the image. This is the fast path
  that :func:`~skyseg_tf.data.pipeline.make_dataset` uses by default.
* :func:`albumentations_augment` builds an ``albumentations.Compose`` with a richer set of
  transforms (rotation, blur, weather effects); :func:`wrap_albumentations` runs any
  albumentations transform inside ``tf.data`` through ``tf.numpy_function``.

Both take images in ``[0, 255]`` and masks in ``{0, 1}`` and keep them so.

Example:
    >>> import tensorflow as tf
    >>> augment = tf_augment("light")
    >>> images, masks = augment(tf.zeros([2, 32, 32, 3]), tf.ones([2, 32, 32, 1]), seed=[1, 2])
    >>> images.shape.as_list(), masks.shape.as_list()
    ([2, 32, 32, 3], [2, 32, 32, 1])
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import threading
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from skyseg_tf import checks

STRENGTHS = ("light", "default", "strong", "photo")
"""Names accepted by the ``strength`` argument of :func:`tf_augment` and
:func:`albumentations_augment`."""

# RGB -> YIQ. Saturation scales the chroma plane (I, Q) and hue rotates it, so one 3x3 matrix per
# image applies both, which vectorises over the batch.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=np.float32,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def _check_image_size(image_size: Any, argument: str = "image_size") -> tuple[int, int]:
    """Returns ``(height, width)`` from an int or a pair of positive ints, else raises."""
    if image_size is None:
        checks.positive_int(argument, image_size)  # the same message as any other bad size
    return checks.size_pair(argument, image_size)


def _check_scale_range(scale_range: Any) -> tuple[float, float]:
    """Returns ``(low, high)`` floats with ``0 < low <= high``, else raises naming the argument."""
    try:
        low, high = (float(v) for v in scale_range)
    except (TypeError, ValueError):
        low = high = -1.0
    if not 0.0 < low <= high:
        raise ValueError(
            f"scale_range must be (low, high) with 0 < low <= high, received {scale_range!r}. "
            "Use (1.0, 1.0) to turn the scaling off."
        )
    return low, high


def _check_strength(strength: str) -> None:
    if strength not in STRENGTHS:
        raise ValueError(
            f"strength must be one of {', '.join(map(repr, STRENGTHS))}, received {strength!r}."
        )


@dataclasses.dataclass(frozen=True)
class TFAugment:
    """A pure-TensorFlow joint augmentation of images and sky masks.

    Call it on one element (``[H, W, C]``) or a batch (``[B, H, W, C]``); every image of a batch
    draws its own parameters. Output shapes and dtypes equal the input ones. Images are expected in
    ``[0, 255]`` (any real or integer dtype) and come back clipped to that range; masks come back
    with the same values they had (nearest-neighbour sampling), zero where a zoom-out uncovers
    the border.

    Attributes:
        flip_prob: probability of a horizontal flip.
        scale_range: ``(low, high)`` zoom factor drawn uniformly; ``> 1`` zooms in on a random
            region (a random crop resized back), ``< 1`` zooms out and pads with zeros. ``(1, 1)``
            disables the zoom.
        brightness: largest brightness shift, as a fraction of 255.
        contrast: contrast factor drawn from ``[1 - contrast, 1 + contrast]``.
        saturation: saturation factor drawn from ``[1 - saturation, 1 + saturation]``.
        hue: largest hue rotation, as a fraction of the colour circle (keep it small: the colour
            of the sky is a strong cue).
        color_prob: probability that an image gets the colour changes at all.
        noise_std: largest standard deviation of additive Gaussian noise, in pixel units.
        noise_prob: probability that an image gets noise.
        gamma: largest change of the log of a gamma curve: the exponent is drawn from
            ``exp([-gamma, gamma])`` (0 turns it off; it happens with ``color_prob``).
        blur_prob: probability of a Gaussian blur (sigma up to ``blur_sigma`` pixels), as from
            defocus, motion or a phone's small lens.
        blur_sigma: largest blur sigma, in pixels.
        jpeg_prob: probability of a JPEG round trip at a quality from ``jpeg_quality``.
        jpeg_quality: ``(low, high)`` JPEG quality range, within ``[1, 100]``.
        vignette: largest darkening of the corners by lens vignetting (a fraction; 0 is off),
            applied with probability ``color_prob``.
        haze: largest blend towards a light grey-blue haze, as in fog or smog (0 is off),
            applied with probability ``color_prob``.

    Example:
        >>> import tensorflow as tf
        >>> augment = TFAugment(flip_prob=1.0, scale_range=(1.0, 1.0), color_prob=0.0,
        ...                     noise_prob=0.0)
        >>> image = tf.reshape(tf.range(4, dtype=tf.float32), [1, 4, 1]) * tf.ones([1, 1, 3])
        >>> flipped, _ = augment(image, tf.zeros([1, 4, 1]), seed=[0, 0])
        >>> flipped[0, :, 0].numpy().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """

    flip_prob: float = 0.5
    scale_range: tuple[float, float] = (1.0, 1.5)
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.25
    hue: float = 0.02
    color_prob: float = 0.8
    noise_std: float = 8.0
    noise_prob: float = 0.2
    gamma: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: float = 1.5
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 95)
    vignette: float = 0.0
    haze: float = 0.0

    def __post_init__(self):
        checks.probability("flip_prob", self.flip_prob)
        checks.probability("color_prob", self.color_prob)
        checks.probability("noise_prob", self.noise_prob)
        checks.probability("blur_prob", self.blur_prob)
        checks.probability("jpeg_prob", self.jpeg_prob)
        for name, limit in (("gamma", 1.0), ("vignette", 1.0), ("haze", 1.0), ("blur_sigma", 10.0)):
            value = getattr(self, name)
            if not 0.0 <= value <= limit:
                raise ValueError(f"{name} must lie in [0, {limit}], received {value!r}.")
        try:
            q_low, q_high = (int(v) for v in self.jpeg_quality)
        except (TypeError, ValueError):
            q_low = q_high = -1
        if not 1 <= q_low <= q_high <= 100:
            raise ValueError(f"jpeg_quality must be (low, high) with 1 <= low <= high <= 100, "
                             f"received {self.jpeg_quality!r}.")
        object.__setattr__(self, "jpeg_quality", (q_low, q_high))
        object.__setattr__(self, "scale_range", _check_scale_range(self.scale_range))
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], received {value!r}.")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must lie in [0, 0.5] (a fraction of the colour circle), "
                             f"received {self.hue!r}.")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, received {self.noise_std!r}.")

    def __call__(self, images, masks, seed=None):
        """Augments ``images`` and ``masks`` together.

        Args:
            images: ``[H, W, 3]`` or ``[B, H, W, 3]`` in ``[0, 255]``.
            masks: ``[H, W, 1]`` or ``[B, H, W, 1]``, same height and width.
            seed: a shape ``[2]`` integer seed for the stateless random ops; equal seeds give
                equal results. ``None`` draws one from the global generator (not reproducible).

        Returns:
            ``(images, masks)`` with the input shapes and dtypes.
        """
        images = tf.convert_to_tensor(images)
        masks = tf.convert_to_tensor(masks)
        single = images.shape.rank == 3
        if single:
            images, masks = images[tf.newaxis], masks[tf.newaxis]
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
        x = tf.cast(images, tf.float32)
        m = tf.cast(masks, tf.float32)
        x, m = self._geometry(x, m, seeds[0])
        x = self._optics(x, seeds[3])
        x = self._colour(x, seeds[1])
        x = self._blur(x, seeds[4])
        x = self._noise(x, seeds[2])
        x = tf.clip_by_value(x, 0.0, 255.0)
        x = self._jpeg(x, seeds[5])
        if images.dtype.is_integer:
            x = tf.round(x)
        x = tf.cast(x, images.dtype)
        m = tf.cast(m, masks.dtype)
        if single:
            x, m = x[0], m[0]
        return x, m

    def _geometry(self, x, m, seed):
        low, high = self.scale_range
        if self.flip_prob == 0.0 and low == high == 1.0:
            return x, m
        batch = tf.shape(x)[0]
        size = tf.shape(x)[1:3]
        seeds = tf.random.experimental.stateless_split(seed, num=3)
        scale = tf.random.stateless_uniform([batch], seeds[0], low, high)
        extent = 1.0 / scale  # fraction of the image that the output shows
        offset = tf.random.stateless_uniform([batch, 2], seeds[1]) * (1.0 - extent)[:, None]
        y1, x1 = offset[:, 0], offset[:, 1]
        y2, x2 = y1 + extent, x1 + extent
        flip = tf.random.stateless_uniform([batch], seeds[2]) < self.flip_prob
        # crop_and_resize mirrors a box whose x1 > x2, so one op zooms, crops and flips.
        x1, x2 = tf.where(flip, x2, x1), tf.where(flip, x1, x2)
        boxes = tf.stack([y1, x1, y2, x2], axis=1)
        index = tf.range(batch)
        x_out = tf.image.crop_and_resize(x, boxes, index, size, method="bilinear")
        m_out = tf.image.crop_and_resize(m, boxes, index, size, method="nearest")
        x_out = tf.ensure_shape(x_out, x.shape)
        m_out = tf.ensure_shape(m_out, m.shape)
        return x_out, m_out

    def _colour(self, x, seed):
        if self.color_prob == 0.0 or not (
            self.brightness or self.contrast or self.saturation or self.hue
        ):
            return x
        batch = tf.shape(x)[0]
        u = tf.random.stateless_uniform([batch, 5], seed, -1.0, 1.0)
        on = tf.cast((u[:, 4] + 1.0) / 2.0 < self.color_prob, tf.float32)
        brightness = on * u[:, 0] * self.brightness * 255.0
        contrast = 1.0 + on * u[:, 1] * self.contrast
        saturation = 1.0 + on * u[:, 2] * self.saturation
        angle = on * u[:, 3] * self.hue * 2.0 * np.pi

        x = x + brightness[:, None, None, None]
        gray = tf.reduce_mean(tf.tensordot(x, _RGB_TO_YIQ[0], axes=1), axis=[1, 2])
        gray = gray[:, None, None, None]
        x = gray + contrast[:, None, None, None] * (x - gray)
        # Per-image 3x3 colour matrix: RGB -> YIQ, scale + rotate (I, Q), YIQ -> RGB.
        cos, sin = tf.cos(angle) * saturation, tf.sin(angle) * saturation
        zeros, ones = tf.zeros_like(cos), tf.ones_like(cos)
        chroma = tf.stack(
            [tf.stack([ones, zeros, zeros], -1),
             tf.stack([zeros, cos, -sin], -1),
             tf.stack([zeros, sin, cos], -1)],
            axis=1,
        )  # [B, 3, 3]
        matrix = tf.einsum("ij,bjk,kl->bil", _YIQ_TO_RGB, chroma, _RGB_TO_YIQ)
        return tf.einsum("bhwc,bdc->bhwd", x, matrix)

    def _optics(self, x, seed):
        """Gamma, haze and vignetting: what the air, the lens and the camera's curve do."""
        if self.color_prob == 0.0 or not (self.gamma or self.haze or self.vignette):
            return x
        batch = tf.shape(x)[0]
        u = tf.random.stateless_uniform([batch, 4], seed)
        on = tf.cast(u[:, 3] < self.color_prob, tf.float32)
        if self.gamma:
            exponent = tf.exp(on * (2.0 * u[:, 0] - 1.0) * self.gamma)[:, None, None, None]
            x = 255.0 * tf.pow(tf.clip_by_value(x, 0.0, 255.0) / 255.0, exponent)
        if self.haze:
            amount = (on * u[:, 1] * self.haze)[:, None, None, None]
            x = x * (1.0 - amount) + amount * tf.constant([200.0, 205.0, 215.0])
        if self.vignette:
            height, width = tf.shape(x)[1], tf.shape(x)[2]
            ys = tf.linspace(-1.0, 1.0, height)[:, None]
            xs = tf.linspace(-1.0, 1.0, width)[None, :]
            radius2 = (ys ** 2 + xs ** 2) / 2.0  # 0 at the centre, 1 in the corners
            strength = (on * u[:, 2] * self.vignette)[:, None, None, None]
            x = x * (1.0 - strength * radius2[None, :, :, None])
        return x

    def _blur(self, x, seed):
        """Gaussian blur of random strength: a blend of the image with its blur at blur_sigma."""
        if self.blur_prob == 0.0 or self.blur_sigma == 0.0:
            return x
        batch = tf.shape(x)[0]
        u = tf.random.stateless_uniform([batch, 2], seed)
        amount = tf.where(u[:, 0] < self.blur_prob, u[:, 1], 0.0)[:, None, None, None]
        radius = max(1, int(math.ceil(2.5 * self.blur_sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / self.blur_sigma) ** 2)
        taps = (taps / taps.sum()).astype(np.float32)
        kernel_x = tf.constant(np.tile(taps[None, :, None, None], (1, 1, 3, 1)))
        kernel_y = tf.constant(np.tile(taps[:, None, None, None], (1, 1, 3, 1)))
        padded = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
        blurred = tf.nn.depthwise_conv2d(padded, kernel_x, [1, 1, 1, 1], "VALID")
        blurred = tf.nn.depthwise_conv2d(blurred, kernel_y, [1, 1, 1, 1], "VALID")
        return x + amount * (blurred - x)

    def _jpeg(self, x, seed):
        """A JPEG round trip at a random quality for a random part of the batch."""
        if self.jpeg_prob == 0.0:
            return x
        batch = tf.shape(x)[0]
        seeds = tf.random.experimental.stateless_split(seed, num=2)
        chosen = tf.random.stateless_uniform([batch], seeds[0]) < self.jpeg_prob
        low, high = self.jpeg_quality
        qualities = tf.random.stateless_uniform([batch], seeds[1], low, high + 1, dtype=tf.int32)

        def round_trip(args):
            image, quality, use = args
            return tf.cond(
                use,
                lambda: tf.image.adjust_jpeg_quality(image / 255.0, quality) * 255.0,
                lambda: image,
            )

        out = tf.map_fn(round_trip, (x, qualities, chosen), fn_output_signature=tf.float32)
        return tf.ensure_shape(out, x.shape)

    def _noise(self, x, seed):
        if self.noise_prob == 0.0 or self.noise_std == 0.0:
            return x
        batch = tf.shape(x)[0]
        seeds = tf.random.experimental.stateless_split(seed, num=2)
        u = tf.random.stateless_uniform([batch, 2], seeds[0])
        std = tf.where(u[:, 0] < self.noise_prob, u[:, 1] * self.noise_std, 0.0)
        # Draw noise only for the images that get it: normal draws dominate the cost otherwise.
        noisy = tf.where(std > 0.0)[:, 0]
        shape = tf.concat([tf.shape(noisy), tf.shape(x)[1:]], axis=0)
        noise = tf.random.stateless_normal(shape, seeds[1])
        noise = noise * tf.gather(std, noisy)[:, None, None, None]
        return tf.tensor_scatter_nd_add(x, noisy[:, None], noise)


_TF_PRESETS = {
    "light": dict(flip_prob=0.5, scale_range=(1.0, 1.25), brightness=0.1, contrast=0.1,
                  saturation=0.1, hue=0.0, color_prob=0.5, noise_std=0.0, noise_prob=0.0),
    "default": dict(),  # the TFAugment field defaults
    "strong": dict(flip_prob=0.5, scale_range=(0.8, 2.0), brightness=0.25, contrast=0.35,
                   saturation=0.4, hue=0.05, color_prob=0.9, noise_std=15.0, noise_prob=0.3),
    # Real photos from unknown cameras: exposure, white balance, tone curve, haze, vignetting,
    # defocus, sensor noise and JPEG. No zoom: the short-side pipeline jitters the scale.
    "photo": dict(flip_prob=0.5, scale_range=(1.0, 1.0), brightness=0.2, contrast=0.3,
                  saturation=0.4, hue=0.04, color_prob=0.9, noise_std=12.0, noise_prob=0.3,
                  gamma=0.4, blur_prob=0.3, blur_sigma=1.5, jpeg_prob=0.3, jpeg_quality=(25, 95),
                  vignette=0.4, haze=0.3),
}


def tf_augment(strength: str = "default", **overrides: Any) -> TFAugment:
    """Builds the pure-TensorFlow augmentation (the fast path of the input pipeline).

    Args:
        strength: a preset, one of ``"light"``, ``"default"``, ``"strong"`` or ``"photo"`` (real
            photos: exposure, tone curve, white balance, haze, vignetting, blur, noise, JPEG).
        **overrides: any :class:`TFAugment` field, replacing the preset's value
            (e.g. ``hue=0.0`` or ``scale_range=(1.0, 1.0)``).

    Returns:
        A :class:`TFAugment`; call it as ``augment(images, masks, seed)`` on one element or a
        batch.

    Raises:
        ValueError: for an unknown strength or an out-of-range field.
        TypeError: for an unknown field name.

    Example:
        >>> import tensorflow as tf
        >>> augment = tf_augment("strong", hue=0.0)
        >>> images, masks = augment(tf.fill([4, 64, 64, 3], 128.0), tf.ones([4, 64, 64, 1]),
        ...                         seed=[0, 7])
        >>> float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 255.0
        True
    """
    _check_strength(strength)
    fields = {f.name for f in dataclasses.fields(TFAugment)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"tf_augment() got unknown argument(s) {unknown}; valid ones are {sorted(fields)}."
        )
    return TFAugment(**{**_TF_PRESETS[strength], **overrides})


def _import_albumentations():
    """Imports albumentations without its on-import online version check.

    albumentations >= 1.4 queries PyPI when imported unless ``NO_ALBUMENTATIONS_UPDATE`` is set;
    skyseg-tf works offline and never phones home, so the variable is set for the import only.
    """
    key = "NO_ALBUMENTATIONS_UPDATE"
    previous = os.environ.get(key)
    os.environ[key] = "1"
    try:
        import albumentations
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous
    return albumentations


# Parameters of the albumentations presets; lengths in pixels are fractions of the image side.
_ALBUMENTATIONS_PRESETS = {
    "light": dict(affine_p=0.3, scale=(1.0, 1.2), rotate=5, translate=0.03, color_p=0.5,
                  jitter=0.1, hue=0.0, hsv_p=0.0, blur_p=0.05, noise_p=0.0, noise=(0.01, 0.03),
                  weather_p=0.0),
    "default": dict(affine_p=0.5, scale=(0.9, 1.4), rotate=10, translate=0.05, color_p=0.8,
                    jitter=0.2, hue=0.02, hsv_p=0.2, blur_p=0.15, noise_p=0.2,
                    noise=(0.01, 0.05), weather_p=0.1),
    "strong": dict(affine_p=0.7, scale=(0.75, 1.75), rotate=15, translate=0.1, color_p=0.9,
                   jitter=0.35, hue=0.05, hsv_p=0.3, blur_p=0.25, noise_p=0.3,
                   noise=(0.02, 0.08), weather_p=0.2),
    # Real photos: colour, blur and noise as "strong", little geometry (the short-side
    # pipeline jitters the scale), a slight tilt as from a hand-held camera.
    "photo": dict(affine_p=0.3, scale=(1.0, 1.1), rotate=5, translate=0.03, color_p=0.9,
                  jitter=0.3, hue=0.04, hsv_p=0.3, blur_p=0.3, noise_p=0.3,
                  noise=(0.02, 0.06), weather_p=0.1),
}


def albumentations_augment(
    image_size: int | Sequence[int], strength: str = "default", seed: int | None = None
):
    """Builds an albumentations pipeline that transforms a sky image and its mask together.

    Transforms: horizontal flip; affine zoom / rotation / shift (zero border, nearest-neighbour
    mask); colour jitter or brightness-contrast; hue-saturation-value; Gaussian or motion blur;
    Gaussian noise; rarely fog, rain or a sun flare in the upper half. A final resize makes every
    output ``image_size`` (a no-op in :func:`~skyseg_tf.data.pipeline.make_dataset`, whose
    elements already have that size).

    Args:
        image_size: output ``(height, width)``, or one int for a square; also scales the
            size-dependent effects (blur kernels, sun-flare radius).
        strength: a preset, one of ``"light"``, ``"default"``, ``"strong"``, ``"photo"``.
        seed: seed of the ``Compose``; ``None`` draws fresh entropy.

    Returns:
        An ``albumentations.Compose``; call it as ``transform(image=uint8_hwc, mask=uint8_hw1)``,
        or run it in ``tf.data`` with :func:`wrap_albumentations`.

    Raises:
        ValueError: for an invalid ``image_size`` or an unknown ``strength``.

    Example:
        >>> import numpy as np
        >>> transform = albumentations_augment((64, 64), seed=0)
        >>> out = transform(image=np.zeros((64, 64, 3), np.uint8),
        ...                 mask=np.ones((64, 64, 1), np.uint8))
        >>> out["image"].shape, out["mask"].shape
        ((64, 64, 3), (64, 64, 1))
    """
    height, width = _check_image_size(image_size)
    _check_strength(strength)
    A = _import_albumentations()
    import cv2

    p = _ALBUMENTATIONS_PRESETS[strength]
    side = min(height, width)
    # Odd blur kernel sizes between 3 and ~3 % of the image side.
    blur_max = max(3, int(side * 0.03) // 2 * 2 + 1)
    zero_border = dict(border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0)
    transforms = [
        A.HorizontalFlip(p=0.5),
        A.Affine(
            scale=p["scale"],
            rotate=(-p["rotate"], p["rotate"]),
            translate_percent=(-p["translate"], p["translate"]),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,
            p=p["affine_p"],
            **zero_border,
        ),
        A.OneOf(
            [
                A.ColorJitter(brightness=p["jitter"], contrast=p["jitter"],
                              saturation=p["jitter"], hue=p["hue"], p=1.0),
                A.RandomBrightnessContrast(brightness_limit=p["jitter"],
                                           contrast_limit=p["jitter"], p=1.0),
            ],
            p=p["color_p"],
        ),
        A.HueSaturationValue(hue_shift_limit=int(p["hue"] * 180), sat_shift_limit=20,
                             val_shift_limit=15, p=p["hsv_p"]),
        A.OneOf(
            [A.GaussianBlur(blur_limit=(3, blur_max), p=1.0),
             A.MotionBlur(blur_limit=(3, blur_max), p=1.0)],
            p=p["blur_p"],
        ),
        A.GaussNoise(std_range=p["noise"], p=p["noise_p"]),
        A.OneOf(
            [
                A.RandomFog(fog_coef_range=(0.1, 0.35), alpha_coef=0.08, p=1.0),
                A.RandomRain(drop_length=max(2, side // 20), blur_value=3,
                             brightness_coefficient=0.9, p=1.0),
                A.RandomSunFlare(flare_roi=(0.0, 0.0, 1.0, 0.5), src_radius=max(4, side // 4),
                                 num_flare_circles_range=(3, 6), p=1.0),
            ],
            p=p["weather_p"],
        ),
        A.Resize(height, width, interpolation=cv2.INTER_LINEAR,
                 mask_interpolation=cv2.INTER_NEAREST, p=1.0),
    ]
    return A.Compose(transforms, seed=seed, strict=True)


class _PerThreadTransform:
    """Holds one deep copy of an albumentations transform per ``tf.data`` worker thread.

    Reseeding a shared transform from several threads would race, so each thread reseeds its own.
    """

    def __init__(self, transform):
        self._prototype = transform
        self._local = threading.local()

    def get(self):
        transform = getattr(self._local, "transform", None)
        if transform is None:
            transform = copy.deepcopy(self._prototype)
            transform.set_random_seed(None)  # copies must not share the prototype's stream
            self._local.transform = transform
        return transform

    def __call__(self, image: np.ndarray, mask: np.ndarray, seed: np.ndarray):
        transform = self.get()
        if seed.size:
            transform.set_random_seed(int(seed.reshape(-1)[0]) % 2**32)
        out = transform(image=image, mask=mask)
        new_mask = np.asarray(out["mask"], dtype=np.uint8)
        if new_mask.ndim == 2:
            new_mask = new_mask[..., None]
        return np.ascontiguousarray(out["image"], dtype=np.uint8), np.ascontiguousarray(new_mask)


def wrap_albumentations(
    transform, output_size: int | Sequence[int] | None = None
) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """Wraps an albumentations transform for use inside ``tf.data`` (via ``tf.numpy_function``).

    The returned function takes one element ``(image, mask)`` as ``uint8`` tensors
    (``[H, W, 3]`` and ``[H, W, 1]``) plus an optional ``int64`` scalar ``seed``; with a seed the
    result depends only on the seed and the inputs, so a seeded ``tf.data`` pipeline stays
    reproducible under parallel ``map``.

    Args:
        transform: an albumentations transform or ``Compose`` with image and mask targets.
        output_size: ``(height, width)`` of the transform's output, to restore static shapes
            (checked at run time); ``None`` keeps the input's height and width.

    Returns:
        ``fn(image, mask, seed=None) -> (image, mask)`` on tensors.

    Example:
        >>> import tensorflow as tf
        >>> fn = wrap_albumentations(albumentations_augment(32, seed=0))
        >>> image, mask = fn(tf.zeros([32, 32, 3], tf.uint8), tf.ones([32, 32, 1], tf.uint8),
        ...                  tf.constant(3, tf.int64))
        >>> image.shape.as_list(), mask.dtype.name
        ([32, 32, 3], 'uint8')
    """
    if not callable(transform):
        raise TypeError(f"transform must be an albumentations transform, received {transform!r}.")
    size = None if output_size is None else _check_image_size(output_size, "output_size")
    runner = _PerThreadTransform(transform)

    def apply(image, mask, seed=None):
        image = tf.convert_to_tensor(image)
        mask = tf.convert_to_tensor(mask)
        seed_array = (
            tf.zeros([0], tf.int64) if seed is None else tf.reshape(tf.cast(seed, tf.int64), [1])
        )
        new_image, new_mask = tf.numpy_function(
            runner, [tf.cast(image, tf.uint8), tf.cast(mask, tf.uint8), seed_array],
            [tf.uint8, tf.uint8], stateful=seed is None,
        )
        height, width = size if size is not None else (image.shape[0], image.shape[1])
        new_image = tf.ensure_shape(new_image, [height, width, 3])
        new_mask = tf.ensure_shape(new_mask, [height, width, 1])
        return new_image, new_mask

    return apply
