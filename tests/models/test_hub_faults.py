"""Faults: a Hub that fails mid-push, damaged files, repeated pushes. The repo must never break."""

from __future__ import annotations

import os
import subprocess
import uuid

import httpx2
import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError

from hf_latent_bridge import CheckpointError, LatentBridge
from tests.conftest import HUB_USER
from tests.models.test_hub import make_bridge


def new_repo(name: str) -> str:
    return f"{HUB_USER}/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hub(hub_server):
    yield hub_server
    hub_server.clear_faults()


@pytest.mark.parametrize("drop_connection", [False, True], ids=["error-500", "connection-dropped"])
def test_failed_push_leaves_previous_revision_intact(hub, tmp_path, drop_connection):
    repo = new_repo("mid-push")
    first = make_bridge(20)
    sha = first.push_to_hub(repo).oid
    before = hub.files(repo)

    # The weights of the second push reach the server (LFS), then the commit fails.
    hub.fail_next("commit", drop_connection=drop_connection)
    with pytest.raises((HfHubHTTPError, httpx2.TransportError)):
        make_bridge(21).push_to_hub(repo)
    assert hub.commits(repo)[0] == sha
    assert hub.files(repo) == before

    loaded = LatentBridge.from_pretrained(repo, cache_dir=tmp_path)
    assert torch.equal(loaded.weight, first.weight)

    # The next push goes through and is complete.
    second = make_bridge(21)
    new_sha = second.push_to_hub(repo).oid
    assert torch.equal(
        LatentBridge.from_pretrained(repo, revision=new_sha, cache_dir=tmp_path).weight, second.weight
    )


def test_lfs_upload_interrupted_is_retried_by_the_client(hub, tmp_path):
    repo = new_repo("lfs-drop")
    bridge = make_bridge(22)
    hub.fail_next("lfs-upload", drop_connection=True)
    sha = bridge.push_to_hub(repo).oid
    assert hub.requests(repo.split("/")[1]) and any(r[2] == 0 for r in hub.requests("/lfs-upload/"))
    assert torch.equal(
        LatentBridge.from_pretrained(repo, revision=sha, cache_dir=tmp_path).weight, bridge.weight
    )


def test_a_damaged_download_is_refused_or_caught_by_the_hubs_own_check(hub, tmp_path):
    """A file cut short on the server fails the client's size check; a damaged header fails safetensors'
    own; a flipped data byte is what ``hf cache verify`` (huggingface_hub's checksums) is for."""
    repos = {mode: new_repo(f"corrupt-{mode}") for mode in ("truncate", "header", "flip")}
    for seed, (mode, repo) in enumerate(repos.items()):
        make_bridge(30 + seed).push_to_hub(repo)  # different bytes: the server stores blobs by content
        hub.corrupt_file(repo, "model.safetensors", mode=mode)
    with pytest.raises(OSError):
        LatentBridge.from_pretrained(repos["truncate"], cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="force_download=True"):
        LatentBridge.from_pretrained(repos["header"], cache_dir=tmp_path)
    LatentBridge.from_pretrained(repos["flip"], cache_dir=tmp_path)  # finite, so nothing to see on load
    verify = subprocess.run(
        ["hf", "cache", "verify", repos["flip"], "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert verify.returncode != 0 and "model.safetensors" in verify.stdout + verify.stderr


def test_identical_second_push_keeps_a_working_repo(hub, tmp_path):
    repo = new_repo("twice")
    bridge = make_bridge(26)
    first = bridge.push_to_hub(repo)
    files = hub.files(repo)
    second = bridge.push_to_hub(repo)
    # Nothing changed: the client skips the empty commit, and the head stays where it was.
    assert second.oid == first.oid
    assert hub.commits(repo)[0] == first.oid and len(hub.commits(repo)) == 2
    assert hub.files(repo) == files
    loaded = LatentBridge.from_pretrained(repo, cache_dir=tmp_path)
    assert torch.equal(loaded.weight, bridge.weight)
