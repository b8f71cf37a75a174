"""The one table of option rules, which configs, fit, the workflow and the CLI all rely on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hf_latent_bridge.core.options import RULES, check
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.models.configs import LatentBridgeConfig


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_are_accepted_exactly_within_their_bounds(value):
    for name, inside in (
        ("ridge", value >= 0),
        ("output_norm", value > 0),
        ("whitening", value > 0),
        ("ensemble_fraction", 0 < value <= 1),
    ):
        if math.isfinite(value) and inside:
            assert check(name, value) == value
        else:
            with pytest.raises(BridgeInputError, match=f"^{name} must be"):
                check(name, value)


@pytest.mark.parametrize("value", [True, "3", None, 0, -2, 2.5, float("inf"), 1025, [3]])
def test_counts_refuse_what_is_not_a_whole_number_in_range(value):
    with pytest.raises(BridgeInputError, match=r"ensemble must be an integer >= 1 and <= 1024, got"):
        check("ensemble", value)


@pytest.mark.parametrize("scalar", [np.float32(0.25), np.float64(0.25), torch.tensor(0.25), 0.25])
def test_numpy_and_torch_scalars_become_python_numbers(scalar):
    assert type(check("ridge", scalar)) is float and check("ridge", scalar) == 0.25
    assert check("ensemble", np.int64(3)) == 3 and type(check("ensemble", torch.tensor(3))) is int
    assert check("batch_size", 4.0) == 4 and type(check("batch_size", 4.0)) is int


def test_keywords_and_the_name_shown():
    assert check("ridge", "auto") == "auto" and check("output_norm", "none") == "none"
    assert check("whitening", None) is None and check("top_k", None) is None
    with pytest.raises(BridgeInputError, match="--method must be 'auto' or 'irp' or 'procrustes'.*got 'cca'"):
        check("method", "cca", "--method")
    assert all(rule.describe() for rule in RULES.values())


def test_a_config_checks_its_fields_once_when_built():
    config = LatentBridgeConfig(ridge=np.float32(2.0), ensemble=np.int64(3), source_dim=4.0)
    assert (config.ridge, config.ensemble, config.source_dim) == (2.0, 3, 4) and type(config.ensemble) is int
    assert LatentBridgeConfig().source_dim is None  # unset shapes stay unset
    for bad in (
        {"ridge": float("inf")},
        {"ensemble": 2**31},
        {"method": "cca"},
        {"ridge": None},
        {"dtype": "int64"},
    ):
        with pytest.raises(BridgeInputError, match=next(iter(bad))):
            LatentBridgeConfig(**bad)
