"""Sky masks of hemispherical photos and panoramas, with their sky view factor: one call per photo.

:func:`predict_hemisphere` runs a sky model on an upward fisheye photo (``lens="fisheye"``: on
its image circle, found in the photo or given) or on an equirectangular 360-degree panorama
(``lens="panorama"``: perspective views stitched back, then the upper hemisphere projected to an
upward fisheye as street-view studies do), and measures the sky from below
(:func:`~skyseg_tf.hemisphere.sky_view.hemisphere_figures`: sky view factor, canopy openness,
gap fraction per zenith ring, sky fraction per azimuth sector). :func:`polar_plot` draws the sky
of the hemisphere with zenith rings and azimuths.

Example:
    >>> bright = lambda x: x[..., :1] / 255.0  # a stand-in model: sky = brightness
    >>> photo = np.zeros((120, 160, 3), np.uint8)
    >>> photo = cv2.circle(photo, (80, 60), 55, (255, 255, 255), -1)
    >>> result = predict_hemisphere(bright, photo, circle=(80, 60, 55))
    >>> round(result.figures["svf"], 2)
    1.0
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

from skyseg_tf import checks
from skyseg_tf.hemisphere.lens import FisheyeLens, ImageCircle, circle_mask
from skyseg_tf.hemisphere.sky_view import DEFAULT_GAP_RINGS, DEFAULT_RINGS, hemisphere_figures

LENSES = ("photo", "fisheye", "panorama")
"""What a photo is: an ordinary photo, an upward fisheye photo, an equirectangular panorama."""

DEFAULT_FISHEYE_SIZE = 1024
"""Side of the upward fisheye image a panorama's upper hemisphere is projected to."""

DEFAULT_THRESHOLD = 0.5


