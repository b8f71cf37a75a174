"""Model cards: each class describes itself, the card is valid for the Hub and says how to act on it."""

from __future__ import annotations

import uuid

import pytest
import torch
from huggingface_hub import ModelCard, ModelCardData

from examples.render_model_cards import RESULTS, example_cards
from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    StitchedModel,
)
from hf_latent_bridge.models import cards
from hf_latent_bridge.models.cards import CARD_MARKER, INSTALL, is_hub_id
from tests.conftest import HUB_USER

TEXT = EncoderRef(
    "sentence-transformers/all-MiniLM-L6-v2", revision="c9745ed1", pooling="mean", modality="text"
)
MPNET = EncoderRef(
    "sentence-transformers/all-mpnet-base-v2", revision="e8c3b32e", pooling="mean", modality="text"
)
IMAGE_LOCAL = EncoderRef("/tmp/models/efficientnet-lite0", pooling="mean", modality="image")
ANCHORS = AnchorSet("tester/fashion-captions", tuple(range(0, 120, 2)), revision="3f2a9c1", split="train")


def fitted(source: EncoderRef, target: EncoderRef, **options) -> LatentBridge:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 20, generator=g), torch.randn(60, 12, generator=g)
    return LatentBridge.fit(x, y, source_encoder=source, target_encoder=target, anchor_set=ANCHORS, **options)


def head_on(target: EncoderRef, dim: int = 12) -> ClassificationHead:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, dim, generator=g)
    return ClassificationHead.fit(x, (x[:, 0] > 0).long(), id2label=["negative", "positive"], encoder=target)


def test_bridge_card_content():
    bridge = fitted(IMAGE_LOCAL, TEXT, method="irp", ridge=1.0, whitening=0.3)
    bridge.config.metrics = {"stitched": {"accuracy": 0.7561}, "native_accuracy": 0.835}
    card = bridge.model_card("me/lite0-to-minilm")
    data = card.data
    assert data.library_name == "hf_latent_bridge"
    assert data.base_model == [TEXT.name_or_path]  # the local image encoder is not a Hub id
    assert data.pipeline_tag is None  # a bare bridge is not a Hub task
    assert {"latent-bridge", "image-to-text", "method-irp"} <= set(data.tags)
    assert data.datasets == ["tester/fashion-captions"]
    assert data.metrics == ["accuracy"]
    text = card.text
    assert CARD_MARKER in text and INSTALL in text
    assert (
        "| ridge (relative) | 1 |" in text and "| output norm | mean |" in text and "| anchors | 60 |" in text
    )
    assert ANCHORS.fingerprint in text and "at revision `3f2a9c1`" in text and "split `train`" in text
    assert "| stitched/accuracy | 0.7561 |" in text and "| native_accuracy | 0.835 |" in text
    assert "| source | `/tmp/models/efficientnet-lite0` | unpinned | mean | image | 20 |" in text
    assert "not listed as `base_model`" in text
    assert 'LatentBridge.from_pretrained("me/lite0-to-minilm")' in text
    assert 'load_encoder("/tmp/models/efficientnet-lite0", pooling="mean")' in text
    assert 'Image.open("photo.jpg")' in text  # image inputs for an image encoder
    assert "trust_remote_code" not in text


def test_measured_results_are_a_model_index_without_context_in_metrics():
    """Context keys (dataset, split, ...) describe the results: they are not metrics (issue 10)."""
    bridge = fitted(TEXT, MPNET)
    bridge.config.metrics = dict(RESULTS)
    data = bridge.model_card("me/x").data
    assert data.metrics == ["accuracy", "cosine_to_target", "f1"]
    assert "dataset" not in data.metrics and "num_samples" not in data.metrics
    assert data.model_name == "me/x"
    results = {(r.metric_name, r.metric_type): r for r in data.eval_results}
    assert set(results) == {
        ("stitched accuracy", "accuracy"),
        ("stitched macro f1", "f1"),
        ("native target accuracy", "accuracy"),
        ("cosine to target", "cosine_to_target"),
    }
    first = results[("stitched accuracy", "accuracy")]
    assert first.metric_value == 0.79 and first.task_type == "text-classification"
    assert (first.dataset_type, first.dataset_split, first.dataset_revision) == (
        "tester/chatterbot-topics",
        "test",
        "main",
    )
    assert "tester/chatterbot-topics" in data.datasets
    # The YAML front matter holds the model-index the Hub renders, and it round-trips.
    front = ModelCard(str(bridge.model_card("me/x"))).data
    assert front.to_dict()["model-index"][0]["results"][0]["task"]["type"] == "text-classification"
    assert len(front.eval_results) == 4


