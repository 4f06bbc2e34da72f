"""Model zoo: shapes, dtypes, parameter parity, serialization, weights loading, errors."""

import textwrap

import keras
import numpy as np
import pytest

from conftest import run_config_round_trip, run_python, run_save_load_round_trip
from skyseg_tf.models import (
    build_deeplabv3,
    build_deeplabv3plus,
    build_encoder,
    build_model,
    build_unet,
    list_models,
)
from skyseg_tf.models.encoders import get_encoder_spec

SIZE = 64


def _images(batch=1, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", list_models())
def test_every_registry_entry_gives_a_probability_map_of_the_input_size(name):
    model = build_model(name, encoder_weights=None, input_shape=(None, None, 3))
    outputs = np.asarray(model(_images(batch=2), training=False))
    assert model.name == name
    assert outputs.shape == (2, SIZE, SIZE, 1)
    assert outputs.dtype == np.float32
    assert np.all((outputs >= 0) & (outputs <= 1))
    # The map depends on the image: two different images, two different maps, varying in space.
    # (In training mode: an untrained MobileNetV3's activations fade to ~1e-11 through its
    # BatchNorms at their initial statistics, so its inference output is a constant 0.5.)
    varied = np.asarray(model(_images(batch=2), training=True))
    assert not np.allclose(varied[0], varied[1], atol=1e-6)
    assert varied[0].std() > 0


def test_two_class_softmax_head_reproduces_the_study_head():
    model = build_deeplabv3(encoder_weights=None, classes=2, activation="softmax", input_shape=(SIZE, SIZE, 3))
    outputs = np.asarray(model(_images(), training=False))
    assert outputs.shape == (1, SIZE, SIZE, 2)
    np.testing.assert_allclose(outputs.sum(-1), 1.0, atol=1e-5)


def test_output_is_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model("unet_mobilenet_v3_large", encoder_weights=None, input_shape=(SIZE, SIZE, 3))
        outputs = model(_images(), training=False)
        assert model.get_layer("decoder_stage0a_conv").compute_dtype == "float16"
    finally:
        keras.config.set_dtype_policy(previous)
    assert outputs.dtype == "float32"
    assert np.all(np.isfinite(np.asarray(outputs)))


def _decoder_params(model, trainable_only):
    encoder = model.get_layer("encoder")
    weights = model.trainable_weights if trainable_only else model.weights
    encoder_weights = encoder.trainable_weights if trainable_only else encoder.weights
    encoder_ids = {id(w) for w in encoder_weights}
    return sum(int(np.prod(w.shape)) for w in weights if id(w) not in encoder_ids)


def test_unet_resnet50_decoder_has_the_parameters_of_segmentation_models_pytorch():
    # segmentation_models_pytorch Unet("resnet50", classes=1): decoder 9,012,928 + head 145.
    smp_decoder_and_head = 9_012_928 + 145
    model = build_unet("resnet50", encoder_weights=None, input_shape=(SIZE, SIZE, 3))
    trainable = _decoder_params(model, trainable_only=True)
    everything = _decoder_params(model, trainable_only=False)  # Keras counts BN moving stats too.
    assert trainable == smp_decoder_and_head
    assert abs(everything - smp_decoder_and_head) / smp_decoder_and_head < 0.01


@pytest.mark.parametrize("output_stride, conv4_rate, conv5_rate", [(8, 2, 4), (16, 1, 2)])
def test_deeplabv3_encoder_is_dilated_like_torchvision(output_stride, conv4_rate, conv5_rate):
    encoder = build_encoder("resnet50", weights=None, input_shape=(SIZE, SIZE, 3), output_stride=output_stride)
    assert tuple(encoder.output["P5"].shape[1:3]) == (SIZE // output_stride,) * 2
    assert tuple(encoder.get_layer("conv4_block2_2_conv").dilation_rate) == (conv4_rate,) * 2
    assert tuple(encoder.get_layer("conv5_block2_2_conv").dilation_rate) == (conv5_rate,) * 2
    assert tuple(encoder.get_layer("conv5_block1_1_conv").strides) == (1, 1)
    assert tuple(encoder.get_layer("conv3_block1_1_conv").strides) == (2, 2)


def test_deeplabv3_aspp_layout():
    model = build_deeplabv3(encoder_weights=None, input_shape=(SIZE, SIZE, 3))
    rates = [tuple(model.get_layer(f"aspp_atrous{i}_conv").dilation_rate) for i in (1, 2, 3)]
    assert rates == [(12, 12), (24, 24), (36, 36)]
    assert model.get_layer("aspp_project_conv").filters == 256
    assert model.get_layer("aspp_concat").output.shape[-1] == 5 * 256
    model16 = build_deeplabv3(encoder_weights=None, output_stride=16, input_shape=(SIZE, SIZE, 3))
    assert tuple(model16.get_layer("aspp_atrous1_conv").dilation_rate) == (6, 6)


def test_deeplabv3plus_fuses_48_channel_low_level_features():
    model = build_deeplabv3plus(encoder_weights=None, input_shape=(SIZE, SIZE, 3))
    assert model.get_layer("decoder_low_level_conv").filters == 48
    assert model.get_layer("decoder_concat").output.shape[1:] == (SIZE // 4, SIZE // 4, 256 + 48)


@pytest.mark.parametrize("name", ["unet_mobilenet_v3_large", "deeplabv3_resnet50", "deeplabv3plus_mobilenet_v3_large"])
def test_config_and_keras_file_round_trips(name, tmp_path):
    model = build_model(name, encoder_weights=None, input_shape=(None, None, 3))
    inputs = _images(seed=1)
    run_config_round_trip(model, inputs)
    restored = run_save_load_round_trip(model, inputs, tmp_path)
    assert restored.name == name


def test_wrong_input_size_names_the_divisibility_and_nearest_size():
    model = build_unet("mobilenet_v3_large", encoder_weights=None)
    with pytest.raises(ValueError, match=r"divisible by 32.*height 100.*nearest valid size is 96x64"):
        model(np.zeros((1, 100, 64, 3), "float32"))
    with pytest.raises(ValueError, match=r"divisible by 32.*width 70.*nearest valid size is 64x64"):
        build_unet("mobilenet_v3_large", encoder_weights=None, input_shape=(64, 70, 3))
    deeplab = build_deeplabv3("mobilenet_v3_large", encoder_weights=None)
    assert deeplab(np.zeros((1, 40, 48, 3), "float32")).shape == (1, 40, 48, 1)  # OS 8: any multiple of 8


def test_user_errors_are_clear():
    with pytest.raises(ValueError, match=r"Unknown model 'unet_resnet18'.*unet_resnet50"):
        build_model("unet_resnet18")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) output_stride.*build_unet accepts"):
        build_model("unet_resnet50", output_stride=8)
    with pytest.raises(ValueError, match=r"Unknown backbone 'vgg16'.*resnet50"):
        build_unet("vgg16", encoder_weights=None)
    with pytest.raises(ValueError, match=r"neither 'imagenet', None, nor an existing file"):
        build_unet("resnet50", encoder_weights="/nonexistent/weights.h5")
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\)"):
        build_unet("resnet50", encoder_weights=None, input_shape=(64, 64))
    with pytest.raises(ValueError, match=r"decoder_filters must be 5"):
        build_unet("resnet50", encoder_weights=None, decoder_filters=(16, 8))


def _write_imagenet_style_weights(path):
    """Writes a plain keras.applications.ResNet50 (no top, random init) in Keras's legacy .h5 format,
    the format of the ImageNet file Keras downloads."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    return reference


KERNELS_TO_COMPARE = ("conv1_conv", "conv2_block1_0_conv", "conv4_block3_2_conv", "conv5_block3_3_conv")


def test_imagenet_style_weights_load_into_unet_and_dilated_deeplabv3(tmp_path):
    path = str(tmp_path / get_encoder_spec("resnet50").weights_file)
    reference = _write_imagenet_style_weights(path)
    for model in (
        build_unet("resnet50", encoder_weights=path, input_shape=(SIZE, SIZE, 3)),
        build_deeplabv3("resnet50", encoder_weights=path, input_shape=(SIZE, SIZE, 3)),
    ):
        encoder = model.get_layer("encoder")
        for name in KERNELS_TO_COMPARE:
            np.testing.assert_array_equal(
                np.asarray(encoder.get_layer(name).kernel), np.asarray(reference.get_layer(name).kernel)
            )
    assert tuple(encoder.get_layer("conv5_block2_2_conv").dilation_rate) == (4, 4)


@pytest.mark.slow
def test_imagenet_weights_come_from_the_keras_cache_and_offline_errors_say_where(tmp_path):
    """encoder_weights="imagenet" goes through Keras's own get_file and cache.

    The real ImageNet file cannot be downloaded here, so a file of the same name and format
    stands in for it in a temporary KERAS_HOME; Keras's md5 check of the real file is the one
    step replaced (the stand-in has another hash). Without the file, and with downloads blocked,
    the error names the file and the folder to put it in.
    """
    keras_home = tmp_path / "keras_home"
    (keras_home / "models").mkdir(parents=True)
    spec = get_encoder_spec("resnet50")
    blocked = {"KERAS_HOME": str(keras_home), "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    offline = run_python(textwrap.dedent("""
        import skyseg_tf
        from skyseg_tf.models import EncoderWeightsError
        try:
            skyseg_tf.build_unet("resnet50", encoder_weights="imagenet")
        except EncoderWeightsError as error:
            print("ERROR:", error)
    """), env=blocked)
    assert "ERROR:" in offline.stdout, offline.stderr[-2000:]
    assert spec.weights_file in offline.stdout
    assert str(keras_home / "models") in offline.stdout

    _write_imagenet_style_weights(str(keras_home / "models" / spec.weights_file))
    cached = run_python(textwrap.dedent(f"""
        import h5py, numpy as np
        from keras.src.utils import file_utils
        file_utils.validate_file = lambda *args, **kwargs: True  # the stand-in has another md5
        import skyseg_tf
        model = skyseg_tf.build_deeplabv3("resnet50", encoder_weights="imagenet")
        with h5py.File({str(keras_home / "models" / spec.weights_file)!r}) as f:
            group = f["conv1_conv"]
            kernel_name = group.attrs["weight_names"][0]
            expected = np.asarray(group[kernel_name.decode() if isinstance(kernel_name, bytes) else kernel_name])
        got = np.asarray(model.get_layer("encoder").get_layer("conv1_conv").kernel)
        print("EQUAL", bool(np.array_equal(expected, got)))
    """), env=blocked)
    assert "EQUAL True" in cached.stdout, cached.stderr[-3000:]


def test_import_has_no_side_effects():
    result = run_python(textwrap.dedent("""
        import os, keras, tensorflow_datasets as tfds  # TFDS's own import edits LD_LIBRARY_PATH
        before = dict(os.environ)
        import skyseg_tf
        assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
        assert keras.config.dtype_policy().name == "float32"
        assert "ade20k_outdoors_sky" in tfds.list_builders()
        print("OK", sorted(n for n in dir(skyseg_tf) if n.startswith("build") or n == "list_models"))
    """))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "OK ['build_deeplabv3', 'build_deeplabv3plus', 'build_model', 'build_unet', 'list_models']"


def test_sizes_unknown_while_tracing_are_checked_at_run_time():
    import tensorflow as tf

    model = build_unet("mobilenet_v3_large", encoder_weights=None)
    predict = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, None, None, 3))])
    assert predict(tf.zeros((1, 64, 96, 3))).shape == (1, 64, 96, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="divisible by 32"):
        predict(tf.zeros((1, 64, 90, 3)))


def _tiny_pyramid_backbone():
    """A five-level strided-conv backbone exposing keras-hub's ``pyramid_outputs`` contract."""
    inputs = keras.Input((None, None, 3))
    x, pyramid = inputs, {}
    for level in range(1, 6):
        x = keras.layers.Conv2D(4 * level, 3, strides=2, padding="same", name=f"tiny_p{level}")(x)
        pyramid[f"P{level}"] = x
    backbone = keras.Model(inputs, x, name="tiny")
    backbone.pyramid_outputs = pyramid
    return backbone


def test_any_model_with_pyramid_outputs_feeds_every_decoder():
    from skyseg_tf.models import build_deeplabv3, build_deeplabv3plus, build_unet

    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 96, 3)).astype("float32")
    for builder in (build_unet, build_deeplabv3, build_deeplabv3plus):
        backbone = _tiny_pyramid_backbone()
        model = builder(backbone=backbone, encoder_weights=None, output_stride=32) if builder is not build_unet \
            else builder(backbone=backbone, encoder_weights=None)
        assert model.name == f"{builder.__name__[len('build_'):]}_tiny"
        assert model(images).shape == (1, 64, 96, 1)
        # The plug-in's own weights are the encoder's: the model trains them, not copies.
        assert any(w is backbone.get_layer("tiny_p1").kernel for w in model.trainable_weights)
    with pytest.raises(ValueError, match="output_stride=32"):
        build_deeplabv3(backbone=_tiny_pyramid_backbone(), encoder_weights=None)
    plain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)], name="plain")
    with pytest.raises(ValueError, match="pyramid_outputs"):
        build_unet(backbone=plain, encoder_weights=None)


