"""``hf-latent-bridge check-head`` on a saved head and on a transformers classifier (tiny, built offline)."""

from __future__ import annotations

import json

import datasets
import pytest
import torch

from hf_latent_bridge.core.scale_invariance import check_head
from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.models.head import ClassificationHead
from tests.cli.common import assert_one_line_failure, run


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


def test_check_head_reports_what_the_library_measures(
    tmp_path, head_dir, topics_file, tiny_bert_path, topics
):
    out = tmp_path / "report"
    result = run(
        "check-head", head_dir, "-d", topics_file, "--label-column", "topic", "-o", out, "--limit", 120
    )
    assert result.exit_code == 0, result.stderr
    assert "### About the mean" in result.stdout and "About the origin" in result.stdout
    assert "**Verdict:**" in result.stdout
    assert {p.name for p in out.iterdir()} == {
        "scale_invariance.json",
        "scale_invariance.md",
        "scale_invariance.png",
    }
    payload = json.loads((out / "scale_invariance.json").read_text())
    assert payload["encoder"]["name_or_path"] == tiny_bert_path and payload["head"] == str(head_dir)
    # the same seeded sample, embedded and checked by the library
    table = datasets.load_dataset("json", data_files=str(topics_file), split="train").shuffle(seed=0)
    table = table.select(range(120))
    embeddings = load_encoder(tiny_bert_path).embed(list(table["text"]))
    labels = [topics[2].index(t) for t in table["topic"]]
    head = ClassificationHead.from_pretrained(head_dir)
    for centre in ("mean", "origin"):
        expected, got = check_head(head, embeddings, labels, centre=centre), payload["reports"][centre]
        assert got["num_samples"] == 120 and got["accuracy"] == pytest.approx(expected.accuracy)
        assert [t["agreement"] for t in got["trials"]] == pytest.approx(
            [t.agreement for t in expected.trials]
        )


def test_a_transformers_classifier_is_checked_on_its_own_base_model(tmp_path, tiny_bert_path, topics_file):
    """A BertForSequenceClassification: its linear classifier on the pooled output is the head."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path / "classifier"
    BertForSequenceClassification(
        BertConfig.from_pretrained(tiny_bert_path, num_labels=3)
    ).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_path).save_pretrained(folder)
    result = run("check-head", folder, "-d", topics_file, "--no-labels", "--limit", 60, "--centre", "mean")
    assert result.exit_code == 0, result.stderr
    assert "### About the mean" in result.stdout and "About the origin" not in result.stdout
    assert "| accuracy |" in result.stdout and "| n/a |" in result.stdout  # no labels: agreement only


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
    assert result.exit_code == 2 and "**Verdict:**" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--label-column", "nope"], ["column 'nope'"]),
        (["--label-column", "text"], ["is not one of the head's classes", "--no-labels"]),
        (["--encoder", "{bert48}"], ["gives 48-dimensional embeddings but the head takes 32", "--encoder"]),
        (["--bare"], ["records no encoder", "--encoder"]),
        (["--head", "missing"], ["missing is neither a folder", "ClassificationHead folder"]),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_check_head_refusals(args, fragments, tmp_path, head_dir, topics_file, tiny_bert48_path):
    head = head_dir
    if args == ["--bare"]:
        head, args = tmp_path / "bare", []
        ClassificationHead.from_linear(torch.randn(3, 32)).save_pretrained(head)
    elif args[0] == "--head":
        head, args = tmp_path / args[1], []
    args = [a.format(bert48=tiny_bert48_path) for a in args]
    out = tmp_path / "report"
    result = run("check-head", head, "-d", topics_file, "-o", out, "--label-column", "topic", *args)
    assert_one_line_failure(result, *fragments)
    assert not out.exists()
