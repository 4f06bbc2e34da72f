"""skyseg-tf: sky segmentation in TensorFlow / Keras 3.

Importing the package registers the library's Keras objects (layers, losses, metrics)
and the ``ade20k_outdoors_sky`` TFDS builder; nothing else happens on import.

Example:
    >>> import skyseg_tf
    >>> model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None)
    >>> sorted(skyseg_tf.list_models())[:2]
    ['deeplabv3_mobilenet_v3_large', 'deeplabv3_resnet101']
"""

__version__ = "0.1.0"

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "skyseg_tf needs TensorFlow. Install it with the extra that fits your machine: "
        "`pip install 'skyseg-tf[cpu]'` (CPU only) or `pip install 'skyseg-tf[gpu]'` (NVIDIA GPU)."
    ) from error

from skyseg_tf import losses, metrics  # noqa: E402,F401  (registers serializable objects)
from skyseg_tf.models import (  # noqa: E402
    build_deeplabv3,
    build_deeplabv3plus,
    build_model,
    build_unet,
    list_models,
)

from skyseg_tf.presets import from_preset, list_presets  # noqa: E402

import tfds_ade20k_outdoors  # noqa: E402,F401  (registers the TFDS builder)


def predict_image(*args, **kwargs):
    """Sky probabilities of one photo at its own resolution; see :func:`skyseg_tf.inference.predict_image`.

    ``skyseg_tf.predict_image(photo)`` uses the pretrained model (``from_preset()``).

    Example:
        >>> import numpy as np
        >>> predict_image(np.zeros((60, 80, 3), np.uint8)).shape
        (60, 80)
    """
    from skyseg_tf.inference import predict_image as _predict_image

    return _predict_image(*args, **kwargs)

__all__ = [
    "__version__",
    "build_deeplabv3",
    "build_deeplabv3plus",
    "build_model",
    "build_unet",
    "from_preset",
    "list_models",
    "list_presets",
    "losses",
    "metrics",
    "predict_image",
]
