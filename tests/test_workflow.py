"""From two encoders and labelled data to a stitched classifier in one call (tiny real BERTs, real
ChatterBot utterances)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import pipeline

from hf_latent_bridge import (
    BridgeInputError,
    CheckpointError,
    ClassificationHead,
    LatentBridge,
    StitchedModel,
    fit_from_encoders,
    load_encoder,
    stitch,
)


@pytest.fixture(scope="module")
def stitched(tiny_bert_path, tiny_bert48_path, topics_file):
    return stitch(
        tiny_bert_path,
        tiny_bert48_path,
        str(topics_file),
        text_column="text",
        label_column="topic",
        num_anchors=120,
        source_id="tester/tiny-bert",
        target_id="tester/tiny-bert-48",
    )


def test_one_call_builds_a_scored_stitched_classifier(stitched, topics_file):
    metrics = stitched.config.metrics
    scores = ["stitched_accuracy", "stitched_macro_f1", "native_target_accuracy", "cosine_to_target"]
    scores.append("top1_retrieval")
    assert set(metrics) == {*scores, "dataset", "split", "num_samples"}
    assert all(0.0 <= metrics[name] <= 1.0 for name in scores)
    rows = len(topics_file.read_text().splitlines())
    assert metrics["num_samples"] == math.ceil(0.2 * rows)  # datasets rounds the test share up
    assert metrics["dataset"] == "topics.jsonl" and metrics["split"] == "0.2 of train held out (seed 0)"
    bridge = stitched.bridge.config
    assert bridge.num_anchors == 120 and bridge.anchor_set["extra"]["strategy"] == "balanced"
    # local folders are recorded by the Hub ids given, never by a path of this machine
    assert (bridge.source_encoder["name_or_path"], bridge.target_encoder["name_or_path"]) == (
        "tester/tiny-bert",
        "tester/tiny-bert-48",
    )
    assert bridge.anchor_set["dataset"] == "topics.jsonl" and "file_sha256" in bridge.anchor_set["extra"]


def test_the_scores_are_those_of_the_parts(stitched, tiny_bert_path, tiny_bert48_path, topics_file):
    """Recompute the held-out accuracy by hand from the same split, bridge and head."""
    from hf_latent_bridge.encoding.tables import labelled_splits

    splits = labelled_splits(str(topics_file), column="text", label_column="topic", test_size=0.2)
    source = load_encoder(tiny_bert_path)
    logits = stitched.head(stitched.bridge(source.embed(list(splits.test["text"]))))
    accuracy = float((logits.argmax(-1) == splits.test_labels).double().mean())
    assert accuracy == pytest.approx(stitched.config.metrics["stitched_accuracy"], abs=1e-12)


def test_saved_and_run_through_the_pipeline(stitched, tmp_path, tiny_bert_path):
    stitched.save_pretrained(tmp_path / "model")
    classifier = pipeline(
        "stitched-classification",
        model=str(tmp_path / "model"),
        source_encoder=load_encoder(tiny_bert_path, hub_id="tester/tiny-bert"),
    )
    texts = ["Do you like to play basketball?", "Who wrote Hamlet?"]
    expected = stitched.classify(texts).argmax(-1).tolist()
    labels = [stitched.config.id2label[i] for i in expected]
    assert [r[0]["label"] for r in classifier(texts)] == labels
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["metrics"] == pytest.approx(stitched.config.metrics)


def test_a_given_head_is_used_and_classes_are_matched_by_name(tiny_bert_path, tiny_bert48_path, topics_file):
    target = load_encoder(tiny_bert48_path)
    texts = [json.loads(line) for line in topics_file.read_text().splitlines()]
    names = sorted({t["topic"] for t in texts})
    # a head whose class order differs from the data's sorted names
    reordered = list(reversed(names))
    embeddings = target.embed([t["text"] for t in texts])
    head = ClassificationHead.fit(
        embeddings, [reordered.index(t["topic"]) for t in texts], id2label=reordered
    )
    fitted = fit_from_encoders(
        tiny_bert_path, target, str(topics_file), label_column="topic", head=head, num_anchors=100
    )
    assert fitted.head is head
    assert fitted.metrics["native_target_accuracy"] > 1.5 / len(names)  # labels matched by name, not id


def test_bridge_only_without_labels_embeds_the_anchor_rows(tiny_bert_path, tiny_bert48_path, topics_file):
    fitted = fit_from_encoders(tiny_bert_path, tiny_bert48_path, str(topics_file), num_anchors=60)
    assert fitted.head is None and fitted.metrics == {}
    assert fitted.bridge.config.num_anchors == 60
    assert fitted.bridge.config.anchor_set["extra"]["strategy"] == "uniform"


def test_encoders_accepted_wherever_a_bridge_records_one(tiny_bert_path, tiny_bert48_path):
    source, target = load_encoder(tiny_bert_path), load_encoder(tiny_bert48_path)
    x = torch.randn(80, 32, generator=torch.Generator().manual_seed(0))
    y = torch.randn(80, 48, generator=torch.Generator().manual_seed(1))
    bridge = LatentBridge.fit(x, y, ridge=1.0, source_encoder=source, target_encoder=target)
    assert bridge.config.source_encoder["dim"] == 32 and bridge.config.target_encoder["dim"] == 48


def test_a_sentence_transformer_object_is_an_encoder(tiny_st_path, tiny_bert48_path, topics_file):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(tiny_st_path, device="cpu")
    fitted = fit_from_encoders(
        st, tiny_bert48_path, str(topics_file), num_anchors=60, source_id="tester/tiny-st"
    )
    ref = fitted.bridge.config.source_encoder
    assert ref["name_or_path"] == "tester/tiny-st" and ref["pooling"] == "cls+norm"
    texts = ["a sentence", "another, longer sentence here"]
    # the wrapper embeds exactly as the model's own encode() and as the package's loader of its folder
    ours = fitted.source_encoder.embed(texts)
    assert torch.allclose(ours, st.encode(texts, convert_to_tensor=True), atol=1e-6)
    assert torch.allclose(ours, load_encoder(tiny_st_path).embed(texts), atol=1e-5)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"label_column": "missing"}, BridgeInputError, "column 'missing' is not in the data set"),
        ({"label_column": "topic", "num_anchors": 10_000}, BridgeInputError, "10000 anchors were asked for"),
        ({"strategy": "balanced"}, BridgeInputError, "need labels"),
        ({"label_column": "topic", "method": "warp"}, BridgeInputError, "method must be"),
        ({"label_column": "topic", "ridge": -1}, BridgeInputError, "ridge must be"),
        ({"label_column": "topic", "rigde": 1}, TypeError, "rigde"),
    ],
)
def test_bad_requests_name_the_problem(
    options, error, message, tiny_bert_path, tiny_bert48_path, topics_file
):
    with pytest.raises(error, match=message):
        fit_from_encoders(tiny_bert_path, tiny_bert48_path, str(topics_file), **options)


def test_an_unloadable_encoder_is_named(tmp_path, tiny_bert48_path, topics_file):
    with pytest.raises(CheckpointError, match="cannot load encoder .*nowhere"):
        fit_from_encoders(str(tmp_path / "nowhere"), tiny_bert48_path, str(topics_file))


def test_a_recorded_encoder_that_cannot_be_loaded_says_how_to_fix_it(stitched, tmp_path):
    stitched.save_pretrained(tmp_path / "model")
    model = StitchedModel.from_pretrained(tmp_path / "model")  # records 'tester/tiny-bert', not on any Hub
    with pytest.raises(CheckpointError) as caught:
        model.classify(["hello"])
    message = str(caught.value)
    for fragment in (str(tmp_path / "model"), "'tester/tiny-bert'", "source_encoder=", "strict=False"):
        assert fragment in message
