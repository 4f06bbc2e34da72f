"""Checks of user arguments, shared by every module that takes them.

Each check returns the value in its canonical form or raises ``ValueError`` with one message
shape: ``"<name>: received <value>; pass <what is valid>."``, so a user sees the same wording
for the same mistake whichever function they called.

Example:
    >>> size_pair("input_size", 64)
    (64, 64)
    >>> positive_int("batch_size", 0)
    Traceback (most recent call last):
        ...
    ValueError: batch_size: received 0; pass a positive int.
"""

from __future__ import annotations

import numbers


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value) -> int:
    """``value`` as an int if it is a whole number ``>= 1`` (booleans are not numbers here).

    Example:
        >>> positive_int("tile_size", 512)
        512
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name}: received {value!r}; pass a positive int.")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """``value`` as an int if it is a whole number ``>= 0``.

    Example:
        >>> non_negative_int("seed", 0)
        0
    """
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name}: received {value!r}; pass an int >= 0.")
    return int(value)


def size_pair(name: str, value) -> tuple[int, int] | None:
    """``(height, width)`` from one positive int or a pair of them; ``None`` passes through.

    Example:
        >>> size_pair("image_size", (480, 640))
        (480, 640)
    """
    if value is None:
        return None
    if _is_int(value):
        value = (value, value)
    try:
        ok = len(value) == 2 and all(_is_int(v) and v > 0 for v in value)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: received {value!r}; pass (height, width) as two positive ints, or one int.")
    return (int(value[0]), int(value[1]))


def probability(name: str, value) -> float:
    """``value`` as a float if it is a real number in ``[0, 1]`` (a threshold, an opacity).

    Example:
        >>> probability("threshold", 0.5)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name}: received {value!r}; pass a probability in [0, 1].")
    return float(value)


def positive_float(name: str, value) -> float:
    """``value`` as a float if it is a real number ``> 0``.

    Example:
        >>> positive_float("refine_eps", 1e-4)
        0.0001
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name}: received {value!r}; pass a positive number.")
    return float(value)


def boolean(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False`` (``TypeError`` otherwise: 0, 1 and "yes" are not).

    Example:
        >>> boolean("per_image", True)
        True
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name}: received {value!r}; pass True or False.")
    return value


def optional_seed(name: str, value) -> int | None:
    """``None`` (not seeded) or a whole number ``>= 0``.

    Example:
        >>> optional_seed("seed", None) is None, optional_seed("seed", 7)
        (True, 7)
    """
    return None if value is None else non_negative_int(name, value)


def choices(name: str, value, valid) -> tuple:
    """``value`` as a tuple of one or more of ``valid`` (a single string counts as one).

    Example:
        >>> choices("save", "mask", ("mask", "overlay"))
        ('mask',)
    """
    value = (value,) if isinstance(value, str) else tuple(value)
    if not value or any(item not in valid for item in value):
        raise ValueError(f"{name}: received {value!r}; pass one or more of {tuple(valid)}.")
    return value


def choice(name: str, value, choices):
    """``value`` if it is one of ``choices``.

    Example:
        >>> choice("mode", "tile", ("auto", "resize", "tile"))
        'tile'
    """
    if value not in tuple(choices):
        raise ValueError(f"{name}: received {value!r}; valid values are {tuple(choices)}.")
    return value


__all__ = ["boolean", "choice", "choices", "non_negative_int", "optional_seed", "positive_float", "positive_int", "probability", "size_pair"]
