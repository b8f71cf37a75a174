"""Reporting the scale check, and the warning a stitched model gives for a head that needs norms."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from hf_latent_bridge import LatentBridge, StitchedModel
from hf_latent_bridge.evaluation import check_head
from hf_latent_bridge.evaluation.scale_check import scale_markdown, write_scale_reports
from hf_latent_bridge.models.head import ClassificationHead
from tests.evaluation.test_evaluation import PNG_MAGIC, _digits_spaces, cached_heads


@pytest.fixture(scope="module")
def digits():
    return _digits_spaces()


def shifted(head: ClassificationHead, bias: torch.Tensor) -> ClassificationHead:
    """A copy of ``head`` with another bias."""
    other = ClassificationHead(head.input_dim, head.num_labels, id2label=dict(head.id2label))
    with torch.no_grad():
        other.weight.copy_(head.weight)
        other.bias.copy_(bias)
    return other


def test_check_head_reports_both_centres_as_markdown_json_and_figure(digits, tmp_path):
    head = cached_heads(digits["train"]["rff"], digits["train_labels"], None)
    reports = check_head(head, digits["test"]["rff"], digits["test_labels"])
    assert list(reports) == ["mean", "origin"]
    assert reports["mean"].accuracy == reports["origin"].accuracy > 0.8
    text = scale_markdown(reports, "digits rff")
    assert "### About the mean" in text and "### About the origin" in text and "**Verdict:**" in text
    assert text.count("| x0.1 |") == 2
    paths = write_scale_reports(reports, tmp_path, extra={"head": "logistic"})
    payload = json.loads(paths["json"].read_text())
    assert payload["head"] == "logistic" and set(payload["reports"]) == {"mean", "origin"}
    assert payload["reports"]["mean"]["verdict"] == reports["mean"].verdict
    assert paths["plot"].read_bytes()[:8] == PNG_MAGIC
    named = check_head(head, digits["test"]["rff"], centres={"anchor mean": digits["train"]["rff"].mean(0)})
    assert list(named) == ["anchor mean"] and named["anchor mean"].centre == "anchor mean"
    assert named["anchor mean"].accuracy is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scale_invariance.json", "scale_invariance.md", "scale_invariance.png",
    ]  # fmt: skip


def test_stitched_model_warns_when_irp_norms_change_the_heads_decisions(digits):
    train = digits["train"]
    bridge = LatentBridge.fit(train["pca"][:400], train["rff"][:400])
    head = cached_heads(train["rff"], digits["train_labels"], None)
    anchors = bridge.target_anchors.double()
    # equal logits at the anchors' mean: decisions depend on directions only
    centred = shifted(head, -(head.weight.double() @ anchors.mean(0)).float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StitchedModel.from_parts(bridge, centred)
    # a bias of a typical margin for class 0: rescaled rows drift towards it
    scores = centred.logits(anchors.float()).sort(dim=1).values
    margin = float((scores[:, -1] - scores[:, -2]).median())
    biased = shifted(head, centred.bias + torch.eye(head.num_labels)[0] * margin)
    with pytest.warns(UserWarning, match=r"depend on the norms that IRP replaces.*equalize_norms"):
        StitchedModel.from_parts(bridge, biased)
    # direct methods keep norms: nothing to check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StitchedModel.from_parts(LatentBridge.fit(train["pca"][:400], train["rff"][:400], "linear"), biased)
