"""Logits models (``activation=None``) end to end: training, prediction and export read the head.

Every check compares a logits model with its twin: the same weights under a sigmoid (or softmax)
head. Losses, metrics, predicted and exported probabilities must be the twin's.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import skyseg_tf  # noqa: E402
from skyseg_tf import export  # noqa: E402
from skyseg_tf.inference import SkyPredictor, load_model, predict_image  # noqa: E402
from skyseg_tf.losses import LOSSES, get_loss  # noqa: E402
from skyseg_tf.metrics import default_metrics  # noqa: E402
from skyseg_tf.training import train  # noqa: E402
from test_training import TINY as TRAINING_TINY  # noqa: E402

MODEL = "unet_mobilenet_v3_large"
DECODER = (16, 16, 8, 8, 8)
TINY = {
    **TRAINING_TINY,  # the training tests' tiny synthetic run
    "loss": "bce_dice",  # both terms read from_logits
    "verbose": 0,
    "model_kwargs": {"activation": None, "decoder_filters": list(DECODER)},
}


def twin(model, activation="sigmoid", classes=1):
    """``model``'s weights under another head activation."""
    other = skyseg_tf.build_model(MODEL, encoder_weights=None, activation=activation, classes=classes,
                                  decoder_filters=DECODER)
    other.set_weights(model.get_weights())
    return other


def scenes(count, size=64, seed=0):
    from skyseg_tf.data.synthetic import render_scene

    rendered = [render_scene(np.random.default_rng([seed, k]), size, size) for k in range(count)]
    images = np.stack([image for image, _ in rendered]).astype(np.float32)
    masks = np.stack([np.asarray(mask, np.float32).reshape(size, size, 1) for _, mask in rendered])
    return images, (masks >= 0.5).astype(np.float32)


class KeepModel(keras.callbacks.Callback):
    """Keeps the model ``fit`` trained (compiled by ``train``)."""

    def on_train_end(self, logs=None):
        self.trained = self.model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    keep = KeepModel()
    result = train({**TINY, "run_dir": str(tmp_path_factory.mktemp("logits") / "run")}, callbacks=[keep])
    return result, keep.trained


def test_training_a_logits_model_reports_the_loss_and_metrics_of_its_sigmoid_twin(trained):
    result, model = trained
    assert np.all(np.isfinite(result.history["loss"]))
    images, masks = scenes(4, seed=1)
    logits = model.evaluate(images, masks, batch_size=4, verbose=0, return_dict=True)
    sigmoid = twin(model)
    sigmoid.compile(loss=get_loss(TINY["loss"]), metrics=default_metrics())
    expected = sigmoid.evaluate(images, masks, batch_size=4, verbose=0, return_dict=True)
    assert sorted(logits) == sorted(expected)
    for key in ["loss"] + sorted(set(expected) - {"loss"}):
        value = expected[key]
        # BCE of logits vs of probabilities clipped to [1e-7, 1 - 1e-7]: equal to rounding.
        np.testing.assert_allclose(logits[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    # The logits really are logits (outside [0, 1]), so the check above could fail.
    raw = np.asarray(model(images, training=False))
    assert raw.min() < 0.0 or raw.max() > 1.0


def test_predict_image_of_a_logits_model_is_sigmoid_of_its_logits(trained):
    result, _ = trained
    model = load_model(result.best_model_path)
    sigmoid = twin(model)
    image = scenes(1, seed=2)[0][0].astype(np.uint8)
    got = predict_image(model, image, input_size=(64, 64))
    want = predict_image(sigmoid, image, input_size=(64, 64))
    np.testing.assert_allclose(got, want, atol=1e-5)
    logits = np.asarray(model(image[None].astype(np.float32), training=False))[0, ..., 0]
    np.testing.assert_allclose(got, 1.0 / (1.0 + np.exp(-logits)), atol=1e-5)


def test_saved_model_and_tflite_exports_of_a_logits_model_give_probabilities(trained, tmp_path):
    result, _ = trained
    model = load_model(result.best_model_path)
    sigmoid = twin(model)
    images = scenes(2, seed=3)[0]
    want = np.asarray(sigmoid(images, training=False))
    version_dir = export.export_saved_model(model, tmp_path / "export", image_size=64)
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    got = served(images=tf.constant(images))["sky_probability"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    tflite = export.export_tflite(model, tmp_path / "sky.tflite", image_size=64)
    np.testing.assert_allclose(export.run_tflite(tflite, images), want, atol=1e-4)


def test_two_channel_logits_predict_the_softmax_probability_of_sky():
    logits_model = skyseg_tf.build_model(MODEL, encoder_weights=None, activation=None, classes=2,
                                         decoder_filters=DECODER)
    softmax = twin(logits_model, activation="softmax", classes=2)
    images = scenes(2, seed=4)[0]
    np.testing.assert_allclose(SkyPredictor(logits_model)(images), SkyPredictor(softmax)(images), atol=1e-5)


def test_output_activation_reads_the_head():
    from skyseg_tf.models import optimize_for_inference, output_activation

    def build(**kwargs):
        return skyseg_tf.build_model(MODEL, encoder_weights=None, decoder_filters=DECODER, **kwargs)

    logits = build(activation=None)
    assert output_activation(logits) is None
    assert output_activation(build()) == "sigmoid"
    assert output_activation(build(classes=2, activation="softmax")) == "softmax"
    # DeepLab's logits are upsampled after the classifier: still logits.
    deeplab = skyseg_tf.build_model("deeplabv3_mobilenet_v3_large", encoder_weights=None, activation=None,
                                    aspp_filters=8)
    assert output_activation(deeplab) is None
    # The inference rewrite and a config round trip keep the head.
    assert output_activation(optimize_for_inference(logits)) is None
    assert output_activation(keras.Model.from_config(logits.get_config())) is None
    # Models that do not declare logits are taken to output probabilities, as before.
    inputs = keras.Input((8, 8, 3))
    assert output_activation(keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1] / 255.0)(inputs))) == "sigmoid"
    assert output_activation(keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))) == "softmax"
    assert output_activation(keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))) is None
    assert output_activation(lambda x: x[..., :1] / 255.0) == "sigmoid"
    with pytest.raises(ValueError, match="relu"):
        output_activation(keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="relu")(inputs)))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_and_metric_takes_from_logits_through_its_config(name):
    loss = get_loss(name, from_logits=True)
    assert type(loss).from_config(loss.get_config()).from_logits is True
    for metric in default_metrics(from_logits=True):
        assert type(metric).from_config(metric.get_config()).from_logits is True
