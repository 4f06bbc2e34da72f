"""Equirectangular panoramas: view layout and coverage, panorama <-> views round trips to the
pixel, stitching weights, upward fisheyes (zenith, horizon, radii, azimuths), prediction, errors."""

import math

import numpy as np
import pytest

from skyseg_tf.hemisphere.lens import FisheyeLens
from skyseg_tf.hemisphere.panorama import (
    PerspectiveView,
    default_view_size,
    panorama_to_fisheye,
    panorama_to_view,
    panorama_views,
    predict_panorama,
    stitch_views,
)


def grid(height, width=None):
    """Latitude and longitude (radians) of every pixel centre of a panorama, ``[H, W]`` each."""
    width = width or 2 * height
    lat = np.pi / 2 - (np.arange(height) + 0.5) / height * np.pi
    lon = (np.arange(width) + 0.5) / width * 2 * np.pi - np.pi
    lon, lat = np.meshgrid(lon, lat)
    return lat, lon


def coordinate_panorama(height):
    """float32 ``[H, 2H, 3]``: sin and cos of each pixel's longitude (no seam) and its row index."""
    lat, lon = grid(height)
    rows = np.broadcast_to(np.arange(height, dtype=np.float64)[:, None], lat.shape)
    return np.stack([np.sin(lon), np.cos(lon), rows], axis=-1).astype(np.float32)


def camera_coordinates(view, lat, lon):
    """Camera-frame ``x`` (right), ``y`` (up), ``z`` (forward) of directions, written out
    independently of the module: the view turns by ``yaw`` about the vertical, then tilts up by
    ``pitch``."""
    d = np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], axis=-1)
    yaw, pitch = math.radians(view.yaw), math.radians(view.pitch)
    forward = np.array([math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)])
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    up = np.cross(right, forward)
    return d @ right, d @ up, d @ forward


def angular_offsets(view, lat, lon):
    """Horizontal and vertical angles (degrees) off the view's axis, ``inf`` behind it."""
    x, y, z = camera_coordinates(view, lat, lon)
    with np.errstate(divide="ignore", invalid="ignore"):
        ax = np.where(z > 0, np.degrees(np.arctan(np.abs(x) / z)), np.inf)
        ay = np.where(z > 0, np.degrees(np.arctan(np.abs(y) / z)), np.inf)
    return ax, ay


def vertical_fov(view):
    return math.degrees(2 * math.atan(math.tan(math.radians(view.fov) / 2) * view.size[0] / view.size[1]))


# ----------------------------------------------------------------------------------------------
# Views


@pytest.mark.parametrize("kwargs", [
    {},
    {"fov": 60.0},
    {"fov": 120.0, "overlap": 20.0},
    {"min_latitude": -90.0},
    {"size": (384, 512)},
    {"overlap": 0.0, "min_latitude": 0.0},
])
def test_views_cover_the_sphere_down_to_min_latitude_with_overlap(kwargs):
    views = panorama_views(**kwargs)
    overlap = kwargs.get("overlap", 10.0)
    min_latitude = kwargs.get("min_latitude", -30.0)
    lat, lon = grid(180)
    needed = np.degrees(lat) >= min_latitude
    seen = np.zeros(lat.shape, bool)
    seen_narrowed = np.zeros(lat.shape, bool)
    for view in views:
        ax, ay = angular_offsets(view, lat, lon)
        seen |= (ax <= view.fov / 2) & (ay <= vertical_fov(view) / 2)
        seen_narrowed |= (ax <= (view.fov - overlap) / 2) & (ay <= (vertical_fov(view) - overlap) / 2)
    assert seen[needed].all()
    assert seen_narrowed[needed].all()  # neighbours share at least `overlap` degrees
    assert views[0].pitch == 90.0 and all(v.fov == kwargs.get("fov", 90.0) for v in views)
    # stitch_views agrees with this independent geometry on which pixels the views see.
    stitched = stitch_views([np.ones(v.size) for v in views], views, lat.shape)
    np.testing.assert_array_equal(~np.isnan(stitched), seen)


def test_default_views_are_few_and_the_nadir_is_added_only_when_asked():
    views = panorama_views()
    assert len(views) <= 12
    assert min(v.pitch for v in views) > -90
    assert panorama_views(min_latitude=-90.0)[-1].pitch == -90.0
    assert panorama_views() == views and panorama_views() is not panorama_views()  # a fresh list each call


