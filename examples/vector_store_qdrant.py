"""Serve new-model queries against an old Qdrant index, without re-embedding the corpus.

A Qdrant collection (local mode, no server) holds ChatterBot answers embedded with the OLD model,
all-MiniLM-L6-v2 (384-d). The team moves to the NEW model, all-mpnet-base-v2 (768-d): a few hundred answers
embedded by both models calibrate a bridge NEW -> OLD, and the bridged model (mpnet followed by the bridge,
one SentenceTransformer) embeds questions straight into the old collection's space. Recall@10 of the
questions' answers is printed for keeping the old model, the bridged new model and, for reference,
re-indexing everything with the new model. Offline: models and data come from pip packages.

    python examples/vector_store_qdrant.py [--num-documents 1135] [--num-calibration 400] [--store DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

try:
    import yaml
    from qdrant_client import QdrantClient, models
    from sentence_transformers import SentenceTransformer
except ImportError as error:
    sys.exit(f"{error}; this example needs: pip install 'hf-latent-bridge[demo,retrieval]' qdrant-client")

from hf_latent_bridge import EncoderRef, LatentBridge
from hf_latent_bridge.demo import minilm_path, mpnet_path
from hf_latent_bridge.demo.data import _chatterbot_english_dir
from hf_latent_bridge.retrieval import (
    MIN_CALIBRATION,
    bridged_sentence_transformer,
    estimate_compatibility,
    save_bridged,
)

OLD, NEW = "sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-mpnet-base-v2"
TOP = 10
RELOAD_CHECK = 50  # questions the reloaded model re-embeds
BATCH = 8  # the answers vary from 1 to 111 words: small batches pad less (2x faster on CPU)


def question_answer_set() -> tuple[list[str], list[str], list[set[int]]]:
    """ChatterBot conversations: the first utterance is a question, the others its answers. Texts are
    whitespace-collapsed and merged casefolded; returns questions, answers and each question's answer ids."""
    answers: dict[str, int] = {}
    texts: list[str] = []
    questions: dict[str, tuple[str, set[int]]] = {}
    for path in sorted(_chatterbot_english_dir().glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []:
            turns = [" ".join(str(t).split()) for t in conversation] if isinstance(conversation, list) else []
            turns = [t for t in turns if t]
            if len(turns) < 2:
                continue
            for turn in turns[1:]:
                if turn.casefold() not in answers:
                    answers[turn.casefold()] = len(texts)
                    texts.append(turn)
            questions.setdefault(turns[0].casefold(), (turns[0], set()))[1].update(
                answers[t.casefold()] for t in turns[1:]
            )
    return [q for q, _ in questions.values()], texts, [r for _, r in questions.values()]


def index(client: QdrantClient, name: str, vectors: np.ndarray, texts: list[str]) -> None:
    """A cosine collection of ``vectors`` with ids 0..n-1 and the answer text as payload."""
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(
        name, models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE)
    )
    client.upsert(
        name,
        models.Batch(
            ids=list(range(len(texts))), vectors=vectors.tolist(), payloads=[{"text": t} for t in texts]
        ),
    )


def search(client: QdrantClient, name: str, queries: np.ndarray) -> list[list[int]]:
    """The ids of each query's top-10 hits in collection ``name``, one batched request."""
    responses = client.query_batch_points(
        name, [models.QueryRequest(query=q.tolist(), limit=TOP) for q in queries]
    )
    return [[point.id for point in response.points] for response in responses]


