"""The stitching matrix and the anchor curve on the digits stand-ins (tests/evaluation/conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from hf_latent_bridge import LatentBridge, select_anchors
from hf_latent_bridge.core.metrics import METRICS, accuracy, cell_metrics, macro_f1
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.evaluation import (
    NATIVE,
    RELATIVE,
    anchor_curve,
    dimension_anchor_counts,
    head_predict,
    stitching_matrix,
)
from hf_latent_bridge.evaluation.plots import plot_anchor_curve
from tests.evaluation.conftest import PNG_MAGIC


def _matrix(digits, head_factory, **options):
    options = {"methods": ["identity", "procrustes", "irp"], "num_anchors": 400, **options}
    return stitching_matrix(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        head_factory=head_factory, show_progress=False, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def matrix(digits, head_factory):
    return _matrix(digits, head_factory, chunk_size=128)


@settings(deadline=None)  # timing varies on a loaded machine; the property does not
@given(
    labels=st.lists(st.integers(0, 5), min_size=1, max_size=60).flatmap(
        lambda y: st.tuples(st.just(y), st.lists(st.integers(0, 6), min_size=len(y), max_size=len(y)))
    )
)
def test_accuracy_and_macro_f1_are_scikit_learns(labels):
    truth, predicted = labels
    assert accuracy(predicted, truth) == pytest.approx(float(np.mean(np.equal(predicted, truth))))
    assert macro_f1(predicted, truth) == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-12)


def test_cell_metrics_score_a_space_against_itself_perfectly_and_a_shuffle_poorly(digits):
    target, labels = digits["test"]["rff"], digits["test_labels"]
    perfect = cell_metrics(target, target, labels, labels)
    assert perfect == {
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "cosine": pytest.approx(1.0),
        "mse": 0.0,
        "top1_retrieval": 1.0,
    }
    shuffled = cell_metrics(
        target[torch.randperm(len(target), generator=torch.Generator().manual_seed(1))],
        target,
        labels,
        labels,
    )
    assert shuffled["top1_retrieval"] < 0.02 and shuffled["mse"] > 0 and shuffled["cosine"] < 0.999


def test_every_cell_is_the_hand_computed_translation_scored_by_the_targets_head(matrix, digits, head_factory):
    train, test, y_train, y_test = (
        digits["train"],
        digits["test"],
        digits["train_labels"],
        digits["test_labels"],
    )
    assert matrix.encoders == ["pca", "rff"] and len(matrix.cells) == 2 + 2 * 3
    assert matrix.num_test == matrix.num_gathered == len(y_test) and matrix.num_anchors == 400
    rows = select_anchors("balanced", 400, labels=y_train)
    for s, t in (("pca", "rff"), ("rff", "pca")):
        head = head_factory(train[t], y_train, None)
        native = matrix.cell(t, t, NATIVE)
        assert native["accuracy"] == pytest.approx(accuracy(head_predict(head, test[t]), y_test))
        assert native["accuracy"] > 0.85
        assert native["cosine"] == pytest.approx(1.0) and native["top1_retrieval"] == 1.0
        for method in ("procrustes", "irp"):
            bridge = LatentBridge.fit(train[s][rows], train[t][rows], method, head=head)  # as the matrix does
            translated = bridge.translate(test[s])
            expected = cell_metrics(translated, test[t], head_predict(head, translated), y_test)
            got = matrix.cell(s, t, method)
            assert got == {**got, **{m: pytest.approx(expected[m], rel=1e-6, abs=1e-9) for m in METRICS}}
            assert got["accuracy"] > 0.6  # far above chance (0.1): the translation works on these spaces
        identity = matrix.cell(s, t, "identity")
        assert all(identity[m] is None for m in METRICS) and "dimensions differ" in identity["note"]


def test_the_matrix_does_not_depend_on_how_rows_are_chunked(matrix, digits, head_factory):
    other = _matrix(digits, head_factory, chunk_size=37)
    for a, b in zip(matrix.cells, other.cells, strict=True):
        assert {m: a[m] for m in METRICS} == {m: pytest.approx(b[m], rel=1e-9, abs=1e-12) for m in METRICS}


def test_the_matrix_is_saved_as_json_markdown_and_a_heatmap(matrix, tmp_path):
    paths = matrix.save(tmp_path)
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(matrix.to_dict()))
    markdown = paths["markdown"].read_text()
    assert "| pca → rff |" in markdown and "| rff → pca |" in markdown and "n/a" in markdown
    assert paths["heatmap"].read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "heatmap.png",
        "stitching_matrix.json",
        "stitching_matrix.md",
    ]


def test_the_curve_over_counts_strategies_ensembles_and_methods(digits, head_factory, tmp_path):
    assert dimension_anchor_counts(24, 1257) == [
        6,
        12,
        24,
        48,
        96,
        192,
        384,
        768,
        1257,
    ]  # from d / 4, doubling
    curve = anchor_curve(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        pairs=[("rff", "pca")], anchor_counts=lambda d, n: dimension_anchor_counts(d, n)[:3:2],  # 6, 24
        methods=["irp", RELATIVE], anchor_strategy=["uniform", "farthest"], ensembles=[1, 3],
        head_factory=head_factory, show_progress=False,
    )  # fmt: skip
    points = curve["points"]
    assert len(points) == 2 * 2 * (2 + 1)  # 2 counts, 2 strategies; irp with 2 ensemble sizes, relative once
    assert {p["ensemble"] for p in points if p["method"] == RELATIVE} == {1}
    assert all(set(METRICS) | {"anchor_strategy", "num_anchors"} <= set(p) for p in points)
    irp = sorted(
        (p for p in points if (p["method"], p["ensemble"], p["anchor_strategy"]) == ("irp", 1, "uniform")),
        key=lambda p: p["num_anchors"],
    )
    assert [p["num_anchors"] for p in irp] == [6, 24]
    assert irp[-1]["accuracy"] > irp[0]["accuracy"] and irp[-1]["top1_retrieval"] > irp[0]["top1_retrieval"]
    assert curve["anchor_strategy"] == ["uniform", "farthest"] and set(curve["native_accuracy"]) == {"pca"}
    assert plot_anchor_curve(curve, tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
    few = anchor_curve(
        digits["train"], digits["test"], digits["train_labels"], digits["test_labels"],
        pairs=[("rff", "pca")], anchor_counts=[1, 50, 10**6], methods=["irp"], head_factory=head_factory,
    )  # fmt: skip
    assert [p["num_anchors"] for p in few["points"]] == [50]  # counts outside 2..num_train are skipped


def _on_digits(function, digits, *, train=None, test_labels=None, **options):
    test_labels = digits["test_labels"] if test_labels is None else test_labels
    return function(train or digits["train"], digits["test"], digits["train_labels"], test_labels, **options)


CURVE = {"pairs": [("rff", "pca")], "anchor_counts": [50]}
REFUSED = {  # case -> (the call on the digits stand-ins, what the error says)
    "unknown method": (lambda d: _on_digits(stitching_matrix, d, methods=["warp"]), "unknown method"),
    "too many anchors": (
        lambda d: _on_digits(stitching_matrix, d, num_anchors=5000),
        "cannot select 5000 anchors",
    ),
    "unknown strategy": (
        lambda d: _on_digits(stitching_matrix, d, anchor_strategy="random"),
        "strategy must be",
    ),
    "one encoder": (
        lambda d: _on_digits(stitching_matrix, d, train={"pca": torch.zeros(3, 2)}),
        "different encoders",
    ),
    "misaligned labels": (
        lambda d: _on_digits(stitching_matrix, d, test_labels=torch.zeros(3, dtype=torch.long)),
        "embed every row of the split",
    ),
    "non-finite embeddings": (
        lambda d: _on_digits(
            stitching_matrix, d, train={**d["train"], "pca": d["train"]["pca"] * float("nan")}
        ),
        "NaN",
    ),
    "curve method": (lambda d: _on_digits(anchor_curve, d, **CURVE, methods=["warp"]), "unknown method"),
    "curve strategy": (
        lambda d: _on_digits(anchor_curve, d, **CURVE, anchor_strategy=["uniform", "nearest"]),
        "anchor_strategy must be",
    ),
    "curve ensemble": (
        lambda d: _on_digits(anchor_curve, d, **CURVE, ensembles=[0]),
        "ensemble size must be",
    ),
    "curve pair": (
        lambda d: _on_digits(anchor_curve, d, pairs=[("rff", "bert")], anchor_counts=[50]),
        "names an encoder not evaluated",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_evaluations_are_refused_before_any_fit(case, digits):
    call, match = REFUSED[case]
    with pytest.raises(BridgeInputError, match=match):
        call(digits)
