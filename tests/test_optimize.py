"""Inference-time rewrites: BatchNorm folding and sub-pixel upsampling convs keep the outputs."""

import keras
import numpy as np
import pytest

from conftest import run_config_round_trip, run_save_load_round_trip
from skyseg_tf.models import build_model, from_segmentation_models
from skyseg_tf.models.optimize import (
    FusedBatchNormalization,
    NearestUpsampleConv2D,
    SubPixelConv2D,
    count_batch_norms,
    fold_batch_norms,
    fuse_batch_norms,
    optimize_for_inference,
    optimize_for_training,
    split_upsampling_convs,
    subpixel_kernel,
)

SIZE = 64
TOLERANCE = 1e-4


def _images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, SIZE, SIZE, 3)).astype("float32")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _randomize_batch_norms(model, seed=0):
    """Moving statistics, scale and offset far from their defaults, so a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.0, 0.3, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            if layer.center:
                layer.beta.assign(rng.normal(0.0, 0.3, channels))


def _logits_model(name):
    """A registry model with logits out (no saturating sigmoid) and non-trivial BatchNorms."""
    model = build_model(name, encoder_weights=None, activation=None, input_shape=(SIZE, SIZE, 3))
    before = np.asarray(model(_images(), training=False))
    _randomize_batch_norms(model)
    after = np.asarray(model(_images(), training=False))
    # The statistics matter far beyond the tolerance: a fold that ignored them would fail.
    assert np.abs(after - before).max() > 100 * TOLERANCE * np.abs(after).max()
    return model, after


def _assert_same_outputs(expected, actual):
    """allclose at 1e-4 of the output's scale (logits of random deep nets reach tens)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(np.asarray(actual) / scale, np.asarray(expected) / scale, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", [
    "unet_resnet50",
    "deeplabv3_mobilenet_v3_large",
    pytest.param("deeplabv3_resnet50", marks=pytest.mark.slow),  # dilated convs: ~30 s on 2 cores
])
def test_fold_batch_norms_keeps_outputs_removes_every_batch_norm_and_saves(name, tmp_path):
    model, expected = _logits_model(name)
    folded = fold_batch_norms(model)
    assert count_batch_norms(model) > 50
    assert not [layer.name for layer in _all_layers(folded) if isinstance(layer, keras.layers.BatchNormalization)]
    _assert_same_outputs(expected, folded(_images(), training=False))
    assert [layer.name for layer in folded.layers][:4] == [layer.name for layer in model.layers][:4]
    restored = run_save_load_round_trip(folded, _images(), tmp_path)
    assert count_batch_norms(restored) == 0


def test_fold_batch_norms_leaves_the_model_unchanged_and_keeps_unfoldable_batch_norms():
    model = from_segmentation_models("Unet", "resnet50", encoder_weights=None, activation=None,
                                     input_shape=(SIZE, SIZE, 3))
    _randomize_batch_norms(model)
    expected = np.asarray(model(_images(), training=False))
    folded = fold_batch_norms(model)
    # Pre-activation ResNet: the BatchNorms after additions and on the raw image cannot fold.
    assert 0 < count_batch_norms(folded) < count_batch_norms(model) == 61
    _assert_same_outputs(expected, folded(_images(), training=False))
    np.testing.assert_array_equal(np.asarray(model(_images(), training=False)), expected)


def test_optimize_for_inference_matches_and_has_only_standard_layers(tmp_path):
    model, expected = _logits_model("unet_resnet50")
    fast = optimize_for_inference(model)
    _assert_same_outputs(expected, fast(_images(), training=False))
    assert count_batch_norms(fast) == 0
    names = {layer.name: type(layer).__name__ for layer in fast.layers}
    # 2048 -> 256 channels: a 32 MiB kernel, run in two input-channel chunks.
    assert names["decoder_stage0a_conv_upsampled"] == "SubPixelConv2D"
    assert fast.get_layer("decoder_stage0a_conv_upsampled").input_chunks == 2
    assert names["decoder_stage1a_conv_upsampled"] == "Conv2DTranspose"
    assert names["decoder_stage4a_conv"] == "Conv2DTranspose"  # no skip: one layer, same name
    assert not any(name.startswith("decoder_stage0_") for name in names)  # upsampling, concat gone
    run_save_load_round_trip(fast, _images(), tmp_path)


