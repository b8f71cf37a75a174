"""Translation maps: IRP's per-side factorisation and the direct baselines' handling of constant features."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge.core.alignment import DIRECT_METHODS, IrpProblem
from hf_latent_bridge.core.projection import (
    anchor_spectrum,
    gram_eigh,
    normalize_rows,
    source_factor,
    target_factor,
)

F64 = torch.float64
FITTED = ("procrustes", "linear", "l-ortho")


@pytest.mark.parametrize("whitening", [None, 1.0])
def test_irp_map_is_the_product_of_one_factor_per_side(whitening, rng):
    """The fit's shared product gives exactly source_factor(source) @ target_factor(target)."""
    x = torch.randn(80, 6, dtype=F64, generator=rng)
    y = x @ torch.randn(6, 9, dtype=F64, generator=rng) + 0.2 * torch.randn(80, 9, dtype=F64, generator=rng)
    problem = IrpProblem.prepare(x, y, whitening)
    spectrum = anchor_spectrum(y, whitening_strength=whitening)
    for relative in (0.0, 0.3, 4.0):
        per_side = source_factor(x, whitening) @ target_factor(spectrum, relative * spectrum.mean_square)
        torch.testing.assert_close(problem.map(relative).transform, per_side, rtol=0, atol=1e-10)


def test_gram_decomposition_matches_the_svd(rng):
    rows = normalize_rows(
        torch.randn(200, 12, dtype=F64, generator=rng) * torch.logspace(0, -3, 12, dtype=F64)
    )
    squares, v = gram_eigh(rows)
    _, s, vh = torch.linalg.svd(rows, full_matrices=False)
    torch.testing.assert_close(squares.sqrt(), s, rtol=1e-9, atol=0)
    torch.testing.assert_close((v.T @ vh.T).abs(), torch.eye(12, dtype=F64), rtol=0, atol=1e-8)


def test_gram_decomposition_drops_round_off_directions(rng):
    rows = torch.randn(100, 3, dtype=F64, generator=rng) @ torch.randn(3, 10, dtype=F64, generator=rng)
    squares, v = gram_eigh(rows)
    assert squares.numel() == 3 and v.shape == (10, 3)


def with_constant_feature(generator: torch.Generator, value: float, noise: float = 0.0):
    x = torch.randn(300, 8, dtype=F64, generator=generator)
    last = value + noise * torch.randn(300, 1, dtype=F64, generator=generator)
    return x, torch.cat([x[:, :7] @ torch.randn(7, 7, dtype=F64, generator=generator), last], 1)


@pytest.mark.parametrize("method", FITTED)
def test_direct_methods_reproduce_a_constant_target_feature_exactly(method, rng):
    x, y = with_constant_feature(rng, 2.5)
    out = DIRECT_METHODS[method](x, y).apply(3 * torch.randn(40, 8, dtype=F64, generator=rng))
    assert torch.equal(out[:, 7], torch.full((40,), 2.5, dtype=F64))


@pytest.mark.parametrize("method", FITTED)
def test_direct_methods_hold_a_round_off_target_feature_at_its_anchor_mean(method, rng):
    x, y = with_constant_feature(rng, -1.0, noise=1e-9)
    out = DIRECT_METHODS[method](x, y).apply(3 * torch.randn(40, 8, dtype=F64, generator=rng))
    torch.testing.assert_close(out[:, 7], y[:, 7].mean().expand(40), rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", FITTED)
def test_a_source_feature_constant_on_the_anchors_does_not_leak(method, rng):
    y = torch.randn(300, 6, dtype=F64, generator=rng)
    x = torch.cat([y @ torch.randn(6, 6, dtype=F64, generator=rng), torch.full((300, 1), 4.0, dtype=F64)], 1)
    translation = DIRECT_METHODS[method](x, y)
    probe = torch.randn(20, 7, dtype=F64, generator=rng)
    moved = probe.clone()
    moved[:, 6] += 10.0  # varies only in the feature that never varied on the anchors
    torch.testing.assert_close(translation.apply(moved), translation.apply(probe), rtol=0, atol=0)


@pytest.mark.parametrize("whitening", [None, 1.0])
def test_irp_reproduces_a_constant_target_feature(whitening, rng):
    x, y = with_constant_feature(rng, 0.0)
    out = IrpProblem.prepare(x, y, whitening).map(0.5).apply(torch.randn(40, 8, dtype=F64, generator=rng))
    assert out[:, 7].abs().max() < 1e-12


def test_procrustes_output_norms_are_not_inflated_by_constant_features(rng):
    """The issue-12 symptom on a rank-deficient target: round-off features must not add norm."""
    x = torch.randn(400, 10, dtype=F64, generator=rng)
    q = torch.linalg.qr(torch.randn(10, 10, dtype=F64, generator=rng))[0]
    y = torch.cat([x @ q, torch.zeros(400, 4, dtype=F64)], 1)
    out = DIRECT_METHODS["procrustes"](x, y).apply(x)
    torch.testing.assert_close(out[:, 10:], torch.zeros(400, 4, dtype=F64), rtol=0, atol=0)
