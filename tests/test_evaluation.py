"""Evaluation report: numbers equal hand computations on tiny sets; files, figures, errors."""

import json

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from skyseg_tf.data.spec import ELEMENT_SPEC, make_element  # noqa: E402
from skyseg_tf.evaluation import METRIC_LABELS, evaluate_models  # noqa: E402
from skyseg_tf.visualization import prediction_grid  # noqa: E402


def red_channel_model(name="red"):
    """A stub whose sky probability is the red channel / 255, a known function of the image."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: x[..., :1] / 255.0)(inputs)
    return keras.Model(inputs, outputs, name=name)


def constant_model(value, name):
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: x[..., :1] * 0.0 + value)(inputs)
    return keras.Model(inputs, outputs, name=name)


def element_source(elements):
    def generate():
        yield from elements

    return tf.data.Dataset.from_generator(generate, output_signature=ELEMENT_SPEC)


def image_with_red(height, width, red_rows=None, red_value=255):
    image = np.zeros((height, width, 3), np.uint8)
    if red_rows is None:
        image[..., 0] = red_value
    else:
        image[:red_rows, :, 0] = red_value
    return image


def mask_with_sky_rows(height, width, rows):
    mask = np.zeros((height, width), np.uint8)
    mask[:rows] = 1
    return mask


def exact_auc(truth, score):
    """ROC AUC by the Mann-Whitney statistic (ties count one half)."""
    positive, negative = score[truth], score[~truth]
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return (greater + 0.5 * ties) / (positive.size * negative.size)


def three_images():
    """32x32 images: predictions are the red channel; the counts below are worked by hand."""
    return [
        # Predicted sky: rows 0-15; true sky: rows 0-13 -> TP 448, FP 64, TN 512.
        make_element(image_with_red(32, 32, red_rows=16), mask_with_sky_rows(32, 32, 14), "a.png"),
        # Predicted sky everywhere (128 / 255 >= 0.5); no true sky -> FP 1024.
        make_element(image_with_red(32, 32, red_value=128), mask_with_sky_rows(32, 32, 0), "b.png"),
        # Nothing predicted; true sky rows 0-7 -> FN 256, TN 768.
        make_element(image_with_red(32, 32, red_value=0), mask_with_sky_rows(32, 32, 8), "c.png"),
    ]


def test_metrics_equal_hand_computation(tmp_path):
    elements = three_images()
    report = evaluate_models(red_channel_model(), element_source(elements), image_size=(32, 32),
                             batch_size=2, out_dir=tmp_path, num_figure_examples=2, progress=False)
    metrics = report.models[0].metrics
    tp, fp, fn, tn = 448, 64 + 1024, 256, 512 + 768
    assert metrics["iou"] == pytest.approx(tp / (tp + fp + fn), abs=1e-6)
    assert metrics["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
    assert metrics["pixel_accuracy"] == pytest.approx((tp + tn) / 3072, abs=1e-6)
    assert metrics["precision"] == pytest.approx(tp / (tp + fp), abs=1e-6)
    assert metrics["recall"] == pytest.approx(tp / (tp + fn), abs=1e-6)
    truth = np.concatenate([e["segmentation_mask"].ravel() == 1 for e in elements])
    score = np.concatenate([e["image"][..., 0].ravel() / 255.0 for e in elements])
    assert metrics["auc"] == pytest.approx(exact_auc(truth, score), abs=1e-3)
    # Boundary: a's predicted edge (row 15) is 2 px from its true edge (row 13): matched, P = 1;
    # c's true edge (row 7) has no prediction near it: R = 32 / 64. F = 2 * 1 * 0.5 / 1.5.
    assert metrics["boundary_f"] == pytest.approx(2 / 3, abs=1e-6)

    model = report.models[0]
    assert model.num_images == 3
    assert [(e["file_name"], round(e["iou"], 6)) for e in model.per_image] == [
        ("a.png", 0.875), ("b.png", 0.0), ("c.png", 0.0)]
    assert [e["file_name"] for e in model.worst][:3] == ["b.png", "c.png", "a.png"]
    assert model.original_metrics is None

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["models"][0]["metrics"]["iou"] == pytest.approx(metrics["iou"])
    markdown = (tmp_path / "metrics.md").read_text()
    assert markdown.strip() == report.markdown.strip()
    assert "| red | 0.2500 |" in markdown  # IoU 448 / 1792, first column as in Table 1
    for label in METRIC_LABELS.values():
        assert label in markdown
    for kind in ("examples", "worst"):
        path = tmp_path / f"{kind}_red.png"
        assert model.figures[kind] == str(path)
        width, height = Image.open(path).size
        assert width > height  # one row per image (three), four panels a row
    assert np.asarray(Image.open(tmp_path / "worst_red.png").convert("L")).std() > 10  # not blank


def test_original_resolution_metrics_use_native_masks(tmp_path):
    # Constant red per image -> constant probabilities, exact after any resize.
    elements = [
        make_element(image_with_red(40, 24, red_value=255), mask_with_sky_rows(40, 24, 10), "tall.png"),
        make_element(image_with_red(20, 36, red_value=0), mask_with_sky_rows(20, 36, 20), "wide.png"),
    ]
    report = evaluate_models([red_channel_model()], element_source(elements), image_size=(32, 32),
                             batch_size=2, original_resolution=True, num_figure_examples=0,
                             progress=False)
    model = report.models[0]
    # Native: tall TP 10 * 24, FP 30 * 24; wide FN 20 * 36.
    assert model.original_metrics["iou"] == pytest.approx(240 / (240 + 720 + 720), abs=1e-6)
    assert model.original_metrics["recall"] == pytest.approx(240 / (240 + 720), abs=1e-6)
    # At 32x32 the masks are resized (nearest): tall keeps 8 sky rows -> TP 256, FP 768; FN 1024.
    assert model.metrics["iou"] == pytest.approx(256 / 2048, abs=1e-6)
    assert [round(e["iou_original"], 6) for e in model.per_image] == [0.25, 0.0]
    assert "original resolution" in report.markdown


def test_models_side_by_side_with_distinct_names(tmp_path):
    elements = three_images()
    report = evaluate_models(
        [constant_model(1.0, "all_sky"), constant_model(0.0, "no_sky"), constant_model(1.0, "all_sky")],
        element_source(elements), image_size=32, batch_size=3, out_dir=tmp_path,
        num_figure_examples=1, progress=False)
    names = [m.name for m in report.models]
    assert names == ["all_sky", "no_sky", "all_sky_2"]
    # All sky: TP = all 704 sky pixels of 3072.
    assert report.models[0].metrics["iou"] == pytest.approx(704 / 3072, abs=1e-6)
    assert report.models[1].metrics["iou"] == 0.0
    table_rows = [line for line in report.markdown.splitlines() if line.startswith("| all_sky")
                  or line.startswith("| no_sky")]
    assert len(table_rows) == 6  # the metric table and the false-sky table
    assert report.models[0].false_sky["false_sky"] == 1.0
    assert report.models[1].false_sky["false_sky"] == 0.0
    assert (tmp_path / "worst_all_sky_2.png").exists()


def test_model_path_and_max_examples(tmp_path):
    import skyseg_tf

    model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
                                  decoder_filters=(8, 8, 8, 8, 8))
    path = tmp_path / "tiny.keras"
    model.save(path)
    report = evaluate_models(str(path), "synthetic", image_size=(64, 64), batch_size=4, max_examples=3,
                             num_figure_examples=0, source_kwargs={"num_examples": 25}, progress=False)
    assert report.models[0].name == "tiny"
    assert report.models[0].path == str(path)
    assert report.models[0].num_images == 3
    assert set(report.models[0].metrics) == set(METRIC_LABELS)
    assert all(0.0 <= v <= 1.0 for v in report.models[0].metrics.values())


def test_invalid_arguments_are_named():
    import skyseg_tf

    model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None,
                                  decoder_filters=(8, 8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"image_size.*divisible by 32.*\(64, 64\)"):
        evaluate_models(model, "synthetic", image_size=(60, 64), progress=False)
    with pytest.raises(ValueError, match="empty list"):
        evaluate_models([], "synthetic", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_models(model, "synthetic", image_size=64, batch_size=0, progress=False)


def test_prediction_grid_checks_lengths_and_writes(tmp_path):
    image = np.zeros((16, 24, 3), np.uint8)
    probability = np.linspace(0, 1, 16 * 24, dtype=np.float32).reshape(16, 24)
    with pytest.raises(ValueError, match="lengths"):
        prediction_grid([image, image], [probability], [probability, probability], tmp_path / "x.png")
    with pytest.raises(ValueError, match="suffix"):
        prediction_grid([image], None, [probability], tmp_path / "x.gif")
    one = prediction_grid([image], None, [probability], tmp_path / "one.png")
    two = prediction_grid([image, image], [probability > 0.5] * 2, [probability] * 2, tmp_path / "two.png",
                          captions=["a", "b"])
    from PIL import Image

    with Image.open(one) as a, Image.open(two) as b:
        assert b.size[0] > a.size[0]  # four columns instead of three
        assert b.size[1] > a.size[1]  # two rows


def test_native_evaluation_runs_each_model_at_its_recorded_scale(tmp_path):
    """image_size=None: every image predicted as predict_image does (the recorded scale) and
    scored at its own size. The red-channel stub recorded at "resize" to 32x32 sees 64x48 and
    32x32 images; on images constant along the resize, the counts are the hand ones."""
    from skyseg_tf import preprocessing

    model = preprocessing.attach(red_channel_model(), preprocessing.Preprocessing("resize", (32, 32)))
    elements = [
        # 64x48: predicted sky rows 0-31 (red), true sky rows 0-23 -> TP 24*48, FP 8*48, TN 32*48
        make_element(image_with_red(64, 48, red_rows=32), mask_with_sky_rows(64, 48, 24), "tall.png"),
        make_element(image_with_red(32, 32, red_value=0), mask_with_sky_rows(32, 32, 8), "c.png"),  # FN 256
    ]
    report = evaluate_models([model], element_source(elements), image_size=None, num_figure_examples=2,
                             out_dir=tmp_path, progress=False)
    metrics = report.models[0].metrics
    tp, fp, fn = 24 * 48, 8 * 48, 256
    assert metrics["iou"] == pytest.approx(tp / (tp + fp + fn), abs=2e-3)
    assert [e["file_name"] for e in report.models[0].per_image] == ["tall.png", "c.png"]
    assert "each image's own resolution" in report.markdown
    assert (tmp_path / "worst_red.png").exists()
