"""Stitched pipeline latency and throughput against the source encoder alone (all-MiniLM-L6-v2).

The stitched model is MiniLM -> IRP bridge -> logistic head trained on all-mpnet-base-v2 embeddings of
the ChatterBot topics (train split). Measured on the ChatterBot test utterances, in alternation:

* ``encoder``: ``encoder.embed(texts)`` -- the source encoder alone;
* ``pipeline``: ``pipeline("stitched-classification")(texts)`` -- encoder + bridge + head + post-processing;
* ``bridge+head``: the bridge and head alone on precomputed embeddings.

Throughput uses batches of --batch-size over all test texts; latency is one text per call. Goal: the
bridge and head add <= 5% to the encoder's time.

    python benchmarks/end_to_end.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _common import alternating_medians, write_results
from transformers import pipeline

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.demo import (
    chatterbot_topics_splits,
    default_cache_dir,
    minilm_path,
    mpnet_path,
)
from hf_latent_bridge.encoding import embed_inputs, load_encoder
from hf_latent_bridge.models.head import ClassificationHead
from hf_latent_bridge.models.registration import register
from hf_latent_bridge.models.stitched import StitchedModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latency-texts", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    train_texts, test_texts = list(splits["train"]["text"]), list(splits["test"]["text"])
    labels = torch.tensor(splits["train"]["label"])
    names = splits["train"].features["label"].names
    minilm, mpnet = load_encoder(minilm_path()), load_encoder(mpnet_path())
    cache = default_cache_dir() / "embeddings"  # filled by `hf-latent-bridge demo` (same inputs, batch 64)
    source_train = embed_inputs(minilm, train_texts, batch_size=64, cache_dir=cache)
    target_train = embed_inputs(mpnet, train_texts, batch_size=64, cache_dir=cache)
    bridge = LatentBridge.fit(
        source_train, target_train, "irp", source_encoder=minilm.ref, target_encoder=mpnet.ref
    )
    head = ClassificationHead.fit(target_train, labels, id2label=dict(enumerate(names)))
    model = StitchedModel.from_parts(bridge, head, source_encoder=minilm)
    register()
    classify = pipeline("stitched-classification", model=model, source_encoder=minilm)
    embeddings = minilm.embed(test_texts, batch_size=args.batch_size)

    def bridge_and_head() -> None:
        with torch.inference_mode():
            model(embeddings)

    throughput = alternating_medians(
        {
            "encoder": lambda: minilm.embed(test_texts, batch_size=args.batch_size),
            "pipeline": lambda: classify(test_texts, batch_size=args.batch_size),
            "bridge+head": bridge_and_head,
        },
        args.repeats,
        warmup=1,
    )
    singles = test_texts[: args.latency_texts]
    latency: dict[str, list[float]] = {"encoder": [], "pipeline": []}
    for text in singles:
        for key, fn in (
            ("encoder", lambda t=text: minilm.embed([t])),
            ("pipeline", lambda t=text: classify(t)),
        ):
            start = time.perf_counter()
            fn()
            latency[key].append(time.perf_counter() - start)
    lat = {k: statistics.median(v) for k, v in latency.items()}
    n = len(test_texts)
    summary = {
        "texts": n,
        "batch_size": args.batch_size,
        "encoder_texts_per_s": round(n / throughput["encoder"], 1),
        "pipeline_texts_per_s": round(n / throughput["pipeline"], 1),
        "pipeline_overhead_pct": round(100 * (throughput["pipeline"] / throughput["encoder"] - 1), 2),
        "bridge_head_ms_for_all_texts": round(throughput["bridge+head"] * 1e3, 3),
        "bridge_head_share_of_encoder_pct": round(100 * throughput["bridge+head"] / throughput["encoder"], 3),
        "latency_encoder_ms": round(lat["encoder"] * 1e3, 2),
        "latency_pipeline_ms": round(lat["pipeline"] * 1e3, 2),
        "latency_overhead_pct": round(100 * (lat["pipeline"] / lat["encoder"] - 1), 2),
        "goal": "bridge + head add <= 5%",
    }
    print(summary, flush=True)
    md = "\n".join(
        [
            "## End to end (benchmarks/end_to_end.py)",
            "",
            f"all-MiniLM-L6-v2 -> IRP bridge -> mpnet-space logistic head, {n} ChatterBot test texts, "
            f"batch {args.batch_size}, medians of {args.repeats} alternating repeats.",
            "",
            "| measure | encoder alone | stitched pipeline | overhead |",
            "|---|---|---|---|",
            f"| throughput (texts/s) | {summary['encoder_texts_per_s']} | {summary['pipeline_texts_per_s']} | "
            f"{summary['pipeline_overhead_pct']}% |",
            f"| latency, 1 text (ms) | {summary['latency_encoder_ms']} | {summary['latency_pipeline_ms']} | "
            f"{summary['latency_overhead_pct']}% |",
            "",
            f"Bridge + head alone on all {n} embeddings: {summary['bridge_head_ms_for_all_texts']} ms "
            f"({summary['bridge_head_share_of_encoder_pct']}% of the encoder's time).",
        ]
    )
    write_results(
        "end_to_end",
        {"summary": summary, "throughput_seconds": throughput, "latency_seconds_median": lat},
        md,
    )


if __name__ == "__main__":
    main()
