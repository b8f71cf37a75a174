"""``hf-latent-bridge migrate``: calibration texts in, the estimate printed and gated, a bridged
SentenceTransformer (or a translated index) out; a refusal leaves nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.retrieval import BRIDGE_FOLDER
from tests.cli.common import assert_one_line_failure, debris, run

PROBES = ["what is your name", "do you like music"]


@pytest.fixture(scope="module")
def models(tiny_st_path, tiny_bert48_path):
    return {"old": SentenceTransformer(tiny_st_path), "new": SentenceTransformer(tiny_bert48_path)}


def migrate(tiny_st_path, tiny_bert48_path, topics_file, *args):
    return run(
        "migrate",
        tiny_st_path,
        tiny_bert48_path,
        "--calibration",
        topics_file,
        "--method",
        "procrustes",
        *args,
    )


def test_queries_side_writes_a_bridged_model(tiny_st_path, tiny_bert48_path, topics_file, models, tmp_path):
    out = tmp_path / "bridged"
    done = migrate(tiny_st_path, tiny_bert48_path, topics_file, "-o", out)
    assert done.exit_code == 0, done.output
    assert "307 calibration texts" in done.output and "top-10 neighbours" in done.output
    bridge = LatentBridge.from_pretrained(out / BRIDGE_FOLDER)
    assert (bridge.config.source_dim, bridge.config.target_dim) == (48, 32)  # new -> old
    want = bridge.translate(models["new"].encode(PROBES, convert_to_tensor=True))
    got = SentenceTransformer(str(out)).encode_query(PROBES, convert_to_tensor=True)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert "neighbour retention@10" in (out / "README.md").read_text()


def test_index_side_translates_the_index_and_routes_queries(
    tiny_st_path, tiny_bert48_path, topics_file, models, tmp_path
):
    old_index = tmp_path / "old.npy"
    np.save(old_index, models["old"].encode(PROBES * 3))
    before = old_index.read_bytes()
    out, new_index = tmp_path / "routed", tmp_path / "new.npy"
    args = ["--translate", "index", "--index", old_index, "--output-index", new_index, "-o", out]
    done = migrate(tiny_st_path, tiny_bert48_path, topics_file, *args)
    assert done.exit_code == 0, done.output
    bridge = LatentBridge.from_pretrained(out / BRIDGE_FOLDER)
    np.testing.assert_allclose(np.load(new_index), bridge.translate(np.load(old_index)), rtol=1e-5, atol=1e-6)
    assert old_index.read_bytes() == before
    routed = SentenceTransformer(str(out))
    queries = routed.encode_query(PROBES, convert_to_tensor=True)
    torch.testing.assert_close(
        queries, models["new"].encode(PROBES, convert_to_tensor=True), atol=1e-5, rtol=1e-5
    )


def test_quality_gate_and_small_samples_refuse_before_writing(
    tiny_st_path, tiny_bert48_path, topics_file, tmp_path
):
    out = tmp_path / "refused"
    gated = migrate(tiny_st_path, tiny_bert48_path, topics_file, "-o", out, "--min-retention", "0.99")
    assert_one_line_failure(gated, "below the 99.0% you set")
    small = migrate(tiny_st_path, tiny_bert48_path, topics_file, "-o", out, "--num-calibration", "40")
    assert_one_line_failure(small, "40 calibration pairs are too few")
    nothing = migrate(tiny_st_path, tiny_bert48_path, topics_file)
    assert_one_line_failure(nothing, "nothing to write")
    assert not out.exists() and not debris(out)


def test_existing_output_is_kept_without_overwrite(tiny_st_path, tiny_bert48_path, topics_file, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = migrate(tiny_st_path, tiny_bert48_path, topics_file, "-o", out)
    assert_one_line_failure(done, "overwrite")
    assert json.dumps(sorted(p.name for p in out.iterdir())) == '["notes.txt"]'
