"""How evaluation time grows with the number of encoders (N = 2, 3, 4) and with processes (1 vs 2).

Encoders: all-MiniLM-L6-v2 with four different poolings (mean+norm, mean, cls, max): four genuinely
different embedding spaces of the same cost, so each encoder pass costs the same and the expected
scaling is clean. Data: the ChatterBot topics (70/30 split; ``--limit`` keeps the first rows of each
split). No embedding cache, so every run pays its N encoder passes (2 splits each); the batches each
encoder runs are counted by wrapping ``embed_batch``.

Processes: the same ``hf-latent-bridge eval`` command (N = 2) run as one process, under
``torchrun --nproc_per_node 2`` and under ``accelerate launch --multi_gpu --num_processes 2`` on this
2-core machine (wall-clock time of the whole command, and the embedding time it records).

    python benchmarks/scaling.py [--limit 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import write_results

from hf_latent_bridge.demo import chatterbot_topics_splits, minilm_path
from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.evaluation import evaluate_encoders

POOLINGS = ("mean+norm", "mean", "cls", "max")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use the first LIMIT rows of each split")
    args = parser.parse_args()
    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    train, test = splits["train"], splits["test"]
    if args.limit:
        train, test = (
            train.select(range(min(args.limit, len(train)))),
            test.select(range(min(args.limit, len(test)))),
        )
    train_y, test_y = torch.tensor(train["label"]), torch.tensor(test["label"])
    encoders = {f"MiniLM-{p}": load_encoder(minilm_path(), pooling=p) for p in POOLINGS}
    passes = {"count": 0}
    for encoder in encoders.values():
        original = encoder.embed_batch

        def counted(*a, _original=original, **k):
            passes["count"] += 1
            return _original(*a, **k)

        encoder.embed_batch = counted
    rows = []
    for n in (2, 3, 4):
        chosen = dict(list(encoders.items())[:n])
        passes["count"] = 0
        start = time.perf_counter()
        matrix, _, _ = evaluate_encoders(
            chosen, list(train["text"]), list(test["text"]), train_y, test_y, batch_size=args.batch_size,
            methods=["procrustes", "irp"], show_progress=False,
        )  # fmt: skip
        total = time.perf_counter() - start
        embedding = sum(matrix.extra["embedding_seconds"].values())
        rows.append(
            {
                "encoders": n,
                "batches": passes["count"],
                "batches_per_encoder": passes["count"] / n,
                "embedding_seconds": round(embedding, 2),
                "embedding_seconds_per_encoder": round(embedding / n, 2),
                "matrix_seconds": round(total - embedding, 2),
                "cells": len(matrix.cells),
                "total_seconds": round(total, 2),
            }
        )
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "topics.jsonl"
        names = train.features["label"].names
        data.write_text(
            "\n".join(json.dumps({"text": r["text"], "topic": names[r["label"]]}) for r in [*train, *test])
            + "\n"
        )
        base = [
            "-m", "hf_latent_bridge.cli", "eval", f"a={minilm_path()}", f"b={minilm_path()}", "-d", str(data),
            "--label-column", "topic", "--methods", "procrustes,irp", "--pooling", "mean",
            "--batch-size", str(args.batch_size),
        ]  # fmt: skip
        processes = {}
        for run, (label, launcher) in enumerate(
            (
                ("1 process", [sys.executable]),
                (
                    "2 processes (torchrun)",
                    [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
                ),
                (
                    "2 processes (accelerate launch --multi_gpu)",
                    [
                        sys.executable,
                        "-m",
                        "accelerate.commands.launch",
                        "--multi_gpu",
                        "--num_processes",
                        "2",
                    ],
                ),
            )
        ):
            out = Path(tmp) / f"run-{run}"
            start = time.perf_counter()
            subprocess.run(
                [*launcher, *base, "-o", str(out)], check=True, capture_output=True, env={**os.environ}
            )
            wall = round(time.perf_counter() - start, 2)
            inside = json.loads((out / "stitching_matrix.json").read_text())["extra"]["embedding_seconds"]
            processes[label] = {"wall_seconds": wall, "embedding_seconds": round(sum(inside.values()), 2)}
            print(label, processes[label], flush=True)
    # N=2 in the process comparison uses the same model twice with identical pooling ("a" and "b"), so
    # its matrix is trivial; only the time matters there.
    base_time = rows[0]["embedding_seconds_per_encoder"]
    md = "\n".join(
        [
            "## Scaling (benchmarks/scaling.py)",
            "",
            "Encoder passes and time for N encoders (MiniLM with 4 poolings) on the ChatterBot topics; "
            "an encoder pass = one sweep over both splits, in batches of similar token cost.",
            "",
            "| N | batches embedded | embedding s | embedding s / encoder | matrix s (heads, N x N bridges, metrics) | cells |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['encoders']} | {r['batches']} | {r['embedding_seconds']} | {r['embedding_seconds_per_encoder']} "
                f"| {r['matrix_seconds']} | {r['cells']} |"
                for r in rows
            ),
            "",
            f"Embedding time per encoder stays ~{base_time} s: linear in N encoder passes.",
            "",
            "| `hf-latent-bridge eval` (N = 2) | whole command, wall-clock s | of which embedding s |",
            "|---|---|---|",
            *(f"| {k} | {v['wall_seconds']} | {v['embedding_seconds']} |" for k, v in processes.items()),
            "",
            "The whole command includes starting Python, importing transformers and loading the models in\n"
            "every process, which two processes do not share out.",
        ]
    )
    write_results("scaling", {"encoders": rows, "processes_wall_seconds": processes}, md)


if __name__ == "__main__":
    main()
