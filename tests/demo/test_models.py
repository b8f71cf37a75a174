"""Tests for hf_latent_bridge.demo.models (real offline encoders)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_latent_bridge.demo import data, models
from hf_latent_bridge.demo.models import EfficientNetLiteFeatures, efficientnet_preprocess


def _has_fashion_mnist() -> bool:
    return (data.fashion_mnist_dir() / "train-labels-idx1-ubyte.gz").is_file()


needs_fashion = pytest.mark.skipif(not _has_fashion_mnist(), reason="apt-get install dataset-fashion-mnist")


# ------------------------------------------------------------------------------------------------- models


def test_minilm_path_is_a_model_folder():
    path = Path(models.minilm_path())
    config = json.loads((path / "config.json").read_text())
    assert config["hidden_size"] == models.MINILM_DIM
    assert (path / "model.safetensors").is_file()
    assert (path / "1_Pooling" / "config.json").is_file()


def test_mpnet_missing_part_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "MPNET_PART_PACKAGES", ("hf-latent-bridge-no-such-package-001",))
    with pytest.raises(ImportError, match="'hf-latent-bridge-no-such-package-001' is not installed"):
        models.mpnet_path(cache_dir=str(tmp_path))
    assert not (tmp_path / models.MPNET_FOLDER_NAME).exists()


def test_incomplete_model_folder_is_not_reused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    assert not models._is_complete_model_dir(folder)
    for name in models._REQUIRED_MODEL_FILES:
        (folder / name).write_text("x")
    marker = {"files": {name: 1 for name in models._REQUIRED_MODEL_FILES}}
    (folder / models._COMPLETE_MARKER).write_text(json.dumps(marker))
    assert models._is_complete_model_dir(folder)
    (folder / "model.safetensors").write_text("truncated?")  # size no longer matches
    assert not models._is_complete_model_dir(folder)


@pytest.mark.slow
def test_mpnet_unpacks_once_and_matches_sentence_transformers(tmp_path):
    import sentence_transformers as st
    import transformers

    path = Path(models.mpnet_path(cache_dir=str(tmp_path)))
    assert path == tmp_path / "all-mpnet-base-v2"
    config = json.loads((path / "config.json").read_text())
    assert config["hidden_size"] == models.MPNET_DIM
    assert not list(tmp_path.glob(".all-mpnet-base-v2-tmp-*")), "temporary directory must be cleaned up"
    assert not list(path.rglob("desktop.ini"))
    t0 = time.perf_counter()
    assert models.mpnet_path(cache_dir=str(tmp_path)) == str(path)
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
        models.efficientnet_lite("b0")


@needs_fashion
def test_efficientnet_lite0_real_features():
    images, _ = data.fashion_mnist_arrays("test", limit=6)
    module = EfficientNetLiteFeatures("lite0")
    assert not module.training and not module.backbone.training
    # Built with dynamic SAME padding so any resolution is exact.
    assert type(module.backbone._conv_stem).__name__ == "Conv2dDynamicSamePadding"
    features = module.encode(images, batch_size=4)
    assert features.shape == (6, models.EFFICIENTNET_LITE_DIM)
    assert np.isfinite(features).all() and features.std() > 0
    np.testing.assert_allclose(module.encode(images, batch_size=6), features, atol=1e-4)
    with torch.inference_mode():
        direct = module(efficientnet_preprocess(images)).numpy()
    np.testing.assert_allclose(direct, features, atol=1e-4)
    with pytest.raises(ValueError, match="pixel_values must be a .n, 3, H, W. tensor"):
        module(torch.zeros(2, 1, 32, 32))


@pytest.mark.slow
@needs_fashion
def test_efficientnet_features_are_linearly_separable():
    from sklearn import linear_model

    train_x, train_y = data.fashion_mnist_arrays("train", limit=600)
    test_x, test_y = data.fashion_mnist_arrays("test", limit=300)
    for name in ("lite0", "lite1"):
        module = EfficientNetLiteFeatures(name)
        clf = linear_model.LogisticRegression(max_iter=2000).fit(module.encode(train_x), train_y)
        accuracy = clf.score(module.encode(test_x), test_y)
        assert accuracy > 0.7, (name, accuracy)
