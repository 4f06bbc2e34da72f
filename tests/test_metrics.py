"""Tests of skyseg_tf.metrics against hand-computed values."""

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import skyseg_tf
from skyseg_tf import losses, metrics

CONFUSION_CLASSES = [
    metrics.SkyIoU,
    metrics.SkyDice,
    metrics.PixelAccuracy,
    metrics.SkyPrecision,
    metrics.SkyRecall,
]
ALL_CLASSES = CONFUSION_CLASSES + [metrics.SkyAUC, metrics.BoundaryFScore]

# Image A, 4x4. Ground truth (1 = sky):      Prediction (sky probability):
#   1 1 1 1                                    .9 .8 .7 .6
#   1 1 1 1                                    .9 .2 .6 .7
#   0 0 1 1                                    .7 .1 .4 .8
#   0 0 0 0                                    .1 .2 .3 .1
# At threshold 0.5 the prediction is sky at 9 pixels:
#   TP = 8, FP = 1 at (2, 0), FN = 2 at (1, 1) and (2, 2), TN = 5.
TRUE_A = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]], "float32")
PRED_A = np.array(
    [[0.9, 0.8, 0.7, 0.6], [0.9, 0.2, 0.6, 0.7], [0.7, 0.1, 0.4, 0.8], [0.1, 0.2, 0.3, 0.1]],
    "float32",
)
Y_TRUE = TRUE_A[None, ..., None]
Y_PRED = PRED_A[None, ..., None]
EXPECTED_A = {
    metrics.SkyIoU: 8 / 11,
    metrics.SkyDice: 16 / 19,
    metrics.PixelAccuracy: 13 / 16,
    metrics.SkyPrecision: 8 / 9,
    metrics.SkyRecall: 8 / 10,
}

# Image B, 4x4: no sky; the top row predicted sky (0.9), the rest 0.1.
#   TP = 0, FP = 4, FN = 0, TN = 12.
TRUE_B = np.zeros((4, 4), "float32")
PRED_B = np.full((4, 4), 0.1, "float32")
PRED_B[0] = 0.9


def _batch(*images):
    return np.stack(images)[..., None]


def _value(metric):
    return float(keras.ops.convert_to_numpy(metric.result()))


def _logit(p):
    return np.log(p / (1.0 - p)).astype("float32")


def _exact_auc(labels, scores):
    """Probability that a random sky pixel outscores a random non-sky one (ties 1/2)."""
    labels, scores = np.ravel(labels), np.ravel(scores)
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return (greater + 0.5 * ties) / (positive.size * negative.size)


# ------------------------------------------------------------- confusion metrics


@pytest.mark.parametrize("metric_class", CONFUSION_CLASSES)
def test_confusion_metrics_match_hand_computed_values(metric_class):
    metric = metric_class()
    metric.update_state(Y_TRUE, Y_PRED)
    assert _value(metric) == pytest.approx(EXPECTED_A[metric_class], rel=1e-6)


def test_confusion_counts_are_stored_as_state():
    metric = metrics.SkyIoU()
    metric.update_state(Y_TRUE, Y_PRED)
    counts = [float(v.numpy()) for v in metric.variables]
    assert counts == [8.0, 1.0, 2.0, 5.0]  # TP, FP, FN, TN


@pytest.mark.parametrize("metric_class", CONFUSION_CLASSES)
def test_confusion_metrics_accumulate_over_batches_and_reset(metric_class):
    # A then B: TP = 8, FP = 1 + 4, FN = 2, TN = 5 + 12.
    expected = {
        metrics.SkyIoU: 8 / 15,
        metrics.SkyDice: 16 / 23,
        metrics.PixelAccuracy: 25 / 32,
        metrics.SkyPrecision: 8 / 13,
        metrics.SkyRecall: 8 / 10,
    }[metric_class]
    metric = metric_class()
    metric.update_state(Y_TRUE, Y_PRED)
    metric.update_state(_batch(TRUE_B), _batch(PRED_B))
    assert _value(metric) == pytest.approx(expected, rel=1e-6)
    # Dataset-level: the same as one batch holding both images.
    single = metric_class()
    single.update_state(_batch(TRUE_A, TRUE_B), _batch(PRED_A, PRED_B))
    assert _value(single) == pytest.approx(expected, rel=1e-6)
    metric.reset_state()
    assert all(float(v.numpy()) == 0.0 for v in metric.variables)
    metric.update_state(Y_TRUE, Y_PRED)
    assert _value(metric) == pytest.approx(EXPECTED_A[metric_class], rel=1e-6)


