"""Data sources: the one place that reads a source spec (synthetic scenes, TFDS, folders, mixes).

A source is named the same way everywhere (``make_dataset``, ``TrainConfig.data`` with
``data_kwargs``, the CLI's ``SOURCE`` argument and options, evaluation): :func:`source_spec`
turns a name and its options into a spec dict, and :func:`parse_source` turns any accepted form
into ``(kind, arguments)`` for the pipeline.

Example:
    >>> source_spec("folder", images="photos", masks="masks")
    {'type': 'folder', 'images': 'photos', 'masks': 'masks'}
    >>> parse_source({"type": "folder", "images": "photos", "masks": "masks"}, {})
    ('folder', {'images_dir': 'photos', 'masks_dir': 'masks'})
"""

from __future__ import annotations

import collections.abc
from typing import Any

import tensorflow as tf

from skyseg_tf import checks
from skyseg_tf.data.lens_view import VIEWS
from tfds_ade20k_outdoors import DATASET_NAME as TFDS_NAME

SOURCE_FORMS = (
    '"synthetic"; '
    f'"{TFDS_NAME}" or "{TFDS_NAME}/<config>"; '
    '("folder", images_dir, masks_dir); '
    '{"type": "folder", "images": images_dir, "masks": masks_dir, ...}; '
    '{"type": "negatives", "images": images_dir, ...} (photos without sky); '
    '{"type": "synthetic", ...}; {"type": "tfds", "name": ..., ...}; '
    "or a tf.data.Dataset of element dicts"
)
"""The forms a source may take (quoted in error messages)."""


def source_spec(data: str, **options: Any) -> dict:
    """The spec dict of a source named ``data`` (``"synthetic"``, ``"folder"``, ``"mix"`` or a TFDS
    name such as ``"ade20k_outdoors_sky/kaggle"``) with its options, as ``TrainConfig`` and the
    CLI give them. ``render_size`` of synthetic scenes becomes the scenes' ``image_size`` (the
    size they are drawn at, not the model input size).

    Example:
        >>> source_spec("synthetic", num_examples=8, render_size=(96, 128))
        {'type': 'synthetic', 'num_examples': 8, 'image_size': (96, 128)}
    """
    if data in ("folder", "mix", "negatives"):
        return {"type": data, **options}
    if data == "synthetic":
        if "render_size" in options:
            options["image_size"] = options.pop("render_size")
        return {"type": "synthetic", **options}
    return {"type": "tfds", "name": data, **options}


def renders_synthetic_without_size(source) -> bool:
    """Whether ``source`` is synthetic scenes without a render size (drawn at the model's input size).

    Example:
        >>> renders_synthetic_without_size("synthetic"), renders_synthetic_without_size(
        ...     {"type": "synthetic", "image_size": (64, 64)})
        (True, False)
    """
    if isinstance(source, tf.data.Dataset):
        return False
    try:
        kind, arguments = parse_source(source, {})
    except (ValueError, TypeError):
        return False
    return kind == "synthetic" and "image_size" not in arguments


