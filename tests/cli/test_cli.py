"""The hf-latent-bridge command line, with tiny real transformers models and real ChatterBot utterances.

Every command is run through typer's CliRunner; failures must be one line on stderr, a non-zero exit
code, no traceback, and nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.cli import app
from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.models.head import ClassificationHead
from hf_latent_bridge.models.stitched import StitchedModel

runner = CliRunner()
COMMANDS = ("fit", "stitch", "eval", "predict", "demo")


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, *fragments: str) -> None:
    """Non-zero exit, exactly one 'error:' line on stderr naming the problem, no traceback."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".hlb-" in p.name or ".tmp-" in p.name)


# ------------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command):
    result = run(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output
    if command:
        assert command in result.output


def test_usage_errors_are_one_line():
    assert_clean_failure(run("no-such-command"), "No such command")
    assert_clean_failure(run("fit", "a", "b"), "--data")
    assert_clean_failure(run("eval", "a", "b", "-d", "x", "-o", "y", "--bogus-option"), "--bogus-option")


# ------------------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("strategy", ["uniform", "balanced", "farthest"])
def test_fit_writes_a_bridge_equal_to_the_library_fit(
    strategy, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    out = tmp_path / "bridge"
    result = run(
        "fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", out, "-k", 80,
        "--strategy", strategy, "--label-column", "topic", "--seed", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert "saved irp bridge 32 -> 48 (80 anchors" in result.output
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert leftovers(tmp_path) == []

    bridge = LatentBridge.from_pretrained(out)
    anchors = bridge.config.anchor_set
    assert len(anchors["indices"]) == 80 and anchors["split"] == "train" and anchors["column"] == "text"
    assert anchors["extra"]["strategy"] == strategy
    assert bridge.config.source.name_or_path == tiny_bert_path and bridge.config.target.dim == 48
    # the saved bridge is exactly what the library fits on the recorded anchor rows
    texts = [json.loads(line)["text"] for line in topics_file.read_text().splitlines()]
    chosen = [texts[i] for i in anchors["indices"]]
    source, target = load_encoder(tiny_bert_path), load_encoder(tiny_bert48_path)
    expected = LatentBridge.fit(source.embed(chosen), target.embed(chosen), "irp", seed=3)
    probe = source.embed(texts[:20])
    torch.testing.assert_close(bridge.translate(probe), expected.translate(probe), rtol=1e-5, atol=1e-6)
    if strategy == "balanced":
        topics = [json.loads(line)["topic"] for line in topics_file.read_text().splitlines()]
        assert len({topics[i] for i in anchors["indices"]}) == len(set(topics))


def test_fit_procrustes_from_a_csv_file(tmp_path, topics_file, tiny_bert_path, tiny_st_path):
    rows = [json.loads(line) for line in topics_file.read_text().splitlines()]
    csv = tmp_path / "anchors.csv"
    csv.write_text("text\n" + "\n".join('"' + r["text"].replace('"', '""') + '"' for r in rows) + "\n")
    out = tmp_path / "b"
    result = run(
        "fit", tiny_bert_path, tiny_st_path, "-d", csv, "-o", out, "-k", 50, "--method", "procrustes"
    )
    assert result.exit_code == 0, result.stderr
    config = LatentBridge.from_pretrained(out).config
    assert config.method == "procrustes" and config.target.pooling == "cls+norm"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--source", "./no-such-encoder"], ["cannot load encoder", "no-such-encoder"]),
        (["--column", "body"], ["column 'body' is not in the data set", "text, topic"]),
        (["-k", "5000"], ["5000 anchors were asked for", "train split has 307 rows", "--num-anchors"]),
        (["--method", "warp"], ["unknown --method 'warp'; choose one of irp"]),
        (["--strategy", "balanced"], ["--label-column"]),
        (["--data", "missing.parquet"], ["cannot load data set"]),
        (["--split", "test"], ["only the 'train' split"]),
        (["--ridge", "-1"], ["--ridge must be 'auto' or a finite number >= 0"]),
        (["--ridge", "nan"], ["--ridge must be"]),
        (["--scale", "big"], ["--scale must be 'mean', 'none' or a finite number > 0"]),
        (["--whitening", "strong"], ["--whitening must be None (plain relative projection)"]),
    ],
)
def test_fit_bad_arguments(args, fragments, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    source = tiny_bert_path
    if args[0] == "--source":
        source, args = args[1], []
    options = ["-d", topics_file, "-o", tmp_path / "out", "-k", 40]
    if args and args[0] == "--data":
        options[1] = tmp_path / args[1]
        args = []
    result = run("fit", source, tiny_bert48_path, *options, *args)
    assert_clean_failure(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the output folder


def test_fit_unwritable_output_fails_before_any_compute(
    tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", blocker / "out", "-k", 40)
    assert_clean_failure(result, "cannot write to")
    assert blocker.read_text() == "not a folder"


def test_fit_keeps_an_existing_output_unless_overwrite(
    tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    args = ["fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", out, "-k", 40]
    assert_clean_failure(run(*args), "not empty", "--overwrite")
    assert (out / "precious.txt").read_text() == "keep me"
    # a failing run with --overwrite leaves the old folder untouched too
    assert_clean_failure(run(*args, "--column", "nope", "--overwrite"), "column 'nope'")
    assert (out / "precious.txt").read_text() == "keep me"
    result = run(*args, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert not (out / "precious.txt").exists() and (out / "model.safetensors").is_file()
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------- eval
def test_eval_writes_the_matrix_and_curve(
    tmp_path, topics_file, tiny_bert_path, tiny_bert48_path, tiny_st_path
):
    out = tmp_path / "matrix"
    result = run(
        "eval", f"bert32={tiny_bert_path}", f"bert48={tiny_bert48_path}", f"st32={tiny_st_path}",
        "-d", topics_file, "--label-column", "topic", "-o", out,
        "--methods", "identity,procrustes,irp", "--curve", "bert32->bert48", "--anchor-counts", "16,64",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "| bert32 → bert48 |" in result.output
    assert {p.name for p in out.iterdir()} == {
        "stitching_matrix.json", "stitching_matrix.md", "heatmap.png", "anchor_curve.json", "anchor_curve.png",
    }  # fmt: skip
    matrix = json.loads((out / "stitching_matrix.json").read_text())
    assert matrix["encoders"] == ["bert32", "bert48", "st32"]
    total = len(topics_file.read_text().splitlines())
    assert matrix["num_gathered"] == matrix["num_test"] == total - matrix["num_train"]
    assert abs(matrix["num_test"] - 0.3 * total) <= 1
    assert len(matrix["cells"]) == 3 + 6 * 3
    cells = {(c["source"], c["target"], c["method"]): c for c in matrix["cells"]}
    assert cells[("bert32", "bert48", "identity")]["accuracy"] is None  # 32 vs 48 dimensions
    assert cells[("bert32", "st32", "identity")]["accuracy"] is not None  # same dimension
    for cell in matrix["cells"]:
        if cell["accuracy"] is not None:
            assert 0 <= cell["accuracy"] <= 1 and -1 <= cell["cosine"] <= 1 and cell["mse"] >= 0
    curve = json.loads((out / "anchor_curve.json").read_text())
    assert {p["num_anchors"] for p in curve["points"]} == {16, 64}
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--label-column", "category"], ["column 'category' is not in the data set"]),
        (["--label-column", "topic", "--methods", "irp,warp"], ["unknown --methods 'warp'"]),
        (["--label-column", "topic", "--curve", "a->zzz"], ["--curve 'a->zzz'"]),
        (["--label-column", "topic", "-k", "100000"], ["--num-anchors 100000 is not possible"]),
    ],
)
def test_eval_bad_arguments(extra, fragments, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    result = run(
        "eval",
        f"a={tiny_bert_path}",
        f"b={tiny_bert48_path}",
        "-d",
        topics_file,
        "-o",
        tmp_path / "m",
        *extra,
    )
    assert_clean_failure(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_eval_needs_two_encoders(tmp_path, topics_file, tiny_bert_path):
    assert_clean_failure(
        run("eval", tiny_bert_path, "-d", topics_file, "-o", tmp_path / "m"), "at least 2 encoders"
    )


# ------------------------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def stitched_dir(tmp_path_factory, topics_file, tiny_bert_path, tiny_bert48_path) -> Path:
    """A stitched model made from CLI parts: a bridge from `fit`, a head on the target's embeddings."""
    root = tmp_path_factory.mktemp("stitched")
    result = run("fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", root / "bridge", "-k", 120)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in topics_file.read_text().splitlines()]
    names = sorted({r["topic"] for r in rows})
    target = load_encoder(tiny_bert48_path)
    head = ClassificationHead.fit(
        target.embed([r["text"] for r in rows]), [names.index(r["topic"]) for r in rows], id2label=names
    )
    model = StitchedModel.from_parts(LatentBridge.from_pretrained(root / "bridge"), head)
    model.save_pretrained(root / "stitched")
    return root / "stitched"


def test_predict_text_file_to_json_lines_matches_the_model(tmp_path, stitched_dir, tiny_bert_path):
    texts = ["What is the meaning of life?", "Do you like football?", "Tell me a joke about computers."]
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(texts) + "\n\n")
    out = tmp_path / "preds.jsonl"
    result = run("predict", stitched_dir, inputs, "-o", out, "--top-k", 2)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in records] == texts
    model = StitchedModel.from_pretrained(stitched_dir)
    probs = model.predict_proba(texts)
    for record, row in zip(records, probs, strict=True):
        scores, ids = row.topk(2)
        assert [p["label"] for p in record["predictions"]] == [model.config.id2label[int(i)] for i in ids]
        assert [p["score"] for p in record["predictions"]] == pytest.approx(scores.tolist(), abs=1e-5)
    assert leftovers(tmp_path) == []


def test_predict_jsonl_to_stdout_with_a_given_source_encoder(tmp_path, stitched_dir, tiny_bert_path):
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps({"id": 1, "question": "Are you a robot?"}) + "\n")
    result = run("predict", stitched_dir, inputs, "--column", "question", "--source-encoder", tiny_bert_path)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.strip())
    assert record["input"] == "Are you a robot?" and len(record["predictions"]) == 1


@pytest.mark.parametrize(
    ("content", "args", "fragments"),
    [
        ('{"question": "hi"}\n', ["--column", "text"], ["has no field 'text'"]),
        ("not json\n", [], ["line 1 is not JSON"]),
        ("\n\n", [], ["holds no inputs"]),
        ('{"text": "hi"}\n', ["--top-k", "0"], ["--top-k must be a positive integer"]),
    ],
)
def test_predict_bad_inputs(content, args, fragments, tmp_path, stitched_dir):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(content)
    out = tmp_path / "out.jsonl"
    assert_clean_failure(run("predict", stitched_dir, inputs, "-o", out, *args), *fragments)
    assert not out.exists() and leftovers(tmp_path) == []


def test_predict_missing_model_or_file(tmp_path, stitched_dir):
    inputs = tmp_path / "in.txt"
    inputs.write_text("hello\n")
    assert_clean_failure(run("predict", stitched_dir, tmp_path / "absent.txt"), "does not exist")
    assert_clean_failure(
        run("predict", tmp_path / "no-model", inputs, "-o", tmp_path / "o.jsonl"), "no-model"
    )
    assert not (tmp_path / "o.jsonl").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_clean_failure(run("predict", stitched_dir, inputs, "-o", blocker / "o.jsonl"), "does not exist")


def test_fit_push_to_hub_uploads_the_saved_bridge(
    hub_server, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    out = tmp_path / "bridge"
    repo = "tester/cli-bridge"
    result = run(
        "fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", out, "-k", 60, "--push-to-hub", repo,
        "--source-id", "tester/tiny-bert", "--target-id", "tester/tiny-bert-48",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "pushed to" in result.output
    files = hub_server.files(repo)
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert files["model.safetensors"] == (out / "model.safetensors").read_bytes()
    pulled = LatentBridge.from_pretrained(repo)
    assert pulled.config.anchor_fingerprint == LatentBridge.from_pretrained(out).config.anchor_fingerprint
