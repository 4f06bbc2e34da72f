"""Tests for the ade20k_outdoors_sky builder: the dummy_data/ trees and generated archives."""

from __future__ import annotations

import collections
import importlib.util
import logging
import pathlib
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets import testing

from tfds_ade20k_outdoors.ade20k_outdoors_sky import (
    ade20k_outdoors_sky_dataset_builder as builder_module,
)

_HERE = pathlib.Path(__file__).resolve().parent


def _load_make_dummy_data():
    path = _HERE / "dummy_data" / "make_dummy_data.py"
    spec = importlib.util.spec_from_file_location("_ade20k_outdoors_sky_make_dummy_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dummy = _load_make_dummy_data()

NAME = "ade20k_outdoors_sky"
SPLITS = ("train", "validation", "test")


# --------------------------------------------------------------- dummy_data/ trees


class KaggleDummyDataTest(testing.DatasetBuilderTestCase):
    """Configs kaggle and kaggle_void on dummy_data/ade20k_outdoors (manual dir dummy_data/)."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["kaggle", "kaggle_void"]
    SPLITS = {"train": 6, "validation": 3, "test": 1}


class SceneParseDummyDataTest(testing.DatasetBuilderTestCase):
    """Configs scene_parse and scene_parse_void on dummy_data/scene_parse (the extracted zip)."""

    DATASET_CLASS = builder_module.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["scene_parse", "scene_parse_void"]
    DL_EXTRACT_RESULT = "scene_parse"
    SPLITS = {"train": 3, "validation": 2, "test": 2}


def test_dummy_split_counts_are_the_hash_split():
    kaggle = collections.Counter(
        builder_module.split_for_file_name(stem) for stem, _, _ in dummy.KAGGLE_EXAMPLES
    )
    scene_parse = collections.Counter(
        builder_module.split_for_file_name(stem)
        for _, stem, category, _ in dummy.ADE_CHALLENGE_EXAMPLES
        if category in builder_module.OUTDOOR_SCENE_CATEGORIES
    )
    assert dict(kaggle) == KaggleDummyDataTest.SPLITS
    assert dict(scene_parse) == SceneParseDummyDataTest.SPLITS


# ------------------------------------------------------------------- split function


def test_split_for_file_name_is_stable_and_uses_only_the_stem():
    split = builder_module.split_for_file_name
    assert split("ADE_train_00000001.jpg") == "train"
    assert split("ADE_train_00000005.jpg") == "validation"
    assert split("ADE_train_00000006.jpg") == "test"
    assert split("a/b/ADE_train_00000006.png") == split("ADE_train_00000006") == "test"
    assert split("C:\\data\\ADE_train_00000006.jpg") == "test"


def test_split_for_file_name_gives_60_20_20():
    counts = collections.Counter(
        builder_module.split_for_file_name(f"ADE_train_{i:08d}") for i in range(20_000)
    )
    assert abs(counts["train"] / 20_000 - 0.6) < 0.02
    assert abs(counts["validation"] / 20_000 - 0.2) < 0.02
    assert abs(counts["test"] / 20_000 - 0.2) < 0.02


def test_split_for_file_name_rejects_bad_input():
    with pytest.raises(TypeError, match="expected a str"):
        builder_module.split_for_file_name(pathlib.Path("a.jpg"))
    with pytest.raises(ValueError, match="non-empty stem"):
        builder_module.split_for_file_name("dir/.jpg")


def test_on_bad_example_is_validated():
    with pytest.raises(ValueError, match="on_bad_example: expected one of 'skip', 'fail'"):
        builder_module.Builder(on_bad_example="ignore")
    with pytest.raises(ValueError, match="received 'warn'"):
        builder_module.Ade20kOutdoorsSkyConfig(name="x", on_bad_example="warn")


def test_unlabelled_is_validated():
    message = "unlabelled: expected one of 'other', 'void', received 'ignore'"
    with pytest.raises(ValueError, match=message):
        builder_module.Ade20kOutdoorsSkyConfig(name="x", unlabelled="ignore")


def test_configs_pair_each_source_with_each_unlabelled_choice():
    configs = {c.name: (c.source, c.unlabelled) for c in builder_module.Builder.BUILDER_CONFIGS}
    assert configs == {
        "kaggle": ("kaggle", "other"),
        "scene_parse": ("scene_parse", "other"),
        "kaggle_void": ("kaggle", "void"),
        "scene_parse_void": ("scene_parse", "void"),
    }
    assert builder_module.Builder.DEFAULT_CONFIG_NAME == "kaggle"
    assert builder_module.VOID_LABEL == 2  # skyseg_tf.data.spec.VOID_LABEL


# -------------------------------------------------------------- generated archives


def _truncated_jpeg(stem: str) -> bytes:
    data = dummy.encode_jpeg(stem)
    return data[: len(data) // 2]


def _kaggle_archive(path: pathlib.Path, prefix: str, bad: dict[str, str]) -> dict:
    """Writes a Kaggle-layout zip; returns {stem: sky_rows} of the good examples.

    `bad` maps a stem to its fault: "truncated", "small_mask" or "no_mask".
    """
    good = {}
    for i in range(101, 113):
        good[f"ADE_train_{i:08d}"] = ("training", i % 13, ("RGB", "L", "CMYK")[i % 3])
    for i in range(1, 4):
        good[f"ADE_val_{i:08d}"] = ("validation", 5 * i, "RGB")
    with zipfile.ZipFile(path, "w") as archive:
        for stem, (sub, sky_rows, mode) in good.items():
            archive.writestr(f"{prefix}images/{sub}/{stem}.jpg", dummy.encode_jpeg(stem, mode))
            archive.writestr(
                f"{prefix}annotations/{sub}/{stem}.png",
                dummy.encode_png(dummy.class_indices(stem, sky_rows)),
            )
        for stem, fault in bad.items():
            image = _truncated_jpeg(stem) if fault == "truncated" else dummy.encode_jpeg(stem)
            archive.writestr(f"{prefix}images/training/{stem}.jpg", image)
            if fault != "no_mask":
                size = (16, 12) if fault == "small_mask" else (dummy.WIDTH, dummy.HEIGHT)
                archive.writestr(
                    f"{prefix}annotations/training/{stem}.png",
                    dummy.encode_png(dummy.class_indices(stem, 4, size)),
                )
    return {stem: sky_rows for stem, (_, sky_rows, _) in good.items()}


def _download_config(manual_dir: pathlib.Path) -> tfds.download.DownloadConfig:
    return tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), compute_stats=tfds.download.ComputeStatsMode.SKIP
    )


def _expected_mask(classes: np.ndarray, unlabelled: str) -> np.ndarray:
    """Class 3 -> 1, class 0 -> 2 if `unlabelled` is "void", every other class -> 0."""
    void = (classes == 0) if unlabelled == "void" else np.zeros(classes.shape, bool)
    return np.where(void, 2, classes == 3).astype(np.uint8)


def _check_examples(builder, sky_rows_by_stem: dict[str, int]) -> None:
    """Split sizes equal the hash split; masks as _expected_mask for the builder's config."""
    unlabelled = builder.builder_config.unlabelled
    expected = collections.Counter(
        builder_module.split_for_file_name(stem) for stem in sky_rows_by_stem
    )
    assert {s: builder.info.splits[s].num_examples for s in SPLITS} == {
        s: expected[s] for s in SPLITS
    }
    seen = set()
    for split in SPLITS:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            stem = example["file_name"].decode().removesuffix(".jpg")
            seen.add(stem)
            assert builder_module.split_for_file_name(stem) == split
            assert example["image"].shape == (dummy.HEIGHT, dummy.WIDTH, 3)
            classes = dummy.class_indices(stem, sky_rows_by_stem[stem])
            np.testing.assert_array_equal(
                example["segmentation_mask"][..., 0], _expected_mask(classes, unlabelled)
            )
            labelled = classes != 0 if unlabelled == "void" else np.ones(classes.shape, bool)
            assert example["sky_fraction"] == pytest.approx(
                np.sum(classes == 3) / np.sum(labelled)
            )
    assert seen == set(sky_rows_by_stem)


def test_kaggle_zip_builds_and_skips_bad_examples(tmp_path, caplog):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    bad = {
        "ADE_train_00000200": "truncated",
        "ADE_train_00000201": "small_mask",
        "ADE_train_00000202": "no_mask",
    }
    # Archive root holds images/ and annotations/ directly, as Kaggle's zip does.
    good = _kaggle_archive(manual_dir / "ade20k-outdoors.zip", "", bad)
    caplog.set_level(logging.WARNING, logger=builder_module.__name__)

    train = tfds.load(
        NAME, split="train", data_dir=tmp_path / "data",
        download_and_prepare_kwargs={"download_config": _download_config(manual_dir)},
    )
    assert train.element_spec["segmentation_mask"].shape.as_list() == [None, None, 1]

    _check_examples(tfds.builder(NAME, data_dir=tmp_path / "data"), good)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for stem, reason in zip(bad, ("cannot decode the image", "16x12", "no annotation")):
        assert any(f"{stem}.jpg" in w and reason in w for w in warnings), (stem, warnings)
    assert sum("skipped 1 bad example(s)" in w for w in warnings) == 3


def test_kaggle_fail_mode_names_the_corrupt_file(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    # An extra top-level folder, as when the zip is made from an extracted folder.
    _kaggle_archive(manual_dir / "archive.zip", "ade20k_outdoors/", {"ADE_train_00000200": "truncated"})
    builder = tfds.builder(NAME, data_dir=tmp_path / "data", on_bad_example="fail")
    with pytest.raises(ValueError, match=r"ADE_train_00000200\.jpg.*on_bad_example='skip'"):
        builder.download_and_prepare(download_config=_download_config(manual_dir))


@pytest.mark.parametrize("config", ["scene_parse", "scene_parse_void"])
def test_scene_parse_zip_keeps_outdoor_scenes(tmp_path, monkeypatch, config):
    monkeypatch.setattr(
        tfds.download.DownloadManager, "download_and_extract",
        lambda *_: pytest.fail("the zip in the manual dir must be used, not a download"),
    )
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    tree = tmp_path / "tree"
    dummy.write_ade_challenge_tree(tree)
    with zipfile.ZipFile(manual_dir / "ADEChallengeData2016.zip", "w") as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(tree).as_posix())

    builder = tfds.builder(NAME, config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare(download_config=_download_config(manual_dir))

    outdoor = {
        stem: sky_rows for _, stem, category, sky_rows in dummy.ADE_CHALLENGE_EXAMPLES
        if category in builder_module.OUTDOOR_SCENE_CATEGORIES
    }
    assert len(outdoor) == 7
    _check_examples(builder, outdoor)


def _examples_by_file_name(builder) -> dict[str, dict]:
    return {
        example["file_name"].decode(): example
        for split in SPLITS
        for example in tfds.as_numpy(builder.as_dataset(split=split))
    }


def test_void_config_marks_only_unlabelled_class_0_as_void(tmp_path):
    kaggle_rows = {stem: sky_rows for stem, sky_rows, _ in dummy.KAGGLE_EXAMPLES}
    examples = {}
    for config in ("kaggle", "kaggle_void"):
        builder = tfds.builder(NAME, config=config, data_dir=tmp_path / "data")
        builder.download_and_prepare(download_config=_download_config(_HERE / "dummy_data"))
        _check_examples(builder, kaggle_rows)
        examples[config] = _examples_by_file_name(builder)
        doc = builder.info.features["segmentation_mask"].doc.desc
        assert ("2 = void" in doc) == (config == "kaggle_void"), doc

    stem = "ADE_train_00000001"  # top 8 rows sky, the rest random classes, 0 among them
    classes = dummy.class_indices(stem, kaggle_rows[stem])
    unlabelled_pixel = tuple(np.argwhere(classes == 0)[0])
    other_pixel = tuple(np.argwhere((classes != 0) & (classes != 3))[0])
    default = examples["kaggle"][f"{stem}.jpg"]
    void = examples["kaggle_void"][f"{stem}.jpg"]
    assert default["segmentation_mask"][unlabelled_pixel] == 0
    assert void["segmentation_mask"][unlabelled_pixel] == builder_module.VOID_LABEL == 2
    for example in (default, void):
        assert example["segmentation_mask"][0, 0] == 1  # sky
        assert example["segmentation_mask"][other_pixel] == 0
    np.testing.assert_array_equal(default["image"], void["image"])
    assert set(np.unique(default["segmentation_mask"])) == {0, 1}
    assert set(np.unique(void["segmentation_mask"])) == {0, 1, 2}
    # 256 of the 768 pixels are sky; void pixels leave the denominator of sky_fraction.
    assert default["sky_fraction"] == pytest.approx(256 / 768)
    assert void["sky_fraction"] == pytest.approx(256 / np.sum(classes != 0))
    assert void["sky_fraction"] > default["sky_fraction"]


def test_missing_manual_dir_raises_with_our_instructions(tmp_path):
    builder = tfds.builder(NAME, data_dir=tmp_path / "data")
    with pytest.raises(AssertionError, match="kaggle datasets download -d residentmario/ade20k-outdoors"):
        builder.download_and_prepare(download_config=_download_config(tmp_path / "missing"))

    other = tmp_path / "other"
    other.mkdir()
    (other / "unrelated.zip").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"ade20k-outdoors\.zip(.|\n)*kaggle datasets download"):
        builder.download_and_prepare(download_config=_download_config(other))


if __name__ == "__main__":
    testing.test_main()
