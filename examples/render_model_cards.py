"""Render the example model cards in model_cards/: a bridge, a cross-modal bridge, an anchor space, a
classification head, a stitched classifier and a bridged SentenceTransformer.

    python examples/render_model_cards.py [output_dir]

The bridges and the head are fitted on seeded synthetic data so the script runs anywhere in seconds; the
encoders they name are real Hub models, as a user's artifacts would record them, and the measured results
are the demo's figures (MiniLM -> mpnet on ChatterBot topics), recorded the way an evaluation records them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    StitchedModel,
)
from hf_latent_bridge.retrieval.bridged_model import model_card as bridged_model_card

MINILM = EncoderRef(
    "sentence-transformers/all-MiniLM-L6-v2", "c9745ed1d9f207416be6d2e6f8de32d1f16199bf", "mean", "text"
)
MPNET = EncoderRef(
    "sentence-transformers/all-mpnet-base-v2", "e8c3b32edf5434bc2275fc9bab85f82640a19130", "mean", "text"
)
LITE0 = EncoderRef("/opt/models/efficientnet-lite0", None, "mean", "image")  # a local path: not a base_model

TOPICS = ["ai", "botprofile", "computers", "emotion", "food", "gossip", "greetings", "health", "history",
          "humor", "literature", "money", "movies", "politics", "psychology", "science", "sports", "trivia"]  # fmt: skip

#: Measured results as an evaluation records them: numbers, plus what they were measured on.
RESULTS = {
    "dataset": "tester/chatterbot-topics",
    "dataset_revision": "main",
    "split": "test",
    "num_samples": 334,
    "stitched_accuracy": 0.790,
    "stitched_macro_f1": 0.771,
    "native_target_accuracy": 0.779,
    "cosine_to_target": 0.61,
}


#: The retrieval benchmark's figures (mpnet queries on a MiniLM index), as ``migrate`` records them.
RETRIEVAL = {
    "dataset": "chatterbot-corpus questions -> answers",
    "recall@10": 0.666,
    "mrr@10": 0.495,
    "ndcg@10": 0.513,
    "recall@10, keeping MiniLM": 0.649,
    "recall@10, re-indexing with mpnet": 0.722,
}


def example_cards() -> dict[str, str]:
    """File name -> rendered card."""
    g = torch.Generator().manual_seed(0)
    anchors = AnchorSet("tester/chatterbot-topics", tuple(range(0, 400, 4)), revision="main", split="train")
    x, y = torch.randn(100, 48, generator=g), torch.randn(100, 32, generator=g)
    text = LatentBridge.fit(x, y, source_encoder=MPNET, target_encoder=MINILM, anchor_set=anchors)
    text.config.metrics = dict(RESULTS)

    images = AnchorSet("tester/fashion-mnist-captions", tuple(range(100)), revision="main", split="train")
    cross = LatentBridge.fit(torch.randn(100, 40, generator=g), y, source_encoder=LITE0, target_encoder=MINILM,
                             anchor_set=images, ridge=1.0)  # fmt: skip
    space = AnchorSpace.from_embeddings(y, anchor_set=anchors, encoder=MINILM)

    labels = torch.arange(len(TOPICS)).repeat(6)
    train = torch.randn(len(labels), 32, generator=g) + torch.randn(len(TOPICS), 32, generator=g)[labels]
    head = ClassificationHead.fit(train, labels, id2label=TOPICS, pooling="mean", encoder=MINILM)
    head.config.metrics = {"dataset": "tester/chatterbot-topics", "split": "test", "accuracy": 0.779}
    stitched = StitchedModel.from_parts(text, head)
    stitched.config.metrics = dict(RESULTS)
    return {
        "bridge_mpnet_to_minilm.md": str(text.model_card("tester/mpnet-to-minilm")),
        "bridge_efficientnet_to_minilm.md": str(cross.model_card("tester/lite0-to-minilm", remote_code=True)),
        "anchor_space_minilm.md": str(space.model_card("tester/anchors-minilm")),
        "head_minilm_topics.md": str(head.model_card("tester/minilm-topics-head")),
        "stitched_mpnet_to_minilm_topics.md": str(stitched.model_card("tester/mpnet-topics-stitched")),
        "sentence_transformer_mpnet_bridged_to_minilm.md": str(
            bridged_model_card(text, RETRIEVAL, repo_id="tester/mpnet-bridged-to-minilm")
        ),
    }


def main(output_dir: str = "model_cards") -> None:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in example_cards().items():
        (out / name).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        print(out / name)


if __name__ == "__main__":
    main(*sys.argv[1:])
