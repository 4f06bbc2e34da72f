"""Tests of skyseg_tf.losses against hand-computed values."""

import inspect
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import skyseg_tf
from skyseg_tf import losses

LOSS_CLASSES = [losses.DiceLoss, losses.BCELoss, losses.BCEDiceLoss, losses.FocalLoss]

# Two 2x2 images, shape (2, 2, 2, 1).
# Image A: sky on the top row; prediction 0.8, 0.6 on top, 0.2, 0.0 below.
#   sum(p * t) = 1.4, sum(p) = 1.6, sum(t) = 2.
# Image B: no sky; prediction 0.5 everywhere: sum(p * t) = 0, sum(p) = 2, sum(t) = 0.
Y_TRUE = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], "float32")[..., None]
Y_PRED = np.array([[[0.8, 0.6], [0.2, 0.0]], [[0.5, 0.5], [0.5, 0.5]]], "float32")[..., None]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _logit(p):
    return np.log(p / (1.0 - p)).astype("float32")


def _two_channel_probs(p):
    return np.concatenate([1.0 - p, p], axis=-1)


def _two_channel_logits(p):
    # Softmax over (0, logit) gives (1 - p, p).
    return np.concatenate([np.zeros_like(p), _logit(p)], axis=-1)


# ------------------------------------------------------------------ sky_probability


def test_sky_probability_reduces_all_output_conventions_to_the_sky_channel():
    p = np.array([0.1, 0.5, 0.75, 0.9], "float32").reshape(1, 2, 2, 1)
    for y_pred, from_logits in [
        (p, False),
        (_logit(p), True),
        (_two_channel_probs(p), False),
        (_two_channel_logits(p), True),
    ]:
        result = losses.sky_probability(y_pred, from_logits=from_logits)
        assert tuple(result.shape) == (1, 2, 2, 1)
        assert result.dtype == "float32"
        np.testing.assert_allclose(_np(result), p, atol=1e-6)


def test_sky_probability_casts_float16_to_float32():
    result = losses.sky_probability(np.full((1, 2, 2, 1), 0.25, "float16"))
    assert result.dtype == "float32"


@pytest.mark.parametrize("shape", [(1, 2, 2, 3), (4,)])
def test_sky_probability_rejects_other_channel_counts(shape):
    with pytest.raises(ValueError, match="1 channel .* or 2 channels"):
        losses.sky_probability(np.zeros(shape, "float32"))


def test_sky_target_accepts_masks_without_channel_axis_and_rejects_others():
    like = np.zeros((2, 3, 3, 1), "float32")
    target = losses.sky_target(np.ones((2, 3, 3), "uint8"), like)
    assert tuple(target.shape) == (2, 3, 3, 1) and target.dtype == "float32"
    with pytest.raises(ValueError, match="y_true"):
        losses.sky_target(np.ones((2, 3, 3, 2)), like)


# --------------------------------------------------------------------------- Dice


def test_dice_loss_per_image_matches_hand_computed_values():
    # A: 1 - (2 * 1.4 + 1) / (1.6 + 2 + 1) = 0.8 / 4.6; B: 1 - 1 / (2 + 1) = 2 / 3.
    result = losses.dice_loss(Y_TRUE, Y_PRED, per_image=True)
    np.testing.assert_allclose(_np(result), [0.8 / 4.6, 2.0 / 3.0], rtol=1e-6)


def test_dice_loss_over_batch_matches_hand_computed_value_for_every_image():
    # Sums over both images: 1 - (2 * 1.4 + 1) / (3.6 + 2 + 1) = 2.8 / 6.6.
    result = losses.dice_loss(Y_TRUE, Y_PRED)
    assert tuple(result.shape) == (2,)
    np.testing.assert_allclose(_np(result), [2.8 / 6.6] * 2, rtol=1e-6)
    assert float(losses.DiceLoss()(Y_TRUE, Y_PRED)) == pytest.approx(2.8 / 6.6, rel=1e-6)


def test_dice_loss_smooth_term():
    # smooth=0 on image A: 1 - 2.8 / 3.6; smooth=10: 1 - 12.8 / 13.6.
    y_true, y_pred = Y_TRUE[:1], Y_PRED[:1]
    assert float(losses.DiceLoss(smooth=0.0)(y_true, y_pred)) == pytest.approx(0.8 / 3.6)
    assert float(losses.DiceLoss(smooth=10.0)(y_true, y_pred)) == pytest.approx(0.8 / 13.6)
    # With smooth > 0 an empty prediction of an empty mask is a perfect 0, not NaN.
    zeros = np.zeros((1, 2, 2, 1), "float32")
    assert float(losses.DiceLoss()(zeros, zeros)) == 0.0


