"""Push and pull bridges over HTTP against the test Hub (tests/hub_server.py), with the real clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import load_file
from transformers import AutoModel, BertConfig, BertModel

from hf_latent_bridge import CheckpointError, EncoderRef, LatentBridge
from hf_latent_bridge.models.cards import CARD_MARKER
from tests.conftest import HUB_OTHER_TOKEN, HUB_USER

ROOT = Path(__file__).resolve().parents[2]
SOURCE = EncoderRef(
    "sentence-transformers/all-MiniLM-L6-v2", revision="c9745ed1", pooling="mean", modality="text"
)
TARGET = EncoderRef(
    "sentence-transformers/all-mpnet-base-v2", revision="e8c3b32e", pooling="mean", modality="text"
)


def make_bridge(seed: int, k: int = 48, d_x: int = 16, d_y: int = 12) -> LatentBridge:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(k, d_x, generator=g)
    y = x[:, :d_y] @ torch.linalg.qr(torch.randn(d_y, d_y, generator=g))[0] + 0.05 * torch.randn(
        k, d_y, generator=g
    )
    return LatentBridge.fit(x, y, source_encoder=SOURCE, target_encoder=TARGET)


def new_repo(name: str) -> str:
    return f"{HUB_USER}/{name}-{uuid.uuid4().hex[:8]}"


PROBE = torch.linspace(-2, 2, 5 * 16).reshape(5, 16)

FRESH_LOAD = """
import sys, torch
from safetensors.torch import save_file
from hf_latent_bridge import LatentBridge
out, repo, *revisions = sys.argv[1:]
tensors = {}
for i, revision in enumerate(revisions):
    bridge = LatentBridge.from_pretrained(repo, revision=None if revision == "-" else revision)
    for name, value in bridge.state_dict().items():
        tensors[f"{i}.{name}"] = value.contiguous()
    tensors[f"{i}.translation"] = bridge.translate(torch.linspace(-2, 2, 5 * 16).reshape(5, 16))
save_file(tensors, out)
"""


def run_fresh(tmp_path: Path, script: str, *args: str, home: Path | None = None, **env: str):
    """Run ``script`` in a new Python process with its own (or the given) HF cache."""
    path = tmp_path / f"script-{uuid.uuid4().hex[:6]}.py"
    path.write_text(textwrap.dedent(script))
    environment = {**os.environ, "HF_HOME": str(home or tmp_path / "fresh-home"), **env}
    return subprocess.run(
        [sys.executable, str(path), *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_push_is_one_commit_with_config_weights_and_card(hub_server):
    repo = new_repo("bridge")
    bridge = make_bridge(0)
    validations = len(hub_server.requests("/api/validate-yaml"))
    info = bridge.push_to_hub(repo)
    commits = hub_server.commits(repo)
    assert len(commits) == 2  # the repo's initial commit, then exactly one push commit
    assert info.oid == commits[0]
    files = hub_server.files(repo)
    assert set(files) == {".gitattributes", "config.json", "model.safetensors", "README.md"}
    assert json.loads(files["config.json"])["model_type"] == "latent_bridge"
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "hf_latent_bridge"
    assert card.data.base_model == [SOURCE.name_or_path, TARGET.name_or_path]
    assert CARD_MARKER in card.text
    assert len(hub_server.requests("/api/validate-yaml")) > validations  # the card was checked by the Hub
    # The weights went through LFS, as the Hub requires for binary files.
    assert HfApi().get_paths_info(repo, ["model.safetensors"])[0].lfs is not None


def test_pull_in_fresh_process_at_pinned_revisions(hub_server, tmp_path):
    repo = new_repo("revisions")
    first, second = make_bridge(1), make_bridge(2)
    sha1 = first.push_to_hub(repo, commit_message="first fit").oid
    sha2 = second.push_to_hub(repo, commit_message="second fit").oid
    assert sha1 != sha2

    out = tmp_path / "pulled.safetensors"
    result = run_fresh(tmp_path, FRESH_LOAD, str(out), repo, sha1, sha2, "-")
    assert result.returncode == 0, result.stderr
    pulled = load_file(out)
    for i, bridge in enumerate([first, second, second]):
        for name, value in bridge.state_dict().items():
            assert torch.equal(pulled[f"{i}.{name}"], value), name
        assert torch.equal(pulled[f"{i}.translation"], bridge.translate(PROBE))
    assert not torch.equal(pulled["0.weight"], pulled["1.weight"])


def test_branches_are_revisions(hub_server):
    repo = new_repo("branches")
    main, experiment = make_bridge(3), make_bridge(4)
    main.push_to_hub(repo)
    experiment.push_to_hub(repo, revision="experiment")
    assert torch.equal(LatentBridge.from_pretrained(repo).weight, main.weight)
    assert torch.equal(LatentBridge.from_pretrained(repo, revision="experiment").weight, experiment.weight)
    # AutoModel resolves the registered class; no code comes from the repo.
    auto = AutoModel.from_pretrained(repo, revision="experiment")
    assert isinstance(auto, LatentBridge) and torch.equal(auto.weight, experiment.weight)


OFFLINE_LOAD = """
import sys, torch
from safetensors.torch import save_file
from hf_latent_bridge import LatentBridge
out, repo, sha, uncached = sys.argv[1:]
by_branch = LatentBridge.from_pretrained(repo)
by_sha = LatentBridge.from_pretrained(repo, revision=sha)
save_file({"branch": by_branch.weight, "sha": by_sha.weight}, out)
try:
    LatentBridge.from_pretrained(uncached)
