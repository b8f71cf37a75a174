"""Reporting the scale check of a head (one report per centre), and the warning a stitched model gives for a
head whose decisions depend on the norms IRP replaces."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from hf_latent_bridge import ClassificationHead, LatentBridge, StitchedModel
from hf_latent_bridge.core.scale_invariance import check_head
from hf_latent_bridge.evaluation import scale_markdown, write_scale_reports
from tests.evaluation.conftest import PNG_MAGIC


def test_reports_of_both_centres_as_markdown_json_and_a_figure(digits, head_factory, tmp_path):
    head = head_factory(digits["train"]["rff"], digits["train_labels"], None)
    reports = {
        c: check_head(head, digits["test"]["rff"], digits["test_labels"], centre=c)
        for c in ("mean", "origin")
    }
    assert reports["mean"].accuracy == reports["origin"].accuracy > 0.8
    text = scale_markdown(reports, "digits rff")
    assert (
        text.startswith("## digits rff") and "### About the mean" in text and "### About the origin" in text
    )
    assert text.count("**Verdict:**") == 2 and text.count("| x0.1 |") == 2
    paths = write_scale_reports(reports, tmp_path, extra={"head": "logistic"})
    payload = json.loads(paths["json"].read_text())
    assert payload["head"] == "logistic" and payload["reports"]["mean"] == reports["mean"].to_dict()
    assert paths["plot"].read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scale_invariance.json",
        "scale_invariance.md",
        "scale_invariance.png",
    ]


def _with_bias(head: ClassificationHead, bias: torch.Tensor) -> ClassificationHead:
    return ClassificationHead.from_linear(head.weight, bias, id2label=head.id2label)


def test_a_stitched_model_warns_when_the_norms_irp_sets_change_the_heads_decisions(digits, head_factory):
    train = digits["train"]
    bridge = LatentBridge.fit(train["pca"][:400], train["rff"][:400], "irp")
    head = head_factory(train["rff"], digits["train_labels"], None)
    anchors = bridge.target_anchors.double()
    # equal logits at the anchors' mean: decisions depend on directions only
    centred = _with_bias(head, -(head.weight.double() @ anchors.mean(0)).float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StitchedModel.from_parts(bridge, centred)
    # a bias of a typical margin for class 0: rows whose norm IRP changes drift towards it
    scores = centred.logits(anchors.float()).sort(dim=1).values
    margin = float((scores[:, -1] - scores[:, -2]).median())
    biased = _with_bias(head, centred.bias + torch.eye(head.config.num_labels)[0] * margin)
    with pytest.warns(UserWarning, match="depend on the norms IRP replaces"):
        StitchedModel.from_parts(bridge, biased)
    with warnings.catch_warnings():  # the direct methods keep norms: nothing to check
        warnings.simplefilter("error")
        StitchedModel.from_parts(LatentBridge.fit(train["pca"][:400], train["rff"][:400], "linear"), biased)
