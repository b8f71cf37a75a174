"""Choosing IRP's ridge strength automatically: exact leave-one-out on the anchors, in closed form.

IRP with ridge ``lam`` maps a whitened, normalised source anchor ``s_i`` to the target direction
``(T^T T + lam)^-1 T^T S s_i`` (``S``, ``T``: the two sides' whitened, normalised anchor rows). Leaving
anchor ``i`` out of both sides removes ``t_i t_i^T`` from the Gram matrix and ``t_i s_i^T`` from the cross
product; by the Sherman-Morrison identity its held-out prediction is, in the target's singular basis
(``T = U diag(s) V^T``, ``f = s / (s^2 + lam)``, ``w = s f``)::

    y_i = f * (c_i + g_i u_i),   c_i = U^T S s_i,   h_i = sum(w u_i^2),   q_i = sum(w u_i c_i),
    g_i = (q_i - |s_i|^2) / (1 - h_i)

and its cosine to the held-out target ``t_i = V (s * u_i)`` needs only sums over the r singular
directions. Every candidate costs O(k r) on top of one shared (k x r) product: the whole search costs
less than one fixed-ridge fit's decomposition, instead of refitting on every fold. Centring and whitening
statistics are not refitted per held-out anchor (each anchor moves them by O(1/k)); beyond
``MAX_SCORED`` anchors a random subset of them is held out (each still predicted from all the others).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .projection import AnchorSide, AnchorSpectrum, anchor_side, coupled_factors, spectrum_of

#: Ridge strengths tried by the automatic choice, relative to the mean squared singular value. Zero
#: (the truncated pseudo-inverse) wins only where the spaces really are isometric.
RIDGE_GRID = (0.0, *(10.0 ** (e / 4) for e in range(-16, 9)))

#: Anchors scored per block (bounds the working memory at a few (block, r) float64 matrices).
BLOCK_ROWS = 4096

#: Held-out anchors scored at most (a seeded random subset beyond that): each one's prediction still
#: comes from all the other anchors; the mean cosine of 4096 of them is exact to about 1e-3, far finer
#: than the differences between candidate strengths, and it keeps the search cheap when k is large.
MAX_SCORED = 4096


def leave_one_out_cosines(
    source: AnchorSide,
    target: AnchorSpectrum,
    coupled: torch.Tensor,
    ridges: Sequence[float],
    block_rows: int = BLOCK_ROWS,
    max_scored: int | None = MAX_SCORED,
) -> torch.Tensor:
    """Mean held-out cosine (in the target's whitened space) for every absolute ridge in ``ridges``.

    ``coupled`` is :func:`~.projection.coupled_factors` of the two sides (shared with the final map).
    With more than ``max_scored`` anchors, a seeded random subset of them is held out and scored.
    """
    s = target.s
    lam = torch.as_tensor(list(ridges), dtype=torch.float64)
    denom = s[:, None] ** 2 + lam[None, :]  # (r, m)
    w = s[:, None] ** 2 / denom  # shrinkage factors s f
    f2 = (s[:, None] / denom) ** 2
    totals = torch.zeros(lam.numel(), dtype=torch.float64)
    k = source.rows.shape[0]
    scored = torch.arange(k)
    if max_scored is not None and k > max_scored:
        scored = torch.randperm(k, generator=torch.Generator().manual_seed(0))[:max_scored].sort().values
    for start in range(0, scored.numel(), block_rows):
        rows = scored[start : start + block_rows]
        c = source.rows[rows] @ coupled  # (b, r): U^T S s_i
        u = target.side.rows[rows] @ target.v / s  # (b, r): rows of U
        uu, uc = u * u, u * c
        h = (uu @ w).clamp_max(1 - 1e-12)
        q = uc @ w
        n = (source.rows[rows] ** 2).sum(1, keepdim=True)
        g = (q - n) / (1 - h)
        dot = q + g * h
        norm2 = (c * c) @ f2 + 2 * g * (uc @ f2) + g * g * (uu @ f2)
        truth = (uu @ s**2).clamp_min(1e-300)[:, None]
        totals += (dot / (norm2 * truth).clamp_min(1e-300).sqrt()).sum(0)
    return totals / scored.numel()


def choose_ridge_for(
    source: AnchorSide,
    target: AnchorSpectrum,
    coupled: torch.Tensor,
    grid: Sequence[float] = RIDGE_GRID,
) -> tuple[float, dict[float, float]]:
    """Best relative ridge on ``grid`` by leave-one-out cosine, and every candidate's score."""
    scores = leave_one_out_cosines(source, target, coupled, [r * target.mean_square for r in grid])
    table = {float(r): float(v) for r, v in zip(grid, scores, strict=True)}
    best = max(table, key=table.__getitem__)
    return best, table


def choose_ridge(
    source_anchors: torch.Tensor,
    target_anchors: torch.Tensor,
    whitening_strength: float | None = None,
    grid: Sequence[float] = RIDGE_GRID,
) -> tuple[float, dict[float, float]]:
    """Pick the relative ridge strength by leave-one-out cross-validation on the anchors.

    Returns the best relative strength and the mean held-out cosine of every candidate.
    """
    source = anchor_side(source_anchors, "source_anchors", whitening_strength)
    target = spectrum_of(anchor_side(target_anchors, "target_anchors", whitening_strength))
    return choose_ridge_for(source, target, coupled_factors(source, target), grid)
