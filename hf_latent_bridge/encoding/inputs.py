"""Checking a batch of raw inputs (texts or images) before any compute, and opening images."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError, IncompatibleEncoderError

MODALITIES = ("text", "image")


def _is_image(x: Any) -> bool:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.ndim in (2, 3)
    return type(x).__module__.startswith("PIL.")


def _not_input(x: Any, modality: str) -> str | None:
    """What ``x`` is, when it is not an input of ``modality``; ``None`` when it is one."""
    if modality == "text":
        return None if isinstance(x, str) else "an image" if _is_image(x) else type(x).__name__
    if isinstance(x, (str, os.PathLike)):
        return None if Path(x).is_file() else f"a string that is not an image file ({str(x)[:60]!r})"
    return None if _is_image(x) else type(x).__name__


def check_inputs(inputs: Any, modality: str, name: str = "encoder") -> list[Any] | np.ndarray | torch.Tensor:
    """Validate a batch for ``modality`` before any compute; return it as an indexable sequence.

    Text: a string or a list of strings. Images: a PIL image, a path to an image file, a grey ``(h, w)``
    array, a list of those or of ``(h, w, c)`` arrays, or a stacked array ``(n, h, w[, c])`` (a 3-D array
    is read as ``n`` grey images; put a single colour image in a list).
    """
    if modality not in MODALITIES:
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    what = "texts" if modality == "text" else "PIL images, (h, w[, c]) arrays or image file paths"
    if modality == "image" and isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim != 2:
        if inputs.ndim not in (3, 4):
            raise BridgeInputError(
                f"{name} takes image arrays (n, h, w[, c]) or (h, w); got shape {tuple(inputs.shape)}."
            )
        items: Any = inputs  # a stack, one image per row
    elif (
        isinstance(inputs, str)
        or _is_image(inputs)
        or (modality == "image" and isinstance(inputs, os.PathLike))
    ):
        items = [inputs]
    elif (
        inputs is None
        or isinstance(inputs, (Mapping, bytes))
        or not isinstance(inputs, Iterable)
        or getattr(inputs, "ndim", 1) == 0  # a numpy or torch scalar
    ):
        got = f"{type(inputs).__name__} {str(inputs)[:40]!r}" if inputs is not None else "None"
        if isinstance(inputs, Mapping):
            got = f"a dict (keys {', '.join(map(repr, list(inputs)[:5]))}); pass its values, not the dict"
        raise BridgeInputError(f"{name} takes one input or a list of {what}, got {got}.")
    else:
        items = list(inputs)
    if len(items) == 0:
        raise BridgeInputError(f"{name} got an empty batch; pass at least one {modality}.")
    for i, x in enumerate(items if isinstance(items, list) else ()):
        kind = _not_input(x, modality)
        if kind is not None:
            raise IncompatibleEncoderError(
                f"{name} embeds {modality}s but input {i} is {kind}; pass {what}, or use a bridge whose "
                "source encoder takes that modality."
            )
    return items


def load_images(batch: Sequence[Any], rgb: bool = False) -> list[Any]:
    """Paths opened as RGB PIL images, tensors as arrays; with ``rgb`` (for image processors) grey ``(h, w)``
    arrays become ``(h, w, 3)`` and integer arrays uint8. PIL images pass through."""
    from PIL import Image

    out = []
    for x in batch:
        if isinstance(x, (str, os.PathLike)):
            with Image.open(x) as image:
                x = image.convert("RGB")
        x = x.cpu().numpy() if isinstance(x, torch.Tensor) else x
        if rgb and isinstance(x, np.ndarray):
            x = np.repeat(x[..., None], 3, axis=-1) if x.ndim == 2 else x
            x = x.astype(np.uint8, copy=False) if np.issubdtype(x.dtype, np.integer) else x
        out.append(x)
    return out
