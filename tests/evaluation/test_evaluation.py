"""Stitching metrics, matrices and anchor curves on a real small data set (scikit-learn digits).

The two "encoders" are honest stand-ins that run in milliseconds: PCA to 24 dimensions and a seeded
random-feature map (tanh of a random projection to 40 dimensions) of the 8x8 digit pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.core.anchor_set import fingerprint
from hf_latent_bridge.core.anchors import choose_anchor_rows
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.evaluation import (
    METRICS,
    NATIVE,
    accuracy,
    anchor_curve,
    cell_metrics,
    default_head_factory,
    head_predict,
    macro_f1,
    stitching_matrix,
)
from hf_latent_bridge.evaluation.plots import plot_anchor_curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEADS: dict[str, object] = {}


def cached_heads(embeddings, labels, id2label):
    """The default head, trained once per distinct training set in this module (head fits dominate runtime)."""
    key = fingerprint([embeddings, torch.as_tensor(labels)])
    if key not in _HEADS:
        _HEADS[key] = default_head_factory(embeddings, labels, id2label)
    return _HEADS[key]


def _digits_spaces() -> dict[str, object]:
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float64) / 16.0
    y = torch.tensor(digits.target)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=digits.target, random_state=0
    )
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    mean = x[train_idx].mean(0)
    _, _, vh = torch.linalg.svd(x[train_idx] - mean, full_matrices=False)
    pca = ((x - mean) @ vh[:24].T).float()
    g = torch.Generator().manual_seed(7)
    w, b = (
        torch.randn(64, 40, generator=g, dtype=torch.float64),
        torch.rand(40, generator=g, dtype=torch.float64),
    )
    rff = torch.tanh(x @ w / 4 + b).float()
    return {
        "train": {"pca": pca[train_idx], "rff": rff[train_idx]},
        "test": {"pca": pca[test_idx], "rff": rff[test_idx]},
        "train_labels": y[train_idx],
        "test_labels": y[test_idx],
    }


@pytest.fixture(scope="module")
def digits() -> dict[str, object]:
    return _digits_spaces()


def digits_matrix(digits, chunk_size: int):
    return stitching_matrix(
        digits["train"],
        digits["test"],
        digits["train_labels"],
        digits["test_labels"],
        methods=["identity", "procrustes", "irp"],
        num_anchors=400,
        chunk_size=chunk_size,
        head_factory=cached_heads,
        show_progress=False,
    )


@pytest.fixture(scope="module")
def matrix(digits):
    return digits_matrix(digits, chunk_size=128)


# ------------------------------------------------------------------------------------------- metrics
def test_accuracy_and_macro_f1_match_scikit_learn():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (300,), generator=g)
    predicted = torch.where(
        torch.rand(300, generator=g) < 0.6, labels, torch.randint(0, 7, (300,), generator=g)
    )
    assert accuracy(predicted, labels) == pytest.approx(float((predicted == labels).double().mean()))
    assert macro_f1(predicted, labels) == pytest.approx(
        f1_score(labels, predicted, average="macro"), abs=1e-12
    )


def test_cell_metrics_of_a_space_with_itself_are_perfect(digits):
    target = digits["test"]["pca"]
    labels = digits["test_labels"]
    metrics = cell_metrics(target, target, labels, labels)
    assert metrics == {
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "cosine": pytest.approx(1.0),
        "mse": 0.0,
        "top1_retrieval": 1.0,
    }


def test_cell_metrics_on_shuffled_rows_lose_retrieval_but_not_cosine_scale(digits):
    target = digits["test"]["rff"]
    labels = digits["test_labels"]
    shuffled = target[torch.randperm(len(target), generator=torch.Generator().manual_seed(1))]
    metrics = cell_metrics(shuffled, target, labels, labels)
    assert metrics["top1_retrieval"] < 0.02
    assert metrics["mse"] > 0
    assert metrics["cosine"] < 0.999


def test_metric_inputs_of_different_length_are_refused():
    with pytest.raises(BridgeInputError, match="length"):
        accuracy(torch.zeros(3), torch.zeros(4))


# ------------------------------------------------------------------------------------------- matrix
def test_matrix_has_every_cell_and_native_diagonal(matrix, digits):
    assert matrix.encoders == ["pca", "rff"]
    assert matrix.num_test == len(digits["test_labels"]) == matrix.num_gathered
    assert matrix.num_anchors == 400
    assert len(matrix.cells) == 2 + 2 * 3
    for name in matrix.encoders:
        head = cached_heads(digits["train"][name], digits["train_labels"], None)
        native = accuracy(head_predict(head, digits["test"][name]), digits["test_labels"])
        cell = matrix.cell(name, name, NATIVE)
        assert cell["accuracy"] == pytest.approx(native)
        assert cell["cosine"] == pytest.approx(1.0) and cell["top1_retrieval"] == 1.0
        assert native > 0.85
    identity = matrix.cell("pca", "rff", "identity")
    assert all(identity[m] is None for m in METRICS) and "dimensions differ" in identity["note"]


def test_matrix_cells_equal_a_hand_computed_translation(matrix, digits):
    """The IRP cell re-derived by hand: same anchors, same bridge, same head, same metrics."""
    rows = choose_anchor_rows(
        len(digits["train_labels"]), 400, "balanced", labels=digits["train_labels"], seed=0
    )
    bridge = LatentBridge.fit(digits["train"]["rff"][rows], digits["train"]["pca"][rows], "irp")
    translated = bridge.translate(digits["test"]["rff"])
    head = cached_heads(digits["train"]["pca"], digits["train_labels"], None)
    expected = cell_metrics(
        translated, digits["test"]["pca"], head_predict(head, translated), digits["test_labels"]
    )
    got = matrix.cell("rff", "pca", "irp")
    for metric in METRICS:
        assert got[metric] == pytest.approx(expected[metric], rel=1e-6, abs=1e-9)
    # the translation really works on these spaces: far above chance (0.1) for both methods
    assert got["accuracy"] > 0.6
    assert matrix.cell("rff", "pca", "procrustes")["accuracy"] > 0.6


def test_matrix_does_not_depend_on_the_chunk_size(digits, matrix):
    other = digits_matrix(digits, chunk_size=37)
    for a, b in zip(matrix.cells, other.cells, strict=True):
        for metric in METRICS:
            assert (a[metric] is None) == (b[metric] is None)
            if a[metric] is not None:
                assert a[metric] == pytest.approx(b[metric], rel=1e-9, abs=1e-12)


def test_isometric_spaces_stitch_perfectly(digits):
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(24, 24, generator=g, dtype=torch.float64))
    shift = torch.randn(24, generator=g, dtype=torch.float64)
    rotate = lambda x: (2.5 * x.double() @ q + shift).float()  # noqa: E731
    train = {"a": digits["train"]["pca"], "b": rotate(digits["train"]["pca"])}
    test = {"a": digits["test"]["pca"], "b": rotate(digits["test"]["pca"])}
    result = stitching_matrix(
        train,
        test,
        digits["train_labels"],
        digits["test_labels"],
        methods=["irp"],
        head_factory=cached_heads,
        show_progress=False,
    )
    cell = result.cell("a", "b", "irp")
    # directions are recovered exactly; IRP restores the mean anchor norm, not each row's own norm
    assert cell["cosine"] > 0.99 and cell["top1_retrieval"] == 1.0
    assert cell["accuracy"] == pytest.approx(
        result.cell("b", "b", NATIVE)["accuracy"], abs=2 / len(test["a"])
    )


def test_matrix_outputs_json_markdown_and_heatmap(matrix, tmp_path):
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


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"methods": ["warp"]}, "unknown method"),
        ({"num_anchors": 5000}, "cannot select 5000 anchors"),
        ({"anchor_strategy": "random"}, "unknown anchor strategy"),
    ],
)
def test_bad_matrix_options_are_refused(digits, change, match):
    options = {"methods": ["irp"], "num_anchors": 100, **change}
    with pytest.raises(BridgeInputError, match=match):
        stitching_matrix(
            digits["train"], digits["test"], digits["train_labels"], digits["test_labels"], **options
        )


def test_one_encoder_or_misaligned_labels_are_refused(digits):
    one = {"pca": digits["train"]["pca"]}
    with pytest.raises(BridgeInputError, match="at least 2 encoders"):
        stitching_matrix(one, {"pca": digits["test"]["pca"]}, digits["train_labels"], digits["test_labels"])
    with pytest.raises(BridgeInputError, match="labels"):
        stitching_matrix(digits["train"], digits["test"], digits["train_labels"][:-1], digits["test_labels"])


# ------------------------------------------------------------------------------------------- curve
def test_anchor_curve_improves_with_more_anchors(digits, tmp_path):
    curve = anchor_curve(
        digits["train"],
        digits["test"],
        digits["train_labels"],
        digits["test_labels"],
        pairs=[("rff", "pca")],
        anchor_counts=[12, 50, 800, 10**6],
        methods=["irp"],
        head_factory=cached_heads,
    )
    points = sorted(curve["points"], key=lambda p: p["num_anchors"])
    assert [p["num_anchors"] for p in points] == [12, 50, 800]  # counts above the train size are skipped
    assert points[-1]["accuracy"] > points[0]["accuracy"]
    assert points[-1]["cosine"] > points[0]["cosine"]
    assert set(curve["native_accuracy"]) == {"pca"}
    assert plot_anchor_curve(curve, tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
