"""Classification heads: logistic fit vs scikit-learn, safetensors round trip, heads from classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    ViTConfig,
    ViTForImageClassification,
)

from hf_latent_bridge import (
    BridgeInputError,
    CheckpointError,
    ClassificationHead,
    IncompatibleEncoderError,
    head_from_classifier,
    load_encoder,
)
from hf_latent_bridge.models.head import HEAD_CONFIG_NAME, HEAD_WEIGHTS_NAME


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's bundled 8x8 digits (real data, 10 classes), stratified 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return xtr.astype(np.float32), xte.astype(np.float32), ytr, yte


@pytest.fixture(scope="module")
def digits_head(digits):
    xtr, _, ytr, _ = digits
    return ClassificationHead.fit(xtr, ytr, id2label=[f"digit {i}" for i in range(10)])


def test_logistic_head_matches_sklearn_accuracy(digits, digits_head):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, yte = digits
    ours = float((digits_head.predict(xte).numpy() == yte).mean())
    plain = LogisticRegression(max_iter=5000).fit(xtr, ytr).score(xte, yte)
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(xtr, ytr)
    assert ours >= plain - 0.01 and ours >= scaled.score(xte, yte) - 0.01
    # Same objective as the scaled sklearn model: the predictions agree almost everywhere.
    agreement = (digits_head.predict(xte).numpy() == scaled.predict(xte)).mean()
    assert agreement >= 0.99
    probs = digits_head.predict_proba(xte)
    torch.testing.assert_close(probs.sum(1), torch.ones(len(xte)))
    assert digits_head.id2label[3] == "digit 3" and digits_head.label2id["digit 3"] == 3


def test_fit_is_deterministic(digits):
    xtr, _, ytr, _ = digits
    first, again = (ClassificationHead.fit(xtr[:300], ytr[:300], max_iter=40) for _ in range(2))
    assert torch.equal(again.weight, first.weight) and torch.equal(again.bias, first.bias)


def test_save_load_round_trip(tmp_path, digits, digits_head):
    """A head saves and loads like every model of the package: config.json + model.safetensors + card."""
    _, xte, _, _ = digits
    digits_head.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "latent_classification_head"
    assert config["id2label"]["9"] == "digit 9" and config["input_dim"] == 64
    loaded = ClassificationHead.from_pretrained(tmp_path)
    assert torch.equal(loaded.logits(xte), digits_head.logits(xte))
    assert loaded.id2label == digits_head.id2label and loaded.label2id == digits_head.label2id
    assert loaded.fit_report == digits_head.fit_report
    assert isinstance(AutoModel.from_pretrained(tmp_path), ClassificationHead)  # registered on import

    weights = tmp_path / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({"weight": tensors["weight"]}, str(weights))
    with pytest.raises(CheckpointError, match="missing: bias"):
        ClassificationHead.from_pretrained(tmp_path)
    save_file({**tensors, "extra": torch.zeros(1)}, str(weights))
    with pytest.raises(CheckpointError, match="unexpected: extra"):
        ClassificationHead.from_pretrained(tmp_path)
    save_file({"weight": tensors["weight"][:, :10].contiguous(), "bias": tensors["bias"]}, str(weights))
    with pytest.raises(
        CheckpointError, match=r"weight is F32\[10, 10\] where config.json implies F32\[10, 64\]"
    ):
        ClassificationHead.from_pretrained(tmp_path)
    save_file({"weight": tensors["weight"], "bias": tensors["bias"].double()}, str(weights))
    with pytest.raises(CheckpointError, match=r"bias is F64\[10\] where config.json implies F32\[10\]"):
        ClassificationHead.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="neither a folder on this machine nor a Hub repo id"):
        ClassificationHead.from_pretrained(tmp_path / "nowhere")


def test_v0_1_0_head_folder_is_checked_as_strictly(tmp_path):
    """0.1.0 heads (head_config.json + head.safetensors) load, and are refused when damaged."""
    import shutil

    from tests.models.test_saved_artifacts import V0_1_0

    folder = tmp_path / "head"
    shutil.copytree(V0_1_0 / "head", folder)
    head = ClassificationHead.from_pretrained(folder)
    assert head.num_labels == 3 and head.encoder["name_or_path"] == "toy/target-encoder"
    tensors = load_file(str(folder / HEAD_WEIGHTS_NAME))
    save_file(
        {"weight": tensors["weight"], "bias": torch.full_like(tensors["bias"], float("nan"))},
        str(folder / HEAD_WEIGHTS_NAME),
    )
    with pytest.raises(CheckpointError, match="'bias' holds NaN"):
        ClassificationHead.from_pretrained(folder)
    save_file(
        {"weight": tensors["weight"][:2].contiguous(), "bias": tensors["bias"]},
        str(folder / HEAD_WEIGHTS_NAME),
    )
    with pytest.raises(CheckpointError, match="weight is F32"):
        ClassificationHead.from_pretrained(folder)
    config = json.loads((folder / HEAD_CONFIG_NAME).read_text())
    (folder / HEAD_CONFIG_NAME).write_text(json.dumps({**config, "num_labels": 4}))
    with pytest.raises(CheckpointError, match="num_labels=4 but names 3 classes"):
        ClassificationHead.from_pretrained(folder)

    # Saving the new format into the old folder replaces the 0.1.0 files (the package wrote them).
    (folder / HEAD_CONFIG_NAME).write_text(json.dumps(config))
    save_file(tensors, str(folder / HEAD_WEIGHTS_NAME))
    ClassificationHead.from_pretrained(folder).save_pretrained(folder)
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert torch.equal(ClassificationHead.from_pretrained(folder).weight, tensors["weight"])


def test_bad_training_input(digits, digits_head):
    xtr, xte, ytr, _ = digits
    with pytest.raises(BridgeInputError, match="one label per"):
        ClassificationHead.fit(xtr, ytr[:-1])
    with pytest.raises(BridgeInputError, match="single class"):
        ClassificationHead.fit(xtr[:10], np.zeros(10, dtype=int))
    with pytest.raises(BridgeInputError, match="out of range"):
        ClassificationHead.fit(xtr, ytr, id2label=["a", "b"])
    with pytest.raises(BridgeInputError, match="integer class ids"):
        ClassificationHead.fit(xtr, ytr + 0.5)
    with pytest.raises(BridgeInputError, match="dimension 63"):
        digits_head.logits(xte[:, :63])
    with pytest.raises(BridgeInputError, match="NaN"):
        digits_head.logits(np.full((2, 64), np.nan, dtype=np.float32))


TEXTS = ["Which team won the cup?", "hello there", "What do you eat for breakfast on Sundays?"]


def test_head_from_bert_sequence_classifier(tmp_path, tiny_bert_path):
    """BERT's classifier acts on the pooler output: the head reproduces the model's logits."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=3,
        id2label={0: "sports", 1: "food", 2: "greeting"},
        label2id={"sports": 0, "food": 1, "greeting": 2},
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    head = head_from_classifier(str(tmp_path))
    assert head.pooling == "pooler" and head.id2label[0] == "sports" and head.input_dim == 32
    encoder = load_encoder(str(tmp_path), pooling=head.pooling)
    with torch.no_grad():
        want = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(head.logits(encoder.embed(TEXTS)), want, atol=1e-5, rtol=1e-5)
    assert head_from_classifier(model).pooling == "pooler"  # a model object works too


