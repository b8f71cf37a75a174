"""Fingerprints of model weights and of inputs, folded into the embedding cache's keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _source_fingerprint(name: str, revision: str | None) -> str:
    """Identify a model's weights: the revision for Hub ids, file names/sizes/mtimes for local folders."""
    local = Path(name)
    if not local.is_dir():
        return f"hub:{name}@{revision or 'main'}"
    digest = hashlib.sha256()
    for path in sorted(local.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            digest.update(f"{path.relative_to(local)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "dir:" + digest.hexdigest()[:24]


def _state_fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(data.shape)}:{data.dtype};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:24]


def inputs_fingerprint(items: Any, modality: str) -> str:
    """Hash of a batch of inputs' content, for the embedding cache.

    Texts and arrays are hashed whole (dtype and shape included), PIL images by mode and pixels, image
    files by resolved path, size and modification time.
    """
    digest = hashlib.sha256(f"{modality};".encode())
    if isinstance(items, (np.ndarray, torch.Tensor)):
        _update_array(digest, items)
        return digest.hexdigest()[:32]
    digest.update(f"{len(items)} items;".encode())
    for x in items:
        if isinstance(x, (str, os.PathLike)) and modality == "image":
            path = Path(x).resolve()
            stat = path.stat()
            x = f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"
        if isinstance(x, str):
            data = x.encode("utf-8", "surrogatepass")
            digest.update(f"s{len(data)}:".encode() + data)
        elif isinstance(x, (np.ndarray, torch.Tensor)):
            _update_array(digest, x)
        else:  # a PIL image
            palette = x.getpalette() if x.mode == "P" else None
            digest.update(f"pil:{x.mode}:{palette};".encode())
            _update_array(digest, np.asarray(x))
    return digest.hexdigest()[:32]


def _update_array(digest: Any, array: np.ndarray | torch.Tensor) -> None:
    if isinstance(array, torch.Tensor):
        tensor = array.detach().cpu().contiguous()
        digest.update(f"t{tensor.dtype};".encode())
        array = tensor.view(torch.uint8).numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
    array = np.ascontiguousarray(array)
    digest.update(f"a{array.dtype.str}{array.shape};".encode())
    digest.update(array.tobytes())
