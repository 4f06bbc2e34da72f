"""Model facts: FLOPs counted by hand for every kind of convolution, and a table without side effects."""

import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import skyseg_tf  # noqa: E402
from skyseg_tf.models.optimize import (  # noqa: E402
    NearestUpsampleConv2D,
    SubPixelConv2D,
    optimize_for_inference,
    split_upsampling_convs,
)
from skyseg_tf.models.summary import count_flops, model_table  # noqa: E402


def one_layer(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize("kernel, strides, padding", [(4, 2, "same"), (3, 2, "valid"), (2, 1, "same")])
def test_transposed_conv_counts_its_taps_per_input_pixel(kernel, strides, padding):
    model = one_layer(keras.layers.Conv2DTranspose(5, kernel, strides=strides, padding=padding), (8, 8, 3))
    # Every input pixel is scattered through the whole kernel: H_in * W_in * kh * kw * C_in * C_out.
    assert count_flops(model) == 2 * 8 * 8 * kernel * kernel * 3 * 5


def test_sub_pixel_layers_count_the_transposed_conv_they_run():
    executed = 2 * 8 * 8 * 16 * 6 * 5  # a 4x4 stride-2 transposed conv of the 8x8 input
    assert count_flops(one_layer(NearestUpsampleConv2D(5), (8, 8, 6))) == executed
    assert count_flops(one_layer(SubPixelConv2D(5, input_chunks=2), (8, 8, 6))) == executed
    assert count_flops(one_layer(SubPixelConv2D(5), (8, 8, 6))) == executed


def _decoder_block():
    """``conv3x3(concat(up2(x), skip))``-BN-ReLU, a U-Net decoder block, then ``conv3x3(up2(.))``."""
    low = keras.Input((8, 8, 6))
    skip = keras.Input((16, 16, 2))
    up = keras.layers.UpSampling2D(2)(low)
    x = keras.layers.Concatenate()([up, skip])
    x = keras.layers.Conv2D(5, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    return keras.Model([low, skip], x)


def test_rewritten_decoder_block_counts_what_it_executes():
    model = _decoder_block()
    built = 2 * (16 * 16 * 9 * (6 + 2) * 5 + 32 * 32 * 9 * 5 * 4)  # 3x3 convs at the upsampled size
    assert count_flops(model) == built
    # Split: the upsampled channels go through 4x4 transposed convs at the low resolution, the
    # skip channels keep their 3x3 conv.
    executed = 2 * (8 * 8 * 16 * 6 * 5 + 16 * 16 * 9 * 2 * 5 + 16 * 16 * 16 * 5 * 4)
    split = split_upsampling_convs(model)
    assert sum(isinstance(layer, NearestUpsampleConv2D) for layer in split.layers) == 2
    assert count_flops(split) == executed
    optimized = optimize_for_inference(model)
    assert sum(isinstance(layer, keras.layers.Conv2DTranspose) for layer in optimized.layers) == 2
    assert count_flops(optimized) == executed


def test_rewritten_unet_saves_exactly_the_multiply_adds_of_its_split_convs():
    model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, input_shape=(64, 64, 3),
                                  decoder_filters=(16, 16, 8, 8, 8))
    split = split_upsampling_convs(model)
    saved = 0
    for layer in split.layers:
        if isinstance(layer, NearestUpsampleConv2D):
            _, height, width, channels = layer.input.shape
            # 9 taps at 2H x 2W (the built 3x3 conv's share) against 16 taps at H x W.
            saved += 2 * height * width * channels * layer.filters * (4 * 9 - 16)
    assert saved > 0
    assert count_flops(model) - count_flops(split) == saved
    assert count_flops(optimize_for_inference(model)) == count_flops(split)


def _dense_index(name):
    match = re.fullmatch(r"dense(?:_(\d+))?", name)
    assert match, name
    return int(match.group(1) or 0)


def test_model_table_leaves_the_callers_session_alone():
    inputs = keras.Input((4,))
    mine = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(inputs))
    x = np.ones((1, 4), np.float32)
    before = _dense_index(keras.layers.Dense(1).name)
    rows = model_table(64, ["unet_mobilenet_v3_large"])
    # Auto-generated names keep counting (keras.backend.clear_session() would restart them).
    assert _dense_index(keras.layers.Dense(1).name) > before
    np.testing.assert_allclose(np.asarray(mine(x)), [[4.0, 4.0]])
    built = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, input_shape=(64, 64, 3))
    assert [row["model"] for row in rows] == ["unet_mobilenet_v3_large"]
    assert rows[0]["parameters"] == built.count_params()
    assert rows[0]["gflops"] == count_flops(built) / 1e9
