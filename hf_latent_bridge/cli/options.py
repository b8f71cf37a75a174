"""Parsing command-line options into the values the library takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .app import CliError, _one_line


def load_encoder_or_fail(name: str, *, revision: str | None = None, pooling: str | None = None) -> Any:
    from ..encoding.loading import load_encoder

    try:
        return load_encoder(name, revision=revision, pooling=pooling)
    except ValueError:
        raise
    except (OSError, ImportError, KeyError) as error:
        first = _one_line(str(error)).split(". ")[0][:240]
        raise CliError(
            f"cannot load encoder {name!r} ({first}); pass a local model folder or a Hub id that is cached or reachable."
        ) from None


def _keyword_or_number(
    text: str, option: str, keywords: dict[str, Any], *, allow_zero: bool
) -> float | str | None:
    """An option that is one of ``keywords`` (mapped to their values) or a number (> 0, or >= 0)."""
    if text.lower() in keywords:
        return keywords[text.lower()]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 if allow_zero else value > 0):  # also refuses nan
        words = ", ".join(repr(k) for k in keywords)
        number = "a number >= 0" if allow_zero else "a positive number"
        raise CliError(f"{option} must be {words} or {number}, got {text!r}.")
    return value


def _parse_ridge(ridge: str) -> float | str:
    return _keyword_or_number(ridge, "--ridge", {"auto": "auto"}, allow_zero=True)


def _parse_whitening(whitening: str) -> float | None:
    return _keyword_or_number(whitening, "--whitening", {"none": None}, allow_zero=False)


def _parse_scale(scale: str) -> float | str:
    return _keyword_or_number(scale, "--scale", {"mean": "mean", "none": "none"}, allow_zero=False)


def _check_choice(value: str, choices: Sequence[str], option: str) -> None:
    if value not in choices:
        raise CliError(f"{option} must be one of {', '.join(choices)}, got {value!r}.")


def _parse_encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """``[alias=]name_or_path[@revision]`` -> (alias, name_or_path, revision)."""
    alias, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    name, revision = rest, None
    if "@" in rest and not Path(rest).exists():
        name, _, revision = rest.rpartition("@")
    if not name:
        raise CliError(f"encoder {spec!r} is empty; write [alias=]hub_id_or_folder[@revision].")
    return alias or Path(name).name or name, name, revision


def _parse_pair(text: str, aliases: Sequence[str]) -> tuple[str, str]:
    source, sep, target = text.partition("->")
    source, target = source.strip(), target.strip()
    if not sep or source not in aliases or target not in aliases or source == target:
        raise CliError(
            f"--curve {text!r} must be 'a->b' with two different encoders among {', '.join(aliases)}."
        )
    return source, target


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise CliError(f"--anchor-counts must be comma-separated integers >= 2, got {text!r}.")
    return counts