def test_head_from_vit_image_classifier():
    """ViT's classifier acts on the first token of the final (layer-normed) states."""
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        num_labels=4,
    )
    model = ViTForImageClassification(config).eval()
    head = head_from_classifier(model)
    assert head.pooling == "cls" and head.num_labels == 4
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        states = model.vit(pixel_values=pixels).last_hidden_state[:, 0]
        torch.testing.assert_close(
            head.logits(states), model(pixel_values=pixels).logits, atol=1e-5, rtol=1e-5
        )


def test_head_from_roberta_is_refused():
    """RoBERTa's head is dense + tanh + projection on the first token: not a linear head on an embedding."""
    config = RobertaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=40,
        num_labels=2,
    )
    with pytest.raises(IncompatibleEncoderError, match="not a single linear layer"):
        head_from_classifier(RobertaForSequenceClassification(config).eval())
    with pytest.raises(BridgeInputError, match="classification model"):
        head_from_classifier(42)


def test_head_training_shows_progress_only_when_asked(capsys):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 5, generator=g)
    labels = (x[:, 0] > 0).long()
    quiet = ClassificationHead.fit(x, labels)
    assert "training head" not in capsys.readouterr().err
    loud = ClassificationHead.fit(x, labels, show_progress=True)
    assert "training head" in capsys.readouterr().err
    assert torch.equal(quiet.weight, loud.weight)  # the bar changes nothing
