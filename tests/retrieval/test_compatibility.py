"""The compatibility estimate tells a related pair of spaces from an unrelated one, and gates publishing."""

from __future__ import annotations

import warnings

import pytest
import torch

from hf_latent_bridge import BridgeInputError
from hf_latent_bridge.retrieval import estimate_compatibility


def spaces(related: bool, n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 24, generator=g) @ torch.diag(torch.linspace(3, 0.3, 24))  # clustered, anisotropic
    rotation = torch.linalg.qr(torch.randn(24, 24, generator=g))[0]
    y = x @ rotation + 0.1 * torch.randn(n, 24, generator=g) if related else torch.randn(n, 24, generator=g)
    return x, y


def test_a_rotated_space_is_kept_and_an_unrelated_one_is_refused():
    good = estimate_compatibility(*spaces(related=True))
    bad = estimate_compatibility(*spaces(related=False))
    assert good.retention > 0.6 > 0.2 > bad.retention
    assert good.self_retrieval > 0.9 and good.cosine > 0.9
    assert good.calibration == 300 and "300 calibration texts" in good.summary()
    good.check(min_retention=0.5)
    with pytest.raises(BridgeInputError, match="below the 50.0% you set: keep the old model or re-index"):
        bad.check(min_retention=0.5)


def test_unbridged_agreement_is_the_encoders_own():
    x, y = spaces(related=True)
    assert estimate_compatibility(x, x.clone()).native_agreement == 1.0
    assert estimate_compatibility(x, y).native_agreement < 1.0


def test_too_small_a_sample_names_the_size_needed():
    x, y = spaces(related=True, n=60)
    with pytest.raises(BridgeInputError, match="60 calibration pairs are too few.*at least 100"):
        estimate_compatibility(x, y)


def test_an_underdetermined_linear_bridge_is_flagged_as_optimistic():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 160, generator=g)
    y = x @ torch.randn(160, 32, generator=g)  # exactly linear, from more dimensions than pairs
    with pytest.warns(UserWarning, match="120 calibration pairs, no more than the source's 160 dimensions"):
        assert estimate_compatibility(x, y).method == "linear"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*calibration pairs")
        assert estimate_compatibility(x, y, method="procrustes").method == "procrustes"