def test_split_upsampling_convs_has_the_same_parameters_outputs_and_gradients():
    # float64: in float32, training-mode gradients of a randomly initialised network on a tiny
    # batch are ill-conditioned (BatchNorm on a few values, ReLU kinks). Nudging the *input* of
    # the unchanged model by 2e-7 moves some kernel gradients by up to 3% for some
    # initialisations, so any reordering of float32 sums, this rewrite's included, does the same.
    # In float64 the rewrite must agree to rounding.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model = build_model("unet_mobilenet_v3_large", encoder_weights=None, activation=None,
                            input_shape=(SIZE, SIZE, 3))
        split = split_upsampling_convs(model)
    finally:
        keras.config.set_dtype_policy(previous)
    assert split.count_params() == model.count_params()
    assert isinstance(split.get_layer("decoder_stage1a_conv_upsampled"), NearestUpsampleConv2D)
    images = _images().astype("float64")

    import tensorflow as tf

    def gradients(network, names):
        variables = [network.get_layer(name).kernel for name in names]
        with tf.GradientTape() as tape:
            outputs = network(images, training=True)
            loss = tf.reduce_mean(tf.square(outputs))
        return np.asarray(outputs), [np.asarray(g) for g in tape.gradient(loss, variables)]

    outputs, (whole, later) = gradients(model, ["decoder_stage1a_conv", "decoder_stage2b_conv"])
    split_outputs, (skip, upsampled, split_later) = gradients(
        split, ["decoder_stage1a_conv", "decoder_stage1a_conv_upsampled", "decoder_stage2b_conv"])
    np.testing.assert_allclose(split_outputs, outputs, rtol=0, atol=1e-10 * np.abs(outputs).max())
    up_channels = upsampled.shape[2]  # the concat put the upsampled map first
    scale = np.abs(whole).max()
    np.testing.assert_allclose(upsampled, whole[:, :, :up_channels], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(skip, whole[:, :, up_channels:], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(split_later, later, rtol=0, atol=1e-10 * np.abs(later).max())


def test_nearest_upsample_conv_equals_upsampling_then_conv_and_round_trips():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    layer = NearestUpsampleConv2D(4, use_bias=True, bias_initializer="ones")
    outputs = np.asarray(layer(x))
    conv = keras.layers.Conv2D(4, 3, padding="same")
    conv.build((None, 10, 14, 3))
    conv.set_weights(layer.get_weights())
    np.testing.assert_allclose(outputs, np.asarray(conv(keras.layers.UpSampling2D(2)(x))), atol=1e-5)
    inputs = keras.Input((None, None, 3))
    wrapped = keras.Model(inputs, NearestUpsampleConv2D(4, name="up")(inputs))
    run_config_round_trip(wrapped, x)
    assert NearestUpsampleConv2D.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("chunks", [1, 3])
def test_chunked_subpixel_conv_equals_one_transposed_conv_and_round_trips(chunks):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 7, 8)).astype("float32")
    kernel = rng.normal(size=(4, 4, 6, 8)).astype("float32")
    bias = rng.normal(size=(6,)).astype("float32")
    reference = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same")
    reference.build(x.shape)
    reference.set_weights([kernel, bias])
    layer = SubPixelConv2D(6, input_chunks=chunks)
    layer.build(x.shape)
    layer.set_weights(layer.split_kernel(kernel) + [bias])
    assert [int(k.shape[-1]) for k in layer.kernels] == ([8] if chunks == 1 else [3, 2, 3])
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(reference(x)), atol=1e-4)
    inputs = keras.Input((None, None, 8))
    run_config_round_trip(keras.Model(inputs, SubPixelConv2D(6, input_chunks=chunks, name="up")(inputs)), x)
    with pytest.raises(ValueError, match="input_chunks"):
        SubPixelConv2D(6, input_chunks=0)


