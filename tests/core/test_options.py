"""The option rules shared by configs, fit and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hf_latent_bridge.core.options import (
    MAX_ENSEMBLE,
    check_fraction,
    check_method,
    check_positive_int,
    check_ridge,
    check_scale,
    check_whitening,
)
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.models.configs import LatentBridgeConfig


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_ridge_accepts_exactly_the_finite_non_negative_numbers(value):
    if math.isfinite(value) and value >= 0:
        assert check_ridge(value) == value
    else:
        with pytest.raises(BridgeInputError, match="ridge must be 'auto' or a finite number >= 0"):
            check_ridge(value)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_scale_and_whitening_accept_exactly_the_finite_positive_numbers(value):
    for check in (check_scale, check_whitening):
        if math.isfinite(value) and value > 0:
            assert check(value) == value
        else:
            with pytest.raises(BridgeInputError, match="finite"):
                check(value)


@pytest.mark.parametrize("scalar", [np.float32(0.25), np.float64(0.25), torch.tensor(0.25), 0.25])
def test_numpy_and_torch_scalars_become_python_floats(scalar):
    assert type(check_ridge(scalar)) is float and check_ridge(scalar) == 0.25
    assert type(check_fraction("f", scalar)) is float


@pytest.mark.parametrize("value", [True, "3", None, 0, -2, 2.5, float("inf"), MAX_ENSEMBLE + 1, [3]])
def test_positive_int_refuses_what_is_not_a_count(value):
    with pytest.raises(BridgeInputError, match="ensemble must be"):
        check_positive_int("ensemble", value, MAX_ENSEMBLE)


def test_keywords_and_their_option_names():
    assert check_ridge("auto") == "auto" and check_scale("none") == "none" and check_whitening(None) is None
    with pytest.raises(BridgeInputError, match="unknown --method 'cca'; choose one of irp"):
        check_method("cca", "--method")


def test_the_config_runs_the_same_checks_and_normalises():
    config = LatentBridgeConfig(ridge=np.float32(2.0), ensemble=np.int64(3), source_dim=4.0)
    assert (config.ridge, config.ensemble, config.source_dim) == (2.0, 3, 4)
    assert type(config.ensemble) is int
    for bad in ({"ridge": float("inf")}, {"ensemble": 2**31}, {"method": "cca"}, {"ensemble_fraction": 0}):
        with pytest.raises(BridgeInputError):
            LatentBridgeConfig(**bad)
