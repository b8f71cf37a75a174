"""The default ``method="auto"``: what it chooses, what it records, and a blend stored as two maps."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.datasets import load_digits

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.core.selection import MIN_ANCHORS
from hf_latent_bridge.models import modeling_latent_bridge as standalone

F64 = torch.float64


@pytest.fixture(scope="module")
def digits_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two encoders of scikit-learn digits: PCA to 24 dimensions and tanh random features (40)."""
    x = torch.tensor(load_digits().data, dtype=F64) / 16.0
    centred = x - x.mean(0)
    pca = centred @ torch.linalg.svd(centred, full_matrices=False)[2][:24].T
    g = torch.Generator().manual_seed(7)
    rff = torch.tanh(
        x @ torch.randn(64, 40, generator=g, dtype=F64) / 4 + torch.rand(40, generator=g, dtype=F64)
    )
    return pca.float(), rff.float()


def test_an_exact_direct_relation_is_found_and_reproduced(rng):
    x = torch.randn(300, 12, dtype=F64, generator=rng) * torch.linspace(0.5, 2.0, 12, dtype=F64)
    signed_permutation = x[:, torch.randperm(12, generator=rng)] * -1.0 + 1.5
    affine = x @ torch.randn(12, 16, dtype=F64, generator=rng) ** 3 + 0.3
    for y, expected in ((signed_permutation, {"procrustes", "linear"}), (affine, {"linear"})):
        bridge = LatentBridge.fit(x[:250], y[:250])
        assert bridge.config.method_selected in expected
        torch.testing.assert_close(bridge.translate(x[250:]), y[250:], rtol=0, atol=1e-8)


def test_the_choice_and_every_candidate_are_recorded_and_saved(digits_pair, tmp_path):
    source, target = digits_pair
    bridge = LatentBridge.fit(source[:300], target[:300])
    selection = bridge.config.selection
    assert bridge.config.method == "auto" and selection["use"] == "search"
    assert selection["scored_anchors"] == 300
    labels = [row["label"] for row in selection["candidates"]]
    assert {"procrustes", "linear"} <= set(labels) and len([s for s in labels if s.startswith("irp(")]) >= 9
    final = {row["label"]: row for row in selection["candidates"] if row["stage"] == "final"}
    irp = next(row for label, row in final.items() if label.startswith("irp("))
    chosen = final[selection["chosen"]]
    # IRP unless beaten by more than a standard error of the paired difference (or tied on every anchor)
    assert chosen is irp or chosen["gain"] > chosen["gain_se"] or chosen["gain_se"] == 0
    for label in ("procrustes", "linear"):
        if final[label]["score"] < irp["score"]:
            assert chosen is not final[label]
    bridge.save_pretrained(tmp_path / "bridge")
    saved = json.loads((tmp_path / "bridge" / "config.json").read_text())
    assert saved["selection"] == selection and saved["method_selected"] == bridge.config.method_selected
    loaded = LatentBridge.from_pretrained(tmp_path / "bridge")
    assert torch.equal(loaded.translate(source[300:]), bridge.translate(source[300:]))


def test_a_head_makes_its_decisions_the_criterion(digits_pair):
    source, target = digits_pair
    labels = torch.tensor(load_digits().target)
    weight = torch.linalg.lstsq(target[:600].double(), torch.eye(10, dtype=F64)[labels[:600]]).solution
    bridge = LatentBridge.fit(source[:300], target[:300], head=lambda t: t.double() @ weight)
    selection = bridge.config.selection
    assert selection["use"] == "classify"
    assert all(
        0 <= row["agreement"] <= 1 and row["score"] == row["agreement"] for row in selection["candidates"]
    )


def test_a_blend_is_stored_as_two_maps_that_sum_to_its_translation(digits_pair, tmp_path):
    source, target = digits_pair
    bridge = LatentBridge.fit(source[:400], target[:400])
    assert bridge.config.method_selected == "blend"  # on these anchors, the held-out criterion prefers one
    assert bridge.config.selection["chosen"] == "0.25 * irp(w_x=0.1, w_y=0.3, ridge=1) + 0.75 * linear"
    assert bridge.weight.shape[0] == 2 and not hasattr(bridge, "member_indices")
    irp = LatentBridge.fit(source[:400], target[:400], "irp", whitening=[0.1, 0.3], ridge=1.0)
    linear = LatentBridge.fit(source[:400], target[:400], "linear")
    probe = source[400:]
    expected = 0.25 * irp.translate(probe).double() + 0.75 * linear.translate(probe).double()
    torch.testing.assert_close(bridge.translate(probe).double(), expected, rtol=0, atol=1e-5)
    bridge.save_pretrained(tmp_path / "blend")
    assert torch.equal(
        LatentBridge.from_pretrained(tmp_path / "blend").translate(probe), bridge.translate(probe)
    )
    shipped = standalone.LatentBridge.from_pretrained(tmp_path / "blend")  # the remote-code file's class
    assert torch.equal(shipped.translate(probe), bridge.translate(probe))


def test_without_blends_or_in_an_ensemble_one_method_serves_every_member(digits_pair):
    source, target = digits_pair
    single = LatentBridge.fit(source[:400], target[:400], blend=False)
    assert single.config.method_selected != "blend" and single.weight.shape[0] == 1
    ensemble = LatentBridge.fit(source[:400], target[:400], ensemble=3)
    assert ensemble.config.method_selected != "blend" and ensemble.weight.shape[0] == 3
    method = ensemble.config.method_selected
    fixed = {"whitening": ensemble.config.whitening_selected} if method == "irp" else {}
    rows = ensemble.member_indices[0]
    alone = LatentBridge.fit(
        source[:400][rows], target[:400][rows], method, ridge=ensemble.config.ridge_selected or 0.0, **fixed
    )
    torch.testing.assert_close(
        ensemble.weight[0], alone.weight[0] * (ensemble.weight[0].norm() / alone.weight[0].norm())
    )


def test_irp_with_a_whitening_pair_is_each_sides_strength(digits_pair):
    source, target = digits_pair[0][:200], digits_pair[1][:200]
    same = LatentBridge.fit(source, target, "irp", whitening=[0.3, 0.3], ridge=0.1)
    assert torch.equal(same.weight, LatentBridge.fit(source, target, "irp", whitening=0.3, ridge=0.1).weight)
    pair = LatentBridge.fit(source, target, "irp", whitening=[0.1, 1.0], ridge=0.1)
    assert pair.config.whitening_selected == [0.1, 1.0] and not torch.allclose(pair.weight, same.weight)
    chosen = LatentBridge.fit(
        source, target, "irp"
    )  # whitening="auto": IRP only, each side's strength chosen
    assert chosen.config.method_selected == "irp" and len(chosen.config.whitening_selected) == 2
    assert {row["label"] for row in chosen.config.selection["candidates"]}.isdisjoint(
        {"procrustes", "linear"}
    )


def test_too_few_anchors_to_hold_out_fall_back_to_plain_irp(rng):
    x, y = torch.randn(MIN_ANCHORS - 1, 5, generator=rng), torch.randn(MIN_ANCHORS - 1, 7, generator=rng)
    with pytest.warns(UserWarning):
        bridge = LatentBridge.fit(x, y)
    assert bridge.config.method_selected == "irp" and bridge.config.ridge_selected == 0.0
    assert bridge.config.selection["candidates"][0]["stage"].startswith("fallback")
    assert torch.isfinite(bridge.translate(torch.randn(3, 5, generator=rng))).all()
