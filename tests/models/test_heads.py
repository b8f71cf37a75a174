"""Classification heads: logistic fit vs scikit-learn, safetensors round trip, heads from classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
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
    ClassificationHead,
    IncompatibleEncoderError,
    head_from_classifier,
    load_encoder,
)


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


def test_a_head_from_tensors_is_the_linear_layer(digits, digits_head):
    _, xte, _, _ = digits
    head = ClassificationHead.from_linear(digits_head.weight, digits_head.bias, id2label=digits_head.id2label)
    assert torch.equal(head.logits(xte), digits_head.logits(xte)) and head.config.num_labels == 10
    with pytest.raises(BridgeInputError, match="names 2 classes but the weight has 10 rows"):
        ClassificationHead.from_linear(digits_head.weight, id2label=["a", "b"])


def test_bad_training_input(digits, digits_head):
    xtr, xte, ytr, _ = digits
    with pytest.raises(BridgeInputError, match="pass one per row"):
        ClassificationHead.fit(xtr, ytr[:-1])
    with pytest.raises(BridgeInputError, match="at least two classes"):
        ClassificationHead.fit(xtr[:10], np.zeros(10, dtype=int))
    with pytest.raises(BridgeInputError, match="numbered 0..K-1"):
        ClassificationHead.fit(xtr, ytr, id2label=["a", "b"])
    with pytest.raises(BridgeInputError, match="whole numbers >= 0"):
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
    assert head.pooling == "cls" and head.config.num_labels == 4
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
