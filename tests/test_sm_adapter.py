"""segmentation_models (the `sm` extra) under Keras 3, inside skyseg_tf's pipeline."""

import numpy as np
import pytest

from skyseg_tf.models import build_unet, from_segmentation_models

# segmentation-models comes with the `sm` extra, which `make test` installs: no skip here.


def _decoder_params(model):
    inner = next(layer for layer in model.layers if hasattr(layer, "layers"))
    return sum(
        layer.count_params()
        for layer in inner.layers
        if layer.name.startswith("decoder_") or layer.name == "final_conv"
    )


def test_segmentation_models_unet_builds_under_keras3_with_raw_rgb_input():
    model = from_segmentation_models("Unet", "resnet50", encoder_weights=None, input_shape=(64, 64, 3))
    outputs = np.asarray(model(np.full((2, 64, 64, 3), 128.0, "float32"), training=False))
    assert outputs.shape == (2, 64, 64, 1)
    assert outputs.dtype == np.float32
    assert np.all((outputs >= 0) & (outputs <= 1))
    assert model.count_params() == 32_561_114  # segmentation_models' own Unet("resnet50")


def test_our_unet_decoder_matches_segmentation_models_decoder_within_one_percent():
    theirs = _decoder_params(
        from_segmentation_models("Unet", "resnet50", encoder_weights=None, input_shape=(64, 64, 3))
    )
    ours_model = build_unet("resnet50", encoder_weights=None, input_shape=(64, 64, 3))
    encoder_params = ours_model.get_layer("encoder").count_params()
    ours = ours_model.count_params() - encoder_params
    assert abs(ours - theirs) / theirs < 0.01, (ours, theirs)


@pytest.mark.parametrize("architecture", ["FPN", "Linknet"])
def test_other_segmentation_models_architectures(architecture):
    model = from_segmentation_models(architecture, "resnet18", encoder_weights=None, input_shape=(64, 64, 3))
    assert model(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 64, 64, 1)


def test_unknown_architecture_and_backbone_errors():
    with pytest.raises(ValueError, match="valid: Unet, FPN, Linknet, PSPNet"):
        from_segmentation_models("SegFormer", "resnet50")
    with pytest.raises(ValueError, match="Unknown segmentation_models backbone 'swin_t'"):
        from_segmentation_models("Unet", "swin_t")


def test_unet_decoder_numerically_equals_segmentation_models_unet_resnet50():
    """Parity with segmentation_models' Unet("resnet50"), weights transplanted layer by layer.

    segmentation_models' ResNet50 (classification_models: pre-activation units, a BatchNorm on
    the raw input) is not keras.applications' ResNet50 (post-activation, conv biases), so the
    two encoders cannot share weights. The comparison plugs sm's own encoder into our U-Net
    (through the ``pyramid_outputs`` contract, P1..P5 = relu0, stage2..4_unit1_relu1, relu1),
    copies every decoder and head weight by layer name, and compares the outputs.
    """
    import keras

    from skyseg_tf.models.sm_adapter import _import_segmentation_models

    sm = _import_segmentation_models()
    theirs = sm.Unet("resnet50", encoder_weights=None, input_shape=(64, 96, 3))
    rng = np.random.default_rng(0)
    for layer in theirs.layers:  # non-trivial BatchNorm statistics and biases everywhere
        if layer.weights:
            layer.set_weights([rng.normal(0.0, 0.05, w.shape).astype("float32") + (1.0 if "variance" in w.path
                              or "gamma" in w.path else 0.0) for w in layer.weights])
    skips = {"P1": "relu0", "P2": "stage2_unit1_relu1", "P3": "stage3_unit1_relu1",
             "P4": "stage4_unit1_relu1", "P5": "relu1"}
    backbone = keras.Model(theirs.input, theirs.get_layer("relu1").output, name="sm_resnet50")
    backbone.pyramid_outputs = {key: theirs.get_layer(name).output for key, name in skips.items()}
    ours = build_unet(backbone=backbone, encoder_weights=None, input_shape=(64, 96, 3))
    copied = 0
    for layer in ours.layers:
        source = "final_conv" if layer.name == "head_conv" else layer.name
        if layer.weights and (layer.name.startswith("decoder_") or layer.name == "head_conv"):
            layer.set_weights(theirs.get_layer(source).get_weights())
            copied += 1
    assert copied == 5 * 2 * 2 + 1  # five blocks of two conv+BN pairs, and the head
    images = rng.uniform(0, 255, (2, 64, 96, 3)).astype("float32")
    expected = np.asarray(theirs(images, training=False))
    got = np.asarray(ours(images, training=False))
    assert expected.std() > 1e-3  # the outputs are not saturated: the comparison can fail
    np.testing.assert_allclose(got, expected, atol=1e-4)
