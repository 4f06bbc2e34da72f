"""The model zoo: named entries, each registered explicitly with its own metadata (timm style).

Every entry is a :class:`ModelEntry` made by :func:`register_model`: a registry name
(``<architecture>_<encoder>`` for the built-in ones), the builder it calls, the encoder, the
arguments it fixes and a one-line description. :func:`build_model` builds an entry,
:func:`list_models` lists (and filters) them, :func:`model_entry` reads one. Your own entries
register the same way, without touching this file::

    register_model("unet_resnet50_bilinear", build_unet, architecture="unet", encoder="resnet50",
                   defaults={"upsampling": "bilinear"}, description="U-Net, bilinear upsampling")

Example:
    >>> model_entry("unet_resnet50").tags
    ('study',)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import types
from typing import Callable, Mapping

import keras

from skyseg_tf.models.deeplabv3 import build_deeplabv3, build_deeplabv3plus
from skyseg_tf.models.encoders import list_encoders
from skyseg_tf.models.unet import build_unet

ARCHITECTURES = {
    "unet": build_unet,
    "deeplabv3": build_deeplabv3,
    "deeplabv3plus": build_deeplabv3plus,
}
"""The decoders, each a builder taking ``backbone=`` (an encoder name or a model exposing
``pyramid_outputs``, see :func:`skyseg_tf.models.base.assemble_model`)."""

STUDY_MODELS = ("unet_resnet50", "deeplabv3_resnet50")
"""The two models of the study."""

_DESCRIPTIONS = {
    "unet": "U-Net (segmentation_models style), nearest upsampling, decoder 256-128-64-32-16",
    "deeplabv3": "DeepLabV3 (torchvision style): output stride 8, ASPP rates 12/24/36, 256 channels",
    "deeplabv3plus": "DeepLabV3+: DeepLabV3 with a stride-4 decoder, output stride 16",
}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: Registry name.
        builder: The function :func:`build_model` calls (``backbone=encoder`` plus ``defaults``
            plus the caller's overrides).
        architecture: Decoder family (``"unet"``, ``"deeplabv3"``, ...).
        encoder: Encoder passed as ``backbone``, or ``None`` when the builder needs none.
        defaults: Arguments the entry fixes (overridable).
        description: One line for ``skyseg models``.
        tags: Free labels (``"study"`` for the study's models).
    """

    name: str
    builder: Callable[..., keras.Model]
    architecture: str
    encoder: str | None = None
    defaults: Mapping = dataclasses.field(default_factory=dict)
    description: str = ""
    tags: tuple = ()


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, builder: Callable[..., keras.Model], *, architecture: str,
                   encoder: str | None = None, defaults: Mapping | None = None, description: str = "",
                   tags=(), overwrite: bool = False) -> ModelEntry:
    """Registers a model under ``name`` so :func:`build_model` and ``skyseg train --model`` find it.

    Args:
        name: Registry name (``<architecture>_<encoder>`` by convention).
        builder: A function returning a ``keras.Model``; called with ``backbone=encoder`` (when
            ``encoder`` is set), the ``defaults`` and the caller's keyword arguments.
        architecture: Decoder family, for listing.
        encoder: Encoder name or ``None``.
        defaults: Keyword arguments this entry fixes, e.g. ``{"upsampling": "bilinear"}``.
        description: One line shown by ``skyseg models``.
        tags: Labels such as ``("study",)``.
        overwrite: Replace an entry of the same name (otherwise that is an error).

    Returns:
        The :class:`ModelEntry`.

    Raises:
        ValueError: A name already registered (without ``overwrite``), or a builder that is
            not callable.

    Example:
        >>> entry = register_model("unet_resnet50_bilinear_doc", build_unet, architecture="unet",
        ...                        encoder="resnet50", defaults={"upsampling": "bilinear"})
        >>> "unet_resnet50_bilinear_doc" in list_models("unet_resnet50*")
        True
        >>> unregister_model("unet_resnet50_bilinear_doc").defaults["upsampling"]
        'bilinear'
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: received {name!r}; pass a non-empty string.")
    if not callable(builder):
        raise ValueError(f"builder: received {builder!r}, which is not callable; pass a function returning a model.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered; pass overwrite=True to replace it, or "
                         "choose another name.")
    entry = ModelEntry(name, builder, architecture, encoder, types.MappingProxyType(dict(defaults or {})),
                       description, tuple(tags))
    _REGISTRY[name] = entry
    return entry


def unregister_model(name: str) -> ModelEntry:
    """Removes an entry and returns it (for plug-ins and tests).

    Example:
        >>> _ = register_model("tmp_doc", build_unet, architecture="unet", encoder="resnet50")
        >>> unregister_model("tmp_doc").name
        'tmp_doc'
    """
    return _REGISTRY.pop(model_entry(name).name)


def model_entry(name: str) -> ModelEntry:
    """The entry of a registry name, with an error listing the valid names.

    Example:
        >>> model_entry("deeplabv3plus_resnet101").encoder
        'resnet101'
    """
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    raise ValueError(f"Unknown model {name!r}; valid models are: {', '.join(list_models())}.")


def list_models(pattern: str = "*", tags=None) -> list[str]:
    """Registry names, sorted, filtered by a glob pattern (timm's ``list_models``) and tags.

    Example:
        >>> "unet_resnet50" in list_models()
        True
        >>> list_models("deeplabv3_*")
        ['deeplabv3_efficientnet_lite0', 'deeplabv3_efficientnet_lite1', 'deeplabv3_efficientnet_lite2', 'deeplabv3_mobilenet_v3_large', 'deeplabv3_resnet101', 'deeplabv3_resnet50']
        >>> list_models(tags="study")
        ['deeplabv3_resnet50', 'unet_resnet50']
    """
    wanted = {tags} if isinstance(tags, str) else set(tags or ())
    return sorted(name for name, entry in _REGISTRY.items()
                  if fnmatch.fnmatch(name, pattern) and wanted <= set(entry.tags))


def parse_model_name(name: str) -> tuple[str, str | None]:
    """``(architecture, encoder)`` of a registry name, with an error listing valid names.

    Example:
        >>> parse_model_name("deeplabv3plus_resnet101")
        ('deeplabv3plus', 'resnet101')
    """
    entry = model_entry(name)
    return entry.architecture, entry.encoder


def build_model(name: str, **overrides) -> keras.Model:
    """Builds a registry model; keyword arguments override the entry's defaults.

    Args:
        name: A name from :func:`list_models`, such as ``"unet_resnet50"``.
        **overrides: Arguments of the entry's builder (``encoder_weights``,
            ``classes``, ``activation``, ``input_shape``, ``output_stride``...).

    Raises:
        ValueError: Unknown model name (the message lists the valid ones).
        TypeError: An override the builder does not accept (the message lists the valid ones).

    Example:
        >>> model = build_model("deeplabv3_resnet50", encoder_weights=None, input_shape=(64, 64, 3))
        >>> model.name
        'deeplabv3_resnet50'
    """
    entry = model_entry(name)
    parameters = inspect.signature(entry.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted = [p for p in parameters if p != "backbone"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown and not takes_any:
        raise TypeError(
            f"build_model({name!r}) got unknown argument(s) {', '.join(unknown)}; "
            f"{entry.builder.__name__} accepts {', '.join(accepted)}."
        )
    arguments = {**entry.defaults, **overrides}
    if "name" in parameters or takes_any:
        arguments.setdefault("name", name)
    if entry.encoder is not None:
        arguments["backbone"] = entry.encoder
    return entry.builder(**arguments)


# The built-in entries: every decoder on every encoder table entry, registered one by one.
for _architecture, _builder in ARCHITECTURES.items():
    for _encoder in list_encoders():
        _name = f"{_architecture}_{_encoder}"
        register_model(_name, _builder, architecture=_architecture, encoder=_encoder,
                       description=f"{_DESCRIPTIONS[_architecture]}, {_encoder} encoder",
                       tags=("study",) if _name in STUDY_MODELS else ())
del _architecture, _builder, _encoder, _name


__all__ = ["ARCHITECTURES", "ModelEntry", "STUDY_MODELS", "build_model", "list_models", "model_entry",
           "parse_model_name", "register_model", "unregister_model"]
