"""Does the compatibility estimate predict what a migration keeps? Calibration samples of 200, 500 and
1,000 ChatterBot answers (embedded by both encoders) against the whole question -> answer set.

Predicted: :func:`hf_latent_bridge.retrieval.estimate_compatibility` on the calibration sample alone
(held-out folds): the share of the target model's top-10 neighbours a translation keeps. Measured on the
748 real questions and 1,135 answers, with the bridge fitted on the whole sample (``blend=False``, as
``migrate`` fits it): the same overlap of the bridged top-10 with the target model's own top-10
(queries side: old-model queries on the old index; index side: new-model queries on a re-embedded
index), and recall@10 through the bridge over recall@10 of that target-model search.

    python benchmarks/compatibility.py --embeddings DIR   # DIR: benchmarks/retrieval.py's embedding cache
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch
from _common import write_results
from retrieval import embeddings, question_answer_set

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.evaluation.retrieval import neighbour_overlap, retrieval_metrics
from hf_latent_bridge.retrieval import estimate_compatibility
from hf_latent_bridge.retrieval.search import cosine_search

SIZES = (200, 500, 1000)
TOP = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=Path, help="folder caching the embeddings")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore", UserWarning)  # "fewer anchors than dimensions" at n = 200, expected
    queries, documents, relevant = question_answer_set()
    emb = embeddings(queries, documents, args.embeddings)
    order = torch.randperm(len(documents), generator=torch.Generator().manual_seed(0))
    rows = []
    for old, new in (("MiniLM", "mpnet"), ("mpnet", "MiniLM")):
        for side in ("queries", "index"):
            source, target = (new, old) if side == "queries" else (old, new)
            # what the bridged search is compared with: the target model searching its own index
            reference_q = emb["queries", target]
            reference = cosine_search(reference_q, emb["documents", target], TOP)[1]
            native = retrieval_metrics(reference_q, emb["documents", target], relevant)[f"recall@{TOP}"]
            for n in SIZES:
                calibration = order[:n]
                x, y = emb["documents", source][calibration], emb["documents", target][calibration]
                started = time.perf_counter()
                estimate = estimate_compatibility(x, y)
                seconds = time.perf_counter() - started
                bridge = LatentBridge.fit(x, y, blend=False)
                if side == "queries":
                    q, d = bridge.translate(emb["queries", new]), emb["documents", old]
                else:
                    q, d = emb["queries", new], bridge.translate(emb["documents", old])
                bridged = retrieval_metrics(q, d, relevant)[f"recall@{TOP}"]
                row = {
                    "direction": f"{new} queries, {old} index"
                    + (" translated to " + new if side == "index" else ""),
                    "calibration": n,
                    "method": estimate.method,
                    "predicted retention": estimate.retention,
                    "measured retention": neighbour_overlap(cosine_search(q, d, TOP)[1], reference),
                    "recall@10 bridged": bridged,
                    "recall@10 target model": native,
                    "recall ratio": bridged / native,
                    "native agreement": estimate.native_agreement,
                    "estimate s": round(seconds, 2),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    errors = [abs(r["predicted retention"] - r["measured retention"]) for r in rows]
    lines = [
        "## Compatibility estimate: predicted vs measured neighbour retention (benchmarks/compatibility.py)",
        "",
        f"{len(queries)} questions, {len(documents)} answers; calibration = the first n of a seeded shuffle of "
        "the answers. Retention = share of the target model's top-10 kept by the bridged search.",
        "",
        "| direction | n | method | predicted | measured | recall@10 bridged / target model | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['direction']} | {r['calibration']} | {r['method']} | {r['predicted retention']:.3f} | "
            f"{r['measured retention']:.3f} | {r['recall@10 bridged']:.3f} / {r['recall@10 target model']:.3f} | "
            f"{r['recall ratio']:.3f} |"
        )
    for n in SIZES:
        at_n = [e for e, r in zip(errors, rows, strict=True) if r["calibration"] == n]
        lines.append(
            f"\nn = {n}: mean |predicted - measured| = {sum(at_n) / len(at_n):.3f}, max {max(at_n):.3f}."
        )
    write_results("compatibility", {"sizes": SIZES, "rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
