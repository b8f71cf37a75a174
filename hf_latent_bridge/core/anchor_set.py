"""Naming an anchor set, so two encoders can prove they embedded the same inputs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError


def fingerprint(payload: Any) -> str:
    """Stable short hash of JSON-able data or of tensors' bytes (dtype and shape included)."""
    digest = hashlib.sha256()
    for item in payload if isinstance(payload, (list, tuple)) else [payload]:
        if isinstance(item, (torch.Tensor, np.ndarray)):
            array = np.ascontiguousarray(
                item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item
            )
            digest.update(f"{array.dtype.str}{array.shape}".encode() + array.tobytes())
        else:
            digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class AnchorSet:
    """Which inputs the anchors are: a data set (Hub id or file name) at a revision, and row indices.

    Two encoders' anchors are parallel exactly when their anchor sets have the same fingerprint; the
    order of ``indices`` matters, since anchor i of one side must match anchor i of the other.
    """

    dataset: str
    indices: tuple[int, ...]
    revision: str | None = None
    split: str | None = None
    column: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise BridgeInputError(f"an anchor set needs a data set name (a string), got {self.dataset!r}.")
        for name in ("revision", "split", "column"):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise BridgeInputError(
                    f"anchor set {name} must be a string or None, got {getattr(self, name)!r}."
                )
        if not isinstance(self.extra, dict):
            raise BridgeInputError(f"anchor set extra must be a dict, got {type(self.extra).__name__}.")
        indices = np.asarray(
            self.indices.tolist() if isinstance(self.indices, torch.Tensor) else self.indices
        )
        if indices.ndim != 1 or (indices.size and (indices.dtype.kind not in "iu" or indices.min() < 0)):
            raise BridgeInputError(
                "anchor set indices must be a flat sequence of row numbers (integers >= 0)."
            )
        if np.unique(indices).size != indices.size:
            raise BridgeInputError(
                "anchor set indices must be distinct: an anchor is one row of the data set."
            )
        object.__setattr__(self, "indices", tuple(int(i) for i in indices))

    @property
    def fingerprint(self) -> str:
        return fingerprint(
            [self.dataset, self.revision, self.split, self.column, list(self.indices), self.extra]
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "indices": list(self.indices), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorSet:
        if not isinstance(data, dict) or "dataset" not in data:
            raise BridgeInputError(
                f"an anchor set record must be a dict with a 'dataset' field, got {data!r:.80}."
            )
        unknown = sorted(set(data) - {f.name for f in fields(cls)} - {"fingerprint"})
        if unknown:
            raise BridgeInputError(f"an anchor set record has unknown fields {unknown}; remove them.")
        anchor_set = cls(**{k: v for k, v in data.items() if k != "fingerprint"})
        if data.get("fingerprint", anchor_set.fingerprint) != anchor_set.fingerprint:
            raise BridgeInputError("an anchor set record does not match its fingerprint: it was edited.")
        return anchor_set

    def difference(self, other: AnchorSet) -> str:
        """What distinguishes two anchor sets, in words."""
        for name in ("dataset", "revision", "split", "column", "extra"):
            if getattr(self, name) != getattr(other, name):
                return f"{name} differs ({getattr(self, name)!r} vs {getattr(other, name)!r})"
        if sorted(self.indices) == sorted(other.indices):
            return "the same rows in a different order (anchor i must be the same input on both sides)"
        return f"different rows ({len(set(self.indices) ^ set(other.indices))} indices differ)"
