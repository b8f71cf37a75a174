"""The scale-invariance check on heads whose behaviour under rescaling is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from hf_latent_bridge.core.scale_invariance import (
    DEFAULT_FACTORS,
    check_head,
)
from hf_latent_bridge.errors import BridgeInputError


@pytest.fixture(scope="module")
def data():
    """Three Gaussian classes around a far-away mean, with a linear head fitted by scikit-learn."""
    g = torch.Generator().manual_seed(0)
    centre = 5.0 * torch.randn(16, generator=g, dtype=torch.float64)
    means = 2.0 * torch.randn(3, 16, generator=g, dtype=torch.float64)
    labels = torch.arange(600) % 3
    x = centre + means[labels] + torch.randn(600, 16, generator=g, dtype=torch.float64)
    return x, labels


class Linear:
    """logits = x W^T + b, as a plain callable."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.double() @ self.weight.T + self.bias


def centred_head(x: torch.Tensor, labels: torch.Tensor) -> Linear:
    """Class means of the centred data as weights, bias = -W mean: equal logits at the mean."""
    mean = x.mean(0)
    weight = torch.stack([(x[labels == c] - mean).mean(0) for c in range(3)])
    return Linear(weight, -weight @ mean)


def test_a_head_with_equal_logits_at_the_centre_is_exactly_invariant(data):
    x, labels = data
    report = check_head(centred_head(x, labels), x, labels)
    assert report.centre == "mean" and report.num_samples == 600 and report.num_classes == 3
    assert report.invariant and report.fully_invariant and report.irp_safe
    assert report.verdict.startswith("scale-invariant about the mean over 0.1-10x")
    for trial in report.trials:
        assert trial.agreement == 1.0 and trial.accuracy == report.accuracy
        assert trial.homogeneity == pytest.approx(1.0)  # margins scale exactly with the factor
        if trial.kind == "factor":
            assert trial.margin_ratio == pytest.approx(trial.factor)
    names = [t.name for t in report.trials]
    assert names[: len(DEFAULT_FACTORS)] == [f"x{a:g}" for a in DEFAULT_FACTORS]
    assert names[-3:-1] == ["random 0.5-2x", "random 0.1-10x"] and names[-1].endswith("(IRP)")


def test_the_same_head_is_not_invariant_about_the_origin(data):
    """Scaling raw embeddings moves them along the mean direction: the centre of the check matters."""
    x, labels = data
    report = check_head(centred_head(x, labels), x, labels, centre="origin")
    assert report.centre == "origin"
    assert not report.invariant and not report.fully_invariant
    x01 = next(t for t in report.trials if t.name == "x0.1")
    assert x01.agreement < 0.6 and x01.accuracy < report.accuracy - 0.2
    assert report.verdict.startswith("NOT scale-invariant about the origin")


def test_a_bias_that_does_not_cancel_fails_at_small_factors_only(data):
    """A head that favours class 0 at the centre: small factors collapse onto it, large ones do not."""
    x, labels = data
    head = centred_head(x, labels)
    scores = head(x).sort(dim=1).values
    shift = float((scores[:, -1] - scores[:, -2]).median())  # a typical margin
    biased = Linear(head.weight, head.bias + torch.tensor([shift, 0.0, 0.0], dtype=torch.float64))
    report = check_head(biased, x, labels)
    by_name = {t.name: t for t in report.trials}
    assert by_name["x0.1"].agreement < 0.9 and not by_name["x0.1"].passed
    assert by_name["x10"].agreement > by_name["x0.1"].agreement
    assert by_name["x2"].margin_ratio != pytest.approx(2.0, rel=1e-3)  # not homogeneous any more


def test_equalising_norms_is_harmless_when_norms_are_already_equal(data):
    x, labels = data
    head = centred_head(x, labels)
    biased = Linear(head.weight, head.bias + torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64))
    centred = x - x.mean(0)
    equal = x.mean(0) + 4.0 * centred / torch.linalg.vector_norm(centred, dim=1, keepdim=True)
    assert torch.linalg.vector_norm(equal - x.mean(0), dim=1) == pytest.approx(torch.full((600,), 4.0))
    report = check_head(biased, equal, labels, centre=x.mean(0), factors=(), random_ranges=())
    (trial,) = report.trials
    assert trial.kind == "equalize" and trial.norm == pytest.approx(4.0)
    assert trial.factor_low == pytest.approx(1.0) and trial.factor_high == pytest.approx(1.0)
    assert trial.agreement == 1.0 and report.irp_safe
    assert report.invariant is None and report.verdict.startswith("setting every norm to 4")


def test_logits_predict_proba_and_callables_agree():
    """scikit-learn's log-probabilities differ from its logits by a constant per row: same margins."""
    g = np.random.default_rng(0)
    x = g.normal(size=(300, 8)) + 3.0
    y = np.arange(300) % 4
    model = LogisticRegression(max_iter=500).fit(x, y)
    by_logits = check_head(model, x, y)  # decision_function

    class Proba:
        predict_proba = staticmethod(model.predict_proba)

    by_proba = check_head(Proba(), x, y)
    for a, b in zip(by_logits.trials, by_proba.trials, strict=True):
        assert a.agreement == b.agreement and a.accuracy == b.accuracy
        assert a.margin_ratio == pytest.approx(b.margin_ratio, rel=1e-6)


def test_a_torch_mlp_runs_in_batches_without_gradients(data):
    x, labels = data
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double()
    whole = check_head(mlp, x, labels, batch_size=4096)
    batched = check_head(mlp, x, labels, batch_size=37)
    assert [t.agreement for t in whole.trials] == [t.agreement for t in batched.trials]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"labels": torch.zeros(5)}, "pass one per row"),
        ({"factors": (0.0,)}, "finite numbers > 0"),
        ({"random_ranges": ((2.0, 1.0),)}, "0 < low < high"),
        ({"centre": "median"}, "centre must be"),
        ({"centre": torch.zeros(3)}, "3 values"),
        ({"working_range": (2.0, 3.0)}, "must contain 1"),
        ({"equalize_norm": -1.0}, "equalize_norm"),
    ],
)
def test_bad_options_are_refused(data, options, match):
    x, labels = data
    with pytest.raises(BridgeInputError, match=match):
        check_head(centred_head(x, labels), x, **options)


def test_a_head_returning_the_wrong_shape_is_refused(data):
    x, _ = data
    with pytest.raises(BridgeInputError, match="num_classes"):
        check_head(lambda e: e[:, 0], x)
    with pytest.raises(BridgeInputError, match="callable"):
        check_head(object(), x)
