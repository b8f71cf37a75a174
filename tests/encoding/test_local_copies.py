"""A model made from this machine's copy of a Hub encoder loads here again by itself, in a new process and
offline, while what it records stays the Hub id; only the exact revision uses the copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from transformers import pipeline

from hf_latent_bridge import StitchedModel, load_encoder
from hf_latent_bridge.encoding.local_copies import local_copy

TEXTS = ["Do you like to play basketball?", "What is the stock market?", "Tell me a joke."]


def fresh_process(code: str) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter, offline, with the tests' HF_HOME (where the note lives)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def local_st_copy(tmp_path, tiny_st_path):
    """A sentence-transformers folder whose card names a Hub id that is neither cached nor reachable."""
    folder = tmp_path / "copy-of-tiny-st"
    shutil.copytree(tiny_st_path, folder)
    hub_id = f"someone/tiny-st-{uuid.uuid4().hex[:8]}"
    (folder / "README.md").write_text(f"model = SentenceTransformer('{hub_id}')\n")
    return folder, hub_id


def test_a_stitched_model_from_a_local_copy_runs_here_by_itself(
    tmp_path, local_st_copy, tiny_bert48_path, topics_file
):
    folder, hub_id = local_st_copy
    model = StitchedModel.from_encoders(
        str(folder),
        tiny_bert48_path,
        str(topics_file),
        text_column="text",
        label_column="topic",
        num_anchors=60,
    )
    assert model.config.source.name_or_path == hub_id  # portable: the id, not this machine's path
    model.save_pretrained(tmp_path / "model")
    saved = (tmp_path / "model" / "config.json").read_text()
    assert str(folder) not in saved
    by_hand = pipeline(
        "stitched-classification", model=str(tmp_path / "model"), source_encoder=load_encoder(str(folder))
    )
    expected = [r[0]["label"] for r in by_hand(TEXTS)]

    result = fresh_process(
        "import json, hf_latent_bridge\nfrom transformers import pipeline\n"
        f"clf = pipeline('stitched-classification', model={str(tmp_path / 'model')!r})\n"
        f"print(json.dumps([r[0]['label'] for r in clf({TEXTS!r})]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_only_the_exact_revision_uses_the_copy_and_a_moved_copy_is_forgotten(local_st_copy):
    folder, hub_id = local_st_copy
    here = load_encoder(str(folder))
    assert (here.ref.name_or_path, here.ref.revision) == (hub_id, None)
    assert local_copy(hub_id, None) == str(folder.resolve())

    again = fresh_process(
        "from hf_latent_bridge import load_encoder\n"
        f"e = load_encoder({hub_id!r})\nprint(e.ref.name_or_path, e.ref.revision, e.location)"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == [hub_id, "None", str(folder.resolve())]

    other_revision = fresh_process(
        f"from hf_latent_bridge import load_encoder\nload_encoder({hub_id!r}, revision='v2')"
    )
    assert other_revision.returncode != 0 and "EncoderLoadError" in other_revision.stderr

    shutil.move(folder, folder.with_name("moved"))
    assert local_copy(hub_id, None) is None
    gone = fresh_process(f"from hf_latent_bridge import load_encoder\nload_encoder({hub_id!r})")
    assert gone.returncode != 0 and "EncoderLoadError" in gone.stderr
