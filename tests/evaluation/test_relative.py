"""The relative baseline (RelativeHead) on its own and as a stitching-matrix method."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge import select_anchors
from hf_latent_bridge.core.metrics import cell_metrics
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.evaluation import RELATIVE, RelativeHead, head_predict, stitching_matrix
from hf_latent_bridge.models.head import ClassificationHead


@pytest.fixture(scope="module")
def rows(digits):
    return select_anchors("balanced", 100, labels=digits["train_labels"])


@pytest.fixture(scope="module")
def pca_head(digits, rows):
    """The relative head of the PCA space, on the cosines to its 100 anchors."""
    return RelativeHead.fit(digits["train"]["pca"][rows], digits["train"]["pca"], digits["train_labels"])


def isometry(x: torch.Tensor, seed: int = 3) -> torch.Tensor:
    """``x`` rotated, scaled and shifted."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(x.shape[1], x.shape[1], generator=g, dtype=torch.float64))
    return (0.3 * x.double() @ q + torch.randn(x.shape[1], generator=g, dtype=torch.float64)).float()


def test_an_isometric_space_gets_exactly_the_decisions_of_the_space_the_head_was_trained_in(
    digits, rows, pca_head
):
    native = pca_head.predict(digits["test"]["pca"])
    moved = isometry(digits["test"]["pca"]), isometry(digits["train"]["pca"])[rows]
    assert torch.equal(pca_head.predict(moved[0], anchors=moved[1]), native)
    assert float((native == digits["test_labels"]).double().mean()) > 0.85


def test_the_head_solves_the_full_logistic_problem_in_the_span_of_the_cosines(digits, rows):
    space = digits["train"]["rff"]
    fast = RelativeHead.fit(space[rows], space, digits["train_labels"], max_iter=3000, tol=1e-10)
    features = RelativeHead.project(space, space[rows])
    full = ClassificationHead.fit(features, digits["train_labels"], max_iter=3000, tol=1e-10)
    test = RelativeHead.project(digits["test"]["rff"], space[rows])
    assert fast.head.input_dim == 100 and fast.head.config.fit_report["relative_rank"] <= 41  # rank <= d + 1
    assert float((fast.head.predict(test) == full.predict(test)).double().mean()) > 0.99
    assert fast.head.config.fit_report["loss"] == pytest.approx(full.config.fit_report["loss"], rel=1e-3)


def test_other_anchors_or_another_space_are_refused(digits, pca_head):
    with pytest.raises(BridgeInputError, match="trained on 100"):
        pca_head.predict(digits["test"]["pca"], anchors=digits["train"]["pca"][:50])
    with pytest.raises(BridgeInputError, match="both must come from the same encoder"):
        pca_head.predict(digits["test"]["rff"])


def test_relative_is_a_matrix_method_scored_in_the_relative_space(digits, rows, head_factory):
    matrix = stitching_matrix(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        methods=["identity", RELATIVE, "irp"], anchor_rows=rows, head_factory=head_factory, show_progress=False,
    )  # fmt: skip
    cell = matrix.cell("rff", "pca", RELATIVE)
    assert cell["space"] == "relative" and ("rff", "pca", RELATIVE) not in matrix.bridges
    # by hand: the head factory's head on the target's cosines, applied to the source's cosines
    head = matrix.relative_heads["pca"]
    translated = RelativeHead.project(digits["test"]["rff"], digits["train"]["rff"][rows])
    reference = RelativeHead.project(digits["test"]["pca"], digits["train"]["pca"][rows])
    expected = cell_metrics(translated, reference, head_predict(head.head, translated), digits["test_labels"])
    assert cell == {**cell, **{m: pytest.approx(v, rel=1e-6, abs=1e-9) for m, v in expected.items()}}
    assert 0.3 < cell["accuracy"] < matrix.extra["relative_native_accuracy"]["pca"]
    assert "relative" in matrix.to_markdown() and matrix.methods == ["identity", RELATIVE, "irp"]
