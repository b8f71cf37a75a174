"""Encoders are recorded by names that load anywhere: Hub ids pinned to commits, never local paths."""

from __future__ import annotations

import shutil

import pytest

from hf_latent_bridge import load_encoder
from hf_latent_bridge.encoding.provenance import hub_id_of_folder, is_hub_id, portable_name
from hf_latent_bridge.errors import BridgeInputError

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_a_hub_cache_snapshot_proves_its_id_and_commit(tmp_path, tiny_bert_path):
    snapshot = tmp_path / "hub" / "models--someone--tiny-bert" / "snapshots" / SHA
    shutil.copytree(tiny_bert_path, snapshot)
    assert hub_id_of_folder(snapshot) == ("someone/tiny-bert", SHA)
    encoder = load_encoder(str(snapshot))
    assert (encoder.ref.name_or_path, encoder.ref.revision) == ("someone/tiny-bert", SHA)
    assert encoder.location == str(snapshot)  # weights still come from (and are cached by) the folder


def test_a_sentence_transformers_folder_that_names_its_model(tmp_path, tiny_st_path):
    folder = tmp_path / "st"
    shutil.copytree(tiny_st_path, folder)
    (folder / "README.md").write_text("model = SentenceTransformer('someone/tiny-st')\n")
    assert load_encoder(str(folder)).ref.name_or_path == "someone/tiny-st"
    (folder / "modules.json").unlink()  # without modules.json it is not a sentence-transformers folder
    assert hub_id_of_folder(folder) is None


def test_a_given_id_wins_and_a_bare_folder_stays_a_local_path(tiny_bert_path):
    assert load_encoder(tiny_bert_path, hub_id="me/tiny").ref.name_or_path == "me/tiny"
    ref = load_encoder(tiny_bert_path).ref
    assert ref.name_or_path == tiny_bert_path and not ref.is_portable
    with pytest.raises(BridgeInputError, match="is not a Hub repo id"):
        portable_name(tiny_bert_path, hub_id="/abs/path")


def test_hub_ids_are_pinned_to_the_commit_they_were_loaded_from():
    assert portable_name("org/model", "main", commit_hash=SHA) == ("org/model", SHA)
    assert portable_name("org/model", "v1", commit_hash=None) == ("org/model", "v1")
    assert is_hub_id("org/model") and not is_hub_id("/home/alice/models/all-MiniLM-L6-v2")
