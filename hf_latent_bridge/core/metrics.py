"""Stitching metrics on tensors: tensors in, numbers out."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BridgeInputError

#: Metrics of every cell, in table order.
METRICS = ("accuracy", "macro_f1", "cosine", "mse", "top1_retrieval")


#: Per-row outcome columns produced by :func:`row_outcomes`.
OUTCOME_COLUMNS = ("correct", "predicted", "cosine", "squared_error", "retrieval_hit")


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose predicted class id equals the label."""
    _check_same_length(predicted, labels)
    return float((predicted.long() == labels.long()).double().mean())


def macro_f1(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Unweighted mean F1 over the classes present in ``labels`` or ``predicted`` (scikit-learn's rule)."""
    _check_same_length(predicted, labels)
    predicted, labels = predicted.long(), labels.long()
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
    unit_t = t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(1e-12)
    unit_y = y / torch.linalg.vector_norm(y, dim=1, keepdim=True).clamp_min(1e-12)
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


def cell_metrics(
    translated: torch.Tensor, target: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """All :data:`METRICS` of one cell from full tensors (translated and true target test embeddings)."""
    _check_same_length(translated, target)
    _check_same_length(translated, labels)
    bank = _unit64(target)
    outcomes = row_outcomes(translated, target, predicted, labels, bank, torch.arange(len(target)))
    return aggregate_outcomes(outcomes, labels)


def _check_same_length(a: torch.Tensor, b: torch.Tensor) -> None:
    if len(a) != len(b):
        raise BridgeInputError(f"metric inputs disagree in length ({len(a)} vs {len(b)}); pass aligned rows.")


def _unit64(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float64)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)