def test_threshold_changes_the_predicted_mask():
    # Threshold 0.65: sky predicted at 7 pixels; TP = 6, FP = 1 at (2, 0), FN = 4.
    metric = metrics.SkyIoU(threshold=0.65)
    metric.update_state(Y_TRUE, Y_PRED)
    assert _value(metric) == pytest.approx(6 / 11, rel=1e-6)


def test_threshold_is_inclusive():
    y_true = np.ones((1, 1, 2, 1), "float32")
    y_pred = np.array([0.5, 0.25], "float32").reshape(1, 1, 2, 1)
    metric = metrics.SkyRecall(threshold=0.5)
    metric.update_state(y_true, y_pred)
    assert _value(metric) == 0.5


@pytest.mark.parametrize(
    ("y_pred", "from_logits"),
    [
        (_logit(Y_PRED), True),
        (np.concatenate([1 - Y_PRED, Y_PRED], axis=-1), False),
        (np.concatenate([np.zeros_like(Y_PRED), _logit(Y_PRED)], axis=-1), True),
        (Y_PRED.astype("float16"), False),
    ],
    ids=["logits", "softmax", "two_channel_logits", "float16"],
)
@pytest.mark.parametrize("metric_class", CONFUSION_CLASSES)
def test_other_output_conventions_give_the_same_values(metric_class, y_pred, from_logits):
    metric = metric_class(from_logits=from_logits)
    metric.update_state(Y_TRUE, y_pred)
    assert _value(metric) == pytest.approx(EXPECTED_A[metric_class], rel=1e-6)


def test_masks_without_channel_axis_and_integer_masks_are_accepted():
    metric = metrics.SkyIoU()
    metric.update_state(TRUE_A[None].astype("uint8"), Y_PRED)
    assert _value(metric) == pytest.approx(8 / 11, rel=1e-6)


def test_sample_weight_per_pixel_and_per_image():
    # A zero weight on the false positive (2, 0) and the false negative (2, 2) removes
    # them: TP = 8, FP = 0, FN = 1 -> IoU 8 / 9.
    weight = np.ones((1, 4, 4), "float32")
    weight[0, 2, 0] = weight[0, 2, 2] = 0
    metric = metrics.SkyIoU()
    metric.update_state(Y_TRUE, Y_PRED, sample_weight=weight)
    assert _value(metric) == pytest.approx(8 / 9, rel=1e-6)
    # Per-image weights (1, 0) over (A, B) ignore B entirely.
    metric = metrics.SkyIoU()
    metric.update_state(_batch(TRUE_A, TRUE_B), _batch(PRED_A, PRED_B), sample_weight=[1, 0])
    assert _value(metric) == pytest.approx(8 / 11, rel=1e-6)


def test_empty_denominators_give_zero_not_nan():
    metric = metrics.SkyPrecision()
    metric.update_state(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)))
    assert _value(metric) == 0.0
    assert _value(metrics.SkyIoU()) == 0.0


# ---------------------------------------------------------------------------- AUC


def test_auc_matches_exact_value_without_ties():
    # Sky scores 0.35, 0.8 vs non-sky 0.1, 0.4: 3 of 4 pairs ordered -> 0.75.
    y_true = np.array([0, 0, 1, 1], "float32").reshape(1, 2, 2, 1)
    y_pred = np.array([0.1, 0.4, 0.35, 0.8], "float32").reshape(1, 2, 2, 1)
    metric = metrics.SkyAUC()
    metric.update_state(y_true, y_pred)
    assert _value(metric) == pytest.approx(0.75, abs=1e-2)


