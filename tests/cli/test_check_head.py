"""``hf-latent-bridge check-head`` on a saved head and on a transformers classifier (tiny, built offline)."""

from __future__ import annotations

import json

import pytest
import torch

from hf_latent_bridge.core.scale_invariance import check_scale_invariance
from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.models.head import ClassificationHead
from tests.cli.test_cli import assert_clean_failure, run


@pytest.fixture(scope="module")
def topics(topics_file):
    rows = [json.loads(line) for line in topics_file.read_text().splitlines()]
    names = sorted({r["topic"] for r in rows})
    return [r["text"] for r in rows], [names.index(r["topic"]) for r in rows], names


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory, tiny_bert_path, topics):
    """A logistic head on the tiny BERT's mean-pooled embeddings that records its encoder."""
    texts, labels, names = topics
    encoder = load_encoder(tiny_bert_path)
    head = ClassificationHead.fit(encoder.embed(texts), labels, id2label=names, encoder=encoder.ref)
    folder = tmp_path_factory.mktemp("head") / "head"
    head.save_pretrained(folder)
    return folder


def test_check_head_on_a_saved_head_matches_the_library(
    tmp_path, head_dir, topics_file, tiny_bert_path, topics
):
    out = tmp_path / "report"
    result = run(
        "check-head", head_dir, "-d", topics_file, "--label-column", "topic", "-o", out, "--limit", 120
    )
    assert result.exit_code == 0, result.stderr
    assert "### About the mean" in result.output and "**Verdict:**" in result.output
    payload = json.loads((out / "scale_invariance.json").read_text())
    assert payload["encoder"]["name_or_path"] == tiny_bert_path
    assert payload["reports"]["mean"]["num_samples"] == 120
    assert (out / "scale_invariance.png").is_file() and (out / "scale_invariance.md").is_file()
    # the same numbers by hand: the same seeded sample, embedded and checked by the library
    import datasets

    table = datasets.load_dataset("json", data_files=str(topics_file), split="train").shuffle(seed=0)
    table = table.select(range(120))
    _, _, names = topics
    embeddings = load_encoder(tiny_bert_path).embed(list(table["text"]))
    labels = [names.index(t) for t in table["topic"]]
    expected = check_scale_invariance(ClassificationHead.from_pretrained(head_dir), embeddings, labels)
    got = payload["reports"]["mean"]
    assert got["accuracy"] == pytest.approx(expected.accuracy)
    assert [t["agreement"] for t in got["trials"]] == pytest.approx([t.agreement for t in expected.trials])


def test_check_head_on_a_transformers_classifier_uses_its_own_base_model(
    tmp_path, tiny_bert_path, topics_file
):
    """A BertForSequenceClassification: its linear classifier on the pooled output is the head."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig.from_pretrained(tiny_bert_path, num_labels=3)
    folder = tmp_path / "classifier"
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_path).save_pretrained(folder)
    result = run("check-head", folder, "-d", topics_file, "--no-labels", "--limit", 60, "--centre", "mean")
    assert result.exit_code == 0, result.stderr
    assert "### About the mean" in result.output and "About the origin" not in result.output
    assert "| accuracy |" in result.output and "| n/a |" in result.output  # no labels: agreement only


def test_strict_exits_2_for_a_head_that_is_not_safe_behind_irp(
    tmp_path, head_dir, topics_file, tiny_bert_path, topics
):
    head = ClassificationHead.from_pretrained(head_dir)
    embeddings = load_encoder(tiny_bert_path).embed(topics[0])
    with torch.no_grad():
        head.bias.copy_(-head.weight @ embeddings.mean(0))  # equal logits at the mean: directions only
        scores = head(embeddings).sort(dim=1).values
        # plus a typical margin for class 0: rows with other norms now decide differently
        head.bias[0] += 3 * float((scores[:, -1] - scores[:, -2]).median())
    head.save_pretrained(tmp_path / "biased")
    args = ("check-head", tmp_path / "biased", "-d", topics_file, "--label-column", "topic", "--limit", 80)
    assert run(*args).exit_code == 0
    result = run(*args, "--strict")
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--centre", "median"), ("--centre must be",)),
        (("--label-column", "nope"), ("column 'nope'",)),
        (("--label-column", "text"), ("is not one of the head's classes", "--no-labels")),
        (("--batch-size", "0"), ("--batch-size",)),
    ],
)
def test_check_head_bad_arguments(head_dir, topics_file, args, fragments):
    assert_clean_failure(run("check-head", head_dir, "-d", topics_file, *args), *fragments)


def test_a_head_without_a_recorded_encoder_needs_one(tmp_path, topics_file):
    ClassificationHead(32, 3).save_pretrained(tmp_path / "bare")
    result = run("check-head", tmp_path / "bare", "-d", topics_file, "--no-labels")
    assert_clean_failure(result, "records no encoder", "--encoder")


def test_check_head_has_help():
    result = run("check-head", "--help")
    assert result.exit_code == 0 and "--strict" in result.output and "--centre" in result.output
