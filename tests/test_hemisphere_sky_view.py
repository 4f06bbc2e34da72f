"""Sky view factor, canopy openness, gap fractions and sectors against analytic values.

Masks are drawn from the polar angles of every pixel of a 1600 x 1600 photo, for each lens
projection, so the figures should match the closed forms to the discretisation error (< 1e-3).
"""

import json
import math

import numpy as np
import pytest

from skyseg_tf.hemisphere.lens import PROJECTIONS, FisheyeLens, ImageCircle, polar_angles
from skyseg_tf.hemisphere.sky_view import (
    canopy_openness,
    gap_fraction_by_ring,
    hemisphere_figures,
    sky_fraction_by_sector,
    sky_view_factor,
)

SIZE = 1600
CIRCLE = ImageCircle.inscribed((SIZE, SIZE))
TOLERANCE = 1e-3


@pytest.fixture(scope="module", params=PROJECTIONS)
def hemisphere(request):
    """(lens, zenith, azimuth, inside) of the test photo for one projection (fov 180)."""
    lens = FisheyeLens(request.param, 180.0)
    zenith, azimuth = polar_angles((SIZE, SIZE), CIRCLE, lens)
    inside = ~np.isnan(zenith)
    return lens, np.nan_to_num(zenith, nan=np.pi), np.nan_to_num(azimuth), inside


def _canyon(hemisphere, wall):
    """Sky of an infinitely long street canyon along the image's vertical axis, walls at elevation ``wall``."""
    _, zenith, azimuth, inside = hemisphere
    return inside & (np.pi / 2 - zenith > np.arctan(np.tan(wall) * np.abs(np.sin(azimuth))))


def _canyon_openness(wall, azimuth_from=0.0, azimuth_to=2 * np.pi):
    """Solid-angle sky share of the canyon over an azimuth range: mean of 1 - cos(zenith of the wall top)."""
    phi = np.linspace(azimuth_from, azimuth_to, 400001)
    k = np.tan(wall) * np.abs(np.sin(phi))
    return float(np.mean(1.0 - k / np.sqrt(1.0 + k * k)))


def test_open_sky(hemisphere):
    lens, _, _, inside = hemisphere
    assert sky_view_factor(inside, CIRCLE, lens) == pytest.approx(1.0, abs=1e-12)
    assert canopy_openness(inside, CIRCLE, lens) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("wall", [math.atan(2.0), math.radians(30.0)], ids=["height_equals_width", "30_degrees"])
