"""Pooling token states into one embedding per input, named by a string such as ``"mean+norm"``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import BridgeInputError

TEXT_POOLINGS = ("mean", "cls", "max", "pooler")
VISION_POOLINGS = ("mean", "cls", "pooler")
CLIP_POOLINGS = ("projection", "pooler")


def parse_pooling(pooling: str, allowed: Sequence[str]) -> tuple[str, bool]:
    """Split ``"mean+norm"`` into ``("mean", True)``, refusing unknown modes."""
    if not isinstance(pooling, str):
        raise BridgeInputError(f"pooling must be a string such as 'mean' or 'mean+norm', got {pooling!r}.")
    base, _, suffix = pooling.partition("+")
    if base not in allowed or suffix not in ("", "norm"):
        options = ", ".join(f"'{p}'" for p in allowed)
        raise BridgeInputError(
            f"unknown pooling {pooling!r}; use one of {options}, optionally followed by '+norm' "
            "for L2-normalised embeddings."
        )
    return base, suffix == "norm"


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Pool ``(n, t, d)`` token states (or ``(n, d, h, w)`` feature maps) to ``(n, d)``."""
    if hidden.ndim == 4:  # convolutional feature maps
        return hidden.mean((2, 3)) if mode == "mean" else hidden.amax((2, 3))
    if mode == "cls":
        return hidden[:, 0]
    if mask is None:
        return hidden.mean(1) if mode == "mean" else hidden.amax(1)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)


def _finish(pooled: torch.Tensor, normalize: bool) -> torch.Tensor:
    pooled = pooled.float()
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled
