"""Fingerprints of model weights, folded into encoders' cache keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
