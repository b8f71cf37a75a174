"""Checking a batch of raw inputs (texts or images) before any compute, and loading images."""

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


def _not_a_batch(inputs: Any, modality: str, name: str) -> BridgeInputError:
    what = "a text or a list of texts" if modality == "text" else "an image, an image path or a list of them"
    if isinstance(inputs, Mapping):
        keys = ", ".join(repr(k) for k in list(inputs)[:5])
        got = f"a dict (keys {keys}); pass its values, e.g. row['text'], not the dict"
    else:
        got = f"{type(inputs).__name__} {str(inputs)[:40]!r}" if inputs is not None else "None"
    return BridgeInputError(f"{name} takes {what}, got {got}.")


def check_inputs(inputs: Any, modality: str, name: str = "encoder") -> list[Any] | np.ndarray | torch.Tensor:
    """Validate a batch for ``modality`` before any compute; return it as an indexable sequence.

    Text: a string or a list of strings. Images: a PIL image, a path to an image file, a grey ``(h, w)``
    array, a list of those or of ``(h, w, c)`` arrays, or a stacked array ``(n, h, w[, c])`` (a 3-D array
    is read as ``n`` grey images; put a single colour image in a list).
    """
    batch_types = (Iterable, str, os.PathLike, np.ndarray, torch.Tensor)
    not_a_batch = (
        inputs is None or isinstance(inputs, (Mapping, bytes)) or not isinstance(inputs, batch_types)
    )
    if not_a_batch and not (modality == "image" and _is_image(inputs)):
        raise _not_a_batch(inputs, modality, name)
    if modality == "text":
        if isinstance(inputs, str):
            inputs = [inputs]
        elif isinstance(inputs, (np.ndarray, torch.Tensor)) or _is_image(inputs):
            raise IncompatibleEncoderError(
                f"{name} embeds text but got an image or array ({type(inputs).__name__}); pass strings, or "
                "use a bridge whose source encoder takes images."
            )
        inputs = list(inputs)
        if not inputs:
            raise BridgeInputError(f"{name} got an empty batch; pass at least one text.")
        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                kind = "an image" if _is_image(x) else type(x).__name__
                raise IncompatibleEncoderError(
                    f"{name} embeds text but input {i} is {kind}; pass strings, or use a bridge whose source "
                    "encoder takes that modality."
                )
        return inputs
    if modality != "image":
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        if inputs.ndim not in (2, 3, 4):
            raise BridgeInputError(
                f"{name} takes image arrays (n, h, w[, c]) or (h, w); got shape {tuple(inputs.shape)}."
            )
        if inputs.ndim == 2:  # one grey image
            return [inputs]
        if inputs.shape[0] == 0:
            raise BridgeInputError(f"{name} got an empty batch; pass at least one image.")
        return inputs  # a stack of images, one per row
    if isinstance(inputs, (str, os.PathLike)) or _is_image(inputs):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise BridgeInputError(f"{name} got an empty batch; pass at least one image.")
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            if not Path(x).is_file():
                raise IncompatibleEncoderError(
                    f"{name} embeds images but input {i} is a string that is not an image file "
                    f"({str(x)[:60]!r}); pass PIL images, arrays or image paths, or use a bridge whose "
                    "source encoder takes text."
                )
        elif not _is_image(x):
            raise IncompatibleEncoderError(
                f"{name} embeds images but input {i} is {type(x).__name__}; pass PIL images, (h, w[, c]) "
                "arrays or image file paths."
            )
    return inputs


def _load_images(batch: Sequence[Any]) -> list[Any]:
    """Open paths as RGB PIL images; arrays and PIL images pass through."""
    from PIL import Image

    out = []
    for x in batch:
        if isinstance(x, (str, os.PathLike)):
            with Image.open(x) as image:
                out.append(image.convert("RGB"))
        elif isinstance(x, torch.Tensor):
            out.append(x.cpu().numpy())
        else:
            out.append(x)
    return out


def _to_rgb_arrays(batch: Sequence[Any]) -> list[Any]:
    """Grey arrays ``(h, w)`` become ``(h, w, 3)`` so image processors accept them."""
    out = []
    for x in batch:
        if isinstance(x, np.ndarray) and x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=-1)
        if isinstance(x, np.ndarray) and x.dtype != np.uint8 and np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.uint8)
        out.append(x)
    return out