except OSError as error:
    print(error)
"""


def test_offline_mode_loads_what_is_cached(hub_server, tmp_path):
    repo = new_repo("offline")
    bridge = make_bridge(5)
    sha = bridge.push_to_hub(repo).oid
    home = tmp_path / "home"
    LatentBridge.from_pretrained(repo, cache_dir=home / "hub")  # populate the cache while online

    out = tmp_path / "offline.safetensors"
    uncached = new_repo("never-pulled")
    result = run_fresh(tmp_path, OFFLINE_LOAD, str(out), repo, sha, uncached, home=home, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    pulled = load_file(out)
    assert torch.equal(pulled["branch"], bridge.weight) and torch.equal(pulled["sha"], bridge.weight)
    # What was never downloaded cannot be loaded offline, and the error says why.
    assert "couldn't find them in the cached files" in result.stdout and "offline" in result.stdout


def test_private_repo_needs_the_owners_token(hub_server, tmp_path):
    repo = new_repo("private")
    bridge = make_bridge(6)
    bridge.push_to_hub(repo, private=True)
    assert HfApi().model_info(repo).private
    with pytest.raises(OSError, match="private repository"):
        LatentBridge.from_pretrained(repo, token=False, cache_dir=tmp_path / "anon")
    with pytest.raises(OSError, match="private repository"):
        LatentBridge.from_pretrained(repo, token=HUB_OTHER_TOKEN, cache_dir=tmp_path / "other")
    loaded = LatentBridge.from_pretrained(repo, cache_dir=tmp_path / "owner")  # HF_TOKEN: the owner
    assert torch.equal(loaded.weight, bridge.weight)


def test_users_readme_is_kept_unless_asked(hub_server):
    repo = new_repo("own-card")
    api = HfApi()
    api.create_repo(repo)
    own = "---\nlicense: mit\n---\n# My bridge\nWritten by hand.\n"
    api.upload_file(path_or_fileobj=own.encode(), path_in_repo="README.md", repo_id=repo)

    make_bridge(7).push_to_hub(repo)
    assert hub_server.files(repo)["README.md"].decode() == own
    assert "model.safetensors" in hub_server.files(repo)

    make_bridge(7).push_to_hub(repo, overwrite_model_card=True)
    replaced = hub_server.files(repo)["README.md"].decode()
    assert CARD_MARKER in replaced and "Written by hand" not in replaced


def test_generated_card_follows_the_bridge(hub_server):
    repo = new_repo("card-updates")
    bridge = make_bridge(8)
    bridge.push_to_hub(repo)
    assert "Measured results" not in hub_server.files(repo)["README.md"].decode()
    bridge.config.metrics = {"stitched_accuracy": 0.7912, "native_accuracy": 0.8123}
    bridge.push_to_hub(repo, tags=["demo"])
    card = ModelCard.load(repo)
    assert "| stitched_accuracy | 0.7912 |" in card.text
    assert "demo" in card.data.tags and "latent-bridge" in card.data.tags
    assert card.data.metrics == ["accuracy"]  # metric types; the names are in the model-index
    assert {r.metric_name for r in card.data.eval_results} == {"stitched accuracy", "native accuracy"}


def test_repo_that_is_not_a_bridge_is_refused(hub_server, tmp_path):
    repo = new_repo("tiny-bert")
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertModel(config).push_to_hub(repo)  # transformers' own push
    with pytest.raises(CheckpointError, match="config of a 'bert' model, not a 'latent_bridge'"):
        LatentBridge.from_pretrained(repo, cache_dir=tmp_path)


def test_missing_revision_and_repo_are_transformers_own_errors(hub_server, tmp_path):
    repo = new_repo("missing-rev")
    make_bridge(9).push_to_hub(repo)
    for revision in ("v9", "0" * 40):
        with pytest.raises(OSError, match="revision|v9|0000"):
            LatentBridge.from_pretrained(repo, revision=revision, cache_dir=tmp_path)
    with pytest.raises(OSError, match="nobody-pushed-this"):
        LatentBridge.from_pretrained(new_repo("nobody-pushed-this"), cache_dir=tmp_path)


REMOTE_CODE_LOAD = """
import sys, torch
from transformers import AutoModel
repo = sys.argv[1]
try:
    AutoModel.from_pretrained(repo)
