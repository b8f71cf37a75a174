"""Searching an old index with a new encoder: exact cosine search, and the two-stage search that recalls
candidates through a bridge and lets the new encoder re-score them.

The two-stage search (a cascade) costs more than a bridged search alone and buys back part of the gap to
re-indexing: the new encoder ranks the final ``k``, but only among the ``candidates`` the bridged query
recalled, so its recall can never exceed the bridge's recall@``candidates``. Re-scoring from texts
encodes every distinct candidate once per call: up to ``n_queries x candidates`` documents (fewer when
queries share candidates, never more than the index holds); from stored new-model vectors it is a
gather and one dot product per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.projection import normalize_rows
from ..core.validation import as_tensor, check_matrix
from ..errors import BridgeInputError, IncompatibleEncoderError

#: Query rows scored per block (bounds the (rows, n_documents) or (rows, candidates, d) working set).
_BLOCK = 512


def cosine_search(queries: Any, documents: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` documents most cosine-similar to each query, best first (exact search).

    ``queries`` (n, d) and ``documents`` (m, d) are numpy arrays, torch tensors or nested lists. Returns
    ``(scores, ids)``: float32 cosines and int64 document rows, both (n, k).
    """
    q = normalize_rows(_matrix(queries, "queries"))
    d = normalize_rows(_matrix(documents, "documents", q.shape[1]))
    _check_count(k, "k")
    if k > len(d):
        raise BridgeInputError(f"k={k} is more than the {len(d)} documents; ask for at most {len(d)}.")
    tops = [torch.topk(block @ d.T, k, dim=1) for block in q.split(_BLOCK)]
    scores, ids = torch.cat([t.values for t in tops]), torch.cat([t.indices for t in tops])
    return scores.numpy(), ids.numpy().astype(np.int64)


def two_stage_search(
    queries: Sequence[str] | Any,
    old_index: Any,
    bridge: Any | None,
    *,
    k: int = 10,
    candidates: int = 100,
    model: Any | None = None,
    documents: Sequence[str] | None = None,
    document_vectors: Any | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Recall ``candidates`` documents per query from the old index through ``bridge``, re-score them
    with the new encoder, and return the best ``k``.

    Args:
        queries: texts (embedded with ``model.encode_query``) or new-model query vectors (n, d_new).
        old_index: a faiss index (anything with ``.search(x, n)`` returning ``(distances, ids)``, best
            first) or an (m, d_old) matrix of old vectors, searched by cosine. Bridged queries are scaled
            to unit length first: an inner-product index ranks as it would anyway, and an L2 index of
            unit vectors ranks by cosine.
        bridge: the :class:`~hf_latent_bridge.LatentBridge` new -> old; ``None`` when the index is
            already in the new space (an old index translated old -> new), which the queries search as
            they are.
        k / candidates: results returned, and candidates recalled per query (``candidates >= k``).
        model: the new encoder, a ``SentenceTransformer``; needed for texts (queries or documents).
        documents: the texts of the index, ``documents[id]`` for every id it returns, embedded with
            ``model.encode_document`` (each distinct candidate once per call). Or instead:
        document_vectors: new-model vectors of the index's documents, row ``id`` for every id.
        batch_size: encoding batch size.

    Returns:
        ``(scores, ids)``, both (n, k), best first: float32 new-model cosines and int64 ids. A query
        with fewer than ``k`` valid candidates (an index returning ids of -1) is padded with id -1 and
        score -inf.
    """
    if (documents is None) == (document_vectors is None):
        raise BridgeInputError(
            "pass exactly one of documents (texts of the index, by id) and document_vectors (their new-model "
            "vectors, by id) to re-score the candidates."
        )
    _check_count(k, "k")
    _check_count(candidates, "candidates")
    if candidates < k:
        raise BridgeInputError(f"candidates={candidates} is fewer than k={k}; recall at least k candidates.")
    texts = _texts(queries)
    if (texts is not None or documents is not None) and not hasattr(model, "encode_query"):
        raise BridgeInputError(
            "texts need the new encoder: pass model=SentenceTransformer(...) (sentence-transformers >= 5), "
            "or pass vectors for both queries and documents."
        )
    if texts is not None:
        queries = model.encode_query(texts, batch_size=batch_size, convert_to_numpy=True)
    new_queries = _matrix(queries, "queries")
    index_dim, index_size = _index_shape(old_index)
    if bridge is None and new_queries.shape[1] != index_dim:
        raise IncompatibleEncoderError(
            f"the queries have dimension {new_queries.shape[1]} but the index {index_dim}; pass the bridge "
            "new -> old, or an index translated into the new space."
        )
    if bridge is not None and (bridge.config.source_dim, bridge.config.target_dim) != (
        new_queries.shape[1],
        index_dim,
    ):
        raise IncompatibleEncoderError(
            f"the bridge translates {bridge.config.source_dim} -> {bridge.config.target_dim} dimensions but the "
            f"queries have {new_queries.shape[1]} and the index {index_dim}; pass the bridge fitted new -> old."
        )
    if document_vectors is not None:
        document_vectors = _matrix(document_vectors, "document_vectors", new_queries.shape[1])
    if index_size is not None and k > index_size:
        raise BridgeInputError(f"k={k} is more than the {index_size} documents of the index; ask for fewer.")

    first = new_queries if bridge is None else bridge.translate(new_queries)
    depth = candidates if index_size is None else min(candidates, index_size)
    ids = _first_stage(old_index, normalize_rows(first).numpy(), depth)
    known = len(documents) if documents is not None else len(document_vectors)
    if ids.max(initial=-1) >= known:
        raise BridgeInputError(
            f"the index returned id {int(ids.max())} but only {known} documents were given; pass documents or "
            "document_vectors for every id the index holds."
        )
    distinct = np.unique(ids[ids >= 0])
    if not len(distinct):
        return np.full((len(ids), k), -np.inf, dtype=np.float32), np.full((len(ids), k), -1, dtype=np.int64)
    if documents is not None:
        encoded = model.encode_document(
            [documents[int(i)] for i in distinct], batch_size=batch_size, convert_to_numpy=True
        )
        vectors = normalize_rows(_matrix(encoded, "encoded documents", new_queries.shape[1]))
    else:
        vectors = normalize_rows(document_vectors[torch.from_numpy(distinct)])
    return _rescore(normalize_rows(new_queries), vectors, distinct, ids, k)


def _first_stage(index: Any, queries: np.ndarray, depth: int) -> np.ndarray:
    """Ids (n, depth) of the index's best ``depth`` documents per query, -1 where it has none."""
    if hasattr(index, "search"):
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), depth)
        return np.asarray(ids, dtype=np.int64)
    return cosine_search(queries, index, depth)[1]


