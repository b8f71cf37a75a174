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

Rows (hf_latent_bridge.evaluation.retrieval.score_direction): IRP (whitening 0.3), Procrustes, linear,
the default (``LatentBridge.fit(x, y)``, method "auto") and "auto, blend=False", beside keep old (old model
for queries and index) and re-index (new model for both); and the cascade
(hf_latent_bridge.retrieval.search.two_stage_search) with the default bridge, N = 50 and 100 candidates
re-scored by the new model's document vectors. On the queries side that is the natural cascade (bridged
new queries recall N from the old index); on the documents side the first stage is new queries on the
index translated old -> new. The stored vectors stand in for encoding the N candidates' texts (the same
numbers, without the encoding cost).

Cells: recall@10, MRR@10 and nDCG@10 of cosine search (ir-measures), self-retrieval (translated vectors
against the target model's own vectors of the same items: top-1 and MRR@10; on the documents side only
the 135 documents that are not anchors) and neighbour overlap@10 with the target model's own top 10 (for
the cascades: with re-index's). Bars: the default >= Procrustes, and default recall@10 >= 0.95 x
min(keep old, re-index), in every direction.

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
from hf_latent_bridge.demo import minilm_path, mpnet_path
from hf_latent_bridge.demo.data import _chatterbot_english_dir
from hf_latent_bridge.encoding import embed_inputs, load_encoder
from hf_latent_bridge.evaluation.retrieval import (
    SIDES,
    markdown_table,
    metric_names,
    ranking_metrics,
    score_direction,
)
from hf_latent_bridge.retrieval.search import cosine_search, two_stage_search

MODELS = {"MiniLM": minilm_path, "mpnet": mpnet_path}
NUM_ANCHORS = 1000
TOP = 10
CASCADE_DEPTHS = (50, 100)
DEFAULT = "auto"
METHODS = {
    "IRP (w 0.3)": {"method": "irp", "whitening": 0.3},
    "procrustes": {"method": "procrustes"},
    "linear": {"method": "linear"},
    DEFAULT: {},
    "auto, blend=False": {"blend": False},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=Path, help="folder caching the embeddings")
    args = parser.parse_args()
    torch.set_num_threads(2)
    queries, documents, relevant = question_answer_set()
    emb = embeddings(queries, documents, args.embeddings)
    anchors = torch.randperm(len(documents), generator=torch.Generator().manual_seed(0))[:NUM_ANCHORS]
    directions, rows = [], []
    for old, new in (("MiniLM", "mpnet"), ("mpnet", "MiniLM")):
        vectors = {
            "old_queries": emb["queries", old],
            "old_documents": emb["documents", old],
            "new_queries": emb["queries", new],
            "new_documents": emb["documents", new],
        }
        for side in SIDES:
            source, target = (new, old) if side == "queries" else (old, new)
            name = (
                f"{new} queries on a {old} index"
                if side == "queries"
                else f"{old} index translated to {new}, {new} queries"
            )
            bridges, fit_seconds = {}, {}
            for method, options in METHODS.items():
                started = time.perf_counter()
                bridges[method] = LatentBridge.fit(
                    emb["documents", source][anchors], emb["documents", target][anchors], **options
                )
                fit_seconds[method] = round(time.perf_counter() - started, 3)
            cascades, extra = cascade_rankings(side, vectors, bridges[DEFAULT], relevant)
            scored = score_direction(
                side, **vectors, relevant=relevant, bridges=bridges, k=TOP, rankings=cascades,
                anchor_documents=anchors.numpy(),
            )  # fmt: skip
            for r in scored:
                r |= {"direction": name, "fit s": fit_seconds.get(r["row"]), **extra.get(r["row"], {})}
                print(json.dumps(r), flush=True)
            rows += scored
            directions.append(summary(name, {r["row"]: r for r in scored}))
    payload = {
        "queries": len(queries),
        "documents": len(documents),
        "anchors": NUM_ANCHORS,
        "summary": directions,
        "rows": rows,
    }
    markdown = report(len(queries), len(documents), directions, rows)
    write_results("retrieval", payload, markdown)
    print(markdown)


