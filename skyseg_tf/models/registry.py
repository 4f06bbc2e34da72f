"""The model zoo: registry names ``<architecture>_<encoder>`` mapped to builders."""

from __future__ import annotations

import inspect

import keras

from skyseg_tf.models.deeplabv3 import build_deeplabv3, build_deeplabv3plus
from skyseg_tf.models.encoders import list_encoders
from skyseg_tf.models.unet import build_unet

ARCHITECTURES = {
    "unet": build_unet,
    "deeplabv3": build_deeplabv3,
    "deeplabv3plus": build_deeplabv3plus,
}

# The two models of the study, and the model the demo trains on a 2-core CPU.
STUDY_MODELS = ("unet_resnet50", "deeplabv3_resnet50")


def list_models(pattern: str = "*") -> list[str]:
    """Registry names, sorted, optionally filtered by a glob pattern (timm's ``list_models``).

    Example:
        >>> "unet_resnet50" in list_models()
        True
        >>> list_models("deeplabv3_*")
        ['deeplabv3_mobilenet_v3_large', 'deeplabv3_resnet101', 'deeplabv3_resnet50']
    """
    import fnmatch

    names = sorted(f"{arch}_{encoder}" for arch in ARCHITECTURES for encoder in list_encoders())
    return [name for name in names if fnmatch.fnmatch(name, pattern)]


def parse_model_name(name: str) -> tuple[str, str]:
    """Splits a registry name into (architecture, encoder), with an error listing valid names.

    Example:
        >>> parse_model_name("deeplabv3plus_resnet101")
        ('deeplabv3plus', 'resnet101')
    """
    if isinstance(name, str) and name in list_models():
        arch = max((a for a in ARCHITECTURES if name.startswith(a + "_")), key=len)
        return arch, name[len(arch) + 1:]
    raise ValueError(f"Unknown model {name!r}; valid models are: {', '.join(list_models())}.")


def build_model(name: str, **overrides) -> keras.Model:
    """Builds a registry model; keyword arguments override the builder's defaults.

    Args:
        name: A name from :func:`list_models`, such as ``"unet_resnet50"``.
        **overrides: Arguments of the architecture's builder (``encoder_weights``,
            ``classes``, ``activation``, ``input_shape``, ``output_stride``...).

    Raises:
        ValueError: Unknown model name (the message lists the valid ones).
        TypeError: An override the builder does not accept (the message lists the valid ones).

    Example:
        >>> model = build_model("deeplabv3_resnet50", encoder_weights=None, input_shape=(64, 64, 3))
        >>> model.name
        'deeplabv3_resnet50'
    """
    arch, encoder = parse_model_name(name)
    builder = ARCHITECTURES[arch]
    accepted = [p for p in inspect.signature(builder).parameters if p != "backbone"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(
            f"build_model({name!r}) got unknown argument(s) {', '.join(unknown)}; "
            f"{builder.__name__} accepts {', '.join(accepted)}."
        )
    overrides.setdefault("name", name)
    return builder(backbone=encoder, **overrides)
