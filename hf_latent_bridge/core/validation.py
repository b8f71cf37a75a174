"""Checks on user tensors, shared by the tensor core and the bridge.

Each check raises :class:`BridgeInputError` with a message that names the problem and the fix.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor without copying when possible."""
    if isinstance(x, torch.Tensor):
        tensor = x
    elif isinstance(x, (np.ndarray, list, tuple)):
        tensor = torch.as_tensor(np.asarray(x))
    else:
        raise BridgeInputError(
            f"{name} must be a torch tensor or numpy array, got {type(x).__name__}; "
            "convert it with torch.as_tensor(...) first."
        )
    if not tensor.is_floating_point():
        if tensor.dtype in (torch.complex64, torch.complex128):
            raise BridgeInputError(f"{name} is complex ({tensor.dtype}); pass real embeddings.")
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_matrix(x: torch.Tensor, name: str, dim: int | None = None) -> torch.Tensor:
    """Require a finite (n, d) matrix, with ``d == dim`` when given."""
    if x.ndim != 2:
        raise BridgeInputError(
            f"{name} must be a 2-D (n, d) matrix of embeddings, got shape {tuple(x.shape)}; "
            "stack single vectors with torch.stack or reshape to (n, d)."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise BridgeInputError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one row.")
    if dim is not None and x.shape[1] != dim:
        raise BridgeInputError(
            f"{name} has dimension {x.shape[1]} but {dim} was expected; "
            "check that the embeddings come from the encoder this bridge was fitted for."
        )
    check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad_rows = (~finite).any(dim=-1).nonzero().flatten()[:5].tolist() if x.ndim > 1 else []
        where = f" (first bad rows: {bad_rows})" if bad_rows else ""
        raise BridgeInputError(
            f"{name} contains NaN or Inf{where}; drop or repair those embeddings before use."
        )


def check_nonzero_rows(centred: torch.Tensor, name: str, tol: float = 1e-12) -> None:
    """Rows that vanish after centring have no direction, so no relative representation."""
    norms = torch.linalg.vector_norm(centred, dim=-1)
    scale = float(norms.max()) if norms.numel() else 0.0
    zero = norms <= tol * max(scale, 1.0)
    if bool(zero.any()):
        rows = zero.nonzero().flatten()[:5].tolist()
        raise BridgeInputError(
            f"{name} has rows with zero norm after centring (rows {rows}); such a row has no "
            "direction to project. Remove duplicates of the anchor mean or constant embeddings."
        )


def check_anchor_pair(source: torch.Tensor, target: torch.Tensor) -> None:
    """Parallel anchors: both finite matrices with the same number of rows, at least 2 of them."""
    check_matrix(source, "source_anchors")
    check_matrix(target, "target_anchors")
    if source.shape[0] != target.shape[0]:
        raise BridgeInputError(
            f"source_anchors has {source.shape[0]} rows but target_anchors has {target.shape[0]}; "
            "anchors must be parallel: row i of both must embed the same input."
        )
    if source.shape[0] < 2:
        raise BridgeInputError(
            "at least 2 anchors are needed (centring removes one degree of freedom); "
            "pass a few hundred parallel anchors for a useful bridge."
        )


def warn_if_underdetermined(num_anchors: int, target_dim: int) -> None:
    if num_anchors < target_dim + 1:
        warnings.warn(
            f"{num_anchors} anchors for a {target_dim}-dimensional target: the translation is "
            f"confined to the span of the anchors (rank <= {num_anchors - 1}). Use at least "
            f"{target_dim + 1} anchors for a full-rank inverse.",
            UserWarning,
            stacklevel=3,
        )
