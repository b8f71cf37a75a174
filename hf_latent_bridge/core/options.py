"""The rules every option obeys, in one place.

Configs run these checks when they are built (so also when ``config.json`` is loaded), ``fit`` builds
on the same checks, and the command line parses its text into values and calls them too. Each check
accepts Python, numpy and torch scalars alike, returns the value as a plain Python object, and raises
:class:`~hf_latent_bridge.errors.BridgeInputError` naming the option, the value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import BridgeInputError
from .alignment import METHOD_ALIASES, METHODS

#: How anchors can be chosen among the rows of a data set (see :mod:`.anchors`).
STRATEGIES = ("uniform", "balanced", "farthest")
#: Named output norms of IRP (besides a positive number).
SCALES = ("mean", "none")
#: More ensemble members than this cost memory (one d_x x d_y map each) and add nothing.
MAX_ENSEMBLE = 1024
#: Largest count or size: torch indexes and seeds with signed 64-bit integers.
MAX_INT64 = 2**63 - 1
#: Largest random seed (torch generators take a signed 64-bit seed).
MAX_SEED = MAX_INT64


def _number(name: str, value: Any) -> float:
    """``value`` as a float, refusing booleans, strings, None and anything non-numeric."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise BridgeInputError(f"{name} must be a number, got {value!r}.")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy and torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BridgeInputError(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float: out of every range
        return math.inf


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise BridgeInputError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}.")
    return value


def check_method(method: Any, name: str = "method") -> str:
    """A method of :data:`METHODS`; a former name (e.g. ``"affine"``) maps to its method, with a warning."""
    if isinstance(method, str) and method in METHOD_ALIASES:
        warnings.warn(
            f"method {method!r} is deprecated: it is the same map as {METHOD_ALIASES[method]!r} (anchors are "
            f"centred, so the bias is zero). Use {METHOD_ALIASES[method]!r}.",
            DeprecationWarning,
            stacklevel=3,
        )
        return METHOD_ALIASES[method]
    return check_choice(name, method, METHODS)


def check_strategy(strategy: Any, name: str = "anchor strategy") -> str:
    return check_choice(name, strategy, STRATEGIES)


def _integer(name: str, value: Any) -> int | None:
    """``value`` as an exact ``int`` (Python, numpy or torch integers, integral floats), else ``None``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise BridgeInputError(f"{name} must be an integer, got {value!r}.")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy and torch scalars
        value = value.item()
    if isinstance(value, bool):
        raise BridgeInputError(f"{name} must be an integer, got {value!r}.")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value) == int(value):
        return int(value)
    if not isinstance(value, numbers.Real):
        raise BridgeInputError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    return None


def _bounded_int(name: str, value: Any, minimum: int, maximum: int, expected: str) -> int:
    number = _integer(name, value)
    if number is None or number < minimum:
        raise BridgeInputError(f"{name} must be {expected}, got {value!r}.")
    if number > maximum:
        raise BridgeInputError(f"{name} must be at most {maximum}, got {value!r}.")
    return number


def check_positive_int(name: str, value: Any, maximum: int = MAX_INT64) -> int:
    """A whole number in ``1 .. maximum`` (default: the largest 64-bit integer); ``3.0`` is accepted."""
    return _bounded_int(name, value, 1, maximum, "a positive integer")


def check_non_negative_int(name: str, value: Any, maximum: int = MAX_INT64) -> int:
    """A whole number in ``0 .. maximum`` (default: the largest 64-bit integer); ``3.0`` is accepted."""
    return _bounded_int(name, value, 0, maximum, "an integer >= 0")


def check_seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer in ``0 .. 2**63 - 1`` (what torch generators take)."""
    return check_non_negative_int(name, value, MAX_SEED)


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    number = _number(name, value)
    if not (math.isfinite(number) and number > 0):
        raise BridgeInputError(f"{name} must be a finite positive number, got {value!r}.")
    return number


def check_non_negative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    number = _number(name, value)
    if not (math.isfinite(number) and number >= 0):
        raise BridgeInputError(f"{name} must be a finite number >= 0, got {value!r}.")
    return number


def check_fraction(name: str, value: Any) -> float:
    """A number in (0, 1]."""
    number = _number(name, value)
    if not (math.isfinite(number) and 0 < number <= 1):
        raise BridgeInputError(f"{name} must be in (0, 1], got {value!r}.")
    return number


def check_ridge(ridge: Any, name: str = "ridge") -> float | str:
    """``"auto"`` or a finite strength >= 0 (relative to the target anchors' mean squared singular value)."""
    if isinstance(ridge, str) and ridge == "auto":
        return "auto"
    if isinstance(ridge, str) or ridge is None:
        raise BridgeInputError(f"{name} must be 'auto' or a finite number >= 0, got {ridge!r}.")
    number = _number(name, ridge)
    if not (math.isfinite(number) and number >= 0):
        raise BridgeInputError(f"{name} must be 'auto' or a finite number >= 0, got {ridge!r}.")
    return number


def check_scale(scale: Any, name: str = "scale") -> float | str:
    """IRP's output norm: ``"mean"`` (of the centred target anchors), ``"none"`` (unit) or a finite number > 0."""
    if isinstance(scale, str) and scale in SCALES:
        return scale
    if isinstance(scale, str) or scale is None:
        raise BridgeInputError(f"{name} must be 'mean', 'none' or a finite number > 0, got {scale!r}.")
    return check_positive(name, scale)


def check_whitening(whitening: Any, name: str = "whitening") -> float | None:
    """IRP's shrinkage-whitening strength: ``None`` (plain relative projection) or a finite number > 0."""
    if whitening is None:
        return None
    if isinstance(whitening, str):
        raise BridgeInputError(
            f"{name} must be None (plain relative projection) or a finite number > 0, got {whitening!r}."
        )
    return check_positive(f"{name} (None turns it off)", whitening)
