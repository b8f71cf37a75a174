"""Model cards: rendered from the shipped template, valid for the Hub, round-tripped through ModelCard."""

from __future__ import annotations

import uuid

import pytest
import torch
from huggingface_hub import ModelCard, ModelCardData

from examples.render_model_cards import example_cards
from hf_latent_bridge import AnchorSet, AnchorSpace, EncoderRef, LatentBridge
from hf_latent_bridge.models.cards import CARD_MARKER, is_hub_id, stitched_card_info
from tests.conftest import HUB_USER

TEXT = EncoderRef(
    "sentence-transformers/all-MiniLM-L6-v2", revision="c9745ed1", pooling="mean", modality="text"
)
IMAGE_LOCAL = EncoderRef("/tmp/models/efficientnet-lite0", pooling="mean", modality="image")
ANCHORS = AnchorSet("tester/fashion-captions", tuple(range(0, 120, 2)), revision="3f2a9c1", split="train")


def fitted(source: EncoderRef, target: EncoderRef, **options) -> LatentBridge:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 20, generator=g), torch.randn(60, 12, generator=g)
    return LatentBridge.fit(x, y, source_encoder=source, target_encoder=target, anchor_set=ANCHORS, **options)


def test_bridge_card_content():
    bridge = fitted(IMAGE_LOCAL, TEXT, ridge=1.0)
    bridge.config.metrics = {"stitched": {"accuracy": 0.7561}, "native_accuracy": 0.835}
    card = bridge.model_card("me/lite0-to-minilm")
    data = card.data
    assert data.library_name == "hf_latent_bridge"
    assert data.base_model == [TEXT.name_or_path]  # the local image encoder is not a Hub id
    assert data.pipeline_tag is None  # a bare bridge is not a Hub task
    assert {"latent-bridge", "image-to-text", "method-irp"} <= set(data.tags)
    assert data.datasets == ["tester/fashion-captions"]
    assert data.metrics == ["accuracy", "native_accuracy"]
    text = card.text
    assert CARD_MARKER in text
    assert "| ridge (relative) | 1 |" in text and "| scale | mean |" in text and "| anchors | 60 |" in text
    assert ANCHORS.fingerprint in text and "at revision `3f2a9c1`" in text and "split `train`" in text
    assert "| stitched/accuracy | 0.7561 |" in text and "| native_accuracy | 0.835 |" in text
    assert "| source | `/tmp/models/efficientnet-lite0` | unpinned | mean | image | 20 |" in text
    assert "not listed as `base_model`" in text
    assert 'LatentBridge.from_pretrained("me/lite0-to-minilm"' in text
    assert "trust_remote_code" not in text


def test_auto_ridge_and_remote_code_sections():
    bridge = fitted(TEXT, EncoderRef("sentence-transformers/all-mpnet-base-v2", modality="text"))
    card = bridge.model_card("me/x", remote_code=True)
    assert f"| ridge (relative) | {bridge.config.ridge_selected:.4g} (chosen by cross-validation" in card.text
    assert "trust_remote_code=True" in card.text and "pin `revision=`" in card.text
    assert card.data.base_model == [TEXT.name_or_path, "sentence-transformers/all-mpnet-base-v2"]
    assert "text-to-text" in card.data.tags


def test_card_round_trips_through_modelcard(tmp_path):
    card = fitted(TEXT, TEXT).model_card("me/self")
    path = tmp_path / "README.md"
    card.save(path)
    loaded = ModelCard.load(path)
    assert loaded.data.to_dict() == card.data.to_dict()
    assert loaded.text == card.text
    assert isinstance(loaded.data, ModelCardData)


def test_hub_validates_the_card_and_push_stores_it(hub_server):
    bridge = fitted(TEXT, TEXT)
    card = bridge.model_card()
    card.validate()  # POST /api/validate-yaml
    card.data.pipeline_tag = "latent-translation"  # not a Hub task: custom names belong in tags
    with pytest.raises(ValueError, match="pipeline_tag"):
        ModelCard(str(card)).validate()

    repo = f"{HUB_USER}/card-{uuid.uuid4().hex[:8]}"
    bridge.push_to_hub(repo)
    assert ModelCard.load(repo).data.to_dict() == bridge.model_card(repo).data.to_dict()


def test_anchor_space_card():
    space = AnchorSpace.from_embeddings(torch.randn(60, 12), anchor_set=ANCHORS, encoder=TEXT)
    card = space.model_card("me/anchors")
    assert card.data.base_model == [TEXT.name_or_path]
    assert "latent-anchor-space" in card.data.tags and card.data.pipeline_tag is None
    assert "from_anchor_spaces" in card.text and ANCHORS.fingerprint in card.text
    assert "| encoder | `sentence-transformers/all-MiniLM-L6-v2` | c9745ed1 | mean | text | 12 |" in card.text


def test_stitched_card_has_a_hub_task():
    bridge = fitted(TEXT, TEXT)

    class Config:  # the fields StitchedConfig records
        def __init__(self):
            self.bridge = bridge.config.to_dict()
            self.head = {"input_dim": 12, "num_labels": 2}
            self.source_encoder = TEXT.to_dict()
            self.id2label = {0: "negative", 1: "positive"}

    info = stitched_card_info(Config())
    data = info.card_data()
    assert data.pipeline_tag == "text-classification"
    assert {"stitched-classification", "latent-bridge", "text-to-text"} <= set(data.tags)
    assert "negative, positive" in info.summary


def test_hub_id_detection(tmp_path):
    assert is_hub_id("sentence-transformers/all-MiniLM-L6-v2") and is_hub_id("bert-base-uncased")
    assert not is_hub_id(str(tmp_path)) and not is_hub_id("./model") and not is_hub_id("a/b/c")


def test_example_cards_render(tmp_path):
    cards = example_cards()
    assert set(cards) == {
        "bridge_mpnet_to_minilm.md",
        "bridge_efficientnet_to_minilm.md",
        "anchor_space_minilm.md",
    }
    for text in cards.values():
        card = ModelCard(text)
        assert card.data.library_name == "hf_latent_bridge" and CARD_MARKER in card.text