def test_view_renders_the_direction_it_looks_at():
    panorama = coordinate_panorama(180)
    lat_map = 90 - (panorama[..., 2] + 0.5) / 180 * 180  # latitude of each pixel, degrees
    view = PerspectiveView(yaw=30.0, pitch=20.0, fov=60.0, size=(41, 61))
    image = panorama_to_view(panorama, view)
    lat_image = panorama_to_view(lat_map, view)
    yaw = np.degrees(np.arctan2(image[..., 0], image[..., 1]))
    assert image.shape == (41, 61, 3) and image.dtype == np.float32
    assert yaw[20, 30] == pytest.approx(30.0, abs=0.1) and lat_image[20, 30] == pytest.approx(20.0, abs=0.1)
    # Right in the image is increasing yaw, up is increasing latitude (no roll).
    assert (np.diff(yaw[20]) > 0).all() and (np.diff(lat_image[:, 30]) < 0).all()
    level = panorama_to_view(panorama, PerspectiveView(yaw=30.0, pitch=0.0, fov=60.0, size=(41, 61)))
    edge = math.degrees(math.atan(math.tan(math.radians(30)) * 60 / 61))  # last pixel centre
    assert np.degrees(np.arctan2(level[20, 60, 0], level[20, 60, 1])) == pytest.approx(30.0 + edge, abs=0.1)


def test_view_wraps_across_the_seam_and_over_the_pole():
    panorama = coordinate_panorama(90)
    seam = panorama_to_view(panorama, PerspectiveView(yaw=180.0, pitch=0.0, fov=40.0, size=21))
    yaw = np.degrees(np.arctan2(seam[10, :, 0], seam[10, :, 1]))
    # Continuous through +-180: the sin of longitude goes smoothly from positive to negative.
    assert (np.diff(seam[10, :, 0]) < 0).all() and np.abs(np.abs(yaw) - 180).max() < 21
    first_column = np.zeros((90, 180), np.float32)
    first_column[:, 0] = 1.0
    # Yaw 180 lies between the last column and the first: half of each.
    assert panorama_to_view(first_column, PerspectiveView(yaw=180.0, pitch=0.0, fov=10.0, size=1))[0, 0] == 0.5
    zenith = panorama_to_view(panorama, PerspectiveView(yaw=0.0, pitch=90.0, fov=40.0, size=21))
    assert zenith[10, 10, 2] < 0.5  # the top row at the centre
    corner = math.degrees(math.atan(math.sqrt(2) * math.tan(math.radians(20))))  # degrees off the zenith
    assert np.isfinite(zenith).all() and zenith[..., 2].max() < corner / 2


# ----------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("view_size, layout", [(128, "zenith"), (192, "zenith"), (128, "horizon")])
def test_round_trip_maps_every_pixel_back_to_itself(view_size, layout):
    """Tolerances, in panorama pixels (180 / H degrees): angular distance between a pixel and
    where it comes back, median < 0.05 and max < 0.5 everywhere (the max is at the top row, whose
    neighbours across the pole are clamped to it); longitude error < 0.25 columns and row error
    < 0.5 rows away from the poles (|lat| < 80)."""
    height, width = 256, 512
    panorama = coordinate_panorama(height)
    views = panorama_views(size=view_size, layout=layout)
    back = stitch_views([panorama_to_view(panorama, v) for v in views], views, (height, width))
    lat, lon = grid(height)
    covered = ~np.isnan(back[..., 0])
    assert covered[np.degrees(lat) >= -30].all()
    lon_back = np.arctan2(back[..., 0], back[..., 1])
    lat_back = np.pi / 2 - (back[..., 2] + 0.5) / height * np.pi
    cos_angle = np.sin(lat) * np.sin(lat_back) + np.cos(lat) * np.cos(lat_back) * np.cos(lon_back - lon)
    distance = np.degrees(np.arccos(np.clip(cos_angle, -1, 1)))[covered] / (180 / height)
    assert np.median(distance) < 0.05 and distance.max() < 0.5
    away = covered & (np.abs(np.degrees(lat)) < 80)
    column_error = np.angle(np.exp(1j * (lon_back - lon)))[away] / (2 * np.pi) * width
    row_error = (back[..., 2] - np.arange(height)[:, None])[away]
    assert np.abs(column_error).max() < 0.25 and np.abs(row_error).max() < 0.5
    assert np.median(np.abs(column_error)) < 0.05 and np.median(np.abs(row_error)) < 0.05


