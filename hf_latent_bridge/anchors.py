"""Choosing anchors, and naming an anchor set so two encoders can prove they embedded the same one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import BridgeInputError

STRATEGIES = ("uniform", "balanced", "farthest")


def _check_count(num_rows: int, num_anchors: int) -> None:
    if num_anchors < 2:
        raise BridgeInputError(f"num_anchors must be at least 2, got {num_anchors}.")
    if num_anchors > num_rows:
        raise BridgeInputError(
            f"cannot select {num_anchors} anchors from {num_rows} rows; "
            f"lower num_anchors to at most {num_rows} or use a larger anchor data set."
        )


def select_uniform(num_rows: int, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Seeded uniform sample without replacement."""
    _check_count(num_rows, num_anchors)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_rows, generator=generator)[:num_anchors]


def select_balanced(labels: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """As many anchors from every class as possible (round robin over classes in seeded order)."""
    labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim != 1:
        raise BridgeInputError(f"labels must be 1-D, got shape {tuple(labels.shape)}.")
    _check_count(labels.numel(), num_anchors)
    generator = torch.Generator().manual_seed(seed)
    per_class = [
        members[torch.randperm(members.numel(), generator=generator)]
        for members in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))
    ]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < num_anchors:
        for members in per_class:
            if depth < members.numel() and len(chosen) < num_anchors:
                chosen.append(int(members[depth]))
        depth += 1
    return torch.tensor(chosen, dtype=torch.long)


def select_farthest(embeddings: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Farthest-point sampling in cosine geometry (centred, normalised), from a seeded start."""
    x = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    if x.ndim != 2:
        raise BridgeInputError(f"embeddings must be (n, d), got shape {tuple(x.shape)}.")
    _check_count(x.shape[0], num_anchors)
    x = x.to(torch.float64)
    x = x - x.mean(0)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(x.shape[0], (1,), generator=generator))]
    distance = 1 - x @ x[chosen[0]]
    for _ in range(num_anchors - 1):
        nxt = int(torch.argmax(distance))
        chosen.append(nxt)
        distance = torch.minimum(distance, 1 - x @ x[nxt])
    return torch.tensor(chosen, dtype=torch.long)


def select_anchors(
    strategy: str,
    num_anchors: int,
    *,
    num_rows: int | None = None,
    labels: Any = None,
    embeddings: Any = None,
    seed: int = 0,
) -> torch.Tensor:
    """Row indices of the anchors chosen by ``strategy`` (one of :data:`STRATEGIES`)."""
    if strategy == "uniform":
        if num_rows is None:
            raise BridgeInputError("strategy='uniform' needs num_rows.")
        return select_uniform(num_rows, num_anchors, seed)
    if strategy == "balanced":
        if labels is None:
            raise BridgeInputError("strategy='balanced' needs labels; pass the label column.")
        return select_balanced(labels, num_anchors, seed)
    if strategy == "farthest":
        if embeddings is None:
            raise BridgeInputError("strategy='farthest' needs embeddings of the candidate rows.")
        return select_farthest(embeddings, num_anchors, seed)
    raise BridgeInputError(f"unknown anchor strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")


def ensemble_subsets(num_anchors: int, members: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """(members, m) index matrix: ``members`` seeded subsets of ``fraction`` of the anchors each."""
    if members < 1:
        raise BridgeInputError(f"ensemble must be at least 1, got {members}.")
    if members == 1:
        return torch.arange(num_anchors).unsqueeze(0)
    if not 0 < fraction <= 1:
        raise BridgeInputError(f"ensemble_fraction must be in (0, 1], got {fraction}.")
    size = max(2, round(fraction * num_anchors))
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randperm(num_anchors, generator=generator)[:size].sort().values for _ in range(members)]
    return torch.stack(rows)


def fingerprint(payload: Any) -> str:
    """Stable short hash of JSON-able data or of tensors' bytes (dtype and shape included)."""
    digest = hashlib.sha256()
    items = payload if isinstance(payload, (list, tuple)) else [payload]
    for item in items:
        if isinstance(item, (torch.Tensor, np.ndarray)):
            array = item.detach().cpu().contiguous().numpy() if isinstance(item, torch.Tensor) else item
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        else:
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class AnchorSet:
    """Which inputs the anchors are: a data set (Hub id or local path) at a revision, and row indices.

    Two encoders' anchors are parallel exactly when their anchor sets have the same fingerprint; the
    order of ``indices`` matters, since anchor i of one side must match anchor i of the other.
    """

    dataset: str
    indices: tuple[int, ...]
    revision: str | None = None
    split: str | None = None
    column: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(
            [self.dataset, self.revision, self.split, self.column, list(self.indices), self.extra]
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["indices"] = list(self.indices)
        data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorSet:
        data = {k: v for k, v in data.items() if k != "fingerprint"}
        data["indices"] = tuple(int(i) for i in data.get("indices", ()))
        return cls(**data)
