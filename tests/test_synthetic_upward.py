"""Tests for the upward-looking fisheye scenes (skyseg_tf.data.synthetic_upward)."""

import numpy as np
import pytest

from skyseg_tf.data.synthetic import TIMES_OF_DAY
from skyseg_tf.data.synthetic_upward import (
    UPWARD_SCENE_KINDS,
    render_upward_scene,
    sample_upward_lens_and_circle,
)
from skyseg_tf.hemisphere.lens import PROJECTIONS, FisheyeLens, ImageCircle, circle_mask, polar_angles

SIZE = 64


def _scene(seed, size=SIZE, **kwargs):
    """A scene and the circle it was drawn in (sampled from the same generator when not given)."""
    rng = np.random.default_rng(seed)
    if "circle" not in kwargs:
        kwargs["lens"], kwargs["circle"] = sample_upward_lens_and_circle(rng, size, size)
    image, mask = render_upward_scene(rng, size, size, **kwargs)
    return image, mask, kwargs["circle"]


def _thin_runs(sky, width):
    """Counts runs of at most ``width`` non-sky pixels with sky at both ends, along rows and columns."""
    count = 0
    for grid in (sky, sky.T):
        for length in range(1, width + 1):
            gap = np.ones_like(grid[:, : -length - 1])
            for k in range(1, length + 1):
                gap &= ~grid[:, k : grid.shape[1] - length - 1 + k]
            count += int((grid[:, : -length - 1] & grid[:, length + 1 :] & gap).sum())
    return count


@pytest.mark.parametrize("shape", [(16, 16), (48, 80), (90, 60)])
def test_shapes_dtypes_and_binary_mask(shape):
    height, width = shape
    image, mask = render_upward_scene(np.random.default_rng(0), height, width)
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert mask.shape == (height, width, 1) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 1}


@pytest.mark.parametrize("kind", UPWARD_SCENE_KINDS)
def test_every_kind_renders_with_sky_only_inside_the_circle(kind):
    for seed in range(3):
        image, mask, circle = _scene([1, seed], kind=kind, time_of_day=TIMES_OF_DAY[seed % 4])
        assert set(np.unique(mask).tolist()) <= {0, 1}
        assert not mask[..., 0][~circle_mask((SIZE, SIZE), circle)].any()


def test_outside_a_circle_that_the_frame_cuts_is_never_sky():
    circle = ImageCircle(20.0, 30.0, 28.0)  # off centre, crossing the top and left edges
    for seed in range(6):
        _, mask = render_upward_scene(np.random.default_rng(seed), 60, 70, circle=circle,
                                      lens=FisheyeLens("equisolid", 190.0))
        outside = ~circle_mask((60, 70), circle)
        assert outside.any() and not mask[..., 0][outside].any()
        assert mask[..., 0][~outside].any()


def test_directions_below_the_horizon_are_never_sky():
    lens, circle = FisheyeLens("equidistant", 200.0), ImageCircle(40.0, 40.0, 38.0)
    zenith, _ = polar_angles((80, 80), circle, lens)
    below = np.nan_to_num(zenith) > np.pi / 2
    assert below.sum() > 50
    for seed in range(5):
        _, mask = render_upward_scene(np.random.default_rng(seed), 80, 80, lens=lens, circle=circle,
                                      kind="park")
        assert not mask[..., 0][below].any()


def test_the_same_seed_gives_the_same_scene_and_another_seed_differs():
    first = render_upward_scene(np.random.default_rng(7), 40, 56)
    again = render_upward_scene(np.random.default_rng(7), 40, 56)
    other = render_upward_scene(np.random.default_rng(8), 40, 56)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    lens, circle = FisheyeLens("stereographic", 170.0), ImageCircle(28.0, 20.0, 19.0)
    forced = [render_upward_scene(np.random.default_rng(3), 40, 56, lens=lens, circle=circle,
                                  kind="forest") for _ in range(2)]
    np.testing.assert_array_equal(forced[0][0], forced[1][0])


def test_sky_fraction_spans_closed_and_open_views():
    fractions = []
    for seed in range(60):
        _, mask, circle = _scene([2, seed], size=48)
        fractions.append(mask[..., 0][circle_mask((48, 48), circle)].mean())
    assert min(fractions) < 0.2 and max(fractions) > 0.8


def test_palettes_give_different_skies_and_bright_overcast_sky_is_sky():
    means = {}
    for time in TIMES_OF_DAY:
        colours = []
        for seed in range(8):
            image, mask, _ = _scene([3, seed], time_of_day=time, kind="park")
            sky = mask[..., 0] == 1
            colours.append(image[sky].astype(float).mean(0))
        means[time] = np.array(colours)
    day, dusk, overcast, night = (means[t].mean(0) for t in ("day", "dusk", "overcast", "night"))
    assert day[2] > day[0] + 25  # blue
    assert night.mean() < 60 < dusk.mean()
    assert abs(overcast[0] - overcast[2]) < 20  # grey to white
    assert (means["overcast"].mean(1) > 180).any()  # a white overcast sky, labelled sky


def test_bright_surfaces_that_are_not_sky_occur():
    bright = 0
    for seed in range(12):
        image, mask, _ = _scene([4, seed], kind="canyon", time_of_day="overcast")
        bright = max(bright, int(((image.mean(2) > 190) & (mask[..., 0] == 0)).sum()))
    assert bright > 20  # glass mirroring the white sky, white render


def test_the_zenith_is_open_in_most_street_scenes():
    circle, lens = ImageCircle(32.0, 32.0, 30.0), FisheyeLens()
    open_zenith = [render_upward_scene(np.random.default_rng([5, seed]), SIZE, SIZE, lens=lens,
                                       circle=circle, kind="street")[1][32, 32, 0] for seed in range(20)]
    assert sum(open_zenith) >= 15


def test_wires_and_branches_make_thin_gaps_in_the_sky():
    runs = [_thin_runs(_scene([6, seed], size=96, kind=kind)[1][..., 0] == 1, 2)
            for seed in range(6) for kind in ("street", "park", "forest")]
    assert max(runs) > 30


def test_sampled_lenses_and_circles():
    rng = np.random.default_rng(0)
    inside, larger = 0, 0
    for _ in range(200):
        lens, circle = sample_upward_lens_and_circle(rng, 300, 400)
        assert lens.projection in PROJECTIONS and 160 <= lens.fov <= 200
        assert lens.projection != "orthographic" or lens.fov <= 180
        assert abs(circle.cx - 200) <= 9 and abs(circle.cy - 150) <= 9
        inside += 0.4 * 300 <= circle.radius <= 0.5 * 300
        larger += circle.radius > 0.55 * 300 - 1e-9
    assert inside > 120 and larger > 15


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(height=15, width=32), "height"),
        (dict(height=32, width=8), "width"),
        (dict(height=32.0, width=32), "height"),
        (dict(height=True, width=32), "height"),
        (dict(height=32, width=32, kind="beach"), "kind"),
        (dict(height=32, width=32, time_of_day="noon"), "time_of_day"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: received"):
        render_upward_scene(np.random.default_rng(0), **kwargs)


def test_bad_lens_or_circle_and_bad_sampler_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="^lens: received"):
        render_upward_scene(rng, 32, 32, lens="equidistant")
    with pytest.raises(TypeError, match="^circle: received"):
        render_upward_scene(rng, 32, 32, circle=(16, 16, 16))
    with pytest.raises(ValueError, match="^height: received 10"):
        sample_upward_lens_and_circle(rng, 10, 32)
