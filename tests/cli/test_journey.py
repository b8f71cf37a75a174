"""The whole journey, the way two users run it: fresh processes, the test Hub, empty caches, offline.

A publisher pushes two tiny encoders and runs ``hf-latent-bridge stitch ... --push-to-hub``; a second user
with an empty cache loads the pipeline by repo id (the source encoder comes from the Hub by the commit
recorded in the model), then again with ``HF_HUB_OFFLINE=1`` from the cache alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from huggingface_hub import HfApi

from tests.conftest import HUB_USER

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Do you like to play basketball?", "Who wrote Hamlet?", "I am hungry, what is for dinner?"]

CONSUMER = """
import json, sys
import hf_latent_bridge
from transformers import pipeline
repo, texts = sys.argv[1], json.loads(sys.argv[2])
classifier = pipeline("stitched-classification", model=repo)
source = classifier.model.config.source
print("RESULT " + json.dumps({
    "labels": [r[0]["label"] for r in classifier(texts)],
    "source": [source.name_or_path, source.revision],
}))
"""


def run_fresh(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python *args`` in a new process with its own HF cache."""
    return subprocess.run(
        [sys.executable, *args],
        env={**os.environ, "HF_HOME": str(home), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def result_of(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode == 0, process.stderr[-3000:]
    line = next(line for line in process.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_stitch_push_then_a_second_user_loads_it_by_repo_id_online_and_offline(
    hub_server, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    api = HfApi()
    encoders = []
    for folder in (tiny_bert_path, tiny_bert48_path):
        repo = f"{HUB_USER}/encoder-{uuid.uuid4().hex[:8]}"
        api.create_repo(repo)
        api.upload_folder(repo_id=repo, folder_path=folder)
        encoders.append(repo)
    stitched_repo, out = f"{HUB_USER}/stitched-{uuid.uuid4().hex[:8]}", tmp_path / "out"

    publish = run_fresh(
        tmp_path / "publisher", "-m", "hf_latent_bridge.cli",
        "stitch", *encoders, "-d", str(topics_file), "--label-column", "topic", "-k", "100",
        "-o", str(out), "--push-to-hub", stitched_repo,
    )  # fmt: skip
    assert publish.returncode == 0, publish.stderr[-3000:]
    assert "pushed to" in publish.stdout
    pushed = hub_server.files(stitched_repo)
    assert {name: pushed[name] for name in ("config.json", "model.safetensors")} == {
        name: (out / name).read_bytes() for name in ("config.json", "model.safetensors")
    }  # what was pushed is what was saved

    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    online = result_of(run_fresh(tmp_path / "user", str(script), stitched_repo, json.dumps(TEXTS)))
    name, revision = online["source"]
    assert name == encoders[0] and re.fullmatch(r"[0-9a-f]{40}", revision)  # pinned to the commit used
    assert revision == api.model_info(encoders[0]).sha
    offline = result_of(
        run_fresh(tmp_path / "user", str(script), stitched_repo, json.dumps(TEXTS), HF_HUB_OFFLINE="1")
    )
    assert offline == online
    local = result_of(run_fresh(tmp_path / "user", str(script), str(out), json.dumps(TEXTS)))
    assert local["labels"] == online["labels"]