def test_round_trip_of_a_smooth_colour_panorama_within_a_few_grey_levels():
    lat, lon = grid(128)
    colour = np.stack([127.5 + 100 * np.cos(lat) * np.sin(lon), 127.5 + 100 * np.sin(lat),
                       127.5 + 100 * np.cos(lat) * np.cos(lon + 1)], axis=-1)
    colour = np.round(colour).astype(np.uint8)
    views = panorama_views(size=64)
    rendered = [panorama_to_view(colour, v) for v in views]
    assert rendered[0].dtype == np.uint8
    back = stitch_views(rendered, views, colour.shape)
    covered = ~np.isnan(back[..., 0])
    error = np.abs(back - colour)[covered]
    assert error.max() <= 3 and error.mean() < 0.5


def test_stitching_blends_overlapping_views_smoothly():
    left = PerspectiveView(yaw=0.0, pitch=0.0, fov=90.0, size=64)
    right = PerspectiveView(yaw=60.0, pitch=0.0, fov=90.0, size=64)
    stitched = stitch_views([np.zeros(left.size), np.ones(right.size)], [left, right], (90, 180))
    row = stitched[44]  # just above the horizon
    column = lambda yaw: int((yaw + 180) / 2)  # noqa: E731 - column whose centre is at yaw + 1
    assert row[column(0)] == 0.0 and row[column(60)] == 1.0
    assert row[column(29)] == pytest.approx(0.5, abs=0.05)  # halfway between the axes
    between = row[column(16):column(46)]
    assert (np.diff(between) > 0).all() and 0 < between.min() and between.max() < 1  # a ramp, not a step
    assert np.isnan(row[column(-60)]) and np.isnan(row[column(120)])
    filled = stitch_views([np.zeros(left.size)], [left], (90, 180), fill_value=-1.0)
    assert filled[44, column(180 - 2)] == -1.0


# ----------------------------------------------------------------------------------------------
# Fisheye


@pytest.mark.parametrize("lens", [FisheyeLens("equidistant"), FisheyeLens("equisolid"),
                                  FisheyeLens("equidistant", 200)])
def test_fisheye_radius_follows_the_lens_from_the_zenith_at_the_centre(lens):
    height = 256
    panorama = coordinate_panorama(height)[..., 2]  # row index
    fisheye, circle = panorama_to_fisheye(panorama, size=201, lens=lens)
    y, x = np.mgrid[0:201, 0:201] + 0.5
    rho = np.hypot(x - circle.cx, y - circle.cy) / circle.radius
    inside = rho <= 1
    zenith = lens.zenith_angle(np.minimum(rho, 1.0))
    expected = np.clip(zenith / np.pi * height - 0.5, 0, height - 1)
    expected = np.where(zenith <= np.pi / 2, np.minimum(expected, height / 2 - 1), expected)
    np.testing.assert_allclose(fisheye[inside], expected[inside], atol=0.05)
    assert fisheye[100, 100] < 0.05  # the zenith row at the centre
    assert (fisheye[~inside] == 0).all()


def test_fisheye_of_an_upper_half_is_a_full_circle():
    panorama = np.zeros((128, 256), np.uint8)
    panorama[:64] = 255
    for size in (100, 101):
        fisheye, circle = panorama_to_fisheye(panorama, size=size)
        assert circle.radius == size / 2 and circle.cx == size / 2
        y, x = np.mgrid[0:size, 0:size] + 0.5
        inside = np.hypot(x - circle.cx, y - circle.cy) <= circle.radius
        assert (fisheye[inside] == 255).all() and (fisheye[~inside] == 0).all()


@pytest.mark.parametrize("projection", ["equidistant", "equisolid"])
@pytest.mark.parametrize("latitude", [20.0, 60.0])
def test_sky_above_a_latitude_is_a_disc_of_the_lens_radius(projection, latitude):
    lens = FisheyeLens(projection)
    lat, _ = grid(512)
    panorama = (np.degrees(lat) > latitude).astype(np.float32)
    fisheye, circle = panorama_to_fisheye(panorama, size=512, lens=lens)
    radius = float(lens.radius(np.radians(90.0 - latitude))) * circle.radius
    y, x = np.mgrid[0:512, 0:512] + 0.5
    r = np.hypot(x - circle.cx, y - circle.cy)
    assert (fisheye[r < radius - 1.5] > 0.5).all() and (fisheye[r > radius + 1.5] < 0.5).all()
    assert math.sqrt(fisheye.sum() / math.pi) == pytest.approx(radius, abs=1.0)


