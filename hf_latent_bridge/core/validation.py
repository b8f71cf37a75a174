"""Checks on user tensors, shared by the tensor core and the bridge.

Each check raises :class:`BridgeInputError` with a message that names the problem and the fix. Numeric
tolerances are relative to the data they judge (never absolute), so embeddings of any scale are judged
alike; a dtype enters only as the precision its values carry.
"""

from __future__ import annotations

import contextlib
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
    """Return ``x`` as a real floating torch tensor (integers and booleans are converted), without
    copying when possible.

    Accepts torch tensors, numpy arrays, nested lists or tuples of numbers and anything numpy turns into
    an array (``__array__``); refuses ragged nesting, strings, objects and complex numbers.
    """
    if isinstance(x, torch.Tensor):
        tensor = x
        if tensor.layout != torch.strided:
            raise BridgeInputError(
                f"{name} is a {tensor.layout} tensor; pass a dense one ({name}.to_dense())."
            )
    elif isinstance(x, (np.ndarray, list, tuple)) or (
        hasattr(x, "__array__") and not isinstance(x, (str, bytes))
    ):
        tensor = torch.as_tensor(_numeric_array(x, name))
    else:
        raise BridgeInputError(
            f"{name} must be a torch tensor or numpy array, got {type(x).__name__}; "
            "convert it with torch.as_tensor(...) first."
        )
    if tensor.is_complex():
        raise BridgeInputError(f"{name} is complex ({tensor.dtype}); pass real embeddings.")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    elif tensor.dtype.itemsize < 2:  # 8-bit floats: too coarse to compute with
        tensor = tensor.to(torch.float32)
    return tensor


def _numeric_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array of numbers (bool, int, float or complex), or :class:`BridgeInputError`."""
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as error:
        raise BridgeInputError(
            f"{name} cannot be read as a matrix ({' '.join(str(error).split())[:120]}); pass a rectangular "
            "array of numbers: every row as long as the others."
        ) from None
    if array.dtype.kind == "O":  # numbers boxed as objects (e.g. from pandas), or anything else
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError):
            raise BridgeInputError(
                f"{name} holds values that are not numbers (e.g. {_first_non_number(array)!r}) or rows of "
                "different lengths; pass a rectangular array of numbers."
            ) from None
    if array.dtype.kind not in "biufc":
        raise BridgeInputError(
            f"{name} holds {array.dtype.name} values, not numbers; pass numeric embeddings "
            "(strings must be embedded by an encoder first)."
        )
    if array.dtype.kind == "c":
        raise BridgeInputError(f"{name} is complex ({array.dtype.name}); pass real embeddings.")
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:  # long double: torch has no such type
        array = array.astype(np.float64)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if any(stride < 0 for stride in array.strides):  # e.g. a flipped view
        array = np.ascontiguousarray(array)
    return array


def _first_non_number(array: np.ndarray) -> Any:
    for item in array.flat:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, float, np.number)):
            return item if not isinstance(item, (list, tuple, np.ndarray)) else type(item).__name__
    return None


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


def power_of_two_scale(x: torch.Tensor) -> float:
    """A power of two close to the largest ``|x|`` (1.0 for an all-zero ``x``).

    Dividing by it is exact in binary floating point, so it changes no digit, only the exponent: squares
    and norms of the result neither overflow nor underflow, whatever the scale of the embeddings.
    """
    largest = float(x.abs().max()) if x.numel() else 0.0
    if not (largest > 0 and math.isfinite(largest)):
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1])


def check_nonzero_rows(anchors: torch.Tensor, name: str, dtype: torch.dtype | None = None) -> None:
    """Refuse anchor rows that vanish after centring: such a row has no direction to project.

    Row i vanishes when ``||x_i - mean||`` is within the rounding of the data themselves,
    ``eps * (||x_i|| + mean row norm)``, with ``eps`` the precision of ``dtype`` (the dtype the embeddings
    came in; default ``anchors.dtype``), at least that of float64 arithmetic. The tolerance thus scales with
    the data: any scale of embeddings is judged alike, and real bfloat16 embeddings pass.
    """
    eps = max(torch.finfo(dtype or anchors.dtype).eps, ZERO_ROW_EPS)
    a = anchors.detach().to(torch.float64)
    a = a / power_of_two_scale(a)  # exact; keeps squares away from overflow and underflow
    row_norms = torch.linalg.vector_norm(a, dim=-1)
    centred_norms = torch.linalg.vector_norm(a - a.mean(dim=0), dim=-1)
    zero = centred_norms <= eps * (row_norms + row_norms.mean())
    if bool(zero.any()):
        rows = zero.nonzero().flatten()[:5].tolist()
        raise BridgeInputError(
            f"{name} has rows with zero norm after centring (rows {rows}): they equal the anchors' mean up to "
            "rounding, so they have no direction to project. Remove duplicates of the anchor mean or constant "
            "embeddings."
        )


def as_class_ids(labels: Any, num_rows: int | None = None, name: str = "labels") -> torch.Tensor:
    """Integer class ids ``>= 0`` as a 1-D ``torch.long`` tensor (one per row when ``num_rows`` is given).

    Accepts integers, integral floats and booleans in any array form; refuses names (strings), NaN,
    negative or fractional values with a message saying how to number the classes.
    """
    if isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy() if labels.dtype != torch.bfloat16 else labels.float().numpy()
    elif labels is None or isinstance(labels, (str, bytes, dict)):
        raise BridgeInputError(
            f"{name} must be a sequence of integer class ids, got {type(labels).__name__}."
        )
    else:
        try:
            array = np.asarray(labels)
        except (ValueError, TypeError):
            raise BridgeInputError(
                f"{name} must be a flat sequence of integer class ids (one per row)."
            ) from None
    if array.dtype.kind == "O":
        with contextlib.suppress(ValueError, TypeError):
            array = array.astype(np.float64)
    if array.dtype.kind in "USO":
        example = next(iter(array.flat), None)
        raise BridgeInputError(
            f"{name} are class names or other non-numbers (e.g. {example!r}), not integer class ids; number "
            "the classes first, e.g. names = sorted(set(labels)); ids = [names.index(l) for l in labels], and "
            "pass id2label=names."
        )
    if array.dtype.kind not in "biuf":
        raise BridgeInputError(f"{name} must be integer class ids, got {array.dtype.name} values.")
    if array.ndim != 1 or (num_rows is not None and array.shape[0] != num_rows):
        expected = f" with one label per embedding row ({num_rows})" if num_rows is not None else ""
        raise BridgeInputError(f"{name} must be a 1-D sequence{expected}, got shape {tuple(array.shape)}.")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not (array == np.round(array)).all():
            raise BridgeInputError(
                f"{name} must be integer class ids, got non-integral or non-finite values; map class names to "
                "ids first."
            )
        if array.size and np.abs(array).max() >= 2**62:
            raise BridgeInputError(f"{name} hold ids too large to be class ids ({np.abs(array).max():g}).")
    if array.dtype.kind == "u" and array.size and int(array.max()) >= 2**62:
        raise BridgeInputError(f"{name} hold ids too large to be class ids ({int(array.max())}).")
    ids = torch.as_tensor(array.astype(np.int64))
    if ids.numel() and bool((ids < 0).any()):
        raise BridgeInputError(f"{name} must be non-negative class ids, got {int(ids.min())}.")
    return ids


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