def test_metrics_without_a_dataset_still_render():
    bridge = fitted(TEXT, MPNET)
    bridge.config.metrics = {"accuracy": 0.5, "note": "not a number", "nan": float("nan")}
    card = bridge.model_card()
    assert [r.metric_type for r in card.data.eval_results] == ["accuracy"]
    assert card.data.eval_results[0].dataset_name == "evaluation data (not recorded)"
    assert "note" not in card.text and "| nan |" not in card.text


def test_auto_ridge_and_remote_code_sections():
    bridge = fitted(TEXT, MPNET)
    card = bridge.model_card("me/x", remote_code=True)
    assert f"| ridge (relative) | {bridge.config.ridge_selected:.4g} (chosen by leave-one-out" in card.text
    assert "trust_remote_code=True" in card.text and "pin `revision=`" in card.text
    assert card.data.base_model == [TEXT.name_or_path, MPNET.name_or_path]
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
    bridge.config.metrics = dict(RESULTS)
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
    assert 'AnchorSpace.from_pretrained("me/anchors")' in card.text
    assert "| encoder | `sentence-transformers/all-MiniLM-L6-v2` | c9745ed1 | mean | text | 12 |" in card.text


def test_head_card_lists_its_classes_and_encoder():
    head = head_on(TEXT)
    head.config.metrics = {"dataset": "tester/topics", "split": "test", "accuracy": 0.9}
    card = head.model_card("me/head")
    assert card.data.base_model == [TEXT.name_or_path] and card.data.pipeline_tag is None
    assert "classification-head" in card.data.tags
    assert "2 classes: `negative`, `positive`." in card.text
    assert 'ClassificationHead.from_pretrained("me/head")' in card.text
    assert (
        'load_encoder("sentence-transformers/all-MiniLM-L6-v2", revision="c9745ed1", pooling="mean")'
        in card.text
    )
    assert card.data.eval_results[0].metric_value == 0.9


def test_stitched_card_shows_the_pipeline_call_and_claims_no_widget():
    """No pipeline_tag: the Hub's text-classification widget cannot run a stitched model (issue 10)."""
    stitched = StitchedModel.from_parts(fitted(TEXT, MPNET), head_on(MPNET))
    stitched.config.metrics = dict(RESULTS)
    card = stitched.model_card("me/stitched")
    data = card.data
    assert data.pipeline_tag is None
    assert {"stitched-classification", "latent-bridge", "text-to-text"} <= set(data.tags)
    assert data.base_model == [TEXT.name_or_path, MPNET.name_or_path]
    assert INSTALL in card.text
    assert 'pipeline("stitched-classification", model="me/stitched")' in card.text
    assert "StitchedModel.from_pretrained" not in card.text
    assert "2 classes: `negative`, `positive`." in card.text
    assert {r.metric_name for r in data.eval_results} >= {"stitched accuracy", "native target accuracy"}
    assert "Measured on tester/chatterbot-topics at revision `main`, split `test`, 334 examples." in card.text


def test_cards_module_knows_no_model_type():
    """Each class describes itself; the renderer has no switch on model types."""
    import inspect

    source = inspect.getsource(cards)
    for model_type in (
        "latent_bridge",
        "latent_anchor_space",
        "stitched_model",
        "latent_classification_head",
    ):
        assert f'"{model_type}"' not in source


def test_hub_id_detection(tmp_path):
    assert is_hub_id("sentence-transformers/all-MiniLM-L6-v2") and is_hub_id("bert-base-uncased")
    assert not is_hub_id(str(tmp_path)) and not is_hub_id("./model") and not is_hub_id("a/b/c")


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return example_cards()


def test_example_cards_render(rendered):
    assert set(rendered) == {
        "bridge_mpnet_to_minilm.md",
        "bridge_efficientnet_to_minilm.md",
        "anchor_space_minilm.md",
        "head_minilm_topics.md",
        "stitched_mpnet_to_minilm_topics.md",
        "sentence_transformer_mpnet_bridged_to_minilm.md",
    }
    for name, text in rendered.items():
        card = ModelCard(text)
        assert CARD_MARKER in card.text
        if name.startswith("sentence_transformer"):  # sentence-transformers' conventions, loadable by the Hub
            assert card.data.library_name == "sentence-transformers"
            assert card.data.pipeline_tag == "sentence-similarity" and len(card.data.base_model) == 2
        else:
            assert card.data.library_name == "hf_latent_bridge"
            assert card.data.pipeline_tag is None and INSTALL in card.text


def test_committed_example_cards_are_up_to_date(rendered):
    from pathlib import Path

    folder = Path(__file__).parents[2] / "model_cards"
    for name, text in rendered.items():
        assert (folder / name).read_text(encoding="utf-8") == text.rstrip("\n") + "\n", (
            f"model_cards/{name} is stale: run python examples/render_model_cards.py"
        )