def test_subpixel_kernel_numpy_and_tensor_agree():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 5)).astype("float32")
    np.testing.assert_allclose(np.asarray(subpixel_kernel(keras.ops.convert_to_tensor(kernel))),
                               subpixel_kernel(kernel), atol=1e-6)
    assert subpixel_kernel(kernel).shape == (4, 4, 5, 2)


def test_optimized_model_stays_float32_out_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model("unet_mobilenet_v3_large", encoder_weights=None, input_shape=(SIZE, SIZE, 3))
        fast = optimize_for_inference(model)
        expected, actual = model(_images(), training=False), fast(_images(), training=False)
    finally:
        keras.config.set_dtype_policy(previous)
    assert actual.dtype == "float32"
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=2e-2)


def test_non_functional_models_are_rejected_with_a_clear_error():
    sequential = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(TypeError, match="functional keras.Model"):
        fold_batch_norms(sequential)
    with pytest.raises(TypeError, match="received str"):
        optimize_for_inference("unet_resnet50")


def _twin_batch_norms(epsilon=1e-3, momentum=0.9, **kwargs):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same random state."""
    rng = np.random.default_rng(1)
    twins = (keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum, **kwargs),
             FusedBatchNormalization(epsilon=epsilon, momentum=momentum, **kwargs))
    for layer in twins:
        layer.build((None, 6, 5, 4))
    values = [rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.5, 4), rng.normal(0, 0.5, 4), rng.uniform(0.5, 2.0, 4)]
    for layer in twins:
        layer.set_weights([v.astype("float32") for v in values][:len(layer.get_weights())])
    return twins


@pytest.mark.parametrize("epsilon", [1e-3, 1.001e-5])
def test_fused_batch_norm_matches_keras_in_training_and_inference(epsilon):
    import tensorflow as tf

    keras_bn, fused_bn = _twin_batch_norms(epsilon)
    x = tf.constant(np.random.default_rng(2).normal(2.0, 3.0, (3, 6, 5, 4)).astype("float32"))
    for training in (True, False):
        results = []
        for layer in (keras_bn, fused_bn):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=training)
                loss = tf.reduce_sum(y * tf.range(1.0, 1.0 + y.shape[-1]) ** 2 * tf.cos(x))
            grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
            results.append([np.asarray(y)] + [np.asarray(g) for g in grads])
        for expected, actual in zip(*results):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # The moving statistics moved (two training calls above counted once each) and agree: Keras
    # tracks the biased batch variance; the fused kernel returns the unbiased one, corrected.
    np.testing.assert_allclose(np.asarray(fused_bn.moving_mean), np.asarray(keras_bn.moving_mean), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fused_bn.moving_variance), np.asarray(keras_bn.moving_variance), rtol=1e-5)


def test_fused_batch_norm_falls_back_where_the_kernel_does_not_apply():
    keras_bn, fused_bn = _twin_batch_norms(epsilon=1e-6)  # below TensorFlow's fused minimum
    x = np.random.default_rng(3).normal(0.0, 1e-3, (2, 6, 5, 4)).astype("float32")
    assert not fused_bn._fusable(keras.ops.convert_to_tensor(x), None)
    np.testing.assert_allclose(np.asarray(fused_bn(x, training=True)), np.asarray(keras_bn(x, training=True)),
                               rtol=1e-5, atol=1e-5)
    flat = FusedBatchNormalization()
    assert flat(np.ones((4, 3), "float32"), training=True).shape == (4, 3)  # 2-D input: Keras's code


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_fused_batch_norm_under_mixed_precision_keeps_float32_variables(dtype):
    layer = FusedBatchNormalization(dtype=f"mixed_{dtype}")
    x = keras.ops.cast(np.random.default_rng(4).normal(1.0, 2.0, (2, 4, 4, 3)), dtype)
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    assert layer.moving_mean.dtype == "float32"
    assert np.all(np.asarray(layer.moving_mean) != 0.0)
    np.testing.assert_allclose(np.mean(np.asarray(keras.ops.cast(y, "float32")), axis=(0, 1, 2)), 0.0, atol=0.05)


def test_optimize_for_training_keeps_outputs_and_saves(tmp_path):
    model, expected = _logits_model("unet_mobilenet_v3_large")
    fast = optimize_for_training(model)
    assert fast.count_params() == model.count_params()
    assert count_batch_norms(fast) == count_batch_norms(model)
    assert all(isinstance(layer, FusedBatchNormalization) for layer in _all_layers(fast)
               if isinstance(layer, keras.layers.BatchNormalization))
    assert isinstance(fast.get_layer("decoder_stage1a_conv_upsampled"), NearestUpsampleConv2D)
    _assert_same_outputs(expected, fast(_images(), training=False))
    # Training mode: batch statistics, same outputs (this batch is far from the moving ones).
    _assert_same_outputs(np.asarray(model(_images(), training=True)), fast(_images(), training=True))
    restored = run_save_load_round_trip(fast, _images(), tmp_path)
    assert isinstance(restored.get_layer("decoder_stage0a_bn"), FusedBatchNormalization)
    unsplit = optimize_for_training(model, split_upsampling=False)
    assert not any(isinstance(layer, NearestUpsampleConv2D) for layer in unsplit.layers)
    assert isinstance(unsplit.get_layer("decoder_stage0a_bn"), FusedBatchNormalization)


def test_a_model_trained_fast_still_optimizes_for_inference_completely():
    # What `skyseg train` saves (split convs, fused BatchNorms after their sums) folds as fully
    # as the model as built: every BatchNorm goes, the sub-pixel convs get precomputed kernels.
    model, expected = _logits_model("unet_resnet50")
    trained = fuse_batch_norms(split_upsampling_convs(model))
    fast = optimize_for_inference(trained)
    assert count_batch_norms(fast) == 0
    assert type(fast.get_layer("decoder_stage0a_conv_upsampled")).__name__ == "SubPixelConv2D"
    assert type(fast.get_layer("decoder_stage4a_conv")).__name__ == "Conv2DTranspose"
    assert not any(isinstance(layer, NearestUpsampleConv2D) for layer in fast.layers)
    _assert_same_outputs(expected, fast(_images(), training=False))


def test_split_conv_read_by_the_next_upsample_conv_is_rewired_to_its_sum():
    """up -> concat(skip) -> conv A -> up -> conv B: B's new sub-pixel conv must read A's sum
    (A on the skip + A on the upsampled part), not A's skip part alone."""
    import keras

    from skyseg_tf.models.optimize import optimize_for_inference, split_upsampling_convs

    inputs = keras.Input((8, 8, 6))
    skip = keras.Input((16, 16, 4))
    up = keras.layers.UpSampling2D(2, name="up_a")(inputs)
    x = keras.layers.Concatenate(name="concat_a")([up, skip])
    a = keras.layers.Conv2D(5, 3, padding="same", name="conv_a")(x)
    up_b = keras.layers.UpSampling2D(2, name="up_b")(a)
    b = keras.layers.Conv2D(3, 3, padding="same", name="conv_b")(up_b)
    model = keras.Model([inputs, skip], b)
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(2, 8, 8, 6)).astype("float32"), rng.normal(size=(2, 16, 16, 4)).astype("float32")]
    expected = np.asarray(model(data))
    for rewrite in (split_upsampling_convs, optimize_for_inference):
        rewritten = rewrite(model)
        assert "conv_a_sum" in [layer.name for layer in rewritten.layers]
        np.testing.assert_allclose(np.asarray(rewritten(data)), expected, atol=1e-4, err_msg=rewrite.__name__)
