"""Naming an anchor set, so two encoders can prove they embedded the same inputs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


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
