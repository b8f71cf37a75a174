"""From two encoders to predictions on the command line: stitch, predict, and eval --save-models."""

from __future__ import annotations

import json

from hf_latent_bridge import LatentBridge, StitchedModel
from tests.cli.test_cli import assert_clean_failure, run


def test_stitch_then_predict(tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    out = tmp_path / "stitched"
    result = run(
        "stitch", tiny_bert_path, tiny_bert48_path, "-d", topics_file, "--label-column", "topic",
        "-k", "100", "-o", out, "--source-id", "tester/tiny-bert", "--target-id", "tester/tiny-bert-48",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "stitched accuracy" in result.output and f"hf-latent-bridge predict {out}" in result.output
    model = StitchedModel.from_pretrained(out, source_encoder=None)
    assert model.config.source.name_or_path == "tester/tiny-bert"
    assert model.bridge.config.num_anchors == 100

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("Do you like to play basketball?\nWho is the president?\n")
    predictions = tmp_path / "predictions.jsonl"
    result = run(
        "predict", out, inputs, "-o", predictions, "--source-encoder", tiny_bert_path, "--top-k", "2"
    )
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [line["input"] for line in lines] == ["Do you like to play basketball?", "Who is the president?"]
    assert all(len(line["predictions"]) == 2 for line in lines)


def test_predict_on_a_bridge_says_what_it_needs(tmp_path):
    x = __import__("torch").randn(40, 8)
    LatentBridge.fit(x, x @ __import__("torch").randn(8, 8), ridge=1.0).save_pretrained(tmp_path / "bridge")
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("hello\n")
    result = run("predict", tmp_path / "bridge", inputs)
    assert_clean_failure(result, "is a bridge", "hf-latent-bridge stitch SOURCE TARGET")


def test_stitch_refuses_a_non_empty_output_before_any_compute(tmp_path, topics_file, tiny_bert_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = run(
        "stitch", tiny_bert_path, tiny_bert_path, "-d", topics_file, "--label-column", "topic", "-o", out
    )
    assert_clean_failure(result, "not empty", "--overwrite")
    assert (out / "mine.txt").read_text() == "keep me"


def test_eval_keeps_the_stitched_models_it_scores(tmp_path, topics_file, tiny_bert_path, tiny_bert48_path):
    out = tmp_path / "matrix"
    result = run(
        "eval", f"a={tiny_bert_path}", f"b={tiny_bert48_path}", "-d", topics_file,
        "--label-column", "topic", "--methods", "irp", "--save-models", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (out / "models").iterdir()) == ["a-to-b-irp", "b-to-a-irp"]
    matrix = json.loads((out / "stitching_matrix.json").read_text())
    cell = next(c for c in matrix["cells"] if (c["source"], c["target"], c["method"]) == ("a", "b", "irp"))
    model = StitchedModel.from_pretrained(out / "models" / "a-to-b-irp")
    assert model.config.metrics["stitched_accuracy"] == cell["accuracy"]


def test_pushing_encoders_known_only_by_local_paths_is_refused(tmp_path, topics_file, tiny_bert_path):
    from hf_latent_bridge.errors import BridgeInputError

    with_paths = StitchedModel.from_encoders(
        tiny_bert_path, tiny_bert_path, str(topics_file), label_column="topic", num_anchors=60
    )
    try:
        with_paths.push_to_hub("tester/nowhere")
    except BridgeInputError as error:  # the library refuses too, before creating anything on the Hub
        assert "records its source encoder by the local path" in str(error) and "source_id=" in str(error)
    else:
        raise AssertionError("pushing a model that records local paths was not refused")
    result = run(
        "stitch", tiny_bert_path, tiny_bert_path, "-d", topics_file, "--label-column", "topic", "-k", "60",
        "-o", tmp_path / "out", "--push-to-hub", "tester/nowhere",
    )  # fmt: skip
    assert_clean_failure(result, "--push-to-hub needs the source encoder named by a Hub id", "--source-id")
    assert not (tmp_path / "out").exists()  # refused before any compute or output