def _rescore(
    queries: torch.Tensor, vectors: torch.Tensor, distinct: np.ndarray, ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each query with its candidates (rows of ``vectors``, in the order of ``distinct``), top k."""
    rows = torch.from_numpy(np.searchsorted(distinct, np.maximum(ids, 0)))
    valid = torch.from_numpy(ids >= 0)
    out_scores, out_ids = [], []
    for start in range(0, len(ids), _BLOCK):
        block = slice(start, start + _BLOCK)
        scores = (vectors[rows[block]] @ queries[block].unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(~valid[block], -torch.inf)
        order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]  # ties keep recall order
        out_scores.append(scores.gather(1, order))
        out_ids.append(torch.from_numpy(ids[block]).gather(1, order))
    scores, top = torch.cat(out_scores).numpy(), torch.cat(out_ids).numpy()
    return scores.astype(np.float32), np.where(np.isneginf(scores), -1, top).astype(np.int64)


def _index_shape(index: Any) -> tuple[int, int | None]:
    """(dimension, number of documents or None) of a faiss-like index or a matrix of vectors."""
    if hasattr(index, "search"):
        dim = getattr(index, "d", None)
        if not isinstance(dim, int):
            raise BridgeInputError(
                f"old_index {type(index).__name__} has no integer dimension .d; pass a faiss index or a matrix."
            )
        size = getattr(index, "ntotal", None)
        return dim, size if isinstance(size, int) else None
    matrix = _matrix(index, "old_index")
    return matrix.shape[1], len(matrix)


def _texts(queries: Any) -> list[str] | None:
    """``queries`` as a list of texts, or ``None`` when they are vectors."""
    if isinstance(queries, str):
        raise BridgeInputError("queries is one string; pass a list of texts, e.g. [query].")
    if isinstance(queries, (list, tuple)) and queries and all(isinstance(q, str) for q in queries):
        return list(queries)
    return None


def _matrix(x: Any, name: str, dim: int | None = None) -> torch.Tensor:
    return check_matrix(as_tensor(x, name), name, dim).detach().cpu().float()


def _check_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BridgeInputError(f"{name} must be a positive integer, got {value!r}.")
