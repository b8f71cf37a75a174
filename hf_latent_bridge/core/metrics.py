"""Stitching metrics on tensors: tensors in, numbers out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError
from .validation import as_class_ids, as_tensor, check_matrix

#: Metrics of every cell, in table order.
METRICS = ("accuracy", "macro_f1", "cosine", "mse", "top1_retrieval")


#: Per-row outcome columns produced by :func:`row_outcomes`.
OUTCOME_COLUMNS = ("correct", "predicted", "cosine", "squared_error", "retrieval_hit")


def accuracy(predicted: Any, labels: Any) -> float:
    """Share of rows whose predicted class id equals the label."""
    predicted, labels = _class_id_pair(predicted, labels)
    return float((predicted == labels).double().mean())


def macro_f1(predicted: Any, labels: Any) -> float:
    """Unweighted mean F1 over the classes present in ``labels`` or ``predicted`` (scikit-learn's rule)."""
    predicted, labels = _class_id_pair(predicted, labels)
    classes = torch.unique(torch.cat([predicted, labels]))
    scores = []
    for c in classes:
        tp = float(((predicted == c) & (labels == c)).sum())
        fp = float(((predicted == c) & (labels != c)).sum())
        fn = float(((predicted != c) & (labels == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def row_outcomes(
    translated: torch.Tensor,
    target: torch.Tensor,
    predicted: torch.Tensor,
    labels: torch.Tensor,
    retrieval_bank: torch.Tensor,
    rows: torch.Tensor,
) -> torch.Tensor:
    """Per-row stitching outcomes, ``(m, 5)`` float64 with columns :data:`OUTCOME_COLUMNS`.

    Args:
        translated: (m, d) embeddings translated into the target space.
        target: (m, d) true target embeddings of the same inputs.
        predicted / labels: (m,) class ids from the target head, and the truth.
        retrieval_bank: (n, d) unit-norm true target embeddings of the whole test set (float64).
        rows: (m,) indices of these rows in the bank; a row is retrieved when its most similar bank
            entry (cosine, first on ties) is its own.
    """
    t, y = translated.to(torch.float64), target.to(torch.float64)
    unit_t, unit_y = _unit64(t), _unit64(y)
    cosine = (unit_t * unit_y).sum(1)
    squared_error = ((t - y) ** 2).mean(1)
    hit = (unit_t @ retrieval_bank.T).argmax(1) == rows
    correct = predicted.long() == labels.long()
    return torch.stack(
        [correct.double(), predicted.double(), cosine, squared_error, hit.double()], dim=1
    ).contiguous()


def aggregate_outcomes(outcomes: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Turn the full (n, 5) :func:`row_outcomes` of one cell into its :data:`METRICS`."""
    return {
        "accuracy": float(outcomes[:, 0].mean()),
        "macro_f1": macro_f1(outcomes[:, 1].long(), labels),
        "cosine": float(outcomes[:, 2].mean()),
        "mse": float(outcomes[:, 3].mean()),
        "top1_retrieval": float(outcomes[:, 4].mean()),
    }


def cell_metrics(translated: Any, target: Any, predicted: Any, labels: Any) -> dict[str, float]:
    """All :data:`METRICS` of one cell from full tensors (translated and true target test embeddings)."""
    translated = check_matrix(as_tensor(translated, "translated"), "translated")
    target = check_matrix(as_tensor(target, "target"), "target", translated.shape[1])
    _check_same_length(translated, target)
    predicted, labels = _class_id_pair(predicted, labels)
    _check_same_length(translated, labels)
    if not bool(torch.isfinite(((translated.double() - target.double()) ** 2).mean(1)).all()):
        raise BridgeInputError(
            "the squared errors between translated and target embeddings overflow float64: the embeddings are "
            f"too large (largest |value| {float(translated.abs().max()):.3g}); rescale both sides alike."
        )
    bank = _unit64(target)
    outcomes = row_outcomes(translated, target, predicted, labels, bank, torch.arange(len(target)))
    return aggregate_outcomes(outcomes, labels)


def _class_id_pair(predicted: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true class ids as two aligned, non-empty 1-D ``long`` tensors."""
    predicted, labels = as_class_ids(predicted, name="predicted"), as_class_ids(labels)
    _check_same_length(predicted, labels)
    if not len(labels):
        raise BridgeInputError("metrics of no rows are undefined; pass at least one prediction and label.")
    return predicted, labels


def _check_same_length(a: torch.Tensor, b: torch.Tensor) -> None:
    if len(a) != len(b):
        raise BridgeInputError(f"metric inputs disagree in length ({len(a)} vs {len(b)}); pass aligned rows.")


def _unit64(x: torch.Tensor) -> torch.Tensor:
    """Rows as float64 unit vectors (zero rows stay zero), computed without overflow or underflow."""
    x = x.to(torch.float64)
    x = x / x.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-300)