def test_dice_loss_per_image_mean_and_sample_weight():
    loss = losses.DiceLoss(per_image=True)
    assert float(loss(Y_TRUE, Y_PRED)) == pytest.approx((0.8 / 4.6 + 2 / 3) / 2, rel=1e-6)
    # "sum_over_batch_size": weighted sum divided by the batch size.
    weighted = loss(Y_TRUE, Y_PRED, sample_weight=np.array([1.0, 0.0]))
    assert float(weighted) == pytest.approx(0.8 / 4.6 / 2, rel=1e-6)


@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_from_logits_and_two_channel_outputs_give_the_same_loss(loss_class):
    p = np.clip(Y_PRED, 0.05, 0.95)
    expected = float(loss_class()(Y_TRUE, p))
    inputs = [
        (_logit(p), True),
        (_two_channel_probs(p), False),
        (_two_channel_logits(p), True),
    ]
    for y_pred, from_logits in inputs:
        value = float(loss_class(from_logits=from_logits)(Y_TRUE, y_pred))
        assert value == pytest.approx(expected, rel=1e-5)


def test_losses_accept_masks_without_channel_axis_and_integer_masks():
    value = float(losses.DiceLoss()(Y_TRUE[..., 0].astype("uint8"), Y_PRED))
    assert value == pytest.approx(2.8 / 6.6, rel=1e-6)


# ---------------------------------------------------------------------------- BCE


def test_bce_matches_hand_computed_values():
    # Image A: mean of -ln 0.8, -ln 0.6, -ln 0.8, -ln(1 - 0) (clipped to ~0).
    expected_a = -(2 * math.log(0.8) + math.log(0.6)) / 4
    result = _np(losses.bce_loss(Y_TRUE, Y_PRED))
    assert result[0] == pytest.approx(expected_a, rel=1e-5)
    assert result[1] == pytest.approx(math.log(2.0), rel=1e-6)


def test_bce_matches_keras_binary_crossentropy_for_probabilities_and_logits():
    rng = np.random.default_rng(0)
    y_true = (rng.random((3, 5, 5, 1)) > 0.5).astype("float32")
    probs = rng.random((3, 5, 5, 1)).astype("float32")
    expected = keras.losses.BinaryCrossentropy()(y_true, probs)
    assert float(losses.BCELoss()(y_true, probs)) == pytest.approx(float(expected), rel=1e-5)
    # Large logits stay finite and exact (no clipping of probabilities).
    logits = (rng.normal(size=(3, 5, 5, 1)) * 30).astype("float32")
    expected = keras.losses.BinaryCrossentropy(from_logits=True)(y_true, logits)
    value = float(losses.BCELoss(from_logits=True)(y_true, logits))
    assert value == pytest.approx(float(expected), rel=1e-5)


# -------------------------------------------------------------------------- focal


def test_focal_loss_matches_hand_computed_values():
    # Pixel 1: sky, p = 0.8: 0.25 * 0.2**2 * -ln 0.8.
    # Pixel 2: not sky, p = 0.8: 0.75 * 0.8**2 * -ln 0.2.
    y_true = np.array([1, 0], "float32").reshape(1, 1, 2, 1)
    y_pred = np.array([0.8, 0.8], "float32").reshape(1, 1, 2, 1)
    expected = (0.25 * 0.04 * -math.log(0.8) + 0.75 * 0.64 * -math.log(0.2)) / 2
    assert float(losses.FocalLoss()(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_focal_loss_with_gamma_0_and_alpha_half_is_half_the_bce():
    focal = losses.FocalLoss(alpha=0.5, gamma=0.0)(Y_TRUE, Y_PRED)
    bce = losses.BCELoss()(Y_TRUE, Y_PRED)
    assert float(focal) == pytest.approx(0.5 * float(bce), rel=1e-6)


def test_bce_dice_is_the_weighted_sum():
    bce = float(losses.BCELoss()(Y_TRUE, Y_PRED))
    dice = float(losses.DiceLoss()(Y_TRUE, Y_PRED))
    value = float(losses.BCEDiceLoss(bce_weight=0.3, dice_weight=2.0)(Y_TRUE, Y_PRED))
    assert value == pytest.approx(0.3 * bce + 2.0 * dice, rel=1e-6)


# ------------------------------------------------------ gradients and mixed precision


@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
@pytest.mark.parametrize("from_logits", [False, True])
def test_gradients_are_finite_at_extreme_inputs(loss_class, from_logits):
    extreme = [-50.0, -1.0, 0.0, 50.0] if from_logits else [0.0, 1e-9, 0.5, 1.0]
    y_pred = tf.Variable(np.array(extreme, "float32").reshape(1, 2, 2, 1))
    y_true = np.array([1, 0, 1, 0], "float32").reshape(1, 2, 2, 1)
    with tf.GradientTape() as tape:
        value = loss_class(from_logits=from_logits)(y_true, y_pred)
    gradient = tape.gradient(value, y_pred)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient.numpy()))
    assert np.any(gradient.numpy() != 0)


