"""Every option the package takes, and the rule it obeys: one table, checked where an option enters.

Configs check their fields against :data:`RULES` when they are built (so also when ``config.json`` is
read); ``fit``, the workflow and the command line build configs or call :func:`check` once at entry.
Python, numpy and torch scalars are accepted alike and come back as plain Python values.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import BridgeInputError

#: Translation methods (see :mod:`.alignment`).
METHODS = ("auto", "irp", "procrustes", "linear", "l-ortho", "identity")
#: How anchors can be chosen among the rows of a data set (see :mod:`.anchors`).
STRATEGIES = ("uniform", "balanced", "farthest")
#: Largest count, size or seed: torch indexes and seeds with signed 64-bit integers.
MAX_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """A number in ``[low, high]`` (``low_open``: ``(low, high]``), an integer, or one of ``words``."""

    integer: bool = False
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    words: tuple[Any, ...] = ()
    numeric: bool = True

    def __call__(self, name: str, value: Any) -> Any:
        if any(value is word or (isinstance(word, str) and value == word) for word in self.words):
            return value
        number = _scalar(value)
        if self.numeric and number is not None:
            if self.integer and isinstance(number, float) and number.is_integer():
                number = int(number)
            inside = (number > self.low if self.low_open else number >= self.low) and number <= self.high
            if (isinstance(number, int) or not self.integer) and _finite(number) and inside:
                return number
        raise BridgeInputError(f"{name} must be {self.describe()}, got {value!r}.")

    def describe(self) -> str:
        words = [repr(w) for w in self.words]
        if self.numeric:
            kind = "an integer" if self.integer else "a number"
            low = "" if self.low == -math.inf else f"{'>' if self.low_open else '>='} {_number(self.low)}"
            high = "" if self.high == math.inf else f"<= {_number(self.high)}"
            words.append(" ".join([kind, *filter(None, [low, "and" if low and high else "", high])]))
        return " or ".join(words)


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _scalar(value: Any) -> int | float | None:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy and torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def choice(*words: str) -> Rule:
    return Rule(words=words, numeric=False)


#: The rule of every option, by name.
RULES: dict[str, Rule] = {
    "method": choice(*METHODS),
    "strategy": choice(*STRATEGIES),
    "ridge": Rule(low=0, words=("auto",)),
    "output_norm": Rule(low=0, low_open=True, words=("mean", "none")),
    "whitening": Rule(low=0, low_open=True, words=(None, "auto")),
    "ensemble": Rule(integer=True, low=1, high=1024),
    "ensemble_fraction": Rule(low=0, low_open=True, high=1),
    "seed": Rule(integer=True, low=0, high=MAX_INT64),
    "blend": Rule(words=(True, False), numeric=False),
    "num_anchors": Rule(integer=True, low=2, high=1 << 24),
    "num_rows": Rule(integer=True, low=1, high=MAX_INT64),
    "dim": Rule(integer=True, low=1, high=1 << 20),
    "num_labels": Rule(integer=True, low=2, high=1 << 20),
    "batch_size": Rule(integer=True, low=1, high=MAX_INT64),
    "top_k": Rule(integer=True, low=1, high=MAX_INT64, words=(None,)),
    "limit": Rule(integer=True, low=1, high=MAX_INT64, words=(None,)),
    "test_size": Rule(low=0, low_open=True, high=0.99),
    "C": Rule(low=0, low_open=True),
    "max_iter": Rule(integer=True, low=1, high=100_000),
    "tol": Rule(low=0),
    "norm": Rule(low=0, low_open=True),
}


def _finite(number: float) -> bool:
    """Finite as a float (an int beyond float's range is not: it cannot be used as one)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def check(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` if it obeys the rule of option ``name`` (as a plain Python value), else
    :class:`BridgeInputError` naming the option (as ``label``, e.g. ``"--ridge"``), the value and the rule."""
    return RULES[name](label or name, value)
