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

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise BridgeInputError(f"an anchor set needs a data set name (a string), got {self.dataset!r}.")
        for name in ("revision", "split", "column"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise BridgeInputError(f"anchor set {name} must be a string or None, got {value!r}.")
        if self.extra is None:
            object.__setattr__(self, "extra", {})
        if not isinstance(self.extra, dict):
            raise BridgeInputError(f"anchor set extra must be a dict, got {type(self.extra).__name__}.")
        object.__setattr__(self, "indices", _row_indices(self.indices))

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
        if not isinstance(data, dict):
            raise BridgeInputError(f"an anchor set record must be a dict, got {type(data).__name__}.")
        data = {k: v for k, v in data.items() if k != "fingerprint"}
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise BridgeInputError(f"an anchor set record has unknown fields {unknown}; remove them.")
        if "dataset" not in data:
            raise BridgeInputError("an anchor set record needs a 'dataset' field.")
        data.setdefault("indices", ())
        return cls(**data)


def _row_indices(indices: Any) -> tuple[int, ...]:
    """Row indices as a tuple of distinct ints >= 0 (numpy and torch integers, integral floats accepted)."""
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    if isinstance(indices, (str, bytes, dict)) or indices is None:
        raise BridgeInputError(
            f"anchor set indices must be a sequence of row numbers, got {type(indices).__name__}."
        )
    try:
        array = np.asarray(indices)
    except (TypeError, ValueError):  # ragged
        array = None
    if array is not None and array.dtype.kind == "O" and array.size:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            array = None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind not in "iuf"):
        raise BridgeInputError("anchor set indices must be a flat sequence of row numbers (integers >= 0).")
    if array.dtype.kind == "f" and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        raise BridgeInputError("anchor set indices must be whole row numbers, got fractions or NaN.")
    if array.size and (array.min() < 0 or array.max() >= 2**63):
        raise BridgeInputError(
            f"anchor set indices must be row numbers >= 0, got {array.min():g}; count rows from 0 (no negative "
            "indices from the end)."
        )
    values = array.astype(np.int64)
    if np.unique(values).size != values.size:
        raise BridgeInputError("anchor set indices must be distinct: an anchor is one row of the data set.")
    return tuple(values.tolist())