@pytest.mark.parametrize("orientation, sign", [("photo", -1), ("map", 1)])
def test_fisheye_azimuth_of_each_yaw(orientation, sign):
    panorama = coordinate_panorama(128)
    fisheye, circle = panorama_to_fisheye(panorama, size=101, orientation=orientation)
    yaw = np.degrees(np.arctan2(fisheye[..., 0], fisheye[..., 1]))
    # The top of the image is yaw 0; yaw 90 is on the left for a photo from below, right on a map.
    assert abs(yaw[5, 50]) < 1 and yaw[50, 5] == pytest.approx(-90.0 * sign, abs=1)
    assert yaw[50, 95] == pytest.approx(90.0 * sign, abs=1) and abs(abs(yaw[95, 50]) - 180) < 1
    y, x = np.mgrid[0:101, 0:101] + 0.5
    r = np.hypot(x - circle.cx, y - circle.cy)
    azimuth = np.degrees(np.arctan2(x - circle.cx, -(y - circle.cy)))  # clockwise from up
    ring = (r > 10) & (r < circle.radius)
    difference = (yaw - sign * azimuth + 180) % 360 - 180
    assert np.abs(difference[ring]).max() < 1.0
    first_column = np.zeros((128, 256), np.float32)
    first_column[:, 0] = 1.0
    assert panorama_to_fisheye(first_column, size=101, orientation=orientation)[0][95, 50] == 0.5  # yaw 180


def test_fisheye_keeps_dtype_and_channels():
    panorama = np.full((32, 64, 3), 200, np.uint8)
    fisheye, _ = panorama_to_fisheye(panorama, size=20, interpolation="nearest")
    assert fisheye.shape == (20, 20, 3) and fisheye.dtype == np.uint8
    assert fisheye[10, 10].tolist() == [200, 200, 200] and fisheye[0, 0].tolist() == [0, 0, 0]
    wide, _ = panorama_to_fisheye(np.ones((32, 64, 6), bool), size=20)
    assert wide.shape == (20, 20, 6) and wide.dtype == np.float32 and wide[10, 10].min() == 1.0


# ----------------------------------------------------------------------------------------------
# Prediction


def test_predict_panorama_with_a_threshold_model_matches_the_thresholded_panorama():
    tf = pytest.importorskip("tensorflow")
    lat, lon = grid(256)
    skyline = 10 + 8 * np.sin(3 * lon) + 15 * (np.abs(lon - 1.0) < 0.2)  # hills and a tower
    rng = np.random.default_rng(0)
    sky = np.degrees(lat) > skyline
    brightness = np.where(sky, 210, 40) + rng.integers(-20, 21, lat.shape)
    panorama = np.repeat(brightness[..., None], 3, axis=-1).astype(np.uint8)
    calls = []

    def model(images):
        calls.append(tuple(images.shape))
        return tf.cast(images[..., :1] > 127.5, tf.float32)

    probability = predict_panorama(model, panorama)
    assert probability.shape == (256, 512) and probability.dtype == np.float32
    covered = ~np.isnan(probability)
    assert covered[np.degrees(lat) >= -30].all() and not covered[np.degrees(lat) < -75].any()
    predicted = probability > 0.5
    iou = (predicted & sky & covered).sum() / ((predicted | sky) & covered).sum()
    assert iou > 0.98
    assert calls and all(shape[1:3] == (128, 128) for shape in calls)  # default_view_size(512)


def test_default_view_size_matches_the_panorama_resolution():
    assert default_view_size(2048) == 512 and default_view_size(2048, fov=60) == 352
    assert default_view_size(100_000) == 1024 and default_view_size(64) == 64


# ----------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("shape", [(100, 150, 3), (100, 202), (200, 100)])
def test_a_panorama_that_is_not_2_to_1_is_refused_with_the_fix(shape):
    with pytest.raises(ValueError, match=r"panorama: received shape .*width = 2 \* height.*cv2.resize"):
        panorama_to_view(np.zeros(shape, np.uint8), PerspectiveView())
    with pytest.raises(ValueError, match="panorama: received shape"):
        panorama_to_fisheye(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="panorama: received shape"):
        predict_panorama(lambda x: x[..., :1], np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="panorama_shape: received shape"):
        stitch_views([np.zeros((8, 8))], [PerspectiveView(size=8)], shape)