except ValueError as error:
    print("RESULT refused:", "trust_remote_code" in str(error))
model = AutoModel.from_pretrained(repo, trust_remote_code=True)
assert "hf_latent_bridge" not in sys.modules, "the package was imported"
print("RESULT", type(model).__module__)
print("RESULT", model.translate(torch.linspace(-2, 2, 5 * 16).reshape(5, 16)).sum().item())
"""


def test_remote_code_is_opt_in(hub_server, tmp_path):
    repo = new_repo("remote-code")
    bridge = make_bridge(10)
    bridge.push_to_hub(repo, remote_code=True)
    files = hub_server.files(repo)
    config = json.loads(files["config.json"])
    assert config["auto_map"] == {
        "AutoConfig": "modeling_latent_bridge.LatentBridgeConfig",
        "AutoModel": "modeling_latent_bridge.LatentBridge",
    }
    assert {"modeling_latent_bridge.py"} == {name for name in files if name.endswith(".py")}
    assert "trust_remote_code=True" in files["README.md"].decode()
    # The instance was registered only for that save: the class stays unregistered.
    assert LatentBridge._auto_class is None

    # In a process without the package: refused without trust_remote_code, loaded with it.
    result = run_fresh(tmp_path, REMOTE_CODE_LOAD, repo)
    assert result.returncode == 0, result.stderr
    lines = [line.split("RESULT ", 1)[1] for line in result.stdout.splitlines() if "RESULT " in line]
    refused, module, total = lines
    assert refused == "refused: True"
    assert module.startswith("transformers_modules")
    assert float(total) == bridge.translate(PROBE).sum().item()  # the same code computes both

    # Pushing again without remote code removes the code files and the auto_map.
    bridge.push_to_hub(repo)
    files = hub_server.files(repo)
    assert "modeling_latent_bridge.py" not in files and "auto_map" not in json.loads(files["config.json"])


def test_stitched_model_pushes_with_a_classification_card(hub_server, tmp_path):
    from hf_latent_bridge.models.head import ClassificationHead
    from hf_latent_bridge.models.stitched import StitchedModel

    bridge = make_bridge(11)
    g = torch.Generator().manual_seed(0)
    target_embeddings = torch.randn(60, 12, generator=g)
    labels = (target_embeddings[:, 0] > 0).long()
    head = ClassificationHead.fit(
        target_embeddings, labels, id2label=["off-topic", "on-topic"], pooling="mean", encoder=TARGET
    )
    stitched = StitchedModel.from_parts(bridge, head)
    repo = new_repo("stitched")
    stitched.push_to_hub(repo)
    assert len(hub_server.commits(repo)) == 2
    card = ModelCard.load(repo)
    assert card.data.pipeline_tag is None  # no Hub widget can run it: the card shows the pipeline call
    assert f'pipeline("stitched-classification", model="{repo}")' in card.text
    assert "stitched-classification" in card.data.tags and "`off-topic`, `on-topic`" in card.text
    assert card.data.base_model == [SOURCE.name_or_path, TARGET.name_or_path]
    loaded = StitchedModel.from_pretrained(repo, cache_dir=tmp_path)
    probe = torch.randn(4, 16, generator=g)
    assert torch.equal(loaded.logits_from_embeddings(probe), stitched.logits_from_embeddings(probe))
