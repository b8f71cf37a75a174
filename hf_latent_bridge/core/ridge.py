"""Choosing IRP's ridge strength automatically, by cross-validation on the anchors."""

from __future__ import annotations

import torch

from .projection import anchor_spectrum, centre_normalize, normalize_rows, ridge_filter, source_factor

#: Ridge strengths tried by the automatic choice, relative to the mean squared singular value. Zero
#: (the truncated pseudo-inverse) wins only where the spaces really are isometric.
RIDGE_GRID = (0.0, *(10.0 ** (e / 4) for e in range(-16, 9)))


def choose_ridge(
    source_anchors: torch.Tensor,
    target_anchors: torch.Tensor,
    whitening_strength: float | None = None,
    grid: tuple[float, ...] = RIDGE_GRID,
    folds: int = 5,
    seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """Pick the relative ridge strength by k-fold cross-validation on the anchors.

    Each fold fits both sides on the other folds' anchors and translates its held-out source anchors;
    the score is the mean cosine to the held-out target anchors (centred on the fitting anchors).
    Returns the best relative strength and the score of every candidate.
    """
    x = source_anchors.to(torch.float64)
    y = target_anchors.to(torch.float64)
    k = x.shape[0]
    folds = max(2, min(folds, k // 2))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(k, generator=generator)
    totals = torch.zeros(len(grid), dtype=torch.float64)
    for held_out in order.chunk(folds):
        fit_mask = torch.ones(k, dtype=torch.bool)
        fit_mask[held_out] = False
        spectrum = anchor_spectrum(y[fit_mask], "target_anchors", whitening_strength)
        relative = (x[held_out] - x[fit_mask].mean(0)) @ source_factor(x[fit_mask], whitening_strength)
        truth = centre_normalize(y[held_out], spectrum.mean)
        coords = relative @ spectrum.u  # (n_held, r): shared by every candidate
        basis = spectrum.output_basis
        for i, rel_ridge in enumerate(grid):
            directions = (coords * ridge_filter(spectrum.s, rel_ridge * spectrum.mean_square)) @ basis
            totals[i] += (normalize_rows(directions) * truth).sum()
    scores = {r: float(t) / k for r, t in zip(grid, totals, strict=True)}
    best = max(scores, key=scores.__getitem__)
    return best, scores