def parse_source(source: Any, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(kind, arguments)`` of a source in any accepted form (:data:`SOURCE_FORMS`), ``kwargs`` merged.

    ``kind`` is ``"synthetic"``, ``"tfds"``, ``"folder"``, ``"negatives"``, ``"mix"`` or
    ``"dataset"``.

    Example:
        >>> parse_source("synthetic", {"num_examples": 4})
        ('synthetic', {'num_examples': 4})
    """
    if isinstance(source, tf.data.Dataset):
        if kwargs:
            raise TypeError(
                f"a tf.data.Dataset source takes no keyword arguments, received {sorted(kwargs)}."
            )
        return "dataset", {"dataset": source}
    if isinstance(source, str):
        if source == "synthetic":
            return "synthetic", dict(kwargs)
        if source == TFDS_NAME or source.startswith(TFDS_NAME + "/"):
            return "tfds", {"name": source, **kwargs}
    elif isinstance(source, (tuple, list)) and len(source) == 3 and source[0] == "folder":
        return "folder", {"images_dir": source[1], "masks_dir": source[2], **kwargs}
    elif isinstance(source, collections.abc.Mapping) and source.get("type") == "mix":
        return "mix", _parse_mix(source, kwargs)
    elif isinstance(source, collections.abc.Mapping):
        spec = dict(source)
        kind = spec.pop("type", None)
        renames = {"folder": {"images": "images_dir", "masks": "masks_dir",
                              "void": "void_masks"},
                   "negatives": {"images": "images_dir"}}.get(kind, {})
        if kind == "negatives" and ({"masks", "masks_dir", "void", "void_masks"} & set(spec)):
            raise ValueError(
                f"source {dict(source)!r}: a negatives source is a folder of photos without sky "
                "and takes no masks; its targets are all 'not sky'. For photos with masks use "
                '{"type": "folder", "images": ..., "masks": ...}.'
            )
        spec = {renames.get(key, key): value for key, value in spec.items()}
        required = {"folder": ("images_dir", "masks_dir"), "tfds": ("name",), "synthetic": (),
                    "negatives": ("images_dir",)}
        if kind in required:
            missing = [name for name in required[kind] if name not in spec]
            twice = sorted(set(spec) & set(kwargs))
            if missing:
                shown = {v: k for k, v in renames.items()}
                raise ValueError(
                    f"source {dict(source)!r} lacks the key(s) "
                    f"{[shown.get(name, name) for name in missing]}. Valid forms: {SOURCE_FORMS}."
                )
            if twice:
                raise ValueError(f"source {dict(source)!r}: {twice} given both in the dict "
                                 "and as keyword arguments; give each once.")
            return kind, {**spec, **kwargs}
    raise ValueError(f"unknown source {source!r}. Valid forms: {SOURCE_FORMS}.")


def _parse_mix(source: collections.abc.Mapping, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"sources": [spec...], "weights": [...], "validate": [bool...], "names": [str...],
    "views": [str...]}`` of a mix spec (a source spec may carry ``weight``, ``validate``,
    ``name`` and ``view``)."""
    unknown = sorted(set(source) - {"type", "sources", "weights"})
    sources = source.get("sources")
    if unknown or not isinstance(sources, (list, tuple)) or not sources:
        raise ValueError(
            f"mix source {dict(source)!r}: needs a non-empty list 'sources' and optionally "
            f"'weights' (one per source){f'; unknown key(s) {unknown}' if unknown else ''}. "
            'Example: {"type": "mix", "sources": [{"type": "folder", "images": ..., '
            '"masks": ...}, {"type": "synthetic"}], "weights": [0.7, 0.3]}.'
        )
    if kwargs:
        raise TypeError(f"a mix source takes its arguments inside each source spec; received "
                        f"keyword arguments {sorted(kwargs)}.")
    specs, own_weights, validate, names, views = [], [], [], [], []
    for spec in sources:
        if isinstance(spec, collections.abc.Mapping):
            spec = dict(spec)
            own_weights.append(spec.pop("weight", None))
            validate.append(spec.pop("validate", True))
            names.append(spec.pop("name", None) if spec.get("type") != "tfds" else None)
            views.append(checks.choice(f"source {dict(spec)!r}: view", spec.pop("view", "photo"), VIEWS))
        else:
            own_weights.append(None)
            validate.append(True)
            names.append(None)
            views.append("photo")
        if isinstance(spec, collections.abc.Mapping) and spec.get("type") == "mix":
            raise ValueError("a mix source cannot contain another mix; list all sources in one.")
        parse_source(spec, {})  # Fails early, with the valid forms, for a bad spec.
        specs.append(spec)
    weights = source.get("weights")
    if weights is None:
        weights = [1.0 if w is None else w for w in own_weights]
    elif any(w is not None for w in own_weights):
        raise ValueError("mix source: give weights either as 'weights' or as each source's "
                         "'weight', not both.")
    if (not isinstance(weights, (list, tuple)) or len(weights) != len(specs) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
            or not sum(weights) > 0):
        raise ValueError(
            f"mix source: weights {weights!r} must be {len(specs)} non-negative numbers (one per "
            "source) with a positive sum, e.g. [0.7, 0.3]."
        )
    if not all(isinstance(v, bool) for v in validate) or not any(validate):
        raise ValueError("mix source: 'validate' must be true or false, and at least one source "
                         "must be validated on.")
    total = float(sum(weights))
    from skyseg_tf.training.validation import source_name  # the one naming rule

    names = [source_name({**spec, "name": name} if isinstance(spec, dict) and name else spec)
             for spec, name in zip(specs, names)]
    if len(set(names)) != len(names):
        raise ValueError(f"mix source: the sources' names {names} must differ (they name the "
                         "per-source validation figures); give each source spec a 'name'.")
    return {"sources": specs, "weights": [float(w) / total for w in weights], "validate": validate,
            "names": names, "views": views}


__all__ = ["SOURCE_FORMS", "parse_source", "renders_synthetic_without_size", "source_spec"]
