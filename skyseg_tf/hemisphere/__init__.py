"""Sky from below: upward fisheye photos, 360-degree panoramas and the sky view factor.

One job per module:

* :mod:`~skyseg_tf.hemisphere.lens`: fisheye projections, the image circle, zenith and azimuth
  of every pixel;
* :mod:`~skyseg_tf.hemisphere.circle`: :func:`find_image_circle` in a photo;
* :mod:`~skyseg_tf.hemisphere.sky_view`: sky view factor (annulus method), canopy openness, gap
  fraction per zenith ring, sky fraction per azimuth sector;
* :mod:`~skyseg_tf.hemisphere.panorama`: equirectangular panoramas to perspective views and back,
  and their upper hemisphere as an upward fisheye;
* :mod:`~skyseg_tf.hemisphere.measure`: :func:`predict_hemisphere` (a model on a fisheye photo or
  a panorama, and its figures) and :func:`polar_plot`.

See ``docs/hemisphere.md``.

Example:
    >>> import numpy as np
    >>> round(sky_view_factor(np.ones((200, 200), bool)), 3)
    1.0
"""

from skyseg_tf.hemisphere.circle import find_image_circle
from skyseg_tf.hemisphere.lens import PROJECTIONS, FisheyeLens, ImageCircle, circle_mask, polar_angles
from skyseg_tf.hemisphere.measure import LENSES, HemispherePrediction, polar_plot, predict_hemisphere
from skyseg_tf.hemisphere.panorama import (
    PerspectiveView,
    panorama_to_fisheye,
    panorama_to_view,
    panorama_views,
    predict_panorama,
    stitch_views,
)
from skyseg_tf.hemisphere.sky_view import (
    canopy_openness,
    gap_fraction_by_ring,
    hemisphere_figures,
    sky_fraction_by_sector,
    sky_view_factor,
)

__all__ = ["FisheyeLens", "HemispherePrediction", "ImageCircle", "LENSES", "PROJECTIONS", "PerspectiveView",
           "canopy_openness", "circle_mask", "find_image_circle", "gap_fraction_by_ring", "hemisphere_figures",
           "panorama_to_fisheye", "panorama_to_view", "panorama_views", "polar_angles", "polar_plot",
           "predict_hemisphere", "predict_panorama", "sky_fraction_by_sector", "sky_view_factor", "stitch_views"]