@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_float16_predictions_give_a_float32_loss(loss_class):
    value16 = loss_class()(Y_TRUE, Y_PRED.astype("float16"))
    value32 = loss_class()(Y_TRUE, Y_PRED)
    assert value16.dtype == "float32"
    assert float(value16) == pytest.approx(float(value32), rel=1e-3)
    core = {
        losses.DiceLoss: losses.dice_loss,
        losses.BCELoss: losses.bce_loss,
        losses.BCEDiceLoss: losses.bce_dice_loss,
        losses.FocalLoss: losses.focal_loss,
    }[loss_class]
    assert core(Y_TRUE, Y_PRED.astype("float16")).dtype == "float32"


def test_training_step_under_mixed_float16_layer_policy():
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="mixed_float16")(inputs)
    model = keras.Model(inputs, outputs)
    assert model.output.dtype == "float16"
    model.compile(optimizer="sgd", loss=losses.BCEDiceLoss())
    y = np.zeros((2, 4, 4, 1), "float32")
    y[:, :2] = 1
    history = model.fit(y, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ----------------------------------------------------------------------- get_loss


@pytest.mark.parametrize(
    ("name", "loss_class"),
    [("dice", losses.DiceLoss), ("bce", losses.BCELoss), ("bce_dice", losses.BCEDiceLoss),
     ("focal", losses.FocalLoss), ("BCE_Dice", losses.BCEDiceLoss)],
)
def test_get_loss_resolves_names(name, loss_class):
    assert type(losses.get_loss(name)) is loss_class


def test_get_loss_passes_keyword_arguments_and_objects_through():
    assert losses.get_loss("focal", gamma=1.0, from_logits=True).gamma == 1.0
    loss = losses.DiceLoss()
    assert losses.get_loss(loss) is loss
    with pytest.raises(ValueError, match="only be used with a loss name"):
        losses.get_loss(loss, smooth=2.0)


def test_get_loss_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="bce, bce_dice, dice, focal"):
        losses.get_loss("jaccard")
    with pytest.raises(TypeError, match="loss name"):
        losses.get_loss(3)


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (lambda: losses.DiceLoss(smooth=-1.0), ValueError),
        (lambda: losses.DiceLoss(smooth="1"), TypeError),
        (lambda: losses.DiceLoss(per_image=1), TypeError),
        (lambda: losses.BCELoss(from_logits="yes"), TypeError),
        (lambda: losses.BCEDiceLoss(dice_weight=-0.5), ValueError),
        (lambda: losses.FocalLoss(alpha=1.5), ValueError),
        (lambda: losses.FocalLoss(gamma=-1.0), ValueError),
        (lambda: losses.DiceLoss(reduction="average"), ValueError),
    ],
)
def test_invalid_arguments_raise(factory, error):
    with pytest.raises(error):
        factory()


# ------------------------------------------------------------------ serialization


NON_DEFAULT_ARGUMENTS = {
    losses.DiceLoss: {"smooth": 0.5, "from_logits": True, "per_image": True},
    losses.BCELoss: {"from_logits": True, "reduction": "sum"},
    losses.BCEDiceLoss: {"bce_weight": 0.5, "dice_weight": 2.0, "per_image": True},
    losses.FocalLoss: {"alpha": 0.4, "gamma": 1.5, "name": "my_focal"},
}


@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_get_config_returns_exactly_the_constructor_arguments(loss_class):
    loss = loss_class(**NON_DEFAULT_ARGUMENTS[loss_class])
    config = loss.get_config()
    assert set(config) == set(inspect.signature(loss_class).parameters)
    for key, value in NON_DEFAULT_ARGUMENTS[loss_class].items():
        assert config[key] == value
    assert loss_class.from_config(config).get_config() == config


