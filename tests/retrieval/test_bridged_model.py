"""A bridged SentenceTransformer: encodes into the target's space, saves as an ordinary folder, and comes
back from the test Hub with plain ``SentenceTransformer(repo)`` in a fresh process, online and offline."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from hf_latent_bridge import BridgeInputError, EncoderRef, IncompatibleEncoderError, LatentBridge
from hf_latent_bridge.errors import OutputExistsError
from hf_latent_bridge.retrieval import (
    BRIDGE_FOLDER,
    bridged_sentence_transformer,
    push_bridged,
    save_bridged,
)
from tests.models.test_hub import new_repo, run_fresh

PROBES = ["how are you", "what is your favourite book", "tell me a joke about robots"]
TEXTS = [f"utterance {i}: {word} and more" for i, word in enumerate(("hello world sky tree " * 40).split())]


@pytest.fixture(scope="module")
def source(tiny_st_path):
    return SentenceTransformer(tiny_st_path)


@pytest.fixture(scope="module")
def target(tiny_bert48_path):
    return SentenceTransformer(tiny_bert48_path)


@pytest.fixture(scope="module")
def anchors(source, target):
    return source.encode(TEXTS, convert_to_tensor=True), target.encode(TEXTS, convert_to_tensor=True)


def fit(anchors, **options) -> LatentBridge:
    options = {"whitening": 0.3} | options if options.get("method") == "irp" else options
    return LatentBridge.fit(
        *anchors,
        source_encoder=EncoderRef("sentence-transformers/all-MiniLM-L6-v2"),
        target_encoder=EncoderRef("sentence-transformers/all-mpnet-base-v2"),
        **options,
    )


@pytest.mark.parametrize("method", ["irp", "procrustes", "linear"])
def test_encodes_what_the_bridge_translates(source, anchors, method):
    bridge = fit(anchors, method=method)
    model = bridged_sentence_transformer(source, bridge)
    want = bridge.translate(source.encode(PROBES, convert_to_tensor=True))
    for encode in (model.encode, model.encode_query, model.encode_document):
        torch.testing.assert_close(encode(PROBES, convert_to_tensor=True), want, atol=1e-5, rtol=1e-5)
    assert model.get_embedding_dimension() == 48
    assert model.similarity(want, want).shape == (3, 3)


def test_router_sends_queries_to_the_target_and_documents_through_the_bridge(source, target, anchors):
    bridge = fit(anchors, method="irp")
    model = bridged_sentence_transformer(source, bridge, query_encoder=target)
    queries = model.encode_query(PROBES, convert_to_tensor=True)
    documents = model.encode_document(PROBES, convert_to_tensor=True)
    torch.testing.assert_close(queries, target.encode(PROBES, convert_to_tensor=True), atol=1e-5, rtol=1e-5)
    translated = bridge.translate(source.encode(PROBES, convert_to_tensor=True))
    torch.testing.assert_close(documents, translated, atol=1e-5, rtol=1e-5)


def test_saved_folder_is_plain_sentence_transformers(source, anchors, tmp_path):
    bridge = fit(anchors, blend=False)  # the default, "auto", kept to one map
    model = bridged_sentence_transformer(source, bridge)
    folder = save_bridged(model, bridge, tmp_path / "bridged", metrics={"dataset": "qa", "recall@10": 0.61})
    kinds = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
    assert all(kind.startswith("sentence_transformers.") for kind in kinds), kinds
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pkl"))
    loaded = SentenceTransformer(str(folder))  # trust_remote_code stays False
    torch.testing.assert_close(
        loaded.encode(PROBES, convert_to_tensor=True), model.encode(PROBES, convert_to_tensor=True)
    )
    again = LatentBridge.from_pretrained(folder / BRIDGE_FOLDER)
    assert again.config.source.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    card = (folder / "README.md").read_text()
    assert "library_name: sentence-transformers" in card and "recall@10" in card
    assert (
        "- sentence-transformers/all-MiniLM-L6-v2" in card
        and "- sentence-transformers/all-mpnet-base-v2" in card
    )
    with pytest.raises(OutputExistsError, match="overwrite"):
        save_bridged(model, bridge, folder)
    assert SentenceTransformer(str(folder)) is not None  # the first save is whole


def test_refuses_what_modules_cannot_express_or_the_wrong_encoder(source, anchors, tiny_bert_path):
    with pytest.raises(BridgeInputError, match="blend=False and ensemble=1"):
        bridged_sentence_transformer(source, fit(anchors, method="irp", ensemble=3))
    reversed_bridge = LatentBridge.fit(anchors[1], anchors[0], method="procrustes")
    with pytest.raises(IncompatibleEncoderError, match="48.*32|32.*48"):
        bridged_sentence_transformer(source, reversed_bridge)
    with pytest.raises(IncompatibleEncoderError, match="all-MiniLM-L6-v2"):
        bridged_sentence_transformer(tiny_bert_path, fit(anchors, method="procrustes"))


PULL = """
import sys
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
out, repo = sys.argv[1:]
model = SentenceTransformer(repo)
probes = ["how are you", "what is your favourite book", "tell me a joke about robots"]
save_file({"query": model.encode_query(probes, convert_to_tensor=True),
           "document": model.encode_document(probes, convert_to_tensor=True)}, out)
"""


def test_second_user_pulls_by_repo_id_online_then_offline(hub_server, source, anchors, tmp_path):
    bridge = fit(anchors, method="irp")
    model = bridged_sentence_transformer(source, bridge)
    repo = new_repo("bridged-st")
    push_bridged(model, bridge, repo, metrics={"dataset": "qa", "recall@10": 0.61})
    want = bridge.translate(source.encode(PROBES, convert_to_tensor=True))
    home = tmp_path / "second-user"
    for mode in ({}, {"HF_HUB_OFFLINE": "1"}):  # the empty cache first, then offline from it
        out = tmp_path / f"pulled-{len(mode)}.safetensors"
        done = run_fresh(tmp_path, PULL, str(out), repo, home=home, HF_TOKEN="", **mode)
        assert done.returncode == 0, done.stderr[-2000:]
        for side in ("query", "document"):
            torch.testing.assert_close(load_file(out)[side], want, atol=1e-5, rtol=1e-5)
