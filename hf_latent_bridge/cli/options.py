"""Parsing command-line options into the values the library takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.options import check_ridge, check_scale, check_whitening
from ..errors import UsageError
from .app import _one_line


def load_encoder_or_fail(name: str, *, revision: str | None = None, pooling: str | None = None) -> Any:
    from ..encoding.loading import load_encoder

    try:
        return load_encoder(name, revision=revision, pooling=pooling)
    except ValueError:
        raise
    except (OSError, ImportError, KeyError) as error:
        first = _one_line(str(error)).split(". ")[0][:240]
        raise UsageError(
            f"cannot load encoder {name!r} ({first}); pass a local model folder or a Hub id that is cached or reachable."
        ) from None


def _number_or_keyword(text: str, keywords: dict[str, Any]) -> Any:
    """``keywords[text]`` for a keyword, the number for a numeric text, else the text (the check names it)."""
    key = text.strip().lower()
    if key in keywords:
        return keywords[key]
    try:
        return float(text)
    except ValueError:
        return text


def parse_ridge(text: str) -> float | str:
    return check_ridge(_number_or_keyword(text, {"auto": "auto"}), "--ridge")


def parse_whitening(text: str) -> float | None:
    return check_whitening(_number_or_keyword(text, {"none": None}), "--whitening")


def parse_scale(text: str) -> float | str:
    return check_scale(_number_or_keyword(text, {"mean": "mean", "none": "none"}), "--scale")


def _parse_encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """``[alias=]name_or_path[@revision]`` -> (alias, name_or_path, revision)."""
    alias, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    name, revision = rest, None
    if "@" in rest and not Path(rest).exists():
        name, _, revision = rest.rpartition("@")
    if not name:
        raise UsageError(f"encoder {spec!r} is empty; write [alias=]hub_id_or_folder[@revision].")
    return alias or Path(name).name or name, name, revision


def _parse_pair(text: str, aliases: Sequence[str]) -> tuple[str, str]:
    source, sep, target = text.partition("->")
    source, target = source.strip(), target.strip()
    if not sep or source not in aliases or target not in aliases or source == target:
        raise UsageError(
            f"--curve {text!r} must be 'a->b' with two different encoders among {', '.join(aliases)}."
        )
    return source, target


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise UsageError(f"--anchor-counts must be comma-separated integers >= 2, got {text!r}.")
    return counts
