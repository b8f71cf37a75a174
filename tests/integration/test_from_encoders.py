"""hf_latent_bridge.stitch on the real all-MiniLM-L6-v2 and all-mpnet-base-v2 with the ChatterBot topics
(slow: embeds 1841 utterances with both models), and the saved model reloaded with its encoder."""

from __future__ import annotations

import pytest

from hf_latent_bridge import StitchedModel, load_encoder, stitch
from hf_latent_bridge.demo import chatterbot_topics_splits, minilm_path, mpnet_path

pytestmark = pytest.mark.slow


def test_one_call_on_real_encoders_matches_the_demos_stitching(tmp_path):
    splits = chatterbot_topics_splits(test_size=0.3, seed=0)  # the demo's splits
    model = stitch(
        minilm_path(),
        mpnet_path(),
        splits,
        label_column="label",
        test_split="test",
        source_id="sentence-transformers/all-MiniLM-L6-v2",
        target_id="sentence-transformers/all-mpnet-base-v2",
        num_anchors=len(splits["train"]),
    )
    metrics = model.config.metrics
    print("stitch on MiniLM -> mpnet:", {k: v for k, v in metrics.items() if isinstance(v, float)})
    chance = 1 / len(model.config.id2label)
    assert metrics["stitched_accuracy"] > 10 * chance
    assert metrics["stitched_accuracy"] > 0.97 * min(0.763, metrics["native_target_accuracy"])
    assert metrics["num_samples"] == len(splits["test"])
    assert model.config.source.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"  # portable
    model.save_pretrained(tmp_path / "model")
    assert minilm_path() not in (tmp_path / "model" / "config.json").read_text()
    # the Hub is unreachable here: the machine's copy of MiniLM is attached under its Hub id
    loaded = StitchedModel.from_pretrained(
        tmp_path / "model",
        source_encoder=load_encoder(minilm_path(), hub_id=model.config.source.name_or_path),
    )
    prediction = loaded.classify(["Do you like to play basketball?"]).argmax(-1).item()
    assert loaded.config.id2label[prediction] == "sports"
