"""Every kind of bad input is refused with a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_latent_bridge import BridgeInputError, LatentBridge
from hf_latent_bridge.core.anchors import select_anchors


@pytest.fixture
def anchors(rng):
    return torch.randn(40, 6, generator=rng), torch.randn(40, 8, generator=rng)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("side", [0, 1])
def test_non_finite_anchors(anchors, bad, side):
    pair = [a.clone() for a in anchors]
    pair[side][3, 2] = bad
    with pytest.raises(BridgeInputError, match=r"NaN or Inf \(rows \[3\]\).*drop or repair"):
        LatentBridge.fit(*pair)


@pytest.mark.parametrize("method", ["irp", "procrustes"])
def test_non_finite_inputs_to_translate(anchors, method):
    bridge = LatentBridge.fit(*anchors, method=method)
    x = torch.randn(5, 6)
    x[4, 0] = float("nan")
    with pytest.raises(BridgeInputError, match=r"NaN or Inf.*\[4\]"):
        bridge.translate(x)


def test_finite_inputs_that_overflow_the_bridge_dtype(anchors):
    bridge = LatentBridge.fit(*anchors)
    with pytest.raises(BridgeInputError, match="overflowed torch.float32.*float64"):
        bridge.translate(torch.full((2, 6), 3e38))


@pytest.mark.parametrize("shape", [(40,), (40, 6, 1), (0, 6)])
def test_wrong_rank_or_empty_anchors(anchors, shape):
    with pytest.raises(BridgeInputError, match="2-D|empty"):
        LatentBridge.fit(torch.randn(shape), anchors[1])


def test_wrong_dimension_for_translate(anchors):
    bridge = LatentBridge.fit(*anchors)
    with pytest.raises(BridgeInputError, match="dimension 7 but 6 was expected.*encoder"):
        bridge.translate(torch.randn(3, 7))
    with pytest.raises(BridgeInputError, match="2-D"):
        bridge.translate(torch.randn(2, 3, 6))


def test_different_anchor_counts(anchors):
    with pytest.raises(BridgeInputError, match="40 rows but target_anchors has 39.*parallel"):
        LatentBridge.fit(anchors[0], anchors[1][:39])


def test_fewer_than_two_anchors():
    with pytest.raises(BridgeInputError, match="at least 2 anchors"):
        LatentBridge.fit(torch.randn(1, 4), torch.randn(1, 4))


def test_fewer_anchors_than_target_dimension_warns(rng):
    with pytest.warns(UserWarning, match="confined to the span.*at least 9 anchors"):
        LatentBridge.fit(torch.randn(5, 4, generator=rng), torch.randn(5, 8, generator=rng))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "cca"}, "method must be 'auto' or 'irp' or"),
        ({"ridge": -1.0}, "ridge must be"),
        ({"ridge": "lots"}, "ridge must be"),
        ({"output_norm": "max"}, "output_norm must be"),
        ({"whitening": -1.0}, "whitening"),
        ({"ridge": float("inf")}, "ridge must be"),
        ({"ridge": None}, "ridge must be"),
        ({"output_norm": float("inf")}, "output_norm must be"),
        ({"whitening": float("inf")}, "whitening"),
        ({"ensemble": 0}, "ensemble must be"),
        ({"ensemble": 2**31}, "ensemble must be an integer >= 1 and <= 1024"),
        ({"ensemble": 2.5}, "ensemble must be"),
        ({"ensemble": 2, "ensemble_fraction": 1.5}, "ensemble_fraction"),
    ],
)
def test_bad_options(anchors, options, message):
    with pytest.raises(BridgeInputError, match=message):
        LatentBridge.fit(*anchors, **options)


def test_numpy_and_torch_scalars_are_options_like_python_numbers(anchors):
    import numpy as np

    bridge = LatentBridge.fit(
        *anchors, ridge=np.float32(0.5), output_norm=torch.tensor(2.0), ensemble=np.int64(1)
    )
    assert bridge.config.ridge == 0.5 and type(bridge.config.ridge) is float
    assert bridge.config.output_norm == 2.0 and bridge.config.ensemble == 1


def test_non_tensor_input(anchors):
    with pytest.raises(BridgeInputError, match="must be a tensor or an array"):
        LatentBridge.fit("not an array", anchors[1])
    with pytest.raises(BridgeInputError, match="complex"):
        LatentBridge.fit(np.ones((40, 6), dtype=np.complex64), anchors[1].numpy())


@pytest.mark.parametrize(
    "strategy, kwargs, message",
    [
        ("uniform", {"num_rows": 10}, "cannot select 20 anchors from 10 rows"),
        ("balanced", {}, "needs labels"),
        ("farthest", {}, "needs embeddings"),
        ("kmeans", {"num_rows": 100}, "strategy must be"),
    ],
)
def test_bad_anchor_selection(strategy, kwargs, message):
    with pytest.raises(BridgeInputError, match=message):
        select_anchors(strategy, 20, **kwargs)
