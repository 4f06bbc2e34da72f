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
