"""Void (unlabelled) pixels, negatives sources (photos without sky), per-source validation and
false-sky scoring: in the data, the losses, the metrics, training, evaluation and the CLI."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from skyseg_tf import losses, metrics
from skyseg_tf.data import load_source, make_dataset
from skyseg_tf.data.folder import folder_dataset, read_mask
from skyseg_tf.data.negatives import blue_sky_pixels, negatives_dataset
from skyseg_tf.data.spec import MASK_KEY, SKY_FRACTION_KEY, VOID_LABEL
from skyseg_tf.evaluation import evaluate_models
from skyseg_tf.training import ConfigError, train


def _photo(height=40, width=48, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    image[: height // 2] = (235, 232, 228)  # a bright, flat top (sky or ceiling)
    return image


def _labelled_folder(root, count=4, void=True, height=40, width=48):
    """images/, masks/ (top half sky) and void/ (a band at the horizon), ``count`` photos."""
    for sub in ("images", "masks", "void"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(_photo(height, width, index)).save(root / "images" / f"p{index}.png")
        mask = np.zeros((height, width), np.uint8)
        mask[: height // 2] = 255
        Image.fromarray(mask).save(root / "masks" / f"p{index}.png")
        band = np.zeros((height, width), np.uint8)
        band[height // 2 - 2: height // 2 + 2] = 255
        if void:
            Image.fromarray(band).save(root / "void" / f"p{index}.png")
    return root


def _negatives_folder(root, count=4, height=40, width=48):
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(_photo(height, width, 10 + index)).save(root / f"{index}_room.jpg")
    return root


# ----------------------------------------------------------------------------- data


def test_void_masks_become_the_void_label_and_leave_sky_fraction_to_labelled_pixels(tmp_path):
    root = _labelled_folder(tmp_path)
    element = next(iter(folder_dataset(root / "images", root / "masks", void_masks=root / "void")))
    mask = element[MASK_KEY].numpy()[..., 0]
    assert sorted(np.unique(mask).tolist()) == [0, 1, VOID_LABEL]
    assert (mask[18:22] == VOID_LABEL).all() and (mask[:18] == 1).all() and (mask[22:] == 0).all()
    # Sky over the labelled pixels only: 18 of 36 rows.
    assert float(element[SKY_FRACTION_KEY]) == pytest.approx(0.5)


def test_void_value_inside_the_mask_file(tmp_path):
    labels = np.array([[3, 3, 0], [5, 0, 3]], np.uint8)
    path = tmp_path / "labels.png"
    Image.fromarray(labels).save(path)
    assert read_mask(path, sky_value=3, void_value=0)[..., 0].tolist() == [[1, 1, 2], [0, 2, 1]]
    with pytest.raises(ValueError, match="share values"):
        folder_dataset(tmp_path, tmp_path, sky_value=3, void_value=3, mask_extensions=(".png",),
                       image_extensions=(".jpg",))


def test_void_mask_of_another_size_is_an_error_naming_both_files(tmp_path):
    root = _labelled_folder(tmp_path)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "void" / "p2.png")
    with pytest.raises(ValueError, match=r"'p2.png' is 48x40 but its void mask 'p2.png' is 10x10"):
        folder_dataset(root / "images", root / "masks", void_masks=root / "void")


def test_void_folder_with_unmatched_files_is_an_error_naming_them(tmp_path):
    root = _labelled_folder(tmp_path)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(root / "void" / "stray.png")
    os.remove(root / "void" / "p1.png")
    with pytest.raises(ValueError) as error:
        folder_dataset(root / "images", root / "masks", void_masks=root / "void")
    assert "'p1.png'" in str(error.value) and "'stray.png'" in str(error.value)


def test_negatives_source_all_not_sky_with_blue_windows_void(tmp_path):
    root = _negatives_folder(tmp_path / "rooms", count=1)
    image = _photo()
    image[5:15, 5:15] = (90, 150, 230)  # a window onto blue sky
    Image.fromarray(image).save(root / "0_room.png")
    os.remove(root / "0_room.jpg")
    mask = next(iter(negatives_dataset(root)))[MASK_KEY].numpy()[..., 0]
    assert (mask[5:15, 5:15] == VOID_LABEL).all()
    assert (mask[20:] == 0).all() and not (mask == 1).any()
    plain = next(iter(negatives_dataset(root, window_policy="none")))[MASK_KEY].numpy()
    assert not plain.any()
    assert blue_sky_pixels(np.array([[[240, 235, 225]]], np.uint8)).tolist() == [[False]]


def test_empty_negatives_folder_and_negatives_with_masks_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no photos.*notes.txt"):
        load_source({"type": "negatives", "images": str(tmp_path / "empty")}, "train")
    with pytest.raises(ValueError, match="takes no masks"):
        load_source({"type": "negatives", "images": str(tmp_path), "masks": str(tmp_path)}, "train")
    with pytest.raises(ValueError, match="window_policy"):
        negatives_dataset(_negatives_folder(tmp_path / "rooms"), window_policy="maybe")


def test_split_group_keeps_a_group_in_one_split_and_all_reads_everything(tmp_path):
    root = tmp_path / "rooms"
    root.mkdir()
    for house in range(30):
        for room in ("bath", "bed", "kitchen"):
            Image.fromarray(_photo(8, 8)).save(root / f"{house}_{room}.jpg")
    spec = {"type": "negatives", "images": str(root), "split_group": "^([^_]+)_"}
    houses = {}
    for split in ("train", "validation", "test"):
        names = [e["file_name"].numpy().decode() for e in load_source(spec, split)]
        for name in names:
            houses.setdefault(name.split("_")[0], set()).add(split)
    assert all(len(splits) == 1 for splits in houses.values()) and len(houses) == 30
    assert len(list(load_source(spec, "all"))) == 90
    with pytest.raises(ValueError, match="'all' scores every photo of a folder source"):
        load_source("synthetic", "all", num_examples=4)


def test_void_survives_resizing_cropping_and_augmentation(tmp_path):
    root = _labelled_folder(tmp_path)
    spec = {"type": "folder", "images": str(root / "images"), "masks": str(root / "masks"),
            "void": str(root / "void")}
    for augment in ("tf", "albumentations"):
        dataset = make_dataset(spec, "all", 32, 2, augment=augment, seed=1, training=True,
                               resize_mode="short_side")
        images, masks = next(iter(dataset))
        values = set(np.unique(masks.numpy()).tolist())
        assert values <= {0.0, 1.0, float(VOID_LABEL)} and float(VOID_LABEL) in values, (augment, values)


# ----------------------------------------------------------------------------- losses and metrics


@pytest.mark.parametrize("name", ["dice", "bce", "bce_dice", "focal"])
def test_losses_ignore_void_pixels(name):
    rng = np.random.default_rng(0)
    truth = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    prediction = rng.uniform(0.05, 0.95, (2, 8, 8, 1)).astype("float32")
    void = np.zeros_like(truth, bool)
    void[:, :3] = True
    with_void = np.where(void, float(VOID_LABEL), truth)
    other_prediction = np.where(void, 1.0 - prediction, prediction)  # void pixels predicted otherwise
    loss = losses.get_loss(name)
    a = float(loss(with_void, prediction))
    b = float(loss(with_void, other_prediction))
    assert a == pytest.approx(b, abs=1e-6)
    # ... and equal to the loss on the labelled rows alone.
    assert a == pytest.approx(float(loss(truth[:, 3:], prediction[:, 3:])), abs=1e-5)


def test_metrics_and_counts_ignore_void_pixels():
    truth = np.array([[[1], [0], [2], [2]]], "float32")[None]  # (1, 1, 4, 1)
    prediction = np.array([[[0.9], [0.1], [0.9], [0.1]]], "float32")[None]
    iou, auc = metrics.SkyIoU(), metrics.SkyAUC()
    iou.update_state(truth, prediction)
    auc.update_state(truth, prediction)
    assert float(iou.result()) == 1.0 and float(auc.result()) == pytest.approx(1.0)
    counts = metrics.confusion_counts(truth, prediction)
    assert [int(counts[k][0]) for k in ("tp", "fp", "fn", "tn")] == [1, 0, 0, 1]


# ----------------------------------------------------------------------------- training


def _mix(tmp_path, **extra):
    labelled, rooms = tmp_path / "street", tmp_path / "rooms"
    if not labelled.exists():
        _labelled_folder(labelled, count=20)
        _negatives_folder(rooms, count=20)
    return {
        "model": "unet_mobilenet_v3_large", "encoder_weights": None, "data": "mix",
        "data_kwargs": {"sources": [
            {"type": "folder", "name": "street", "images": str(labelled / "images"),
             "masks": str(labelled / "masks"), "void": str(labelled / "void"), "weight": 0.5},
            {"type": "negatives", "name": "rooms", "images": str(rooms), "weight": 0.5},
        ]},
        "image_size": [32, 32], "global_batch_size": 4, "epochs": 2, "steps_per_epoch": 2,
        "tensorboard": False, "verbose": 0, "run_dir": str(tmp_path / "run"), **extra,
    }


@pytest.mark.slow
def test_training_logs_per_source_figures_and_picks_the_best_epoch_by_the_monitor(tmp_path):
    result = train(_mix(tmp_path, monitor="val_score"))
    history = result.history
    for key in ("val_street_iou", "val_street_false_sky", "val_rooms_false_sky", "val_rooms_over_1pct",
                "val_rooms_over_5pct", "val_iou", "val_loss", "val_score"):
        assert len(history[key]) == 2 and np.all(np.isfinite(history[key])), key
    assert "val_rooms_iou" not in history  # photos without sky have no IoU
    for epoch in range(2):
        expected = (history["val_street_iou"][epoch] + 1 - history["val_rooms_over_1pct"][epoch]) / 2
        assert history["val_score"][epoch] == pytest.approx(expected, abs=1e-6)
    best = int(np.argmax(history["val_score"]))
    assert result.best_epoch == best + 1 and result.best_value == max(history["val_score"])
    assert result.best_val_iou == history["val_iou"][best]


def test_bad_monitor_and_bad_void_masks_fail_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="monitor='val_nonsense'.*val_street_iou"):
        train(_mix(tmp_path, monitor="val_nonsense"))
    assert not (tmp_path / "run").exists()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "street" / "void" / "p3.png")
    with pytest.raises(ValueError, match="void mask 'p3.png' is 5x5"):
        train(_mix(tmp_path))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="monitor"):
        train({"model": "unet_mobilenet_v3_large", "encoder_weights": None, "data": "synthetic",
               "monitor": "val_score", "run_dir": str(tmp_path / "run2"), "epochs": 1,
               "data_kwargs": {"num_examples": 8}, "image_size": [32, 32], "tensorboard": False})
    assert not (tmp_path / "run2").exists()


# ----------------------------------------------------------------------------- evaluation


def _top_quarter_model():
    """A model whose sky probability is 1 in the top quarter of the image and 0 below."""
    import keras

    @keras.saving.register_keras_serializable(package="skyseg_tests")
    class TopQuarter(keras.layers.Layer):
        def call(self, x):
            rows = keras.ops.arange(keras.ops.shape(x)[1])[None, :, None, None]
            top = keras.ops.cast(rows < keras.ops.shape(x)[1] // 4, "float32")
            return top * keras.ops.ones_like(x[..., :1])

    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, TopQuarter()(inputs), name="top_quarter")


def test_evaluating_photos_without_sky_reports_false_sky_and_the_worst_grid(tmp_path):
    rooms = _negatives_folder(tmp_path / "rooms", count=3, height=32, width=32)
    report = evaluate_models(_top_quarter_model(), {"type": "negatives", "images": str(rooms),
                                                    "window_policy": "none"},
                             split="all", image_size=32, out_dir=tmp_path / "report", progress=False)
    model = report.models[0]
    assert not model.has_sky
    assert model.false_sky["false_sky"] == pytest.approx(0.25)
    assert model.false_sky["over_1pct"] == 1.0 and model.false_sky["over_5pct"] == 1.0
    assert model.false_sky["photos_without_sky"] == 3
    assert "ground truth holds no sky" in report.markdown and "| 25.00% | 100.0% | 100.0% | 3 | 3 |" in report.markdown
    assert (tmp_path / "report" / "worst_top_quarter.png").exists()
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["models"][0]["false_sky"]["photos"] == 3


def test_evaluation_leaves_void_pixels_out(tmp_path):
    root = _labelled_folder(tmp_path, height=32, width=32)
    spec = {"type": "folder", "images": str(root / "images"), "masks": str(root / "masks")}
    plain = evaluate_models(_top_quarter_model(), spec, split="all", image_size=32, progress=False,
                            num_figure_examples=0).models[0]
    void = evaluate_models(_top_quarter_model(), {**spec, "void": str(root / "void")}, split="all",
                           image_size=32, progress=False, num_figure_examples=0).models[0]
    # Sky is the top 16 rows, the model says the top 8; void rows 14-17 hold 2 sky rows that
    # are missed in the plain count and not counted with the void masks.
    assert plain.metrics["iou"] == pytest.approx(8 / 16)
    assert void.metrics["iou"] == pytest.approx(8 / 14)


def test_cli_evaluate_folder_without_masks_scores_false_sky(tmp_path):
    from click.testing import CliRunner

    from skyseg_tf.cli import main

    rooms = _negatives_folder(tmp_path / "rooms", count=2, height=32, width=32)
    model_path = tmp_path / "top_quarter.keras"
    _top_quarter_model().save(model_path)
    result = CliRunner().invoke(main, ["evaluate", str(model_path), "folder", "--images", str(rooms),
                                       "--split", "all", "--image-size", "32x32", "--window-policy", "none",
                                       "--num-figures", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "scoring the photos" in result.output and "| 25.00% | 100.0% |" in result.output
    bad = CliRunner().invoke(main, ["evaluate", str(model_path), "negatives", "--images", str(rooms),
                                    "--masks", str(rooms)])
    assert bad.exit_code != 0 and "takes no --masks" in bad.output


def test_tfds_builder_and_library_agree_on_the_void_label():
    import tfds_ade20k_outdoors

    assert tfds_ade20k_outdoors.VOID_LABEL == VOID_LABEL


def test_negatives_exclude_list_leaves_photos_out_and_names_unknown_ones(tmp_path):
    rooms = _negatives_folder(tmp_path / "rooms", count=4)
    listing = tmp_path / "window_sky.txt"
    listing.write_text("# real sky through a window\n1_room.jpg\n2_room\n")
    names = [e["file_name"].numpy().decode() for e in negatives_dataset(rooms, exclude=listing)]
    assert names == ["0_room.jpg", "3_room.jpg"]
    with pytest.raises(ValueError, match="exclude: 1 of 1 names match no photo.*'9_room.jpg'"):
        negatives_dataset(rooms, exclude=["9_room.jpg"])


def test_monitor_mode_minimises_losses_and_false_sky():
    from skyseg_tf.training.validation import monitor_mode

    assert monitor_mode("val_loss") == monitor_mode("val_rooms_over_1pct") == "min"
    assert monitor_mode("val_score") == monitor_mode("val_street_iou") == "max"


def test_contact_sheet_captions_leave_void_out(tmp_path):
    from skyseg_tf.data.preview import _elements

    mask = np.zeros((4, 4, 1), np.uint8)
    mask[:1] = 1
    mask[1:2] = VOID_LABEL
    (_, shown, caption), = list(_elements([{"image": np.zeros((4, 4, 3), np.uint8),
                                            "segmentation_mask": mask}]))
    assert caption == "sky 33.3% void 25%"
    assert shown[1].tolist() == [0.5] * 4 and shown[0].tolist() == [1.0] * 4