def test_auc_counts_ties_as_half():
    # Sky scores 0.6, 0.9 vs non-sky 0.2, 0.6: pairs 1 + 0.5 + 1 + 1 -> 3.5 / 4.
    y_true = np.array([0, 0, 1, 1], "float32").reshape(1, 2, 2, 1)
    y_pred = np.array([0.2, 0.6, 0.6, 0.9], "float32").reshape(1, 2, 2, 1)
    metric = metrics.SkyAUC()
    metric.update_state(y_true, y_pred)
    assert _value(metric) == pytest.approx(0.875, abs=1e-2)


def test_auc_accumulates_over_batches_and_accepts_two_channel_logits():
    expected = _exact_auc(_batch(TRUE_A, TRUE_B), _batch(PRED_A, PRED_B))
    metric = metrics.SkyAUC()
    metric.update_state(Y_TRUE, Y_PRED)
    metric.update_state(_batch(TRUE_B), _batch(PRED_B))
    assert _value(metric) == pytest.approx(expected, abs=1e-2)
    logits = np.concatenate([np.zeros_like(Y_PRED), _logit(Y_PRED)], axis=-1)
    metric = metrics.SkyAUC(from_logits=True)
    metric.update_state(Y_TRUE, logits)
    assert _value(metric) == pytest.approx(_exact_auc(TRUE_A, PRED_A), abs=1e-2)
    metric.reset_state()
    assert all(not np.any(v.numpy()) for v in metric.variables)


# ---------------------------------------------------------------- boundary F score

# 6x4, sky on rows 0-2 of the ground truth; the predicted edge is 1 px higher in
# columns 2-3. Ground-truth boundary: row 2 (4 px). Predicted boundary (3x3
# erosion): (1, 1), (1, 2), (1, 3), (2, 0), (2, 1) (5 px).
EDGE_TRUE = np.zeros((6, 4), "float32")
EDGE_TRUE[:3] = 1
EDGE_PRED = EDGE_TRUE.copy()
EDGE_PRED[2, 2:] = 0


def test_sky_boundary_marks_sky_pixels_next_to_non_sky():
    boundary = keras.ops.convert_to_numpy(metrics.sky_boundary(_batch(EDGE_PRED)))[0, ..., 0]
    expected = np.zeros((6, 4))
    expected[1, 1:] = 1
    expected[2, :2] = 1
    np.testing.assert_array_equal(boundary, expected)


def test_boundary_f_with_partial_one_pixel_shift():
    # Tolerance 0: matched 2 of 5 predicted and 2 of 4 true boundary pixels,
    # P = 2/5, R = 1/2, F = 2PR / (P + R) = 4/9.
    metric = metrics.BoundaryFScore(tolerance=0)
    metric.update_state(_batch(EDGE_TRUE), _batch(EDGE_PRED))
    assert _value(metric) == pytest.approx(4 / 9, rel=1e-6)
    # Tolerance 1 covers the shift: F = 1.
    metric = metrics.BoundaryFScore(tolerance=1)
    metric.update_state(_batch(EDGE_TRUE), _batch(EDGE_PRED))
    assert _value(metric) == pytest.approx(1.0)


def test_boundary_f_with_whole_edge_shifted_by_one_pixel():
    shifted = np.zeros((6, 4), "float32")
    shifted[:2] = 1
    for tolerance, expected in [(0, 0.0), (1, 1.0), (2, 1.0)]:
        metric = metrics.BoundaryFScore(tolerance=tolerance)
        metric.update_state(_batch(EDGE_TRUE), _batch(shifted))
        assert _value(metric) == pytest.approx(expected)


