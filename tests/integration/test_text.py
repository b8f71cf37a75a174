"""Slow: MiniLM -> mpnet topic classification on the chatterbot corpus, through pipeline("stitched-classification").

Run with ``python -m pytest tests/integration/test_text.py -m slow -s`` to see the figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

from hf_latent_bridge import ClassificationHead, LatentBridge, StitchedModel, embed_dataset, load_encoder
from hf_latent_bridge.demo import chatterbot_topics_splits, minilm_path, mpnet_path

pytestmark = pytest.mark.slow


def test_minilm_to_mpnet_topics_through_the_pipeline(tmp_path):
    from sklearn.linear_model import LogisticRegression

    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    train, test = splits["train"], splits["test"]
    names = train.features["label"].names
    y_train, y_test = np.array(train["label"]), np.array(test["label"])
    source = load_encoder(minilm_path())
    target = load_encoder(mpnet_path())
    assert source.ref.pooling == "mean+norm" and target.ref.pooling == "mean+norm"

    cache = str(tmp_path / "cache")
    xs_train = embed_dataset(source, train, "text", cache_dir=cache)
    ys_train = embed_dataset(target, train, "text", cache_dir=cache)
    ys_test = embed_dataset(target, test, "text", cache_dir=cache)

    # anchors = the training split (parallel: the same utterances through both encoders)
    bridge = LatentBridge.fit(xs_train, ys_train, source_encoder=source.ref, target_encoder=target.ref)
    head = ClassificationHead.fit(ys_train, y_train, id2label=names, pooling=target.ref.pooling)
    native = float((head.predict(ys_test).numpy() == y_test).mean())
    sklearn_native = (
        LogisticRegression(max_iter=5000).fit(ys_train.numpy(), y_train).score(ys_test.numpy(), y_test)
    )

    xs_test = source.embed(list(test["text"]))
    by_hand_pred = head.predict(bridge.translate(xs_test)).numpy()
    by_hand = float((by_hand_pred == y_test).mean())

    StitchedModel.from_parts(bridge, head).save_pretrained(tmp_path / "minilm-to-mpnet")
    # The model records MiniLM by its Hub id (unreachable here): this machine's copy is attached.
    assert bridge.config.source.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    clf = pipeline("stitched-classification", model=str(tmp_path / "minilm-to-mpnet"), source_encoder=source)
    results = clf(list(test["text"]), batch_size=64)
    label2id = head.label2id
    pipe_pred = np.array([label2id[r[0]["label"]] for r in results])
    through_pipeline = float((pipe_pred == y_test).mean())
    unbridged_majority = float(np.bincount(y_test).max() / len(y_test))

    figures = {
        "test_size": len(y_test),
        "classes": len(names),
        "native_mpnet_head": round(native, 4),
        "sklearn_logreg_on_mpnet": round(float(sklearn_native), 4),
        "stitched_by_hand": round(by_hand, 4),
        "stitched_pipeline": round(through_pipeline, 4),
        "pipeline_agrees_with_by_hand": round(float((pipe_pred == by_hand_pred).mean()), 4),
        "majority_class": round(unbridged_majority, 4),
        "ridge_selected": bridge.config.ridge_selected,
    }
    print("\nMiniLM -> mpnet, chatterbot topics:", json.dumps(figures))

    assert native >= sklearn_native - 0.01  # the torch logistic head is as good as scikit-learn's
    assert (pipe_pred == by_hand_pred).mean() >= 0.995  # the pipeline is the by-hand computation
    assert abs(through_pipeline - by_hand) <= 0.005
    assert through_pipeline >= 0.6 > 3 * unbridged_majority / 2  # far above the majority class
    assert through_pipeline >= native - 0.15
    single = clf("Which team won the cup?", top_k=3)
    assert len(single) == 3 and single[0]["score"] >= single[1]["score"]
    assert torch.isfinite(torch.tensor([r["score"] for r in single])).all()