def cascade_rankings(
    side: str, vectors: dict[str, torch.Tensor], bridge: LatentBridge, relevant: list[list[int]]
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """The two-stage search at each depth N with the default bridge, re-scored by the new model's document
    vectors: queries side, bridged new queries recall N from the old index; documents side, new queries
    recall N from the index translated old -> new. Also each one's ceiling (the first stage's recall@N)
    and time."""
    new_q, new_d, old_d = vectors["new_queries"], vectors["new_documents"], vectors["old_documents"]
    index, through = (old_d, bridge) if side == "queries" else (bridge.translate(old_d), None)
    first = new_q if through is None else through.translate(new_q)
    rankings, extra = {}, {}
    for depth in CASCADE_DEPTHS:
        started = time.perf_counter()
        _, ids = two_stage_search(new_q, index, through, k=TOP, candidates=depth, document_vectors=new_d)
        seconds = time.perf_counter() - started
        name = f"cascade N={depth}"
        rankings[name] = ids
        ceiling = ranking_metrics(cosine_search(first, index, depth)[1], relevant, k=depth)[f"recall@{depth}"]
        extra[name] = {"ceiling recall@N": ceiling, "search s": round(seconds, 3)}
    return rankings, extra


def summary(direction: str, by_row: dict[str, dict]) -> dict:
    """The bars of one direction: the default >= Procrustes, and >= 0.95 x min(keep old, re-index)."""
    recall = f"recall@{TOP}"
    floor = 0.95 * min(by_row["keep old"][recall], by_row["re-index"][recall])
    return {
        "direction": direction,
        **{name: by_row[name][recall] for name in ("keep old", "re-index", "procrustes", DEFAULT)},
        "0.95 x min(keep old, re-index)": floor,
        "default >= procrustes": by_row[DEFAULT][recall] >= by_row["procrustes"][recall],
        "default >= 0.95 x min": by_row[DEFAULT][recall] >= floor,
        "default chose": by_row[DEFAULT]["bridge"],
        **{
            f"cascade N={n} (ceiling)": f"{by_row[f'cascade N={n}'][recall]:.3f} "
            f"({by_row[f'cascade N={n}']['ceiling recall@N']:.3f})"
            for n in CASCADE_DEPTHS
        },
    }


def report(num_queries: int, num_documents: int, directions: list[dict], rows: list[dict]) -> str:
    met = [sum(d[bar] for d in directions) for bar in ("default >= procrustes", "default >= 0.95 x min")]
    lines = [
        "## Retrieval through a bridge on ChatterBot questions -> answers (benchmarks/retrieval.py)",
        "",
        f"{num_queries} queries, {num_documents} documents; anchors: {NUM_ANCHORS} documents embedded by both "
        f"encoders. Bars: the default (`auto`) >= Procrustes, and default recall@{TOP} >= 0.95 x min(keep old, "
        "re-index), in every direction. Cascade: the two-stage search with the default bridge, N candidates "
        "re-scored by the new model's document vectors (ceiling: the first stage's recall@N).",
        "",
        markdown_table(
            directions,
            [c for c in directions[0] if c not in ("default >= procrustes", "default >= 0.95 x min")],
        ),
        "",
        f"Default >= Procrustes in **{met[0]}/{len(directions)}** directions; default recall@{TOP} >= 0.95 x "
        f"min(keep old, re-index) in **{met[1]}/{len(directions)}**.",
    ]
    columns = ["row", "bridge", *metric_names(TOP)]
    for direction in directions:
        lines += [
            "",
            f"### {direction['direction']}",
            "",
            markdown_table([r for r in rows if r["direction"] == direction["direction"]], columns),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