def test_boundary_f_on_irregular_mask():
    # Image A. True boundary (5 px): (1, 0), (1, 1), (1, 2), (2, 2), (2, 3).
    # Predicted boundary (8 px): (0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (1, 3), (2, 0),
    # (2, 3). Tolerance 0: 3 shared -> P = 3/8, R = 3/5, F = 6/13.
    metric = metrics.BoundaryFScore(tolerance=0)
    metric.update_state(Y_TRUE, Y_PRED)
    assert _value(metric) == pytest.approx(6 / 13, rel=1e-6)


def test_boundary_f_accumulates_counts_over_batches_and_resets():
    # Batch 1: P = 2/5, R = 2/4 (tolerance 0). Batch 2: perfect, 4 of 4 on both sides.
    # Summed: P = 6/9, R = 6/8 -> F = 2 * (2/3) * (3/4) / (2/3 + 3/4) = 12/17.
    metric = metrics.BoundaryFScore(tolerance=0)
    metric.update_state(_batch(EDGE_TRUE), _batch(EDGE_PRED))
    metric.update_state(_batch(EDGE_TRUE), _batch(EDGE_TRUE))
    assert _value(metric) == pytest.approx(12 / 17, rel=1e-6)
    metric.reset_state()
    assert _value(metric) == 1.0


def test_boundary_f_edge_cases():
    all_sky = np.ones((1, 4, 4, 1), "float32")
    none = np.zeros((1, 4, 4, 1), "float32")
    # No boundary on either side (the image frame is not an edge): F = 1.
    metric = metrics.BoundaryFScore()
    metric.update_state(all_sky, all_sky)
    assert _value(metric) == 1.0
    # A true edge and no predicted edge: R = 0 -> F = 0; and the reverse.
    for y_true, y_pred in [(_batch(EDGE_TRUE), 0 * _batch(EDGE_TRUE)), (none, _batch(PRED_B))]:
        metric = metrics.BoundaryFScore()
        metric.update_state(y_true, y_pred)
        assert _value(metric) == 0.0


def test_boundary_f_thresholds_probabilities_and_logits():
    probs = np.where(EDGE_PRED == 1, 0.8, 0.3).astype("float32")
    metric = metrics.BoundaryFScore(tolerance=0, from_logits=True)
    metric.update_state(_batch(EDGE_TRUE), _batch(_logit(probs)))
    assert _value(metric) == pytest.approx(4 / 9, rel=1e-6)


# ---------------------------------------------------------------- default metrics


def test_default_metrics_names_and_order():
    names = [m.name for m in metrics.default_metrics()]
    assert names == ["iou", "dice", "auc", "pixel_accuracy", "precision", "recall", "boundary_f"]
    assert all(m.from_logits for m in metrics.default_metrics(from_logits=True))


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (lambda: metrics.SkyIoU(threshold=1.5), ValueError),
        (lambda: metrics.SkyIoU(threshold="0.5"), TypeError),
        (lambda: metrics.SkyDice(from_logits=None), TypeError),
        (lambda: metrics.SkyAUC(num_thresholds=1), ValueError),
        (lambda: metrics.SkyAUC(num_thresholds=2.5), TypeError),
        (lambda: metrics.BoundaryFScore(tolerance=-1), ValueError),
        (lambda: metrics.BoundaryFScore(tolerance=1.5), TypeError),
    ],
)
def test_invalid_arguments_raise(factory, error):
    with pytest.raises(error):
        factory()


def test_wrong_channel_count_raises_a_clear_error():
    with pytest.raises(ValueError, match="2 channels"):
        metrics.SkyIoU().update_state(Y_TRUE, np.zeros((1, 4, 4, 3), "float32"))


# ------------------------------------------------------------------ serialization


NON_DEFAULT_ARGUMENTS = {
    metrics.SkyIoU: {"threshold": 0.3, "from_logits": True, "name": "iou_03"},
    metrics.SkyDice: {"threshold": 0.7},
    metrics.PixelAccuracy: {"from_logits": True},
    metrics.SkyPrecision: {"name": "p"},
    metrics.SkyRecall: {"threshold": 0.2},
    metrics.SkyAUC: {"num_thresholds": 50, "from_logits": True},
    metrics.BoundaryFScore: {"tolerance": 3, "threshold": 0.6, "name": "bf3"},
}


