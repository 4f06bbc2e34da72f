"""Model zoo: encoders over keras.applications, U-Net, DeepLabV3, DeepLabV3+, a registry."""

from skyseg_tf.models import layers  # noqa: F401  (registers the custom layers)
from skyseg_tf.models import optimize  # noqa: F401  (registers NearestUpsampleConv2D, FusedBatchNormalization)
from skyseg_tf.models.deeplabv3 import build_deeplabv3, build_deeplabv3plus
from skyseg_tf.models.encoders import ENCODERS, EncoderWeightsError, build_encoder, list_encoders
from skyseg_tf.models.layers import OUTPUT_ACTIVATIONS, output_activation
from skyseg_tf.models.optimize import (
    fold_batch_norms,
    fuse_batch_norms,
    optimize_for_inference,
    optimize_for_training,
    split_upsampling_convs,
)
from skyseg_tf.models.registry import build_model, list_models
from skyseg_tf.models.sm_adapter import from_segmentation_models
from skyseg_tf.models.unet import build_unet

__all__ = [
    "ENCODERS",
    "EncoderWeightsError",
    "OUTPUT_ACTIVATIONS",
    "build_deeplabv3",
    "build_deeplabv3plus",
    "build_encoder",
    "build_model",
    "build_unet",
    "fold_batch_norms",
    "fuse_batch_norms",
    "from_segmentation_models",
    "list_encoders",
    "list_models",
    "optimize_for_inference",
    "optimize_for_training",
    "output_activation",
    "split_upsampling_convs",
]
