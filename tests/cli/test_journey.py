"""The whole journey, the way two users run it: fresh processes, the test Hub, empty caches, offline.

A publisher pushes two tiny encoders, runs ``hf-latent-bridge stitch ... --push-to-hub``; a second user
with an empty cache loads the pipeline by repo id (the source encoder comes from the Hub by the commit
recorded in the model), then again with ``HF_HUB_OFFLINE=1`` from the cache alone.
"""

from __future__ import annotations

import json
import re

from huggingface_hub import HfApi

from tests.models.test_hub import new_repo, run_fresh

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


def result_of(process) -> dict:
    assert process.returncode == 0, process.stderr[-3000:]
    line = next(line for line in process.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_stitch_push_then_a_second_user_loads_it_by_repo_id_online_and_offline(
    hub_server, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    api = HfApi()
    encoders = []
    for folder in (tiny_bert_path, tiny_bert48_path):
        repo = new_repo("encoder")
        api.create_repo(repo)
        api.upload_folder(repo_id=repo, folder_path=folder)
        encoders.append(repo)
    stitched_repo = new_repo("stitched")

    publish = run_fresh(
        tmp_path,
        "from hf_latent_bridge.cli import app; app()",
        "stitch", *encoders, "-d", str(topics_file), "--label-column", "topic", "-k", "100",
        "-o", str(tmp_path / "out"), "--push-to-hub", stitched_repo,
        home=tmp_path / "publisher",
    )  # fmt: skip
    assert publish.returncode == 0, publish.stderr[-3000:]
    assert "pushed to" in publish.stdout

    online = result_of(
        run_fresh(tmp_path, CONSUMER, stitched_repo, json.dumps(TEXTS), home=tmp_path / "user")
    )
    name, revision = online["source"]
    assert name == encoders[0] and re.fullmatch(r"[0-9a-f]{40}", revision)  # pinned to the commit used
    assert revision == api.model_info(encoders[0]).sha

    offline = result_of(
        run_fresh(
            tmp_path, CONSUMER, stitched_repo, json.dumps(TEXTS), home=tmp_path / "user", HF_HUB_OFFLINE="1"
        )
    )
    assert offline == online

    local = result_of(
        run_fresh(tmp_path, CONSUMER, str(tmp_path / "out"), json.dumps(TEXTS), home=tmp_path / "user")
    )
    assert local["labels"] == online["labels"]
