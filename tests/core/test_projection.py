"""The tensor core against hand-written references and the properties of shared method notes."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge.core.alignment import IrpProblem
from hf_latent_bridge.core.projection import (
    anchor_spectrum,
    inverse_relative_projection,
    relative_projection,
    whitening,
)
from hf_latent_bridge.core.ridge import RIDGE_GRID, choose_ridge

F64 = torch.float64


def orthogonal(d: int, generator: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, dtype=F64, generator=generator))
    return q * torch.sign(torch.diagonal(r))


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def test_relative_projection_matches_loop_reference(rng):
    x = torch.randn(5, 7, dtype=F64, generator=rng)
    anchors = torch.randn(11, 7, dtype=F64, generator=rng)
    mu = anchors.mean(0)
    expected = torch.empty(5, 11, dtype=F64)
    for i in range(5):
        for j in range(11):
            a, b = x[i] - mu, anchors[j] - mu
            expected[i, j] = a @ b / (a.norm() * b.norm())
    torch.testing.assert_close(relative_projection(x, anchors), expected, rtol=0, atol=1e-12)


def test_relative_projection_is_invariant_to_angle_preserving_maps(rng):
    x = torch.randn(9, 6, dtype=F64, generator=rng)
    anchors = torch.randn(20, 6, dtype=F64, generator=rng)
    q, shift = orthogonal(6, rng), torch.randn(6, dtype=F64, generator=rng)
    moved = relative_projection(2.5 * x @ q + shift, 2.5 * anchors @ q + shift)
    torch.testing.assert_close(moved, relative_projection(x, anchors), rtol=0, atol=1e-12)


def test_relative_projection_changes_under_a_generic_linear_map(rng):
    x = torch.randn(9, 6, dtype=F64, generator=rng)
    anchors = torch.randn(20, 6, dtype=F64, generator=rng)
    skew = torch.randn(6, 6, dtype=F64, generator=rng)
    diff = (relative_projection(x @ skew, anchors @ skew) - relative_projection(x, anchors)).abs().max()
    assert diff > 0.05


def test_inverse_recovers_directions_from_their_relative_representation(rng):
    anchors = torch.randn(40, 10, dtype=F64, generator=rng)
    spectrum = anchor_spectrum(anchors)
    y = torch.randn(6, 10, dtype=F64, generator=rng)
    relative = relative_projection(y, anchors)
    recovered = inverse_relative_projection(relative, spectrum, ridge=0.0)
    torch.testing.assert_close(recovered, unit(y - spectrum.mean), rtol=0, atol=1e-9)


def test_spectrum_drops_round_off_directions():
    # Rank-3 data in 8 dimensions: centring and normalising must not invent signal in the other five.
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 8, dtype=F64, generator=g)
    anchors = torch.randn(50, 3, dtype=F64, generator=g) @ basis
    spectrum = anchor_spectrum(anchors)
    assert spectrum.s.numel() == 3


@pytest.mark.parametrize("d_x, d_y", [(8, 8), (6, 12), (12, 20)])
def test_irp_recovers_rotation_scale_and_shift_in_any_dimension(d_x, d_y, rng):
    """Y = s X Q + t: IRP returns normalize(Y - mu_Y) to 1e-6, with d_y >= d_x (zero-padded X)."""
    k = d_y + 30
    x = torch.randn(k + 15, d_x, dtype=F64, generator=rng)
    q = orthogonal(d_y, rng)
    shift = torch.randn(d_y, dtype=F64, generator=rng)
    y = 3.0 * torch.nn.functional.pad(x, (0, d_y - d_x)) @ q + shift
    translation = IrpProblem.prepare(x[:k], y[:k]).map(0.0, "none")
    out = translation.apply(x[k:]) - translation.target_mean
    torch.testing.assert_close(out, unit(y[k:] - translation.target_mean), rtol=0, atol=1e-6)


def test_choose_ridge_prefers_no_ridge_for_isometric_spaces(rng):
    x = torch.randn(120, 10, dtype=F64, generator=rng)
    y = x @ orthogonal(10, rng)
    best, scores = choose_ridge(x, y)
    assert best == 0.0
    assert scores[0.0] == pytest.approx(1.0, abs=1e-9)
    assert set(scores) == set(RIDGE_GRID)


def test_choose_ridge_regularises_noisy_rank_deficient_targets(rng):
    """A target with near-null directions and a noisy relation: a positive ridge must win."""
    k, d = 300, 24
    x = torch.randn(k, d, dtype=F64, generator=rng)
    spread = torch.cat([torch.ones(16, dtype=F64), torch.full((8,), 1e-3, dtype=F64)])
    y = (x @ orthogonal(d, rng) + 0.7 * torch.randn(k, d, dtype=F64, generator=rng)) * spread
    best, scores = choose_ridge(x, y)
    assert best > 0
    assert scores[best] > 0.7 > 0.1 > scores[0.0]  # the plain inverse amplifies the weak directions


def test_shrinkage_whitening_evens_out_the_spectrum(rng):
    scales = torch.tensor([10.0, 3.0, 1.0, 0.1], dtype=F64)
    anchors = torch.randn(400, 4, dtype=F64, generator=rng) * scales @ orthogonal(4, rng)
    white = whitening(anchors, 1.0)
    z = white.apply(anchors)
    variance = torch.linalg.eigvalsh(z.T @ z / anchors.shape[0])
    raw = torch.linalg.eigvalsh((anchors - anchors.mean(0)).T @ (anchors - anchors.mean(0)) / 400)
    torch.testing.assert_close(variance, raw / (raw + raw.mean()), rtol=0, atol=1e-9)
    # Round trip through the inverse matrix, and None is the identity.
    torch.testing.assert_close(z @ white.inverse_matrix + white.mean, anchors, rtol=0, atol=1e-9)
    torch.testing.assert_close(whitening(anchors, None).apply(anchors), anchors - anchors.mean(0))


def test_whitened_irp_still_recovers_isometries(rng):
    x = torch.randn(90, 8, dtype=F64, generator=rng) * torch.linspace(0.2, 3.0, 8, dtype=F64)
    q = orthogonal(8, rng)
    y = 0.5 * x @ q - 2.0
    translation = IrpProblem.prepare(x[:70], y[:70], 1.0).map(0.0, "none")
    out = translation.apply(x[70:]) - translation.target_mean
    torch.testing.assert_close(out, unit(y[70:] - translation.target_mean), rtol=0, atol=1e-6)
