"""Tests for the synthetic scene source and the element contract (skyseg_tf.data.synthetic/spec)."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from skyseg_tf.data import spec
from skyseg_tf.data.synthetic import (
    FRAME_KINDS,
    SCENE_FEATURES,
    TIMES_OF_DAY,
    render_element,
    render_scene,
    sample_scene_features,
    scene_features,
    split_indices,
    synthetic_sky,
    write_synthetic_folder,
)

SIZE = (48, 64)


def _as_numpy(dataset):
    return list(dataset.as_numpy_iterator())


def _thin_gaps(mask, max_len):
    """Counts non-sky runs of at most ``max_len`` pixels with sky on both ends, down each column."""
    sky = mask[..., 0].astype(bool)
    count = 0
    for length in range(1, max_len + 1):
        gap = np.ones_like(sky[: -length - 1])
        for k in range(1, length + 1):
            gap &= ~sky[k : sky.shape[0] - length - 1 + k]
        count += int((sky[: -length - 1] & sky[length + 1 :] & gap).sum())
    return count


def test_same_seed_gives_identical_elements_and_another_seed_differs():
    first = _as_numpy(synthetic_sky(num_examples=4, image_size=SIZE, seed=3))
    again = _as_numpy(synthetic_sky(num_examples=4, image_size=SIZE, seed=3))
    other = _as_numpy(synthetic_sky(num_examples=4, image_size=SIZE, seed=4))
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["segmentation_mask"], b["segmentation_mask"])
        assert not np.array_equal(a["image"], c["image"])
    assert [e["file_name"] for e in first] == [
        f"synthetic_3_{i:06d}.png".encode() for i in range(4)
    ]


def test_an_element_depends_only_on_seed_and_index():
    whole = _as_numpy(synthetic_sky(num_examples=10, image_size=SIZE, seed=2))
    test = _as_numpy(synthetic_sky(num_examples=10, image_size=SIZE, seed=2, split="test"))
    longer = _as_numpy(synthetic_sky(num_examples=15, image_size=SIZE, seed=2, split="test"))
    assert [e["file_name"] for e in test] == [whole[4]["file_name"], whole[9]["file_name"]]
    np.testing.assert_array_equal(test[1]["image"], whole[9]["image"])
    np.testing.assert_array_equal(longer[1]["image"], whole[9]["image"])
    np.testing.assert_array_equal(render_element(2, 9, SIZE)["image"], whole[9]["image"])


def test_element_spec_follows_the_contract():
    dataset = synthetic_sky(num_examples=3, image_size=SIZE)
    assert dataset.element_spec == spec.element_spec(*SIZE)
    for key, tensor_spec in spec.ELEMENT_SPEC.items():
        assert tensor_spec.is_compatible_with(dataset.element_spec[key])
    assert set(dataset.element_spec) == set(spec.ELEMENT_SPEC)
    assert int(dataset.cardinality()) == 3


def test_masks_are_binary_and_sky_fraction_is_their_mean():
    for element in _as_numpy(synthetic_sky(num_examples=6, image_size=SIZE, seed=5)):
        mask = element["segmentation_mask"]
        assert element["image"].dtype == np.uint8 and element["image"].shape == SIZE + (3,)
        assert mask.dtype == np.uint8 and mask.shape == SIZE + (1,)
        assert set(np.unique(mask).tolist()) <= {0, 1}
        assert element["sky_fraction"].dtype == np.float32
        assert element["sky_fraction"] == pytest.approx(mask.mean(), abs=1e-6)


def test_scenes_vary_in_layout_palette_and_content():
    fractions, sky_colours = [], []
    for index in range(50):
        image, mask = render_scene(np.random.default_rng([0, index]), 40, 40)
        fractions.append(mask.mean())
        if mask.any():
            sky_colours.append(image[mask[..., 0] == 1].mean(axis=0))
    fractions = np.array(fractions)
    assert fractions.std() > 0.1 and fractions.max() - fractions.min() > 0.5
    sky_colours = np.array(sky_colours)
    assert (sky_colours[:, 2] > sky_colours[:, 0] + 30).any()  # blue day skies
    assert (sky_colours[:, 0] > sky_colours[:, 2]).any()  # orange dusk skies
    assert (sky_colours.mean(axis=1) < 60).any()  # night skies
    # Every scene element and time of day is drawn, each at a plausible rate.
    drawn = [scene_features(0, index) for index in range(300)]
    for name in SCENE_FEATURES:
        assert 0 < sum(f[name] for f in drawn) < 300, name
    assert {f["time_of_day"] for f in drawn} == set(TIMES_OF_DAY)


def test_features_are_what_render_scene_draws():
    rng_a, rng_b = np.random.default_rng([1, 2]), np.random.default_rng([1, 2])
    features = sample_scene_features(rng_a)
    assert features == scene_features(1, 2)
    image, mask = render_scene(rng_a, 32, 32, features)
    np.testing.assert_array_equal(image, render_scene(rng_b, 32, 32)[0])


@pytest.mark.parametrize("seed", range(4))
def test_wires_and_poles_leave_thin_non_sky_lines_in_the_mask(seed):
    _, wires = render_scene(np.random.default_rng([7, seed]), 96, 96, {"wires": True})
    assert _thin_gaps(wires, max_len=2) > 0  # 1-2 px wires across the sky, in the mask
    _, trees = render_scene(np.random.default_rng([7, seed]), 96, 96, {"trees": True, "bare_trees": True})
    assert _thin_gaps(trees, max_len=2) + _thin_gaps(np.swapaxes(trees, 0, 1), max_len=2) > 0


def test_hard_cases_close_up_water_and_overhang():
    for seed in range(3):
        _, closeup = render_scene(np.random.default_rng(seed), 32, 32, {"closeup": True})
        assert closeup.max() == 0
        image, water = render_scene(np.random.default_rng(seed), 64, 64, {"water": True})
        assert water[-1].max() == 0 and water[0].min() == 1  # water is not sky, sky above
        assert image[-1].std() > 0  # the water mirrors and ripples, it is not flat
    tops = [render_scene(np.random.default_rng(s), 64, 64, {"overhang": True})[1][0].mean()
            for s in range(4)]
    assert min(tops) < 0.5  # the overhang hides the sky along the top edge


def _row_transitions(mask, rows):
    """Mean number of sky/non-sky changes along a row, over the first ``rows`` rows."""
    top = mask[:rows, :, 0].astype(np.int8)
    return float(np.abs(np.diff(top, axis=1)).sum(axis=1).mean())


def _first_indices(seed, count, **wanted):
    """The first ``count`` element indices of ``seed`` whose features match ``wanted``."""
    found, index = [], 0
    while len(found) < count:
        features = scene_features(seed, index)
        if all(features[name] == value for name, value in wanted.items()):
            found.append(index)
        index += 1
    return found


def test_new_scene_kinds_are_drawn_at_their_rates_and_exclusive():
    drawn = [scene_features(0, index) for index in range(1000)]
    share = {name: sum(f[name] for f in drawn) / len(drawn) for name in SCENE_FEATURES}
    assert 0.16 < share["interior"] < 0.24
    assert 0.03 < share["studio"] < 0.09
    assert 0.03 < share["person"] < 0.08 and 0.03 < share["bare_canopy"] < 0.09
    interiors = [f for f in drawn if f["interior"]]
    no_sky = [f for f in interiors if not f["window_sky"]]
    assert 0.55 < len(no_sky) / len(interiors) < 0.75  # most rooms show no sky at all
    for features in drawn:
        assert sum(features[name] for name in FRAME_KINDS) <= 1
        if features["studio"] or features["closeup"]:
            assert sum(features[name] for name in SCENE_FEATURES) == 1
        if features["window_sky"]:
            assert features["interior"]
    # Without sky in view, the only outdoor elements left are what the windows face.
    assert all({n for n in SCENE_FEATURES if f[n]} <= {"interior", "trees", "buildings"} for f in no_sky)


def test_interiors_without_window_sky_have_an_all_zero_mask():
    for index in _first_indices(0, 6, interior=True, window_sky=False):
        image, mask = render_scene(np.random.default_rng([0, index]), 48, 64)
        assert mask.max() == 0, index
        assert image.std() > 10  # a room was drawn, not a blank frame
    for view in ({}, {"trees": True}, {"buildings": True}):  # no window, foliage, a facade
        _, mask = render_scene(np.random.default_rng(3), 48, 64, {"interior": True, **view})
        assert mask.max() == 0, view


@pytest.mark.parametrize("seed", range(4))
def test_window_sky_is_only_inside_the_windows(seed):
    room = {"interior": True, "trees": True, "hills": True, "time_of_day": "overcast"}
    with_sky, sky = render_scene(np.random.default_rng(seed), 72, 96, {**room, "window_sky": True})
    foliage, none = render_scene(np.random.default_rng(seed), 72, 96, room)
    sky = sky[..., 0].astype(bool)
    assert none.max() == 0 and sky.any()
    # The room is drawn the same whatever the windows show, so the pixels that change between
    # the two renders are the windows (and a blur's width around them): every sky pixel is one.
    changed = np.any(with_sky != foliage, axis=-1)
    assert not (sky & ~changed).any()
    assert changed.mean() < 0.5 and sky.mean() < 0.3
    assert not sky[: int(0.05 * 72)].any()  # the ceiling keeps the top rows


def test_ceilings_are_often_bright_and_window_skies_as_bright():
    tops, window_skies = [], []
    for index in _first_indices(0, 24, interior=True):
        image, mask = render_scene(np.random.default_rng([0, index]), 48, 64)
        tops.append(image[:4].mean())
        if mask.any():
            window_skies.append(image[mask[..., 0] == 1].mean())
    assert np.mean(np.array(tops) > 170) >= 0.35  # a bright top that is not sky is common
    assert max(tops) > 200 and max(window_skies) > 200  # as bright as a white sky: context decides


def test_studio_backdrops_are_bright_and_never_sky():
    medians = []
    for seed in range(12):
        image, mask = render_scene(np.random.default_rng(seed), 48, 64, {"studio": True})
        assert mask.max() == 0
        medians.append(np.median(image[:4]))
    assert np.mean(np.array(medians) > 150) >= 0.7


@pytest.mark.parametrize("seed", range(3))
def test_an_outdoor_portrait_hides_only_the_sky_behind_the_person(seed):
    _, open_view = render_scene(np.random.default_rng(seed), 64, 64, {"hills": True})
    _, portrait = render_scene(np.random.default_rng(seed), 64, 64, {"hills": True, "person": True})
    # The person is drawn last: the same scene, with some of its sky hidden and the rest kept.
    assert (portrait <= open_view).all()
    assert 0 < portrait.sum() < open_view.sum()


@pytest.mark.parametrize("seed", range(4))
def test_sky_shows_between_the_twigs_of_a_bare_canopy(seed):
    _, canopy = render_scene(np.random.default_rng(seed), 96, 128, {"bare_canopy": True, "hills": True})
    _, plain = render_scene(np.random.default_rng(seed), 96, 128, {"hills": True})
    rows = int(0.4 * 96)
    assert _row_transitions(canopy, rows) >= 5  # sky and branches alternate along the rows
    assert _row_transitions(plain, rows) < 1
    assert 0.1 < canopy[:rows].mean() < 0.95


def test_new_scene_kinds_are_deterministic():
    for features in ({"interior": True, "window_sky": True, "trees": True}, {"studio": True},
                     {"person": True, "hills": True}, {"bare_canopy": True, "hills": True}):
        first = render_scene(np.random.default_rng([5, 1]), 40, 48, features)
        again = render_scene(np.random.default_rng([5, 1]), 40, 48, features)
        other = render_scene(np.random.default_rng([5, 2]), 40, 48, features)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        assert not np.array_equal(first[0], other[0]), features
    index = _first_indices(2, 1, interior=True)[0]
    np.testing.assert_array_equal(render_element(2, index, SIZE)["image"],
                                  render_element(2, index, SIZE)["image"])


def test_splits_are_a_disjoint_covering_60_20_20_partition():
    parts = {name: split_indices(50, name) for name in ("train", "validation", "test")}
    assert {name: len(p) for name, p in parts.items()} == {"train": 30, "validation": 10, "test": 10}
    union = np.concatenate(list(parts.values()))
    assert len(set(union.tolist())) == 50 and sorted(union.tolist()) == list(range(50))
    np.testing.assert_array_equal(split_indices(50), np.arange(50))
    sizes = {name: int(synthetic_sky(10, SIZE, split=name).cardinality()) for name in parts}
    assert sizes == {"train": 6, "validation": 2, "test": 2}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "val"}, "split: received 'val'.*'validation'"),
        ({"image_size": (8, 64)}, "image_size: received \\(8, 64\\).*at least 16"),
        ({"image_size": 64}, "image_size: received 64"),
        ({"seed": -1}, "seed: received -1"),
        ({"num_examples": 0}, "num_examples: received 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_sky(**{"num_examples": 5, **kwargs})


def test_unknown_features_are_rejected():
    with pytest.raises(ValueError, match="unknown names \\['wire'\\].*'wires'"):
        render_scene(np.random.default_rng(0), 32, 32, {"wire": True})
    with pytest.raises(ValueError, match="time_of_day.*'noon'"):
        render_scene(np.random.default_rng(0), 32, 32, {"time_of_day": "noon"})
    with pytest.raises(ValueError, match="\\['interior', 'studio'\\] are all True.*only one"):
        render_scene(np.random.default_rng(0), 32, 32, {"interior": True, "studio": True})


def test_write_synthetic_folder_holds_the_dataset_pixels(tmp_path):
    root = write_synthetic_folder(tmp_path / "synth", num_examples=5, image_size=SIZE, seed=1,
                                  split="train")
    names = sorted(p.name for p in (root / "images").iterdir())
    assert names == sorted(p.name for p in (root / "masks").iterdir())
    assert names == ["synthetic_1_000000.png", "synthetic_1_000001.png", "synthetic_1_000002.png"]
    element = render_element(1, 2, SIZE)
    np.testing.assert_array_equal(np.asarray(Image.open(root / "images" / names[2])), element["image"])
    mask = np.asarray(Image.open(root / "masks" / names[2]))
    assert set(np.unique(mask).tolist()) <= {0, 255}
    np.testing.assert_array_equal(mask == 255, element["segmentation_mask"][..., 0] == 1)


def test_make_element_checks_the_contract():
    element = spec.make_element(np.zeros((2, 4, 3), np.uint8), np.eye(2, 4, dtype=np.uint8),
                                "/some/dir/a.png")
    assert element["file_name"] == b"a.png" and element["sky_fraction"] == np.float32(0.25)
    assert element["segmentation_mask"].shape == (2, 4, 1)
    with pytest.raises(ValueError, match="'a.png'.*values \\[0, 255\\]"):
        spec.make_element(np.zeros((2, 2, 3), np.uint8), np.array([[255, 0], [0, 0]], np.uint8), "a.png")
    with pytest.raises(ValueError, match="mask is 2x3.*image is 2x2"):
        spec.make_element(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3), np.uint8), "a.png")
    with pytest.raises(ValueError, match="uint8 array of shape \\[H, W, 3\\], received float32"):
        spec.make_element(np.zeros((2, 2, 3), np.float32), np.zeros((2, 2), np.uint8), "a.png")
