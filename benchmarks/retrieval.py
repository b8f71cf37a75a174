"""Question -> answer retrieval through a bridge: the default ``method="auto"`` against the direct maps.

The set: ChatterBot's English conversations (chatterbot-corpus 1.3.3), the first utterance of each
conversation a query and the others its relevant documents. Identical texts (whitespace-collapsed,
casefolded) are merged: each distinct answer is one document, and a query asked in several
conversations is one query relevant to all their answers. The malformed trivia entry (a bare string) has
no answer and gives no query. Both encoders (all-MiniLM-L6-v2, all-mpnet-base-v2, the library's
embedding path) embed every query and document.

Calibration: 1,000 documents (a seeded uniform sample) embedded by both encoders are the anchors. Four
directions, old = the encoder that built the index, new = the one a user moves to:

* queries: the bridge new -> old translates new-model queries, which search the old index;
* documents: the bridge old -> new translates the old index, which new-model queries search.

Metric: recall@10 of cosine search, averaged over queries. Reference rows: keep old (old model for
queries and index) and re-index (new model for both). Goal (issue 17): auto >= Procrustes everywhere.

    python benchmarks/retrieval.py [--embeddings DIR]   # DIR caches the embeddings between runs
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import yaml
from _common import write_results

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.core.projection import normalize_rows
from hf_latent_bridge.demo import minilm_path, mpnet_path
from hf_latent_bridge.demo.data import _chatterbot_english_dir
from hf_latent_bridge.encoding import embed_inputs, load_encoder

MODELS = {"MiniLM": minilm_path, "mpnet": mpnet_path}
NUM_ANCHORS = 1000
TOP = 10
METHODS = {
    "procrustes": {"method": "procrustes"},
    "linear": {"method": "linear"},
    "IRP (w 0.3)": {"method": "irp", "whitening": 0.3},
    "auto": {},
}


def question_answer_set() -> tuple[list[str], list[str], list[list[int]]]:
    """Queries, documents and each query's relevant documents (indices), merged as the docstring says."""
    queries: dict[str, tuple[str, set[int]]] = {}
    documents: dict[str, int] = {}
    texts: list[str] = []
    for path in sorted(_chatterbot_english_dir().glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []:
            if not isinstance(conversation, list):
                continue
            turns = [t for t in (" ".join(str(u).split()) for u in conversation) if t]
            if len(turns) < 2:
                continue
            answers = set()
            for turn in turns[1:]:
                if turn.casefold() not in documents:
                    documents[turn.casefold()] = len(texts)
                    texts.append(turn)
                answers.add(documents[turn.casefold()])
            _, relevant = queries.setdefault(turns[0].casefold(), (turns[0], set()))
            relevant |= answers
    return [q for q, _ in queries.values()], texts, [sorted(r) for _, r in queries.values()]


def embeddings(
    queries: list[str], documents: list[str], cache: Path | None
) -> dict[tuple[str, str], torch.Tensor]:
    """(part, model) -> float32 embeddings, read from or written to ``cache`` when given."""
    out = {}
    for model, path in MODELS.items():
        encoder = None
        for part, texts in (("queries", queries), ("documents", documents)):
            file = None if cache is None else cache / f"qa_{part}_{model}.npy"
            if file is not None and file.exists() and len(np.load(file)) == len(texts):
                out[part, model] = torch.from_numpy(np.load(file))
                continue
            encoder = encoder or load_encoder(path())
            out[part, model] = torch.as_tensor(embed_inputs(encoder, texts, batch_size=64)).float()
            if file is not None:
                np.save(file.with_suffix(".tmp.npy"), out[part, model].numpy())
                file.with_suffix(".tmp.npy").replace(file)
    return out


def recall(queries: torch.Tensor, documents: torch.Tensor, relevant: list[list[int]]) -> float:
    top = (normalize_rows(queries.float()) @ normalize_rows(documents.float()).T).topk(TOP, dim=1).indices
    return float(np.mean([len(set(top[i].tolist()) & set(r)) / len(r) for i, r in enumerate(relevant)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=Path, help="folder caching the embeddings")
    args = parser.parse_args()
    torch.set_num_threads(2)
    queries, documents, relevant = question_answer_set()
    emb = embeddings(queries, documents, args.embeddings)
    anchors = torch.randperm(len(documents), generator=torch.Generator().manual_seed(0))[:NUM_ANCHORS]
    rows = []
    for old, new in (("MiniLM", "mpnet"), ("mpnet", "MiniLM")):
        for side in ("queries", "documents"):
            source, target = (new, old) if side == "queries" else (old, new)
            row = {
                "direction": f"{new} queries on a {old} index"
                if side == "queries"
                else f"{old} index translated to {new}, {new} queries",
                "keep old": recall(emb["queries", old], emb["documents", old], relevant),
                "re-index": recall(emb["queries", new], emb["documents", new], relevant),
            }
            for name, options in METHODS.items():
                started = time.perf_counter()
                bridge = LatentBridge.fit(
                    emb["documents", source][anchors], emb["documents", target][anchors], **options
                )
                row[f"{name} fit s"] = round(time.perf_counter() - started, 3)
                if side == "queries":
                    row[name] = recall(bridge.translate(emb["queries", new]), emb["documents", old], relevant)
                else:
                    row[name] = recall(emb["queries", new], bridge.translate(emb["documents", old]), relevant)
                if name == "auto":
                    row["auto chose"] = bridge.config.selection["chosen"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    columns = ["keep old", "re-index", *METHODS]
    lines = [
        "## Retrieval through a bridge: recall@10 on ChatterBot questions -> answers (benchmarks/retrieval.py)",
        "",
        f"{len(queries)} queries, {len(documents)} documents; anchors: {NUM_ANCHORS} documents embedded by both "
        "encoders. Goal: auto >= Procrustes in every direction.",
        "",
        "| direction | " + " | ".join(columns) + " | auto - procrustes | auto chose |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for r in rows:
        cells = " | ".join(f"**{r[c]:.3f}**" if c == "auto" else f"{r[c]:.3f}" for c in columns)
        delta = 100 * (r["auto"] - r["procrustes"])
        lines.append(f"| {r['direction']} | {cells} | {delta:+.1f} pt | {r['auto chose']} |")
    met = sum(r["auto"] >= r["procrustes"] for r in rows)
    lines += ["", f"auto >= Procrustes in **{met}/{len(rows)}** directions."]
    payload = {"queries": len(queries), "documents": len(documents), "anchors": NUM_ANCHORS, "rows": rows}
    write_results("retrieval", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