@pytest.mark.parametrize("loss_class", LOSS_CLASSES)
def test_serialize_deserialize_round_trip(loss_class):
    loss = loss_class(**NON_DEFAULT_ARGUMENTS[loss_class])
    serialized = keras.saving.serialize_keras_object(loss)
    assert keras.saving.get_registered_name(loss_class) == f"skyseg_tf>{loss_class.__name__}"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is loss_class
    assert restored.get_config() == loss.get_config()
    y_pred = _logit(np.clip(Y_PRED, 0.05, 0.95)) if loss.from_logits else Y_PRED
    assert float(restored(Y_TRUE, y_pred)) == pytest.approx(float(loss(Y_TRUE, y_pred)))


def test_compiled_model_saved_as_keras_reloads_without_custom_objects(tmp_path):
    inputs = keras.Input((2, 2, 1))
    outputs = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")(
        inputs
    )
    model = keras.Model(inputs, outputs)
    loss = losses.BCEDiceLoss(bce_weight=0.5, from_logits=True, per_image=True)
    model.compile(optimizer="sgd", loss=loss)
    x = _logit(np.clip(Y_PRED, 0.05, 0.95))
    before = model.evaluate(x, Y_TRUE, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.loss) is losses.BCEDiceLoss
    assert reloaded.loss.get_config() == loss.get_config()
    assert reloaded.evaluate(x, Y_TRUE, verbose=0) == pytest.approx(before, rel=1e-6)


# ---------------------------------------------------------------- tf.distribute


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    from skyseg_tf import losses

    y = np.zeros((4, 4, 4, 1), "float32")
    y[:2, :2] = 1
    y[2:, :1] = 1
    x = np.linspace(-2.0, 2.0, y.size).astype("float32").reshape(y.shape)


    def one_sgd_step(strategy, loss):
        with strategy.scope():
            inputs = keras.Input((4, 4, 1))
            conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones")
            model = keras.Model(inputs, conv(inputs))
            model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
        # One step: the logged loss is the loss before the update.
        history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        return history.history["loss"][0], [w.tolist() for w in model.get_weights()]


    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": mirrored.num_replicas_in_sync}
    for name in ["per_image_dice", "bce", "batch_dice"]:
        loss = {
            "per_image_dice": losses.DiceLoss(from_logits=True, per_image=True),
            "bce": losses.BCELoss(from_logits=True),
            "batch_dice": losses.DiceLoss(from_logits=True),
        }[name]
        result[name] = {
            "single": one_sgd_step(tf.distribute.get_strategy(), loss),
            "mirrored": one_sgd_step(mirrored, loss),
        }
    print(json.dumps(result))
    """
)


def _run_script(script):
    root = Path(skyseg_tf.__file__).resolve().parents[1]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_losses_under_mirrored_strategy_match_a_single_device():
    result = _run_script(_MIRRORED_SCRIPT)
    assert result["replicas"] == 2
    # Per-image losses: same loss value and the same gradient step as on one device,
    # which needs Keras' 1/num_replicas scaling of per-example values.
    for name in ["per_image_dice", "bce"]:
        single, mirrored = result[name]["single"], result[name]["mirrored"]
        assert mirrored[0] == pytest.approx(single[0], rel=1e-5)
        np.testing.assert_allclose(mirrored[1][0], single[1][0], rtol=1e-5)
        np.testing.assert_allclose(mirrored[1][1], single[1][1], rtol=1e-5, atol=1e-6)
    # The batch-level Dice is computed per replica (documented): the mirrored value is
    # the mean of the Dice of images 0-1 and of images 2-3.
    probs = 1.0 / (1.0 + np.exp(-np.linspace(-2.0, 2.0, 64).reshape(4, 4, 4, 1)))
    y = np.zeros((4, 4, 4, 1))
    y[:2, :2] = 1
    y[2:, :1] = 1

    def dice(p, t):
        return 1 - (2 * np.sum(p * t) + 1) / (np.sum(p) + np.sum(t) + 1)

    batch_dice = result["batch_dice"]
    assert batch_dice["single"][0] == pytest.approx(dice(probs, y), rel=1e-5)
    local_mean = (dice(probs[:2], y[:2]) + dice(probs[2:], y[2:])) / 2
    assert batch_dice["mirrored"][0] == pytest.approx(local_mean, rel=1e-5)
