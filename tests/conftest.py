"""Shared test helpers: round trips in the keras-hub style, and quiet TensorFlow logs."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_config_round_trip(model, inputs):
    """A model rebuilt from its config, given the same weights, gives the same outputs."""
    import keras

    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(
        np.asarray(clone(inputs, training=False)), np.asarray(model(inputs, training=False)), atol=1e-5
    )
    return clone


def run_save_load_round_trip(model, inputs, tmp_path):
    """A model saved as .keras reloads with no custom_objects and gives the same outputs."""
    import keras

    path = os.path.join(str(tmp_path), f"{model.name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(restored(inputs, training=False)), np.asarray(model(inputs, training=False)), atol=1e-5
    )
    return restored


def run_python(code, env=None, timeout=300):
    """Runs Python code in a fresh interpreter of this environment; returns the completed process."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO_ROOT
    )


@pytest.fixture
def rng():
    return np.random.default_rng(0)


TINY_DECODER = (8, 8, 8, 8, 8)
"""Decoder widths of the tiny random model the tests share."""


@pytest.fixture(scope="module")
def tiny_model():
    """A small random U-Net (MobileNetV3 encoder, no pretrained weights), fresh for each test module."""
    import skyseg_tf

    return skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, decoder_filters=TINY_DECODER)


@pytest.fixture(scope="module")
def tiny_model_path(tiny_model, tmp_path_factory):
    """:func:`tiny_model` saved as a ``.keras`` file (what the CLI and workers load)."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_model.save(str(path))
    return path
