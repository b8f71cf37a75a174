"""The automatic ridge: closed-form leave-one-out against explicit refits, and its choices."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge.core.projection import anchor_side, coupled_factors, spectrum_of
from hf_latent_bridge.core.ridge import RIDGE_GRID, choose_ridge, leave_one_out_cosines

F64 = torch.float64


def noisy_pair(generator: torch.Generator, k: int = 60, d_x: int = 7, d_y: int = 9):
    x = torch.randn(k, d_x, dtype=F64, generator=generator) * torch.linspace(0.3, 2.0, d_x, dtype=F64)
    mixing = torch.randn(d_x, d_y, dtype=F64, generator=generator)
    return x, x @ mixing + 0.4 * torch.randn(k, d_y, dtype=F64, generator=generator) + 1.0


def refit_leave_one_out(source, target, ridge: float) -> float:
    """Mean held-out cosine by refitting the regularised inverse without each anchor (the definition)."""
    s_rows, t_rows = source.rows, target.side.rows
    k, total = s_rows.shape[0], 0.0
    for i in range(k):
        keep = torch.arange(k) != i
        gram = t_rows[keep].T @ t_rows[keep] + ridge * torch.eye(t_rows.shape[1], dtype=F64)
        relative = s_rows[keep] @ s_rows[i]  # held-out anchor's cosines to the remaining anchors
        prediction = torch.linalg.pinv(gram, hermitian=True) @ (t_rows[keep].T @ relative)
        total += float(torch.nn.functional.cosine_similarity(prediction, t_rows[i], dim=0))
    return total / k


@pytest.mark.parametrize("whitening", [None, 1.0])
def test_closed_form_leave_one_out_equals_refitting_without_each_anchor(whitening, rng):
    x, y = noisy_pair(rng)
    source = anchor_side(x, whitening_strength=whitening)
    target = spectrum_of(anchor_side(y, whitening_strength=whitening))
    ridges = [0.0, 0.05, 0.7, 9.0]
    fast = leave_one_out_cosines(source, target, coupled_factors(source, target), ridges, block_rows=7)
    slow = torch.tensor([refit_leave_one_out(source, target, r) for r in ridges], dtype=F64)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-10)


def test_scores_do_not_depend_on_the_block_size(rng):
    x, y = noisy_pair(rng, k=50)
    source, target = anchor_side(x), spectrum_of(anchor_side(y))
    coupled = coupled_factors(source, target)
    one = leave_one_out_cosines(source, target, coupled, [0.1, 1.0], block_rows=50)
    many = leave_one_out_cosines(source, target, coupled, [0.1, 1.0], block_rows=3)
    torch.testing.assert_close(one, many, rtol=0, atol=1e-13)


def test_choose_ridge_scores_every_candidate_and_returns_the_best(rng):
    x, y = noisy_pair(rng, k=120)
    best, scores = choose_ridge(x, y, whitening_strength=1.0)
    assert list(scores) == list(RIDGE_GRID)
    assert scores[best] == max(scores.values())
    assert 0 < best < RIDGE_GRID[-1]  # a noisy relation: neither the plain inverse nor the largest ridge


def test_a_scored_subset_estimates_the_full_leave_one_out_mean(rng):
    x, y = noisy_pair(rng, k=400)
    source, target = anchor_side(x), spectrum_of(anchor_side(y))
    coupled = coupled_factors(source, target)
    full = leave_one_out_cosines(source, target, coupled, [0.1, 1.0, 10.0], max_scored=None)
    subset = leave_one_out_cosines(source, target, coupled, [0.1, 1.0, 10.0], max_scored=200)
    assert not torch.equal(full, subset)
    torch.testing.assert_close(subset, full, rtol=0, atol=0.03)