def test_one_pixel_off_2_to_1_is_accepted():
    for shape in [(100, 199), (100, 201)]:
        assert panorama_to_view(np.zeros(shape, np.uint8), PerspectiveView(size=8)).shape == (8, 8)
        assert panorama_to_fisheye(np.zeros(shape, np.float32), size=8)[0].shape == (8, 8)


@pytest.mark.parametrize("shape", [(0, 0), (0, 0, 3), (10, 20, 0), (20,), ()])
def test_empty_panoramas_are_refused(shape):
    with pytest.raises(ValueError, match="panorama: received shape"):
        panorama_to_view(np.zeros(shape, np.uint8), PerspectiveView())
    with pytest.raises(ValueError, match="panorama: received shape"):
        panorama_to_fisheye(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("fov", [0, 180, 200, -10, float("nan"), "90", True])
def test_pinhole_fov_must_be_within_0_and_180(fov):
    with pytest.raises(ValueError, match="fov: received"):
        PerspectiveView(fov=fov)
    with pytest.raises(ValueError, match="fov: received"):
        panorama_views(fov=fov)


@pytest.mark.parametrize("call, name", [
    (lambda: PerspectiveView(pitch=91), "pitch"),
    (lambda: PerspectiveView(yaw=float("inf")), "yaw"),
    (lambda: PerspectiveView(size=(0, 10)), "size"),
    (lambda: panorama_views(overlap=50), "overlap"),
    (lambda: panorama_views(overlap=-1), "overlap"),
    (lambda: panorama_views(min_latitude=90), "min_latitude"),
    (lambda: panorama_to_view(np.zeros((8, 16)), PerspectiveView(), interpolation="area"), "interpolation"),
    (lambda: panorama_to_view(np.zeros((8, 16)), (0, 0)), "view"),
    (lambda: panorama_to_fisheye(np.zeros((8, 16)), orientation="sky"), "orientation"),
    (lambda: panorama_to_fisheye(np.zeros((8, 16)), size=0), "size"),
    (lambda: panorama_to_fisheye(np.zeros((8, 16)), lens="equidistant"), "lens"),
    (lambda: panorama_to_view(np.zeros((8, 16), object), PerspectiveView()), "panorama"),
    (lambda: stitch_views([np.zeros((8, 8))], [], (8, 16)), "views_data"),
    (lambda: stitch_views([np.zeros((8, 9))], [PerspectiveView(size=8)], (8, 16)), r"views_data\[0\]"),
    (lambda: stitch_views([np.zeros((8, 8))], ["view"], (8, 16)), r"views\[0\]"),
    (lambda: stitch_views([np.zeros((8, 8))], [PerspectiveView(size=8)], "big"), "panorama_shape"),
])
def test_invalid_arguments_name_themselves(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: received"):
        call()


@pytest.mark.parametrize("kwargs", [
    {},
    {"fov": 100.0},
    {"fov": 60.0},
    {"fov": 120.0, "overlap": 20.0},
    {"min_latitude": -90.0},
    {"size": (384, 512)},
])
def test_horizon_layout_covers_the_sphere_and_keeps_the_horizon_in_every_upper_view(kwargs):
    views = panorama_views(layout="horizon", **kwargs)
    overlap = kwargs.get("overlap", 10.0)
    min_latitude = kwargs.get("min_latitude", -30.0)
    lat, lon = grid(180)
    needed = np.degrees(lat) >= min_latitude
    seen_narrowed = np.zeros(lat.shape, bool)
    for view in views:
        ax, ay = angular_offsets(view, lat, lon)
        seen_narrowed |= (ax <= (view.fov - overlap) / 2) & (ay <= (vertical_fov(view) - overlap) / 2)
    assert seen_narrowed[needed].all()
    assert all(v.pitch < 90 for v in views)  # no view looks straight up
    if vertical_fov(views[0]) >= 92.5 + overlap / 2:  # wide enough to see the zenith and the horizon at once
        for view in views:
            if view.pitch > 0:  # views of the sky see the horizon below them, as ordinary photos do
                assert view.pitch - vertical_fov(view) / 2 <= 0


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout"):
        panorama_views(layout="cube")
