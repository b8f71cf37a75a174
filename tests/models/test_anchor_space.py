"""Anchor spaces: N encoders -> N artifacts on the Hub -> all N x (N-1) bridges, without the encoders."""

from __future__ import annotations

import itertools
import json
import math
import uuid
from dataclasses import replace

import datasets
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    BridgeInputError,
    CheckpointError,
    EncoderRef,
    IncompatibleEncoderError,
    LatentBridge,
    select_anchors,
)
from hf_latent_bridge.demo import chatterbot_topics, minilm_path
from hf_latent_bridge.workflow import anchor_rows, push_anchor_rows
from tests.conftest import HUB_USER

NUM_ANCHORS = 64
WIDTHS = (24, 32, 48)


@torch.no_grad()
def mean_pool_embed(model: BertModel, tokenizer, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


@pytest.fixture(scope="module")
def corpus() -> datasets.Dataset:
    return chatterbot_topics()


@pytest.fixture(scope="module")
def anchor_set(corpus) -> AnchorSet:
    indices = select_anchors("balanced", NUM_ANCHORS, labels=list(corpus["label"]), seed=0)
    return AnchorSet(
        dataset="chatterbot-corpus/english-topics", indices=tuple(indices.tolist()), split="train"
    )


@pytest.fixture(scope="module")
def encoders():
    """Three tiny real BERT encoders of different widths (random weights, one seed each)."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    models = {}
    for seed, width in enumerate(WIDTHS):
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=width,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=2 * width,
        )
        ref = EncoderRef(f"{HUB_USER}/tiny-bert-{width}", revision="0" * 40, pooling="mean", modality="text")
        models[ref] = BertModel(config).eval()
    return tokenizer, models


@pytest.fixture(scope="module")
def embedded(corpus, anchor_set, encoders):
    """Each encoder's embeddings of the anchor rows (in anchor order) and of 40 other rows."""
    tokenizer, models = encoders
    anchors = list(anchor_rows(corpus, anchor_set)["text"])
    chosen = set(anchor_set.indices)
    others = [corpus[i]["text"] for i in range(len(corpus)) if i not in chosen][:40]
    return {
        ref: (mean_pool_embed(model, tokenizer, anchors), mean_pool_embed(model, tokenizer, others))
        for ref, model in models.items()
    }


def test_three_encoders_six_bridges_from_the_hub(hub_server, anchor_set, embedded, tmp_path):
    # Each encoder's side, alone, goes to the Hub as an anchor space...
    repos = {}
    for ref, (anchors, _) in embedded.items():
        space = AnchorSpace.from_embeddings(anchors, anchor_set=anchor_set, encoder=ref)
        repos[ref] = f"{HUB_USER}/anchors-{ref.name_or_path.split('/')[-1]}-{uuid.uuid4().hex[:6]}"
        space.push_to_hub(repos[ref])
    # ... and comes back in another cache, without any encoder.
    pulled = {ref: AnchorSpace.from_pretrained(repo, cache_dir=tmp_path) for ref, repo in repos.items()}
    for ref, space in pulled.items():
        assert space.encoder.name_or_path == ref.name_or_path
        assert torch.equal(space.anchors, embedded[ref][0])

    pairs = list(itertools.permutations(embedded, 2))
    assert len(pairs) == 6
    for source, target in pairs:
        composed = LatentBridge.from_anchor_spaces(pulled[source], pulled[target])
        direct = LatentBridge.fit(
            embedded[source][0],
            embedded[target][0],
            "irp",
            source_encoder=replace(source, dim=embedded[source][0].shape[1]),
            target_encoder=replace(target, dim=embedded[target][0].shape[1]),
            anchor_set=anchor_set,
        )
        assert composed.config.ridge_selected == direct.config.ridge_selected
        assert (
            composed.config.anchor_fingerprint == direct.config.anchor_fingerprint == anchor_set.fingerprint
        )
        assert composed.config.source_encoder == direct.config.source_encoder
        for name, value in direct.state_dict().items():
            torch.testing.assert_close(composed.state_dict()[name], value, atol=1e-6, rtol=0)
        held_out = embedded[source][1]
        torch.testing.assert_close(
            composed.translate(held_out), direct.translate(held_out), atol=1e-6, rtol=0
        )

        # Per-side structure: the map is the source space's factor times the target space's factor (stored
        # in the bridge's units: a positive power of two times the product, which renormalisation ignores).
        ridge, (w_source, w_target) = composed.config.ridge_selected, composed.config.whitening_selected
        product = pulled[source].source_factor(w_source) @ pulled[target].target_factor(ridge, w_target)
        unit = float(product.norm() / composed.weight[0].double().norm())
        assert unit > 0 and abs(math.log2(unit) - round(math.log2(unit))) < 1e-4
        torch.testing.assert_close(
            composed.weight[0].double() * 2.0 ** round(math.log2(unit)), product, atol=1e-6, rtol=1e-5
        )


def test_spaces_on_different_anchor_sets_are_refused(anchor_set, embedded):
    (ref_a, (a, _)), (ref_b, (b, _)) = list(embedded.items())[:2]
    space_a = AnchorSpace.from_embeddings(a, anchor_set=anchor_set, encoder=ref_a)

    order = torch.randperm(NUM_ANCHORS, generator=torch.Generator().manual_seed(0))
    shuffled = replace(anchor_set, indices=tuple(anchor_set.indices[i] for i in order))
    space_b = AnchorSpace.from_embeddings(b[order], anchor_set=shuffled, encoder=ref_b)
    with pytest.raises(IncompatibleEncoderError, match="same rows in a different order"):
        LatentBridge.from_anchor_spaces(space_a, space_b)

    other_split = AnchorSpace.from_embeddings(b, anchor_set=replace(anchor_set, split="test"), encoder=ref_b)
    with pytest.raises(IncompatibleEncoderError, match="split differs"):
        LatentBridge.from_anchor_spaces(space_a, other_split)

    shifted = replace(anchor_set, indices=tuple(i + 1 for i in anchor_set.indices))
    other_rows = AnchorSpace.from_embeddings(b, anchor_set=shifted, encoder=ref_b)
    with pytest.raises(IncompatibleEncoderError, match="different rows"):
        LatentBridge.from_anchor_spaces(other_rows, space_a)

    with pytest.raises(TypeError, match="anchor_set"):  # the spaces say which anchors they are
        LatentBridge.from_anchor_spaces(space_a, space_a, anchor_set=anchor_set)


def test_building_checks_its_inputs(anchor_set, embedded):
    ref, (anchors, _) = next(iter(embedded.items()))
    with pytest.raises(BridgeInputError, match="embed exactly the rows"):
        AnchorSpace.from_embeddings(anchors[:-1], anchor_set=anchor_set, encoder=ref)
    with pytest.raises(BridgeInputError, match="anchor_set must be an AnchorSet"):
        AnchorSpace.from_embeddings(anchors, anchor_set=None, encoder=ref)  # type: ignore[arg-type]
    with pytest.raises(BridgeInputError, match="embed exactly the rows"):
        AnchorSpace.from_embeddings(anchors, anchor_set=anchor_set, encoder=replace(ref, dim=7))


def test_an_edited_anchor_set_is_refused_on_load(anchor_set, embedded, tmp_path):
    ref, (anchors, _) = next(iter(embedded.items()))
    space = AnchorSpace.from_embeddings(anchors, anchor_set=anchor_set, encoder=ref)
    space.save_pretrained(tmp_path / "space")
    assert AnchorSpace.from_pretrained(tmp_path / "space").anchor_set == anchor_set

    config_path = tmp_path / "space" / "config.json"
    config = json.loads(config_path.read_text())
    indices = config["anchor_set"]["indices"]
    indices[0], indices[1] = indices[1], indices[0]  # the same rows in another order
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match its fingerprint: it was edited"):
        AnchorSpace.from_pretrained(tmp_path / "space")


def test_anchor_rows_published_as_a_hub_dataset(hub_server, corpus, anchor_set):
    repo = f"{HUB_USER}/chatterbot-anchors-{uuid.uuid4().hex[:6]}"
    info = push_anchor_rows(corpus, anchor_set, repo)
    assert anchor_set.fingerprint in hub_server.state.repos[("dataset", repo)].commits[info.oid].title
    # The parquet shard went through LFS (datasets deletes its temporary file right after preupload).
    files = hub_server.files(repo, repo_type="dataset")
    assert any(path.endswith(".parquet") for path in files)

    rows = datasets.load_dataset(repo, revision=info.oid, split="train")
    assert list(rows["row_index"]) == list(anchor_set.indices)
    assert list(rows["anchor_index"]) == list(range(NUM_ANCHORS))
    assert list(rows["text"]) == [corpus[i]["text"] for i in anchor_set.indices]