def recall(hits: list[list[int]], relevant: list[set[int]]) -> float:
    """Mean share of each question's answers among its hits."""
    return float(np.mean([len(set(h) & rel) / len(rel) for h, rel in zip(hits, relevant, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-documents", type=int, help="answers in the index (default: all)")
    parser.add_argument("--num-calibration", type=int, default=400, help="answers embedded by both models")
    parser.add_argument("--store", type=Path, help="folder of the Qdrant local storage (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON line")
    args = parser.parse_args()
    try:
        questions, answers, relevant = question_answer_set()
        n = len(answers) if args.num_documents is None else args.num_documents
        if not args.num_calibration <= n <= len(answers) or args.num_calibration < MIN_CALIBRATION:
            parser.error(
                f"need {MIN_CALIBRATION} <= --num-calibration <= --num-documents <= {len(answers)}, "
                f"got {args.num_calibration} and {n}"
            )
        old_model, new_model = SentenceTransformer(minilm_path()), SentenceTransformer(mpnet_path())
    except ImportError as error:
        sys.exit(f"missing model or data: {error}")

    # A seeded sample of the answers; the questions with an answer among them.
    keep = np.random.default_rng(0).permutation(len(answers))[:n]
    new_id = {int(old): new for new, old in enumerate(keep)}
    answers = [answers[i] for i in keep]
    pairs = [(q, {new_id[i] for i in rel if i in new_id}) for q, rel in zip(questions, relevant, strict=True)]
    questions, relevant = [q for q, r in pairs if r], [r for _, r in pairs if r]
    print(f"{len(answers)} answers, {len(questions)} questions, {args.num_calibration} calibration answers")

    with tempfile.TemporaryDirectory(prefix="qdrant-example-") as scratch:
        store = args.store or Path(scratch) / "qdrant"
        client = QdrantClient(path=str(store))
        try:
            # 1. The old index: answers embedded with the old model.
            old_vectors = old_model.encode_document(answers, batch_size=BATCH)
            index(client, "answers-minilm", old_vectors, answers)

            # 2. Calibration: a sample of the indexed answers embedded by the new model too.
            calibration = answers[: args.num_calibration]  # a random sample: `answers` is shuffled
            new_calibration = new_model.encode_document(calibration, batch_size=BATCH)
            old_calibration = old_vectors[: args.num_calibration]
            estimate = estimate_compatibility(new_calibration, old_calibration)
            print(estimate.summary())
            bridge = LatentBridge.fit(
                new_calibration,
                old_calibration,
                estimate.method,  # what the estimate measured (chosen by method="auto")
                blend=False,  # one map, which sentence-transformers modules express
                source_encoder=EncoderRef(NEW),
                target_encoder=EncoderRef(OLD),
            )

            # 3. New-model questions through the bridge, searching the old index.
            bridged = bridged_sentence_transformer(new_model, bridge)
            bridged_queries = bridged.encode_query(questions)
            bridged_hits = search(client, "answers-minilm", bridged_queries)
            figures = {
                "estimated_retention": estimate.retention,
                "keep_old": recall(
                    search(client, "answers-minilm", old_model.encode_query(questions)), relevant
                ),
                "bridged": recall(bridged_hits, relevant),
            }
            # Reference: re-index the whole corpus with the new model (the calibration answers are done).
            rest = new_model.encode_document(answers[args.num_calibration :], batch_size=BATCH)
            index(client, "answers-mpnet", np.vstack([new_calibration, rest]), answers)
            figures["reindex"] = recall(
                search(client, "answers-mpnet", new_model.encode_query(questions)), relevant
            )
            print(
                f"recall@{TOP}: keep old model {figures['keep_old']:.3f} | bridged new model on the old index "
                f"{figures['bridged']:.3f} | re-index with the new model {figures['reindex']:.3f}"
            )

            # 4. Save the bridged model; plain SentenceTransformer loads it back.
            folder = save_bridged(
                bridged,
                bridge,
                Path(scratch) / "mpnet-bridged-to-minilm",
                metrics={"recall@10": round(figures["bridged"], 4)},
            )
            sample = slice(0, RELOAD_CHECK)
            reloaded_queries = SentenceTransformer(str(folder)).encode_query(questions[sample])
            figures["reloaded_max_diff"] = float(np.abs(reloaded_queries - bridged_queries[sample]).max())
            figures["reloaded_same_hits"] = (
                search(client, "answers-minilm", reloaded_queries) == bridged_hits[sample]
            )
            print(
                f"reloaded with SentenceTransformer({folder.name!r}), {len(reloaded_queries)} questions: vectors "
                f"within {figures['reloaded_max_diff']:.1e} of the in-memory model's, "
                f"{'the same' if figures['reloaded_same_hits'] else 'DIFFERENT'} top-{TOP} hits"
            )
        finally:
            client.close()
    if args.json:
        print(json.dumps({"documents": len(answers), "queries": len(questions), **figures}))


if __name__ == "__main__":
    main()