def test_street_canyon(hemisphere, wall):
    lens = hemisphere[0]
    sky = _canyon(hemisphere, wall)
    assert sky_view_factor(sky, CIRCLE, lens) == pytest.approx(math.cos(wall), abs=TOLERANCE)
    assert canopy_openness(sky, CIRCLE, lens) == pytest.approx(_canyon_openness(wall), abs=TOLERANCE)
    edges, shares = sky_fraction_by_sector(sky, CIRCLE, lens, sectors=4)
    expected = [_canyon_openness(wall, math.radians(a), math.radians(b)) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(shares, expected, atol=TOLERANCE)


def test_height_equals_width_gives_the_textbook_value(hemisphere):
    sky = _canyon(hemisphere, math.atan(2.0))  # H/W = 1: walls seen at atan(2) from the street's middle
    assert sky_view_factor(sky, CIRCLE, hemisphere[0]) == pytest.approx(0.4472, abs=TOLERANCE)


@pytest.mark.parametrize("degrees", [30.0, 57.3, 80.0])
def test_sky_up_to_a_zenith_angle(hemisphere, degrees):
    lens, zenith, _, inside = hemisphere
    t = math.radians(degrees)
    sky = inside & (zenith < t)
    assert sky_view_factor(sky, CIRCLE, lens) == pytest.approx(math.sin(t) ** 2, abs=TOLERANCE)
    assert canopy_openness(sky, CIRCLE, lens) == pytest.approx(1.0 - math.cos(t), abs=TOLERANCE)
    for rings in (30, 45, 90, 180):  # beyond the discretisation error, the ring count does not matter
        assert sky_view_factor(sky, CIRCLE, lens, rings=rings) == pytest.approx(math.sin(t) ** 2, abs=TOLERANCE)


def test_gap_fraction_by_ring_of_a_zenith_cap(hemisphere):
    lens, zenith, _, inside = hemisphere
    sky = inside & (zenith < math.radians(45.0))
    edges, fractions = gap_fraction_by_ring(sky, CIRCLE, lens, rings=9)
    np.testing.assert_allclose(edges, np.arange(0.0, 91.0, 10.0))
    # the ring 40..50 degrees: the share of its pixels (image area) inside 45 degrees, unweighted
    radius = lens.radius(np.radians([40.0, 45.0, 50.0]))
    straddled = (radius[1] ** 2 - radius[0] ** 2) / (radius[2] ** 2 - radius[0] ** 2)
    np.testing.assert_allclose(fractions, [1, 1, 1, 1, straddled, 0, 0, 0, 0], atol=TOLERANCE)


@pytest.mark.parametrize("direction", [0.0, 30.0, 135.0])
def test_half_sky(hemisphere, direction):
    lens, _, azimuth, inside = hemisphere
    # sky on the side of the line through the centre at azimuth `direction` .. `direction + 180`
    sky = inside & (np.mod(azimuth - math.radians(direction), 2 * np.pi) < np.pi)
    assert sky_view_factor(sky, CIRCLE, lens) == pytest.approx(0.5, abs=TOLERANCE)
    assert canopy_openness(sky, CIRCLE, lens) == pytest.approx(0.5, abs=TOLERANCE)


def test_sectors_follow_the_azimuth_convention():
    sky = np.zeros((400, 400), bool)
    sky[:200] = True  # the upper half: azimuths 270..360 and 0..90
    edges, shares = sky_fraction_by_sector(sky, sectors=4)
    np.testing.assert_allclose(edges, [0, 90, 180, 270, 360])
    np.testing.assert_allclose(shares, [1, 0, 0, 1], atol=1e-9)


def test_soft_values_and_the_threshold():
    sky = np.full((400, 400), 0.3)
    assert sky_view_factor(sky, threshold=None) == pytest.approx(0.3)
    assert canopy_openness(sky, threshold=None) == pytest.approx(0.3)
    assert sky_view_factor(sky) == 0.0
    assert sky_view_factor(sky, threshold=0.3) == pytest.approx(1.0)
    assert sky_view_factor(sky.astype(np.float32), threshold=0.2) == pytest.approx(1.0)
    assert sky_view_factor(np.ones((400, 400), np.uint8)) == pytest.approx(1.0)


def test_pixels_outside_the_circle_do_not_count():
    sky = np.zeros((400, 600), bool)
    sky[:, 100:500] = True  # the square around the default circle, centred in the 400 x 600 photo
    assert sky_view_factor(sky) == pytest.approx(1.0)
    assert sky_view_factor(~sky) == pytest.approx(0.0)


def test_a_wider_lens_counts_only_the_hemisphere():
    lens = FisheyeLens("equidistant", 200.0)
    zenith, _ = polar_angles((800, 800), ImageCircle.inscribed((800, 800)), lens)
    sky = ~np.isnan(zenith) & (zenith <= np.pi / 2)  # below the horizon is never sky
    assert sky_view_factor(sky, lens=lens) == pytest.approx(1.0)
    assert canopy_openness(~np.isnan(zenith), lens=lens) == pytest.approx(1.0)
    assert canopy_openness(sky, lens=lens, max_zenith=60) == pytest.approx(1.0)


def test_hemisphere_figures_is_json_ready_and_agrees_with_the_functions():
    sky = np.zeros((400, 400), bool)
    sky[:, 200:] = True
    lens = FisheyeLens("equisolid", 180.0)
    figures = hemisphere_figures(sky, lens=lens, gap_rings=3, sectors=4, max_zenith=80)
    assert json.loads(json.dumps(figures)) == figures
    assert figures["svf"] == pytest.approx(sky_view_factor(sky, lens=lens))
    assert figures["canopy_openness"] == pytest.approx(canopy_openness(sky, lens=lens, max_zenith=80))
    edges, fractions = gap_fraction_by_ring(sky, lens=lens, rings=3, max_zenith=80)
    assert [ring["gap_fraction"] for ring in figures["gap_fraction_by_ring"]] == pytest.approx(fractions.tolist())
    assert figures["gap_fraction_by_ring"][-1]["zenith_to"] == 80.0
    assert [s["sky_fraction"] for s in figures["sky_fraction_by_sector"]] == pytest.approx([1, 1, 0, 0])
    assert figures["circle"] == {"cx": 200.0, "cy": 200.0, "radius": 200.0}
    assert figures["lens"] == {"projection": "equisolid", "fov": 180.0}
    assert figures["options"] == {"rings": 90, "gap_rings": 3, "sectors": 4, "max_zenith": 80.0, "threshold": 0.5}


@pytest.mark.parametrize("call, needle", [
    (lambda: sky_view_factor(np.ones((10, 10, 1))), "sky: received an array of shape (10, 10, 1)"),
    (lambda: sky_view_factor(np.full((10, 10), 255)), "sky: received values from 255 to 255"),
    (lambda: sky_view_factor(np.full((10, 10), -0.1)), "sky: received values from -0.1"),
    (lambda: sky_view_factor(np.full((10, 10), np.nan)), "sky: received values from nan"),
    (lambda: sky_view_factor(np.ones((10, 10)), rings=0), "rings: received 0"),
    (lambda: sky_view_factor(np.ones((10, 10)), rings=2.5), "rings: received 2.5"),
    (lambda: sky_view_factor(np.ones((10, 10)), threshold=1.5), "threshold: received 1.5"),
    (lambda: sky_view_factor(np.ones((20, 20)), rings=90), "rings: received 90;"),
    (lambda: sky_view_factor(np.ones((100, 100)), lens=FisheyeLens("equidistant", 150)),
     "the sky view factor needs the whole hemisphere"),
    (lambda: canopy_openness(np.ones((100, 100)), lens=FisheyeLens("equidistant", 150), rings=9),
     "max_zenith: received 90; the lens (equidistant, fov 150) sees zenith angles up to 75"),
    (lambda: canopy_openness(np.ones((100, 100)), max_zenith=0), "max_zenith: received 0"),
    (lambda: gap_fraction_by_ring(np.ones((100, 100)), max_zenith=95), "max_zenith: received 95"),
    (lambda: sky_fraction_by_sector(np.ones((100, 100)), sectors=0), "sectors: received 0"),
    (lambda: hemisphere_figures(np.ones((100, 100)), gap_rings=-1), "gap_rings: received -1"),
])
def test_bad_inputs_raise_a_value_error_naming_the_argument(call, needle):
    with pytest.raises(ValueError) as error:
        call()
    assert needle in str(error.value)


def test_a_lens_narrower_than_the_hemisphere_still_gives_openness_up_to_its_edge():
    lens = FisheyeLens("equidistant", 150.0)
    assert canopy_openness(np.ones((400, 400)), lens=lens, max_zenith=75) == pytest.approx(1.0)


@pytest.mark.parametrize("circle, lens", [({"cx": 1, "cy": 1, "radius": 1}, None), (None, "equidistant")])
def test_circle_and_lens_must_be_their_classes(circle, lens):
    with pytest.raises(TypeError):
        sky_view_factor(np.ones((10, 10)), circle, lens, rings=1)
