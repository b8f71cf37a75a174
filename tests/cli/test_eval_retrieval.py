"""``hf-latent-bridge eval-retrieval``: retrieval cells from vectors files or from texts and two encoders,
written atomically as retrieval.json and retrieval.md; one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.evaluation.retrieval import score_direction
from tests.cli.common import assert_one_line_failure, debris, run

WORDS = ["sky", "tree", "book", "song", "road", "cat", "rain", "music"]


@pytest.fixture(scope="module")
def swap(tmp_path_factory):
    """Vectors of 60 documents and 20 queries by two made-up encoders (16-d new, 12-d old), as .npz and
    .safetensors files, and JSON qrels (each query: the document it was drawn from)."""
    folder = tmp_path_factory.mktemp("swap")
    g = torch.Generator().manual_seed(0)
    new_docs = torch.randn(60, 16, generator=g)
    drawn = torch.randint(0, 60, (20,), generator=g)
    new_queries = new_docs[drawn] + 0.5 * torch.randn(20, 16, generator=g)
    mix = torch.randn(16, 12, generator=g)
    old = {"queries": torch.tanh(new_queries @ mix / 3), "documents": torch.tanh(new_docs @ mix / 3)}
    np.savez(folder / "old.npz", **{k: v.numpy() for k, v in old.items()})
    save_file({"queries": new_queries, "documents": new_docs}, folder / "new.safetensors")
    (folder / "qrels.json").write_text(json.dumps([[int(d)] for d in drawn]))
    (folder / "qrels.txt").write_text("".join(f"{q} 0 {int(d)} 1\n" for q, d in enumerate(drawn)))
    return folder, old, {"queries": new_queries, "documents": new_docs}, [[int(d)] for d in drawn]


def test_vectors_files_give_the_library_rows_and_a_report(tmp_path, swap):
    folder, old, new, relevant = swap
    out = tmp_path / "report"
    result = run(
        "eval-retrieval", folder / "old.npz", folder / "new.safetensors", "--qrels", folder / "qrels.json",
        "-o", out, "--methods", "procrustes,linear", "--num-anchors", 40, "--cascade", "20", "--top-k", 5,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["retrieval.json", "retrieval.md"] and not debris(out)
    report = json.loads((out / "retrieval.json").read_text())
    assert report["command"].startswith("hf-latent-bridge") and report["anchors"] == 40  # argv, as typed
    assert (report["queries"], report["documents"], report["judged_queries"], report["k"]) == (20, 60, 20, 5)
    rows = report["rows"]
    assert [(r["side"], r["row"]) for r in rows] == [
        (side, name)
        for side in ("queries", "documents")
        for name in ("keep old", "re-index", "procrustes", "linear", "cascade N=20")
    ]
    # the same seeded anchors and bridges through the library give the same cells
    anchors = torch.randperm(60, generator=torch.Generator().manual_seed(0))[:40].sort().values
    bridge = LatentBridge.fit(
        new["documents"][anchors], torch.as_tensor(old["documents"])[anchors], method="linear"
    )
    expected = score_direction(
        "queries", old["queries"], old["documents"], new["queries"], new["documents"], relevant,
        {"linear": bridge}, k=5, anchor_documents=anchors.numpy(),
    )  # fmt: skip
    assert rows[3] == pytest.approx(expected[2])
    assert "| queries | cascade N=20 |" in (out / "retrieval.md").read_text()
    assert "| documents | linear | linear |" in result.stdout


def test_trec_qrels_and_a_saved_bridge(tmp_path, swap):
    folder, old, new, _ = swap
    LatentBridge.fit(torch.as_tensor(old["documents"]), new["documents"], method="linear").save_pretrained(
        tmp_path / "bridge"
    )
    result = run(
        "eval-retrieval", folder / "old.npz", folder / "new.safetensors", "--qrels", folder / "qrels.txt",
        "-o", tmp_path / "out", "--bridge", tmp_path / "bridge", "--sides", "documents",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "out" / "retrieval.json").read_text())
    assert report["anchors"] is None and [r["row"] for r in report["rows"]] == [
        "keep old",
        "re-index",
        "bridge",
    ]
    assert report["rows"][2]["self top-1"] is not None  # no anchors known: every document is scored


def test_texts_and_two_encoders(tmp_path, tiny_st_path, tiny_bert48_path):
    documents = [f"answer {i} about the {w}" for i, w in enumerate(WORDS * 4)]
    (tmp_path / "docs.txt").write_text("\n".join(documents) + "\n")
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"text": f"a question on the {w}"}) + "\n" for w in WORDS)
    )
    (tmp_path / "qrels.json").write_text(json.dumps({str(q): [q, q + 8] for q in range(len(WORDS))}))
    result = run(
        "eval-retrieval", f"st={tiny_st_path}", f"bert={tiny_bert48_path}", "--qrels", tmp_path / "qrels.json",
        "--queries", tmp_path / "queries.jsonl", "--documents", tmp_path / "docs.txt", "-o", tmp_path / "out",
        "--methods", "procrustes", "--sides", "queries", "--top-k", 3, "--cascade", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "out" / "retrieval.json").read_text())
    assert (report["old"], report["new"], report["queries"], report["documents"]) == ("st", "bert", 8, 32)
    assert [r["row"] for r in report["rows"]] == ["keep old", "re-index", "procrustes", "cascade N=5"]
    assert "## Retrieval: st index, bert queries" in result.stdout


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--sides", "both"], ["unknown --sides 'both'", "queries, documents"]),
        (["--methods", "magic"], ["--methods"]),
        (["--cascade", "3"], ["--cascade '3'", ">= --top-k (10)"]),
        (["--bridge", "somewhere"], ["--bridge maps one way"]),
        (["--num-anchors", "100"], ["--num-anchors 100 is more than the 60 documents"]),
    ],
)
def test_bad_options_fail_in_one_line(tmp_path, swap, extra, fragments):
    folder = swap[0]
    result = run(
        "eval-retrieval", folder / "old.npz", folder / "new.safetensors", "--qrels", folder / "qrels.json",
        "-o", tmp_path / "out", *extra,
    )  # fmt: skip
    assert_one_line_failure(result, *fragments)
    assert not (tmp_path / "out").exists() and not debris(tmp_path / "out")


def test_bad_inputs_fail_in_one_line_and_leave_the_output_as_it_was(tmp_path, swap, tiny_st_path):
    folder = swap[0]
    np.savez(tmp_path / "queries_only.npz", queries=np.zeros((20, 12)))
    (tmp_path / "qrels.json").write_text(json.dumps([[99]]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    cases = [
        (
            [tmp_path / "queries_only.npz", folder / "new.safetensors"],
            folder / "qrels.json",
            ["no documents tensor"],
        ),
        (
            [tiny_st_path, folder / "new.safetensors"],
            folder / "qrels.json",
            ["pass --queries and --documents"],
        ),
        (
            [folder / "old.npz", folder / "new.safetensors"],
            tmp_path / "qrels.json",
            ["document row 99 is out of range"],
        ),
        ([folder / "old.npz", folder / "new.safetensors"], tmp_path / "missing.json", ["does not exist"]),
    ]
    for encoders, qrels, fragments in cases:
        result = run(
            "eval-retrieval", *encoders, "--qrels", qrels, "-o", out, "--overwrite", "--methods", "linear"
        )
        assert_one_line_failure(result, *fragments)
        assert [p.name for p in out.iterdir()] == ["mine.txt"] and not debris(out)
    result = run(
        "eval-retrieval",
        folder / "old.npz",
        folder / "new.safetensors",
        "--qrels",
        folder / "qrels.json",
        "-o",
        out,
    )
    assert_one_line_failure(result, "not empty", "--overwrite")
