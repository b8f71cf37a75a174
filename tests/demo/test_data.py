"""Tests for hf_latent_bridge.demo.data (real offline data sets)."""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hf_latent_bridge.demo import data
from hf_latent_bridge.demo.data import FASHION_MNIST_CLASSES, fashion_mnist_captions

EXPECTED_TOPICS = [
    "ai",
    "botprofile",
    "coding",
    "computers",
    "conversations",
    "emotion",
    "food",
    "gossip",
    "greetings",
    "humor",
    "literature",
    "money",
    "movies",
    "politics",
    "psychology",
    "science",
    "sports",
    "tech_support",
    "trivia",
]


def _has_fashion_mnist() -> bool:
    return (data.fashion_mnist_dir() / "train-labels-idx1-ubyte.gz").is_file()


needs_fashion = pytest.mark.skipif(not _has_fashion_mnist(), reason="apt-get install dataset-fashion-mnist")


# ----------------------------------------------------------------------------------------------- chatterbot


@pytest.fixture(scope="module")
def chatterbot():
    return data.chatterbot_topics()


def test_chatterbot_topics_counts_and_names(chatterbot):
    """The figures the docstring of chatterbot_topics gives, and the threshold that makes them."""
    assert chatterbot.column_names == ["text", "label"]
    assert chatterbot.features["label"].names == EXPECTED_TOPICS
    assert chatterbot.features["text"].dtype == "string"
    assert len(chatterbot) == 1841
    counts = Counter(chatterbot["label"])
    names = chatterbot.features["label"].names
    by_name = {names[k]: v for k, v in counts.items()}
    assert set(by_name) == set(EXPECTED_TOPICS)
    assert min(by_name.values()) >= data.CHATTERBOT_MIN_UTTERANCES
    assert by_name["trivia"] == 510
    assert by_name["tech_support"] == 20
    assert "health" not in names and "history" not in names
    everything = data.chatterbot_topics(min_utterances=0)
    assert len(everything.features["label"].names) == 21
    assert len(everything) == 1841 + 7 + 16  # health and history come back


def test_chatterbot_topics_cleaning(chatterbot):
    texts = list(chatterbot["text"])
    folded = [t.casefold() for t in texts]
    assert len(set(folded)) == len(texts), "texts must be unique (case-insensitively)"
    assert all(t and t == " ".join(t.split()) for t in texts), "whitespace must be normalised"
    # Utterances that occur under several topics are removed entirely.
    for ambiguous in ("Hello", "Hi", "Yes.", "No.", "Thank you.", "How are you doing?", "Who are you?"):
        assert ambiguous not in texts
    # The bare-string conversation in trivia.yml is one utterance, not a run of single characters.
    # (Only genuine one-character answers remain, e.g. "E" for the most common English letter.)
    assert {t for t in texts if len(t) == 1 and not t.isdigit()} == {"E"}
    assert any(t.startswith("In a game of bingo, which number") for t in texts)
    # Rows follow sorted topic files, so labels never decrease.
    labels = np.asarray(list(chatterbot["label"]))
    assert np.all(np.diff(labels) >= 0)
    assert texts[0] == "What is AI?"


def test_chatterbot_splits_stratified_and_deterministic(chatterbot):
    splits = data.chatterbot_topics_splits(test_size=0.3, seed=0)
    train, test = splits["train"], splits["test"]
    assert (len(train), len(test)) == (1288, 553)
    assert set(train["text"]).isdisjoint(test["text"])
    assert set(train["text"]) | set(test["text"]) == set(chatterbot["text"])
    totals = Counter(chatterbot["label"])
    test_counts = Counter(test["label"])
    for label, total in totals.items():
        assert abs(test_counts[label] - 0.3 * total) <= 1.0, (label, test_counts[label], total)
    assert train.features["label"].names == EXPECTED_TOPICS
    again = data.chatterbot_topics_splits(test_size=0.3, seed=0)  # the demo's figures rest on this
    assert list(again["test"]["text"]) == list(test["text"])


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    with pytest.raises(ImportError, match=r"optional package 'pyyaml'.*hf-latent-bridge\[demo\]"):
        data.chatterbot_topics()


# ------------------------------------------------------------------------------------------ Fashion-MNIST


@needs_fashion
def test_fashion_mnist_arrays_real_files():
    images, labels = data.fashion_mnist_arrays("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * 10
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    head_images, head_labels = data.fashion_mnist_arrays("test", limit=25)
    np.testing.assert_array_equal(head_images, images[:25])
    np.testing.assert_array_equal(head_labels, labels[:25])
    train_images, train_labels = data.fashion_mnist_arrays("train", limit=10)
    assert train_images.shape == (10, 28, 28)
    assert train_labels.tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    with pytest.raises(ValueError, match="split"):
        data.fashion_mnist_arrays("validation")
    with pytest.raises(ValueError, match="limit"):
        data.fashion_mnist_arrays("test", limit=-1)


@needs_fashion
def test_fashion_mnist_dataset():
    import datasets

    ds = data.fashion_mnist("train", limit=50)
    assert len(ds) == 50
    assert ds.features["label"].names == list(FASHION_MNIST_CLASSES)
    assert isinstance(ds.features["image"], datasets.Array2D)
    assert ds.features["image"].shape == (28, 28) and ds.features["image"].dtype == "uint8"
    images, labels = data.fashion_mnist_arrays("train", limit=50)
    as_numpy = ds.with_format("numpy")[:]
    np.testing.assert_array_equal(as_numpy["image"], images)
    np.testing.assert_array_equal(as_numpy["label"], labels)
    assert ds.split == "train"


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_env_override_and_errors(monkeypatch, tmp_path):
    monkeypatch.setenv(data.FASHION_MNIST_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist_arrays("test")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    got_images, got_labels = data.fashion_mnist_arrays("test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert data.fashion_mnist_arrays("test", limit=3)[0].shape == (3, 28, 28)
    # A truncated payload and a wrong magic number are rejected.
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + np.asarray([7, 28, 28], ">u4").tobytes() + b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated"):
        data.fashion_mnist_arrays("test")
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", images[:, 0, :])  # 2-d: not a label file
    with pytest.raises(ValueError, match="idx file"):
        data.fashion_mnist_arrays("test")


def test_fashion_mnist_captions():
    labels = np.array([1, 1, 0, 9, 1])
    captions = fashion_mnist_captions(labels)
    assert len(captions) == 5
    assert captions == fashion_mnist_captions(labels.tolist())  # deterministic, numpy or list
    assert captions[0] == "a photo of a pair of trousers"
    assert captions[2] == "a photo of a t-shirt"
    assert captions[3] == "a photo of an ankle boot"
    assert len(set(captions[i] for i in (0, 1, 4))) == 3  # repeated class -> varied wording
    assert all(
        "trousers" in c or "pants" in c or "slacks" in c for c in (captions[0], captions[1], captions[4])
    )
    many = fashion_mnist_captions([5] * 12)
    assert len(set(many)) == 12
    canonical = fashion_mnist_captions(range(10), variants=False)
    assert len(set(canonical)) == 10 and all(c.startswith("a photo of ") for c in canonical)
    assert fashion_mnist_captions(["Bag", "Sandal"], variants=False) == [
        "a photo of a bag",
        "a photo of a sandal",
    ]
    with pytest.raises(ValueError):
        fashion_mnist_captions([10])
    with pytest.raises(ValueError):
        fashion_mnist_captions(["Hat"])
