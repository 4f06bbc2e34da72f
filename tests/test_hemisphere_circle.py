"""find_image_circle on synthetic fisheye photos: textured content in a circle, a surround outside."""

import numpy as np
import pytest

from skyseg_tf.hemisphere.circle import find_image_circle
from skyseg_tf.hemisphere.lens import ImageCircle


def _photo(height, width, cx, cy, radius, *, surround=(0, 12), rim=None, black_arc=False, seed=0):
    """uint8 RGB: random texture (60..255) inside the circle, noise in ``surround`` outside.

    ``rim``: (low, high) values of the content beyond 0.8 radius (dark buildings at the horizon);
    ``black_arc``: near-black content (0..9) beyond 0.85 radius at azimuths 100..150 degrees.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width] + 0.5
    r = np.hypot(xx - cx, yy - cy)
    image = rng.integers(60, 256, (height, width, 3)).astype(np.uint8)
    if rim is not None:
        ring = r > 0.8 * radius
        image[ring] = rng.integers(rim[0], rim[1] + 1, (int(ring.sum()), 3))
    if black_arc:
        azimuth = np.degrees(np.arctan2(xx - cx, -(yy - cy))) % 360
        arc = (r > 0.85 * radius) & (azimuth > 100) & (azimuth < 150)
        image[arc] = rng.integers(0, 10, (int(arc.sum()), 3))
    outside = r > radius
    image[outside] = rng.integers(surround[0], surround[1] + 1, (int(outside.sum()), 3))
    return image


def _assert_close(found, cx, cy, radius):
    tolerance = max(1.5, 0.01 * radius)
    assert isinstance(found, ImageCircle)
    assert abs(found.cx - cx) <= tolerance and abs(found.cy - cy) <= tolerance, found
    assert abs(found.radius - radius) <= tolerance, found


CIRCLES = [
    (600, 800, 400.0, 300.0, 280.0),  # centred, inside the frame
    (600, 800, 380.3, 310.7, 150.2),  # small, off-centre, sub-pixel centre
    (480, 640, 320.0, 240.0, 240.0),  # touching the top and bottom edges
    (600, 800, 400.0, 300.0, 380.0),  # larger than the frame's height: cut at the top and bottom
    (800, 600, 250.0, 500.0, 320.0),  # off-centre, cut by the left and bottom edges
    (600, 800, 150.0, 150.0, 300.0),  # centre near a corner: only a quarter-ish arc in the frame
]


@pytest.mark.parametrize("height, width, cx, cy, radius", CIRCLES)
def test_finds_circles_against_a_noisy_black_surround(height, width, cx, cy, radius):
    _assert_close(find_image_circle(_photo(height, width, cx, cy, radius)), cx, cy, radius)


@pytest.mark.parametrize("height, width, cx, cy, radius", CIRCLES[:4])
def test_dark_content_at_the_rim_is_still_content(height, width, cx, cy, radius):
    image = _photo(height, width, cx, cy, radius, rim=(28, 60))
    _assert_close(find_image_circle(image), cx, cy, radius)


@pytest.mark.parametrize("height, width, cx, cy, radius", CIRCLES)
def test_a_stretch_of_black_content_at_the_rim_does_not_pull_the_circle_in(height, width, cx, cy, radius):
    image = _photo(height, width, cx, cy, radius, black_arc=True)
    _assert_close(find_image_circle(image), cx, cy, radius)


def test_grayscale_and_single_channel_images():
    image = _photo(300, 400, 200.0, 150.0, 120.0)
    _assert_close(find_image_circle(image.max(axis=2)), 200.0, 150.0, 120.0)
    _assert_close(find_image_circle(image[:, :, :1]), 200.0, 150.0, 120.0)


def test_uniform_surrounds_of_other_colours():
    grey = _photo(400, 500, 250.0, 200.0, 170.0, surround=(36, 44))
    _assert_close(find_image_circle(grey), 250.0, 200.0, 170.0)
    white = _photo(400, 500, 240.0, 210.0, 160.0, surround=(250, 255))
    white[np.hypot(*(np.mgrid[:400, :500] + 0.5 - [[[210.0]], [[240.0]]])) <= 160] //= 2  # content below 128
    _assert_close(find_image_circle(white), 240.0, 210.0, 160.0)


def test_an_explicit_threshold():
    image = _photo(300, 400, 200.0, 150.0, 120.0, surround=(0, 0), rim=(8, 12))
    _assert_close(find_image_circle(image, threshold=4), 200.0, 150.0, 120.0)
    _assert_close(find_image_circle(image, threshold=30), 200.0, 150.0, 0.8 * 120.0)


def test_frames_without_a_surround_get_the_circle_through_their_corners():
    circumscribed = ImageCircle(400.0, 300.0, 500.0)
    rng = np.random.default_rng(1)
    assert find_image_circle(rng.integers(0, 256, (600, 800, 3)).astype(np.uint8)) == circumscribed
    assert find_image_circle(np.full((600, 800, 3), 180, np.uint8)) == circumscribed
    # a full-frame fisheye under an overcast sky: uniform bright corners, buildings at the bottom
    overcast = np.full((600, 800, 3), 210, np.uint8)
    overcast[420:, 100:] = rng.integers(20, 120, (180, 700, 3))
    assert find_image_circle(overcast) == circumscribed


def test_a_circle_is_found_the_same_way_each_time():
    image = _photo(600, 800, 150.0, 150.0, 300.0, black_arc=True)
    assert find_image_circle(image) == find_image_circle(image.copy())


@pytest.mark.parametrize("image, needle", [
    (np.zeros((60, 80, 4), np.uint8), "image: received an array of shape (60, 80, 4)"),
    (np.zeros((60,), np.uint8), "image: received an array of shape (60,)"),
    (np.zeros((60, 80, 3), np.float32), "image: received an array of dtype float32"),
    (np.zeros((4, 80), np.uint8), "image: received an image of 4x80 pixels"),
    (np.zeros((60, 80, 3), np.uint8), "image: found no content"),
])
def test_bad_images_raise_a_clear_error(image, needle):
    with pytest.raises(ValueError) as error:
        find_image_circle(image)
    assert needle in str(error.value)


@pytest.mark.parametrize("threshold", [-1, 255, True, "20"])
def test_bad_thresholds_raise_a_clear_error(threshold):
    with pytest.raises(ValueError, match="threshold: received"):
        find_image_circle(_photo(60, 80, 40.0, 30.0, 25.0), threshold=threshold)


def test_dark_surround_around_content_that_is_not_a_circle():
    image = np.zeros((300, 400, 3), np.uint8)
    image[60:240, 80:320] = 200  # a bright rectangle on black
    with pytest.raises(ValueError, match="image: the region .* is not a circle"):
        find_image_circle(image)
