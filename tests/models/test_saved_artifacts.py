"""Artifacts saved by hf_latent_bridge 0.1.0 still load and give the same outputs, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_latent_bridge import AnchorSpace, ClassificationHead, LatentBridge, StitchedModel

V0_1_0 = Path(__file__).parents[1] / "fixtures" / "v0_1_0"


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return load_file(str(V0_1_0 / "expected.safetensors"))


@pytest.mark.parametrize("name", ["bridge", "bridge_ensemble", "bridge_procrustes"])
def test_v0_1_0_bridges_translate_as_before(name, expected):
    bridge = LatentBridge.from_pretrained(V0_1_0 / name)
    assert torch.equal(bridge.translate(expected["probe"]), expected[name])


def test_v0_1_0_anchor_space_and_head_load(expected):
    space = AnchorSpace.from_pretrained(V0_1_0 / "anchor_space")
    assert space.anchors.shape == (48, 16)
    assert space.encoder.name_or_path == "toy/target-encoder"
    head = ClassificationHead.from_pretrained(V0_1_0 / "head")
    assert head.id2label == {0: "red", 1: "green", 2: "blue"}
    assert torch.equal(head.logits(space.anchors[:5]), expected["head_logits"])


def test_v0_1_0_stitched_model_classifies_as_before(expected):
    model = StitchedModel.from_pretrained(V0_1_0 / "stitched")
    assert torch.equal(model.logits_from_embeddings(expected["probe"]), expected["stitched_logits"])
    assert model.config.id2label[2] == "blue"


def test_a_crafted_config_is_refused_before_anything_is_allocated(tmp_path):
    import json
    import shutil

    from hf_latent_bridge import CheckpointError

    folder = tmp_path / "bridge"
    shutil.copytree(V0_1_0 / "bridge", folder)
    config = json.loads((folder / "config.json").read_text())
    config["ensemble"] = 2**31
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match="config.json holds an invalid setting: ensemble must be at most"
    ):
        LatentBridge.from_pretrained(folder)
