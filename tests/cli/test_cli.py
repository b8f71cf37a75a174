"""The hf-latent-bridge commands, in process, with tiny real transformers models and real utterances.

Each command is a thin layer: its options go to one library call and its output is what that call
gives, so the successful runs are compared with the library itself. Refusals are one line on stderr,
before any compute (nothing embedded: the embedding cache stays empty) and with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hf_latent_bridge import LatentBridge, StitchedModel, fit_from_encoders, stitch
from tests.cli.common import assert_one_line_failure, debris, run

COMMANDS = ("fit", "stitch", "eval", "predict", "check-head", "demo")


def same_weights(a, b) -> bool:
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items()
    )


# ------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("args", [[], ["--help"], *[[c, "--help"] for c in COMMANDS]], ids=str)
def test_help(args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and (not args[1:] or args[0] in result.output)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no-such-command"], "No such command"),
        (["fit", "a", "b", "-o", "out"], "--data"),
        (["fit", "a", "b", "-d", "x", "-o", "y", "--bogus-option"], "--bogus-option"),
        (["fit", "a", "b", "-d", "x", "-o", "y", "--scale", "mean"], "--scale"),  # renamed --output-norm
        (["fit", "a", "b", "-d", "x", "-o", "y", "--batch-size", "0"], "--batch-size"),
        (["stitch", "a", "b", "-d", "x", "-o", "y", "--seed", "-1"], "--seed"),
        (["eval", "a", "b", "-d", "x", "-o", "y", "-k", "1"], "--num-anchors"),
        (["predict", "model", "inputs.txt", "--top-k", "0"], "--top-k"),
        (["check-head", "head", "-d", "x", "--centre", "median"], "--centre"),
        (["demo", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_usage_errors_are_typers_one_line_with_exit_code_2(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_failure(run(*args), fragment, exit_code=2)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- fit
def test_fit_saves_the_bridge_the_library_fits(tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    out = tmp_path / "bridge"
    result = run(
        "fit", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "-o", out, "-k", 60, "--strategy", "farthest",
        "--seed", 3, "--method", "irp", "--ridge", "0.01", "--output-norm", "none", "--whitening", "none",
        "--batch-size", 7,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"saved irp bridge 32 -> 48 (60 anchors, ridge 0.01) to {out}\n"
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert debris(out) == []
    saved = LatentBridge.from_pretrained(out)
    expected = fit_from_encoders(
        tiny_bert_path, tiny_bert48_path, str(topics_file), num_anchors=60, strategy="farthest", seed=3,
        method="irp", ridge=0.01, output_norm="none", whitening=None, batch_size=7, train_head=False,
    ).bridge  # fmt: skip
    assert same_weights(saved, expected)
    assert saved.config.anchor_set == expected.config.anchor_set
    assert (saved.config.output_norm, saved.config.whitening) == ("none", None)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--output-norm", "big"], ["output_norm must be", "'big'"]),
        (["--ridge", "nan"], ["ridge must be 'auto' or a number >= 0, got nan"]),
        (["--whitening", "strong"], ["whitening must be", "'strong'"]),
        (["--method", "warp"], ["method must be 'auto' or 'irp'", "'warp'"]),
        (["--strategy", "balanced"], ["need labels", "--label-column"]),
        (["-k", "5000"], ["5000 anchors", "307 rows"]),
        (["--column", "body"], ["column 'body' is not in the data set", "text, topic"]),
        (["--source", "./no-such-encoder"], ["cannot load encoder", "no-such-encoder"]),
        (["--data", "missing.jsonl"], ["cannot load data set", "missing.jsonl"]),
    ],
    ids=lambda v: v[0] if isinstance(v, list) and v[0].startswith("-") else None,
)
def test_bad_options_are_refused_before_any_compute(
    args, fragments, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    source, data = tiny_bert_path, topics_file
    if args[0] == "--source":
        source, args = args[1], []
    elif args[0] == "--data":
        data, args = tmp_path / args[1], []
    cache = tmp_path / "cache"
    result = run(
        "fit", source, tiny_bert48_path, "-d", data, "-o", tmp_path / "out", "--cache-dir", cache, *args
    )
    assert_one_line_failure(result, *fragments)
    assert list(tmp_path.iterdir()) == []  # no output, no staging, and nothing embedded into the cache


def test_an_output_is_replaced_only_with_overwrite(tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    (tmp_path / "a-file").write_text("not a folder")
    args = [
        "fit",
        tiny_bert_path,
        tiny_bert48_path,
        "-d",
        topics_file,
        "-k",
        40,
        "--cache-dir",
        tmp_path / "cache",
    ]
    assert_one_line_failure(run(*args, "-o", out), "not empty", "--overwrite")
    assert_one_line_failure(run(*args, "-o", tmp_path / "a-file" / "out"), "a-file")
    assert (out / "precious.txt").read_text() == "keep me" and (
        tmp_path / "a-file"
    ).read_text() == "not a folder"
    assert not (tmp_path / "cache").exists()  # refused before anything was embedded
    result = run(*args, "-o", out, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert debris(out) == []


# ------------------------------------------------------------------------------------ stitch, predict
@pytest.fixture(scope="module")
def stitched(tmp_path_factory, topics_file, tiny_bert_path, tiny_bert48_path) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("stitched") / "model"
    result = run(
        "stitch", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "--label-column", "topic", "-o", out,
        "-k", 100, "--test-size", "0.25", "--seed", 1,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return out, result.stdout


def test_stitch_saves_the_model_the_library_stitches(stitched, topics_file, tiny_bert_path, tiny_bert48_path):
    out, stdout = stitched
    expected = stitch(
        tiny_bert_path, tiny_bert48_path, str(topics_file), label_column="topic", num_anchors=100,
        test_size=0.25, seed=1,
    )  # fmt: skip
    saved = StitchedModel.from_pretrained(out)
    assert same_weights(saved, expected) and saved.config.metrics == expected.config.metrics
    metrics = expected.config.metrics
    assert f"stitched accuracy {metrics['stitched_accuracy']:.3f}" in stdout
    assert (
        f"on {metrics['num_samples']} held-out rows" in stdout and f"hf-latent-bridge predict {out}" in stdout
    )


def test_predict_writes_what_the_model_predicts_to_a_file_or_stdout(tmp_path, stitched, tiny_bert_path):
    model_dir, _ = stitched
    texts = ["What is the meaning of life?", "Do you like football?", "Tell me a joke about computers."]
    (tmp_path / "inputs.txt").write_text("\n".join(texts) + "\n\n")
    out = tmp_path / "predictions.jsonl"
    result = run("predict", model_dir, tmp_path / "inputs.txt", "-o", out, "--top-k", 2, "--batch-size", 2)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in records] == texts
    model = StitchedModel.from_pretrained(model_dir)
    for record, row in zip(records, model.predict_proba(texts), strict=True):
        scores, ids = row.topk(2)
        assert [p["label"] for p in record["predictions"]] == [model.config.id2label[int(i)] for i in ids]
        assert [p["score"] for p in record["predictions"]] == pytest.approx(scores.tolist(), abs=1e-5)
    assert debris(out) == []

    (tmp_path / "inputs.jsonl").write_text(
        "".join(json.dumps({"id": i, "q": t}) + "\n" for i, t in enumerate(texts))
    )
    result = run(
        "predict", model_dir, tmp_path / "inputs.jsonl", "--column", "q", "--source-encoder", tiny_bert_path
    )
    assert result.exit_code == 0, result.stderr
    on_stdout = [json.loads(line) for line in result.stdout.splitlines()]
    for got, want in zip(on_stdout, records, strict=True):  # other batches pad differently: float noise
        assert [p["label"] for p in got["predictions"]] == [want["predictions"][0]["label"]]
        assert got["predictions"][0]["score"] == pytest.approx(want["predictions"][0]["score"], abs=1e-5)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("no such field", ["has no field 'text'"]),
        ("not JSON", ["line 1 is not JSON"]),
        ("no inputs", ["holds no inputs"]),
        ("no inputs file", ["does not exist"]),
        ("no model", ["no-model is neither a folder", "'hf-latent-bridge stitch'"]),
        (
            "a bridge",
            ["is a latent_bridge model, not a stitched classifier", "hf-latent-bridge stitch SOURCE"],
        ),
        ("output exists", ["exists", "--overwrite"]),
    ],
)
def test_predict_refusals_write_nothing(case, fragments, tmp_path, stitched):
    model, inputs, out = stitched[0], tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text(
        {"no such field": '{"q": "hi"}\n', "not JSON": "not json\n", "no inputs": "\n\n"}.get(
            case, '{"text": "hi"}\n'
        )
    )
    if case == "no inputs file":
        inputs = tmp_path / "absent.txt"
    elif case == "no model":
        model = tmp_path / "no-model"
    elif case == "a bridge":
        model = tmp_path / "bridge"
        LatentBridge.fit(torch.randn(40, 8), torch.randn(40, 8)).save_pretrained(model)
    elif case == "output exists":
        out.write_text("my results\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert_one_line_failure(run("predict", model, inputs, "-o", out), *fragments)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_pushing_encoders_known_only_by_local_paths_is_refused_before_any_compute(
    tmp_path, topics_file, tiny_bert_path
):
    result = run(
        "stitch", tiny_bert_path, tiny_bert_path, "-d", topics_file, "--label-column", "topic", "-k", 60,
        "-o", tmp_path / "out", "--cache-dir", tmp_path / "cache", "--push-to-hub", "tester/nowhere",
        "--target-id", "tester/tiny-bert",
    )  # fmt: skip
    assert_one_line_failure(result, "--push-to-hub needs the source encoder named by a Hub id", "--source-id")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- eval
def test_eval_writes_the_matrix_the_curve_and_the_scored_models(
    tmp_path, topics_file, tiny_bert_path, tiny_bert48_path, tiny_st_path
):
    out = tmp_path / "matrix"
    result = run(
        "eval", f"bert32={tiny_bert_path}", f"bert48={tiny_bert48_path}", f"st32={tiny_st_path}",
        "-d", topics_file, "--label-column", "topic", "-o", out, "--methods", "identity,irp",
        "--curve", "bert32->bert48", "--anchor-counts", "16,64", "--save-models",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "| bert32 → bert48 |" in result.stdout
    assert {p.name for p in out.iterdir()} == {
        "stitching_matrix.json", "stitching_matrix.md", "heatmap.png", "anchor_curve.json", "anchor_curve.png",
        "models",
    }  # fmt: skip
    matrix = json.loads((out / "stitching_matrix.json").read_text())
    assert matrix["encoders"] == ["bert32", "bert48", "st32"] and len(matrix["cells"]) == 3 + 6 * 2
    total = len(topics_file.read_text().splitlines())
    assert matrix["num_test"] == total - matrix["num_train"] and abs(matrix["num_test"] - 0.3 * total) <= 1
    cells = {(c["source"], c["target"], c["method"]): c for c in matrix["cells"]}
    assert cells[("bert32", "bert48", "identity")]["accuracy"] is None  # 32 vs 48 dimensions
    scored = {k for k, c in cells.items() if k[2] != "native" and c["accuracy"] is not None}
    assert {p.name for p in (out / "models").iterdir()} == {f"{s}-to-{t}-{m}" for s, t, m in scored}
    model = StitchedModel.from_pretrained(out / "models" / "bert32-to-bert48-irp")
    assert model.config.metrics["stitched_accuracy"] == cells[("bert32", "bert48", "irp")]["accuracy"]
    curve = json.loads((out / "anchor_curve.json").read_text())
    assert {p["num_anchors"] for p in curve["points"]} == {16, 64}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--methods", "irp,warp"], "unknown --methods 'warp'"),
        (["--strategy", "kmeans"], "--strategy must be"),
        (["--curve", "a->zzz"], "--curve 'a->zzz'"),
        (["--anchor-counts", "1,x"], "--anchor-counts must be"),
        (["-k", "100000"], "--num-anchors 100000 is more than"),
        (["--label-column", "category"], "column 'category' is not in the data set"),
        (["--only-one"], "2 or more encoders"),
        (["--same-names"], "distinct names"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_eval_refusals_come_before_any_compute(
    args, fragment, tmp_path, topics_file, tiny_bert_path, tiny_bert48_path
):
    encoders = [f"a={tiny_bert_path}", f"b={tiny_bert48_path}"]
    if args == ["--only-one"]:
        encoders, args = encoders[:1], []
    elif args == ["--same-names"]:
        encoders, args = [f"a={tiny_bert_path}", f"a={tiny_bert48_path}"], []
    options = [
        "-d",
        topics_file,
        "-o",
        tmp_path / "m",
        "--cache-dir",
        tmp_path / "cache",
        "--label-column",
        "topic",
    ]
    assert_one_line_failure(run("eval", *encoders, *options, *args), fragment)
    assert list(tmp_path.iterdir()) == []
