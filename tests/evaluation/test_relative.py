"""The relative baseline on its own and as a stitching-matrix method; the extended anchor curve."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge.core.anchors import choose_anchor_rows
from hf_latent_bridge.core.metrics import cell_metrics
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.evaluation import (
    RELATIVE,
    RelativeHead,
    anchor_curve,
    dimension_anchor_counts,
    head_predict,
    stitching_matrix,
)
from hf_latent_bridge.evaluation.plots import plot_anchor_curve, plot_anchor_grid
from hf_latent_bridge.models.head import ClassificationHead
from tests.evaluation.test_evaluation import PNG_MAGIC, _digits_spaces, cached_heads


@pytest.fixture(scope="module")
def digits():
    return _digits_spaces()


@pytest.fixture(scope="module")
def rows(digits):
    return choose_anchor_rows(len(digits["train_labels"]), 200, "balanced", labels=digits["train_labels"])


def isometry(x: torch.Tensor, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(x.shape[1], x.shape[1], generator=g, dtype=torch.float64))
    return (0.3 * x.double() @ q + torch.randn(x.shape[1], generator=g, dtype=torch.float64)).float()


def test_relative_head_stitches_an_isometric_space_exactly(digits, rows):
    """Cosines to centred anchors ignore rotation, scale and shift: the source gets the target's decisions."""
    target = digits["train"]["pca"]
    head = RelativeHead.fit(target[rows], target, digits["train_labels"])
    moved_train, moved_test = isometry(target), isometry(digits["test"]["pca"])
    native = head.predict(digits["test"]["pca"])
    stitched = head.predict(moved_test, anchors=moved_train[rows])
    assert torch.equal(native, stitched)
    assert torch.equal(head.on(moved_train[rows]).logits(moved_test).argmax(1), stitched)
    assert float((native == digits["test_labels"]).double().mean()) > 0.85


def test_relative_head_solves_the_full_logistic_problem_in_the_span(digits, rows):
    """The span trick gives the head ClassificationHead.fit finds on all k cosine columns."""
    space = digits["train"]["rff"]
    fast = RelativeHead.fit(space[rows], space, digits["train_labels"], max_iter=3000, tol=1e-10)
    features = RelativeHead.project(space, space[rows])
    full = ClassificationHead.fit(features, digits["train_labels"], max_iter=3000, tol=1e-10)
    test = RelativeHead.project(digits["test"]["rff"], space[rows])
    agreement = (fast.head.predict(test) == full.predict(test)).double().mean()
    assert fast.head.input_dim == 200 and fast.head.fit_report["relative_rank"] <= 41
    assert float(agreement) > 0.99
    assert fast.head.fit_report["loss"] == pytest.approx(full.fit_report["loss"], rel=1e-3)


def test_relative_head_refuses_other_anchor_counts_or_spaces(digits, rows):
    space = digits["train"]["pca"]
    head = RelativeHead.fit(space[rows], space, digits["train_labels"])
    with pytest.raises(BridgeInputError, match="trained on 200"):
        head.predict(digits["test"]["pca"], anchors=space[:50])
    with pytest.raises(BridgeInputError, match="same encoder"):
        head.predict(digits["test"]["rff"])


def test_relative_is_a_matrix_method_with_its_own_heads(digits, rows):
    matrix = stitching_matrix(
        digits["train"],
        digits["test"],
        digits["train_labels"],
        digits["test_labels"],
        methods=["identity", RELATIVE, "irp"],
        anchor_rows=rows,
        head_factory=cached_heads,
        show_progress=False,
    )
    cell = matrix.cell("rff", "pca", RELATIVE)
    assert cell["space"] == "relative" and ("rff", "pca", RELATIVE) not in matrix.bridges
    # re-derived by hand: the same head factory on the target's cosines, the source's cosines in
    head = matrix.relative_heads["pca"]
    translated = RelativeHead.project(digits["test"]["rff"], digits["train"]["rff"][rows])
    reference = RelativeHead.project(digits["test"]["pca"], digits["train"]["pca"][rows])
    expected = cell_metrics(translated, reference, head_predict(head.head, translated), digits["test_labels"])
    for metric, value in expected.items():
        assert cell[metric] == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert 0.3 < cell["accuracy"] < matrix.extra["relative_native_accuracy"]["pca"]
    assert "relative" in matrix.to_markdown() and matrix.methods == ["identity", RELATIVE, "irp"]


def test_the_default_relative_head_is_the_fast_exact_one(digits, rows):
    matrix = stitching_matrix(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        methods=[RELATIVE], anchor_rows=rows, head_factory=cached_heads, show_progress=False,
    )  # fmt: skip
    default = stitching_matrix(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        methods=[RELATIVE], anchor_rows=rows, show_progress=False,
    )  # fmt: skip
    a, b = matrix.cell("pca", "rff", RELATIVE), default.cell("pca", "rff", RELATIVE)
    assert a["accuracy"] == pytest.approx(b["accuracy"], abs=0.02)
    assert "relative_rank" in default.relative_heads["rff"].head.fit_report


def test_anchor_curve_over_strategies_ensembles_and_methods(digits, tmp_path):
    curve = anchor_curve(
        digits["train"],
        digits["test"],
        digits["train_labels"],
        digits["test_labels"],
        pairs=[("rff", "pca")],
        anchor_counts=dimension_anchor_counts,
        methods=["irp", RELATIVE],
        anchor_strategy=["uniform", "farthest"],
        ensembles=[1, 3],
        head_factory=cached_heads,
        show_progress=False,
    )
    counts = dimension_anchor_counts(24, len(digits["train_labels"]))
    assert counts == [6, 12, 24, 48, 96, 192, 384, 768, 1257]
    points = curve["points"]
    assert len(points) == len(counts) * 2 * (2 + 1)  # irp x 2 ensembles, relative once
    assert {p["ensemble"] for p in points if p["method"] == RELATIVE} == {1}
    for p in points:
        assert {"accuracy", "macro_f1", "cosine", "mse", "top1_retrieval", "anchor_strategy"} <= set(p)
    irp = sorted((p for p in points if p["method"] == "irp" and p["ensemble"] == 1
                  and p["anchor_strategy"] == "uniform"), key=lambda p: p["num_anchors"])  # fmt: skip
    assert irp[-1]["cosine"] > irp[0]["cosine"] and irp[-1]["top1_retrieval"] > irp[0]["top1_retrieval"]
    assert curve["anchor_strategy"] == ["uniform", "farthest"] and curve["ensembles"] == [1, 3]
    assert plot_anchor_curve(curve, tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
    grid = plot_anchor_grid({**curve, "target_dims": {"pca": 24}}, tmp_path / "grid.png", title="digits")
    assert grid.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"methods": ["warp"]}, "unknown method"),
        ({"anchor_strategy": ["uniform", "nearest"]}, "unknown anchor strategy"),
        ({"ensembles": [0]}, "ensemble sizes"),
    ],
)
def test_bad_curve_options_are_refused(digits, options, match):
    with pytest.raises(BridgeInputError, match=match):
        anchor_curve(
            digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
            pairs=[("rff", "pca")], anchor_counts=[50], **options,
        )  # fmt: skip