@dataclasses.dataclass
class HemispherePrediction:
    """What :func:`predict_hemisphere` returns.

    Attributes:
        probability: float32 ``[H, W]`` sky probability of the photo itself (a panorama's is NaN
            below the lowest latitude predicted).
        fisheye: float32 sky probability of the upward hemisphere the figures were measured on:
            the photo's own map for a fisheye photo, the projected upper half for a panorama.
        circle: The image circle of ``fisheye``.
        lens: The lens of ``fisheye``.
        figures: :func:`~skyseg_tf.hemisphere.sky_view.hemisphere_figures` of ``fisheye``; when
            the photo does not hold the whole hemisphere (:func:`whole_hemisphere`: a full-frame
            fisheye whose horizon runs past the frame, a lens under 180 degrees), the figures are
            ``None`` and ``figures["note"]`` says why.
    """

    probability: np.ndarray
    fisheye: np.ndarray
    circle: ImageCircle
    lens: FisheyeLens
    figures: dict

    @property
    def written_probability(self) -> np.ndarray:
        """:attr:`probability` as the outputs write it: pixels not predicted (a panorama's below
        its lowest latitude, NaN) are 0."""
        return np.nan_to_num(self.probability, nan=0.0)

    def record(self) -> dict:
        """The figures a per-photo record holds (``skyseg predict --lens``, Beam)."""
        return {key: self.figures[key] for key in RECORD_FIELDS}

    def polar_plot(self, image: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """:func:`polar_plot` of this prediction with the photo (a panorama: its upper hemisphere)
        under the sky, titled with the sky view factor."""
        if image.shape[:2] != self.probability.shape:
            raise ValueError(f"image: received shape {image.shape}; pass the photo this prediction was made "
                             f"on ({self.probability.shape[0]}x{self.probability.shape[1]}).")
        photo = image
        if self.fisheye is not self.probability:  # a panorama: show its sky hemisphere
            from skyseg_tf.hemisphere.panorama import panorama_to_fisheye

            photo, _ = panorama_to_fisheye(image, size=self.fisheye.shape[0], lens=self.lens)
        svf = self.figures["svf"]
        return polar_plot(self.fisheye, self.circle, self.lens, threshold=threshold, photo=photo,
                          title="SVF not measured (part of the hemisphere is not in the photo)" if svf is None
                          else f"SVF {svf:.3f}")


RECORD_FIELDS = ("svf", "canopy_openness", "gap_fraction_by_ring", "sky_fraction_by_sector", "circle", "lens")
"""Keys of :meth:`HemispherePrediction.record`: what ``predictions.jsonl`` holds per photo."""

RECORD_COLUMNS = ("svf", "canopy_openness")
"""The figures that also go into ``predictions.csv`` (one number each)."""


def predict_hemisphere(model, image, *, lens: str = "fisheye", fisheye_lens: FisheyeLens | None = None,
                       circle=None, threshold: float = DEFAULT_THRESHOLD, fisheye_size: int = DEFAULT_FISHEYE_SIZE,
                       **predict_options) -> HemispherePrediction:
    """Sky probabilities of a fisheye photo or a panorama, and the sky view factor they give.

    Args:
        model: Anything :func:`skyseg_tf.inference.predict_image` takes (``None``: for a fisheye
            photo the preset ``sky_unet_efficientnet_lite0_fisheye``, for a panorama the default
            preset, whose views are ordinary photos).
        image: RGB ``uint8`` ``[H, W, 3]``.
        lens: ``"fisheye"`` (an upward hemispherical photo) or ``"panorama"`` (equirectangular,
            ``W = 2 H``).
        fisheye_lens: The camera's lens (projection, field of view) for a fisheye photo; the lens
            the upper hemisphere is projected with for a panorama. Default: equidistant, 180
            degrees. The sky view factor needs a field of view of at least 180 degrees.
        circle: For a fisheye photo: ``None`` or ``"auto"`` (found in the photo), an
            :class:`~skyseg_tf.hemisphere.lens.ImageCircle` or ``(cx, cy, radius)`` in pixels.
        threshold: Probability at or above which a pixel is sky in the figures.
        fisheye_size: Side of a panorama's fisheye projection.
        **predict_options: Passed to ``predict_image`` (``mode``, ``refine``...) or
            :func:`~skyseg_tf.hemisphere.panorama.predict_panorama` (``fov``, ``view_size``...).

    Returns:
        A :class:`HemispherePrediction`.

    Raises:
        ValueError: For an invalid option or a panorama that is not 2:1.

    Example:
        >>> bright = lambda x: x[..., :1] / 255.0
        >>> panorama = np.zeros((64, 128, 3), np.uint8)
        >>> panorama[:32] = 255  # sky above the horizon
        >>> result = predict_hemisphere(bright, panorama, lens="panorama", fisheye_size=256,
        ...                             view_size=32)
        >>> round(result.figures["svf"], 2), result.fisheye.shape
        (1.0, (256, 256))
    """
    checks.choice("lens", lens, LENSES[1:])
    checks.probability("threshold", threshold)
    fisheye_lens = FisheyeLens() if fisheye_lens is None else fisheye_lens
    if not isinstance(fisheye_lens, FisheyeLens):
        raise ValueError(f"fisheye_lens: received {fisheye_lens!r}; pass a skyseg_tf.hemisphere.FisheyeLens.")
    from skyseg_tf.inference.predict import as_rgb, predict_image, resolve_circle
    from skyseg_tf.inference.predictor import as_predictor

    image = as_rgb(image)
    if lens == "fisheye":
        if model is None:
            from skyseg_tf.presets import FISHEYE_PRESET, from_preset

            model = from_preset(FISHEYE_PRESET)
        predictor = as_predictor(model)
        found = resolve_circle("auto" if circle is None else circle, predictor, image)
        probability = predict_image(predictor, image, circle=found, **predict_options)
        fisheye, found_circle = probability, found
    else:
        if circle is not None:
            raise ValueError("circle: a panorama has no image circle; leave circle out with lens='panorama'.")
        from skyseg_tf.hemisphere.panorama import panorama_to_fisheye, predict_panorama

        probability = predict_panorama(model, image, **predict_options)
        upper = np.nan_to_num(probability, nan=0.0)
        fisheye, found_circle = panorama_to_fisheye(upper, size=checks.positive_int("fisheye_size", fisheye_size),
                                                    lens=fisheye_lens)
        fisheye = fisheye.astype(np.float32, copy=False)
    if whole_hemisphere(fisheye.shape, found_circle, fisheye_lens):
        # 90 one-degree rings, fewer for a small circle (every ring must hold pixels).
        rings = int(min(DEFAULT_RINGS, max(1, found_circle.radius // 3)))
        figures = hemisphere_figures(fisheye, found_circle, fisheye_lens, threshold=threshold, rings=rings,
                                     gap_rings=min(DEFAULT_GAP_RINGS, rings))
    else:
        figures = {**{key: None for key in RECORD_FIELDS}, "circle": found_circle.to_dict(),
                   "lens": fisheye_lens.to_dict(),
                   "note": "the photo does not hold the whole sky hemisphere (its horizon circle runs past the "
                           "frame, or the lens sees less than 180 degrees), so no sky view factor is measured"}
    return HemispherePrediction(probability, fisheye, found_circle, fisheye_lens, figures)


def whole_hemisphere(shape, circle: ImageCircle, lens: FisheyeLens) -> bool:
    """Whether a fisheye photo of ``shape`` holds the whole sky hemisphere (zenith 0 to 90 degrees).

    Example:
        >>> whole_hemisphere((100, 100), ImageCircle(50, 50, 50), FisheyeLens())
        True
        >>> whole_hemisphere((100, 100), ImageCircle(50, 50, 70), FisheyeLens())  # a full-frame fisheye
        False
    """
    if lens.fov < 180.0:
        return False
    horizon = circle.radius * float(lens.radius(np.pi / 2))
    height, width = int(shape[0]), int(shape[1])
    slack = 0.5  # pixel centres
    return (circle.cx - horizon >= -slack and circle.cy - horizon >= -slack
            and circle.cx + horizon <= width + slack and circle.cy + horizon <= height + slack)


def polar_plot(fisheye: np.ndarray, circle: ImageCircle, lens: FisheyeLens, *, threshold: float = DEFAULT_THRESHOLD,
               size: int = 512, photo: np.ndarray | None = None, title: str | None = None) -> np.ndarray:
    """The sky of a hemisphere as a polar plot: RGB ``uint8 [size, size, 3]``.

    Sky is light blue (or the photo, tinted), the rest dark grey; rings every 15 degrees of
    zenith angle (placed by the lens, so a 45-degree ring is where the lens images 45 degrees)
    and spokes every 45 degrees of azimuth, labelled; outside the circle white.

    Example:
        >>> plot = polar_plot(np.ones((100, 100), np.float32), ImageCircle(50, 50, 50), FisheyeLens())
        >>> plot.shape, plot.dtype.name
        ((512, 512, 3), 'uint8')
    """
    size = checks.positive_int("size", size)
    fisheye = np.asarray(fisheye, dtype=np.float32)
    if fisheye.ndim != 2:
        raise ValueError(f"fisheye: received shape {fisheye.shape}; pass a [H, W] sky probability map.")
    margin = 28
    radius = size / 2.0 - margin
    scale = radius / circle.radius
    # Map the circle's bounding square onto the plot.
    matrix = np.array([[scale, 0, size / 2.0 - circle.cx * scale], [0, scale, size / 2.0 - circle.cy * scale]],
                      np.float32)
    sky = cv2.warpAffine(fisheye, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0) >= threshold
    inside = circle_mask((size, size), ImageCircle(size / 2.0, size / 2.0, radius))
    plot = np.full((size, size, 3), 255, np.uint8)
    if photo is not None:
        seen = cv2.warpAffine(np.ascontiguousarray(photo), matrix, (size, size), flags=cv2.INTER_AREA)
        tint = np.where(sky[..., None], 0.55 * seen + 0.45 * np.array([120, 190, 255]),
                        0.35 * seen + 0.65 * np.array([40, 40, 40]))
        plot[inside] = tint[inside].astype(np.uint8)
    else:
        plot[inside] = (60, 60, 60)
        plot[inside & sky] = (150, 205, 250)
    centre = (size // 2, size // 2)
    grid = (255, 255, 255) if photo is None else (255, 255, 0)
    for zenith in range(15, 91, 15):
        if zenith > lens.fov / 2:
            break
        ring = int(round(float(lens.radius(np.radians(zenith))) * radius))
        cv2.circle(plot, centre, ring, grid, 1, cv2.LINE_AA)
        cv2.putText(plot, f"{zenith}", (centre[0] + 3, centre[1] - ring + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    grid, 1, cv2.LINE_AA)
    labels = {0: "0", 45: "45", 90: "90", 135: "135", 180: "180", 225: "225", 270: "270", 315: "315"}
    for azimuth, text in labels.items():
        angle = np.radians(azimuth)  # 0 up, clockwise (lens.polar_angles)
        end = (int(round(centre[0] + radius * np.sin(angle))), int(round(centre[1] - radius * np.cos(angle))))
        cv2.line(plot, centre, end, grid, 1, cv2.LINE_AA)
        label = (int(round(centre[0] + (radius + 14) * np.sin(angle))) - 4 * len(text),
                 int(round(centre[1] - (radius + 14) * np.cos(angle))) + 4)
        cv2.putText(plot, text, label, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.circle(plot, centre, int(round(radius)), (0, 0, 0), 1, cv2.LINE_AA)
    if title:
        cv2.putText(plot, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return plot


__all__ = ["DEFAULT_FISHEYE_SIZE", "HemispherePrediction", "LENSES", "RECORD_COLUMNS", "RECORD_FIELDS", "polar_plot",
           "predict_hemisphere", "whole_hemisphere"]
