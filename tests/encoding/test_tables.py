"""Labelled tables: class ids named by id2label, a seeded hold-out, and splits that cannot be made refused."""

from __future__ import annotations

import datasets
import pytest

from hf_latent_bridge import BridgeInputError
from hf_latent_bridge.encoding.tables import labelled_splits


def test_labels_become_class_ids_named_in_sorted_order(topics_file):
    splits = labelled_splits(str(topics_file), column="text", label_column="topic", test_size=0.25, seed=3)
    rows = [*splits.train, *splits.test]
    assert len(rows) == len(topics_file.read_text().splitlines()) and len(splits.test) == round(
        0.25 * len(rows)
    )
    assert list(splits.id2label.values()) == sorted({r["topic"] for r in splits.train})
    for part, labels in ((splits.train, splits.train_labels), (splits.test, splits.test_labels)):
        assert [splits.id2label[int(i)] for i in labels] == list(part["topic"])
    again = labelled_splits(str(topics_file), column="text", label_column="topic", test_size=0.25, seed=3)
    assert list(again.test["text"]) == list(splits.test["text"])  # the seed fixes the hold-out


def test_a_split_that_cannot_be_made_is_refused_naming_the_problem():
    names = datasets.ClassLabel(names=["a", "b"])
    one_of_b = datasets.Dataset.from_dict({"text": list("wxyz"), "label": [0, 0, 0, 1]}).cast_column(
        "label", names
    )
    with pytest.raises(BridgeInputError, match="cannot hold out 0.5 of 4 rows.*least populated class"):
        labelled_splits(one_of_b, column="text", label_column="label", test_size=0.5)
    unseen = datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]}),
        test=datasets.Dataset.from_dict({"text": ["c"], "label": ["z"]}),
    )
    with pytest.raises(BridgeInputError, match=r"test labels \['z'\] never occur in the train split"):
        labelled_splits(unseen, column="text", label_column="label", test_split="test")
    with pytest.raises(BridgeInputError, match="no split 'validation'"):
        labelled_splits(unseen, column="text", label_column="label", test_split="validation")