def test_register_model_entries_with_their_own_metadata():
    import skyseg_tf
    from skyseg_tf.models import build_unet
    from skyseg_tf.models.registry import model_entry, register_model, unregister_model

    def unet_on_tiny(**kwargs):
        return build_unet(backbone=_tiny_pyramid_backbone(), **kwargs)

    register_model("unet_tiny_test", unet_on_tiny, architecture="unet", description="U-Net on a tiny plug-in",
                   tags=("plugin",), defaults={"decoder_filters": (16, 8, 8, 4, 4)})
    try:
        assert skyseg_tf.list_models(tags="plugin") == ["unet_tiny_test"]
        assert model_entry("unet_tiny_test").builder is unet_on_tiny
        model = skyseg_tf.build_model("unet_tiny_test", encoder_weights=None)
        assert model.name == "unet_tiny_test" and model.output_shape == (None, None, None, 1)
        assert model.get_layer("decoder_stage4a_conv").filters == 4  # the entry's defaults were used
        with pytest.raises(ValueError, match="already registered"):
            register_model("unet_tiny_test", unet_on_tiny, architecture="unet")
    finally:
        unregister_model("unet_tiny_test")
    assert "unet_tiny_test" not in skyseg_tf.list_models()
    assert skyseg_tf.list_models(tags="study") == ["deeplabv3_resnet50", "unet_resnet50"]
