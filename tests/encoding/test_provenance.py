"""Encoders are recorded by names that load anywhere: Hub ids pinned to the commit loaded, never local paths."""

from __future__ import annotations

import shutil
import uuid

import pytest
import torch
from huggingface_hub import HfApi, snapshot_download

from hf_latent_bridge import BridgeInputError, CheckpointError, load_encoder
from hf_latent_bridge.encoding.provenance import hub_id_of_folder
from tests.conftest import HUB_USER
from tests.encoding.samples import TEXTS


def test_an_encoder_from_the_hub_is_recorded_by_its_id_pinned_to_the_commit_it_came_from(
    hub_server, tiny_st_path, tmp_path
):
    repo = f"{HUB_USER}/tiny-st-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(repo)
    first = api.upload_folder(repo_id=repo, folder_path=tiny_st_path).oid
    (tmp_path / "README.md").write_text("# tiny\n")
    api.upload_file(repo_id=repo, path_or_fileobj=tmp_path / "README.md", path_in_repo="README.md")
    latest = api.model_info(repo).sha
    local = load_encoder(tiny_st_path)

    encoder = load_encoder(repo)  # the recipe is read over HTTP too
    assert (encoder.ref.name_or_path, encoder.ref.revision, encoder.ref.pooling) == (repo, latest, "cls+norm")
    assert encoder.location == repo and encoder.ref.portable
    assert torch.equal(encoder.embed(TEXTS), local.embed(TEXTS))
    pinned = load_encoder(repo, revision=first)
    assert pinned.ref.revision == first and pinned.cache_key != encoder.cache_key
    # the Hub cache's snapshot folder proves the id and the commit
    snapshot = snapshot_download(repo, revision=first)
    assert hub_id_of_folder(snapshot) == (repo, first)
    from_folder = load_encoder(snapshot)
    assert (from_folder.ref.name_or_path, from_folder.ref.revision, from_folder.location) == (
        repo,
        first,
        snapshot,
    )

    with pytest.raises(CheckpointError, match="at revision 'no-such-branch'"):
        load_encoder(repo, revision="no-such-branch")
    with pytest.raises(CheckpointError, match="cannot load encoder"):
        load_encoder(f"{HUB_USER}/never-pushed-{uuid.uuid4().hex[:8]}")


def test_a_sentence_transformers_folder_is_named_by_the_id_its_card_loads(tmp_path, tiny_st_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_st_path, folder)
    (folder / "README.md").write_text("model = SentenceTransformer('someone/tiny-st')\n")
    assert load_encoder(str(folder)).ref.name_or_path == "someone/tiny-st"
    (folder / "modules.json").unlink()  # without modules.json it is not a sentence-transformers folder
    assert hub_id_of_folder(folder) is None


def test_a_given_id_wins_and_a_bare_folder_stays_a_local_path(tiny_bert_path):
    assert load_encoder(tiny_bert_path, hub_id="me/tiny").ref.name_or_path == "me/tiny"
    ref = load_encoder(tiny_bert_path).ref
    assert ref.name_or_path == tiny_bert_path and not ref.portable
    with pytest.raises(BridgeInputError, match="is not a Hub repo id"):
        load_encoder(tiny_bert_path, hub_id="/abs/path")