@pytest.mark.parametrize("metric_class", ALL_CLASSES)
def test_get_config_returns_exactly_the_constructor_arguments(metric_class):
    metric = metric_class(**NON_DEFAULT_ARGUMENTS[metric_class])
    config = metric.get_config()
    assert set(config) == set(inspect.signature(metric_class).parameters)
    for key, value in NON_DEFAULT_ARGUMENTS[metric_class].items():
        assert config[key] == value
    assert metric_class.from_config(config).get_config() == config


@pytest.mark.parametrize("metric_class", ALL_CLASSES)
def test_serialize_deserialize_round_trip(metric_class):
    metric = metric_class(**NON_DEFAULT_ARGUMENTS[metric_class])
    assert keras.saving.get_registered_name(metric_class) == f"skyseg_tf>{metric_class.__name__}"
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(metric)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is metric_class
    assert restored.get_config() == metric.get_config()


def test_compiled_model_saved_as_keras_reloads_without_custom_objects(tmp_path):
    inputs = keras.Input((4, 4, 1))
    # A 1x1 convolution with weight 1 and bias 0 outputs its input: the prediction.
    outputs = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")(
        inputs
    )
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=losses.DiceLoss(), metrics=metrics.default_metrics())
    x, y = _batch(PRED_A, PRED_B), _batch(TRUE_A, TRUE_B)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    assert before["iou"] == pytest.approx(8 / 15, rel=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    after = reloaded.evaluate(x, y, verbose=0, return_dict=True)
    assert set(after) == set(before)
    for name, value in before.items():
        assert after[name] == pytest.approx(value, rel=1e-6), name


# ---------------------------------------------------------------- tf.distribute


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    from skyseg_tf import metrics

    x, y = (np.array(a, "float32") for a in json.loads(sys.stdin.read()))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        inputs = keras.Input(x.shape[1:])
        # The model outputs its input: a fixed, known prediction.
        model = keras.Model(inputs, keras.layers.Identity()(inputs))
        model.compile(
            loss="mse",
            metrics=metrics.default_metrics()
            + [metrics.BoundaryFScore(tolerance=0, name="boundary_f0")]
        )
    logs = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    logs["replicas"] = strategy.num_replicas_in_sync
    print(json.dumps(logs))
    """
)


def _run_script(script, stdin):
    root = Path(skyseg_tf.__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_metrics_under_mirrored_strategy_equal_the_hand_computed_totals():
    # One global batch (A, A, B, B) split over two replicas: (A, A) and (B, B).
    # Summed counts: TP = 16, FP = 2 + 8, FN = 4, TN = 10 + 24. Averaging the replicas'
    # values instead would give e.g. IoU (8/11 + 0) / 2 instead of 16/30.
    # Boundaries: per A, 5 true and 8 predicted px, all matched at tolerance 2, 3 at
    # tolerance 0; per B, 4 predicted px, none matched, no true edge.
    x = _batch(PRED_A, PRED_A, PRED_B, PRED_B)
    y = _batch(TRUE_A, TRUE_A, TRUE_B, TRUE_B)
    logs = _run_script(_MIRRORED_SCRIPT, json.dumps([x.tolist(), y.tolist()]))
    assert logs["replicas"] == 2
    expected = {
        "iou": 16 / 30,
        "dice": 32 / 46,
        "pixel_accuracy": 50 / 64,
        "precision": 16 / 26,
        "recall": 16 / 20,
        # P = 16/24, R = 10/10.
        "boundary_f": 2 * (2 / 3) / (2 / 3 + 1),
        # P = 6/24, R = 6/10.
        "boundary_f0": 2 * (1 / 4) * (3 / 5) / (1 / 4 + 3 / 5),
    }
    for name, value in expected.items():
        assert logs[name] == pytest.approx(value, rel=1e-6), name
    assert logs["auc"] == pytest.approx(_exact_auc(y, x), abs=1e-2)
