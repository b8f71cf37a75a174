"""Slow: text <-> image stitching with MiniLM and EfficientNet-Lite0 on Fashion-MNIST (issue §4).

Parallel anchors are (image, caption) pairs whose caption describes the image's class. Two bridges:

* image -> text: a head trained on *text* embeddings (the captions) classifies held-out *test images*;
* text -> image: a head trained on *image* embeddings classifies *texts*. Captions of one class are nearly
  identical, so classifying the anchor captions again would be trivial; the texts classified here are
  new descriptions written for this test (wording that appears in no anchor caption).

Run with ``python -m pytest tests/integration/test_cross_modal.py -m slow -s`` to see the figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import pipeline

from hf_latent_bridge import CallableEncoder, ClassificationHead, LatentBridge, StitchedModel, load_encoder
from hf_latent_bridge.demo import (
    FASHION_MNIST_CLASSES,
    fashion_mnist_arrays,
    fashion_mnist_captions,
    minilm_path,
)
from hf_latent_bridge.demo.models import EfficientNetLiteFeatures

pytestmark = pytest.mark.slow

NUM_ANCHORS = 2000
NUM_TEST_IMAGES = 1000

#: Held-out descriptions, 4 per class, none of them an anchor caption.
NEW_DESCRIPTIONS: dict[int, tuple[str, ...]] = {
    0: ("a cotton tee", "casual top with short sleeves", "a plain crew-neck top", "summer t-shirt"),
    1: ("blue jeans", "pants for men", "a pair of chinos", "long trousers with a belt"),
    2: ("a warm wool sweater", "cosy knitwear for winter", "a hooded jumper", "a cardigan"),
    3: ("an evening gown", "a summer frock", "a long skirt and bodice in one piece", "a cocktail dress"),
    4: ("a raincoat", "a warm parka", "an overcoat for winter", "a trench coat"),
    5: ("beach flip-flops", "open shoes with straps", "summer footwear for the beach", "a pair of sandals"),
    6: ("a formal dress shirt", "a blouse with buttons", "a flannel shirt", "an office shirt with a collar"),
    7: ("running shoes", "trainers for the gym", "canvas shoes with laces", "athletic footwear"),
    8: ("a leather purse", "a backpack", "a shopping bag", "a clutch bag"),
    9: ("winter boots", "a leather boot that covers the ankle", "hiking boots", "a pair of booties"),
}


def test_fashion_mnist_text_image_stitching(tmp_path):
    images, labels = fashion_mnist_arrays("train", limit=NUM_ANCHORS)
    test_images, test_labels = fashion_mnist_arrays("test", limit=NUM_TEST_IMAGES)
    captions = fashion_mnist_captions(labels)

    text = load_encoder(minilm_path())
    lite0 = EfficientNetLiteFeatures("lite0", image_size=96)
    vision = CallableEncoder(
        lite0,
        name="efficientnet-lite0",
        modality="image",
        preprocess=lite0.preprocess,
        pooling="mean",
        key="96px",
    )
    anchor_text = text.embed(captions, batch_size=64)
    anchor_images = vision.embed(images, batch_size=64)
    test_image_emb = vision.embed(test_images, batch_size=64)

    # image -> text: a head trained on caption embeddings classifies test images
    image_to_text = LatentBridge.fit(
        anchor_images, anchor_text, source_encoder=vision.ref, target_encoder=text.ref
    )
    text_head = ClassificationHead.fit(anchor_text, labels, id2label=list(FASHION_MNIST_CLASSES))
    folder = tmp_path / "lite0-to-minilm"
    StitchedModel.from_parts(image_to_text, text_head, source_encoder=vision).save_pretrained(folder)
    clf_images = pipeline("stitched-classification", model=str(folder), source_encoder=vision)
    predicted = [r[0]["label"] for r in clf_images(list(test_images), batch_size=64)]  # a list is a batch
    image_accuracy = float(
        np.mean([p == FASHION_MNIST_CLASSES[y] for p, y in zip(predicted, test_labels, strict=True)])
    )
    by_hand = text_head.predict(image_to_text.translate(test_image_emb)).numpy()
    native_image_head = ClassificationHead.fit(anchor_images, labels)
    native_image = float((native_image_head.predict(test_image_emb).numpy() == test_labels).mean())

    # text -> image: a head trained on image embeddings classifies new descriptions
    text_to_image = LatentBridge.fit(
        anchor_text, anchor_images, source_encoder=text.ref, target_encoder=vision.ref
    )
    image_head = ClassificationHead.fit(anchor_images, labels, id2label=list(FASHION_MNIST_CLASSES))
    folder = tmp_path / "minilm-to-lite0"
    StitchedModel.from_parts(text_to_image, image_head).save_pretrained(folder)
    # The model records MiniLM by its Hub id (unreachable here): this machine's copy is attached.
    clf_text = pipeline("stitched-classification", model=str(folder), source_encoder=text)
    texts = [d for c in sorted(NEW_DESCRIPTIONS) for d in NEW_DESCRIPTIONS[c]]
    text_labels = [c for c in sorted(NEW_DESCRIPTIONS) for _ in NEW_DESCRIPTIONS[c]]
    text_pred = [r[0]["label"] for r in clf_text(texts)]
    text_accuracy = float(
        np.mean([p == FASHION_MNIST_CLASSES[y] for p, y in zip(text_pred, text_labels, strict=True)])
    )
    canonical = fashion_mnist_captions(list(range(10)), variants=False)
    canonical_accuracy = float(
        np.mean([r[0]["label"] == FASHION_MNIST_CLASSES[i] for i, r in enumerate(clf_text(canonical))])
    )

    figures = {
        "anchors": NUM_ANCHORS,
        "chance": 0.1,
        "images_classified_by_text_head": {"n": NUM_TEST_IMAGES, "accuracy": round(image_accuracy, 4)},
        "native_image_head_on_images": round(native_image, 4),
        "new_descriptions_classified_by_image_head": {"n": len(texts), "accuracy": round(text_accuracy, 4)},
        "canonical_class_captions_by_image_head": round(canonical_accuracy, 4),
        "ridge_image_to_text": image_to_text.config.ridge_selected,
        "ridge_text_to_image": text_to_image.config.ridge_selected,
    }
    print("\ncross-modal Fashion-MNIST:", json.dumps(figures))

    assert [p == FASHION_MNIST_CLASSES[y] for p, y in zip(predicted, by_hand, strict=True)].count(False) <= 5
    assert image_accuracy >= 0.4  # chance is 0.1
    assert text_accuracy >= 0.4
