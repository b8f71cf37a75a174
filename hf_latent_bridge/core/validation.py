"""Checks of the tensors users hand in, made once where they enter the package.

Each check raises :class:`~hf_latent_bridge.errors.BridgeInputError` naming the problem and the fix.
Tolerances are relative to the data they judge, so embeddings of any scale are judged alike.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError

#: Relative precision of centring in float64 (a few dozen roundings): the least tolerance of
#: :func:`check_nonzero_rows`, whatever the dtype of the embeddings.
ZERO_ROW_EPS = 64 * torch.finfo(torch.float64).eps


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` (a torch tensor, numpy array or nested list of numbers) as a real floating tensor, without a
    copy when possible; integers and booleans become the default float dtype."""
    if isinstance(x, torch.Tensor):
        tensor = x if x.layout == torch.strided else x.to_dense()
    elif isinstance(x, (str, bytes, dict)) or x is None:
        raise BridgeInputError(f"{name} must be a tensor or an array of numbers, got {type(x).__name__}.")
    else:
        try:
            array = np.asarray(x)
            if array.dtype.kind == "O":  # numbers boxed as objects (e.g. from pandas)
                array = array.astype(np.float64)
        except (ValueError, TypeError):
            raise BridgeInputError(
                f"{name} cannot be read as a matrix; pass a rectangular array of numbers (every row as long as "
                "the others)."
            ) from None
        if array.dtype.kind not in "biuf":
            raise BridgeInputError(
                f"{name} holds {array.dtype.name} values, not real numbers; pass numeric embeddings (texts must "
                "be embedded by an encoder first)."
            )
        if array.dtype.kind == "f" and array.dtype.itemsize > 8:  # long double: torch has no such type
            array = array.astype(np.float64)
        tensor = torch.from_numpy(np.ascontiguousarray(array.astype(array.dtype.newbyteorder("="))))
    if tensor.is_complex():
        raise BridgeInputError(f"{name} is complex ({tensor.dtype}); pass real embeddings.")
    if not tensor.is_floating_point():
        return tensor.to(torch.get_default_dtype())
    return tensor.to(torch.float32) if tensor.dtype.itemsize < 2 else tensor  # 8-bit floats are too coarse


def check_matrix(x: torch.Tensor, name: str, dim: int | None = None) -> torch.Tensor:
    """Require a finite, non-empty (n, d) matrix, with ``d == dim`` when given."""
    if x.ndim != 2:
        raise BridgeInputError(
            f"{name} must be a 2-D (n, d) matrix of embeddings, got shape {tuple(x.shape)}; stack single "
            "vectors with torch.stack or reshape to (n, d)."
        )
    if 0 in x.shape:
        raise BridgeInputError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one row.")
    if dim is not None and x.shape[1] != dim:
        raise BridgeInputError(
            f"{name} has dimension {x.shape[1]} but {dim} was expected; check that the embeddings come from the "
            "encoder this model was built for."
        )
    check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        rows = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten()[:5].tolist()
        raise BridgeInputError(f"{name} contains NaN or Inf (rows {rows}); drop or repair them before use.")


def binary_unit(x: torch.Tensor) -> float:
    """A power of two close to the largest ``|x|`` (1.0 for an all-zero ``x``): dividing by it is exact,
    so norms of the result neither overflow nor underflow, whatever the scale of the embeddings."""
    largest = float(x.abs().max()) if x.numel() else 0.0
    return math.ldexp(1.0, math.frexp(largest)[1]) if largest > 0 and math.isfinite(largest) else 1.0


def check_nonzero_rows(anchors: torch.Tensor, name: str, dtype: torch.dtype | None = None) -> None:
    """Refuse anchor rows that vanish after centring: such a row has no direction to project.

    Row i vanishes when ``||x_i - mean||`` is within the rounding of the data themselves,
    ``eps * (||x_i|| + mean row norm)``, ``eps`` the precision of ``dtype`` (default ``anchors.dtype``),
    at least that of float64 arithmetic.
    """
    eps = max(torch.finfo(dtype or anchors.dtype).eps, ZERO_ROW_EPS)
    a = anchors.detach().to(torch.float64)
    a = a / binary_unit(a)
    norms = torch.linalg.vector_norm(a, dim=-1)
    zero = torch.linalg.vector_norm(a - a.mean(dim=0), dim=-1) <= eps * (norms + norms.mean())
    if bool(zero.any()):
        raise BridgeInputError(
            f"{name} has rows with zero norm after centring (rows {zero.nonzero().flatten()[:5].tolist()}): they "
            "equal the anchors' mean up to rounding, so they have no direction to project. Remove duplicates of "
            "the anchor mean or constant embeddings."
        )


def as_class_ids(labels: Any, num_rows: int | None = None, name: str = "labels") -> torch.Tensor:
    """Class ids ``>= 0`` as a 1-D ``torch.long`` tensor (one per row when ``num_rows`` is given)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().double().numpy()
    try:
        array = np.asarray(labels)
    except (ValueError, TypeError):
        array = np.asarray(None)
    if array.dtype.kind in "OUS" or array.ndim != 1:
        raise BridgeInputError(
            f"{name} must be a flat sequence of integer class ids, got {type(labels).__name__}; map class names "
            "to ids first: names = sorted(set(labels)); ids = [names.index(x) for x in labels]."
        )
    if num_rows is not None and len(array) != num_rows:
        raise BridgeInputError(
            f"{name} has {len(array)} entries for {num_rows} embedding rows; pass one per row."
        )
    values = array.astype(np.float64)
    if values.size and not (
        np.isfinite(values).all() and (values == np.round(values)).all() and values.min() >= 0
    ):
        raise BridgeInputError(
            f"{name} must be whole numbers >= 0 (class ids), got e.g. {array[:5].tolist()}."
        )
    if values.size and values.max() >= 2**62:
        raise BridgeInputError(f"{name} hold ids too large to be class ids ({values.max():g}).")
    return torch.as_tensor(array.astype(np.int64))


def check_anchor_pair(source: torch.Tensor, target: torch.Tensor) -> None:
    """Parallel anchors: finite matrices with the same number of rows, at least 2 of them."""
    check_matrix(source, "source_anchors")
    check_matrix(target, "target_anchors")
    if source.shape[0] != target.shape[0]:
        raise BridgeInputError(
            f"source_anchors has {source.shape[0]} rows but target_anchors has {target.shape[0]}; anchors must "
            "be parallel: row i of both must embed the same input."
        )
    if source.shape[0] < 2:
        raise BridgeInputError(
            "at least 2 anchors are needed (centring removes one degree of freedom); pass a few hundred "
            "parallel anchors for a useful bridge."
        )


def warn_if_underdetermined(num_anchors: int, target_dim: int) -> None:
    if num_anchors < target_dim + 1:
        warnings.warn(
            f"{num_anchors} anchors for a {target_dim}-dimensional target: the translation is confined to the "
            f"span of the anchors (rank <= {num_anchors - 1}). Use at least {target_dim + 1} anchors for a "
            "full-rank inverse.",
            UserWarning,
            stacklevel=3,
        )
