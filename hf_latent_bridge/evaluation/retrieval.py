"""Retrieval cells of an encoder swap: ranking metrics of cosine search (recall@k, MRR@k and nDCG@k,
computed by ir-measures), and two label-free cells of a bridge, for one direction beside the two
references, "keep old" (old encoder for queries and index) and "re-index" (new encoder for both).

Directions (old: the encoder that built the index; new: the one the queries move to):

* ``"queries"``: a bridge new -> old translates new-model queries, which search the old index;
* ``"documents"``: a bridge old -> new translates the old index, which new-model queries search.

The label-free cells compare a bridge with its target encoder (the old one for ``"queries"``, the new one
for ``"documents"``): **self-retrieval**, whether each translated vector's nearest target vector is its
own item's (top-1, and the MRR@k of that counterpart), and **neighbour overlap@k**, the share of each
query's top k through the bridge that the target encoder's own search also returns (for a ranking the
new encoder ordered last, such as a two-stage search: the new encoder's own search).

Queries and documents are identified by their rows; relevance judgements are a list (entry i: the
relevant document rows of query i) or a dict from query rows to document rows or ``{row: grade}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BridgeInputError, IncompatibleEncoderError
from ..retrieval.search import _matrix, cosine_search

#: The two directions of an encoder swap, in the order they are reported.
SIDES = ("queries", "documents")


def metric_names(k: int = 10) -> list[str]:
    """The metric columns of :func:`score_direction` rows, in table order."""
    return [f"recall@{k}", f"mrr@{k}", f"ndcg@{k}", "self top-1", f"self mrr@{k}", f"overlap@{k}"]


def as_qrels(
    relevant: Any, num_queries: int | None = None, num_documents: int | None = None
) -> dict[str, dict[str, int]]:
    """Relevance judgements as ir-measures takes them, ``{query row: {document row: grade}}`` (strings).

    Queries with no relevant document (grade > 0) are dropped: metrics average over the others. Rows are
    checked against ``num_queries`` / ``num_documents`` when given.
    """
    if isinstance(relevant, (str, bytes)) or not hasattr(relevant, "__iter__"):
        raise BridgeInputError(
            f"relevant must be a list of relevant document rows per query or a dict, got {type(relevant).__name__}."
        )
    items = relevant.items() if isinstance(relevant, Mapping) else enumerate(relevant)
    qrels: dict[str, dict[str, int]] = {}
    for query, documents in items:
        grades = documents if isinstance(documents, Mapping) else dict.fromkeys(documents, 1)
        judged = {str(_row(d, num_documents, "document")): int(g) for d, g in grades.items() if float(g) > 0}
        if judged:
            qrels[str(_row(query, num_queries, "query"))] = judged
    if not qrels:
        raise BridgeInputError("no query has a relevant document; give each query's relevant document rows.")
    return qrels


def ranking_metrics(ids: Any, relevant: Any, k: int = 10) -> dict[str, float]:
    """recall@k, MRR@k and nDCG@k of ranked document rows ``ids`` (n_queries, >= k, best first; -1: no
    document), averaged over the queries with a relevant document (ir-measures' R@k, RR@k, nDCG@k)."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] < k:
        raise BridgeInputError(
            f"ids must be (n_queries, >= {k}) ranked document rows, got shape {ids.shape}; rank deeper."
        )
    qrels = as_qrels(relevant, num_queries=len(ids))
    # Scores k, k-1, ...: ir-measures orders by score, so its ranking is exactly this one, ties included.
    run = {
        str(q): {str(d): float(k - r) for r, d in enumerate(row[:k]) if d >= 0} for q, row in enumerate(ids)
    }
    scores = ir_measures.calc_aggregate([R @ k, RR @ k, nDCG @ k], qrels, run)
    return {f"recall@{k}": scores[R @ k], f"mrr@{k}": scores[RR @ k], f"ndcg@{k}": scores[nDCG @ k]}


def retrieval_metrics(queries: Any, documents: Any, relevant: Any, k: int = 10) -> dict[str, float]:
    """:func:`ranking_metrics` of exact cosine search of ``documents`` (m, d) by ``queries`` (n, d)."""
    return ranking_metrics(cosine_search(queries, documents, k)[1], relevant, k)


def self_retrieval(translated: Any, target: Any, k: int = 10, rows: Any = None) -> dict[str, float]:
    """Label-free: does each translated vector find its own item among the target encoder's vectors?

    Row i of ``translated`` is item ``rows[i]`` of ``target`` (default: row i, the same number of rows).
    Returns ``{"self top-1": share whose counterpart is the nearest, "self mrr@k": MRR@k of the
    counterpart}`` (ir-measures' Success@1 and RR@k).
    """
    import ir_measures
    from ir_measures import RR, Success

    translated, target = _matrix(translated, "translated"), _matrix(target, "target")
    if rows is None and len(translated) != len(target):
        raise BridgeInputError(
            f"translated has {len(translated)} rows and target {len(target)}; pass rows (the target row of each "
            "translated vector) or vectors of the same items."
        )
    rows = np.arange(len(translated)) if rows is None else np.asarray(rows)
    if rows.shape != (len(translated),):
        raise BridgeInputError(f"rows must give one target row per translated vector ({len(translated)}).")
    ids = cosine_search(translated, target, min(k, len(target)))[1]
    qrels = {str(i): {str(_row(r, len(target), "target")): 1} for i, r in enumerate(rows)}
    run = {str(i): {str(d): float(k - r) for r, d in enumerate(row)} for i, row in enumerate(ids)}
    scores = ir_measures.calc_aggregate([Success @ 1, RR @ k], qrels, run)
    return {"self top-1": scores[Success @ 1], f"self mrr@{k}": scores[RR @ k]}


def neighbour_overlap(ids: Any, reference_ids: Any, k: int = 10) -> float:
    """Mean over queries of |top k of ``ids`` ∩ top k of ``reference_ids``| / k (-1 entries: none)."""
    ids, reference = np.asarray(ids), np.asarray(reference_ids)
    if ids.ndim != 2 or ids.shape[0] != reference.shape[0] or min(ids.shape[1], reference.shape[1]) < k:
        raise BridgeInputError(
            f"ids {ids.shape} and reference_ids {reference.shape} must rank >= {k} documents for the same queries."
        )
    shared = [len(set(a[a >= 0]) & set(b[b >= 0])) for a, b in zip(ids[:, :k], reference[:, :k], strict=True)]
    return float(np.mean(shared) / k)


def score_direction(
    side: str,
    old_queries: Any,
    old_documents: Any,
    new_queries: Any,
    new_documents: Any,
    relevant: Any,
    bridges: Mapping[str, Any],
    *,
    k: int = 10,
    rankings: Mapping[str, Any] | None = None,
    anchor_documents: Any = None,
) -> list[dict[str, Any]]:
    """Rows of one direction: "keep old", "re-index", each bridge, and each precomputed ranking.

    Args:
        side: ``"queries"`` (``bridges`` map new -> old) or ``"documents"`` (they map old -> new).
        old_queries / old_documents / new_queries / new_documents: each encoder's vectors of the same
            queries and documents, rows aligned.
        relevant: each query's relevant document rows (see the module docstring).
        bridges: name -> fitted :class:`~hf_latent_bridge.LatentBridge`.
        rankings: name -> ranked document rows (n_queries, >= k) that the new encoder ranked last (e.g. a
            two-stage search), scored like the bridges but without self-retrieval, and their overlap taken
            with the new encoder's own search (re-index) in both directions.
        anchor_documents: the document rows the bridges were fitted on, left out of the documents
            direction's self-retrieval (where they would be scored in-sample).

    Returns:
        One dict per row: ``side``, ``row``, ``bridge`` (what the bridge is: the method, or what
        ``"auto"`` chose; None for others) and :func:`metric_names` (None where a cell does not apply:
        self-retrieval of the references and rankings, and of the documents direction when every
        document is an anchor; the overlap of the target encoder with itself is 1).
    """
    if side not in SIDES:
        raise BridgeInputError(f"side must be one of {', '.join(SIDES)}, got {side!r}.")
    old_q, old_d = _matrix(old_queries, "old_queries"), _matrix(old_documents, "old_documents")
    new_q, new_d = _matrix(new_queries, "new_queries"), _matrix(new_documents, "new_documents")
    for name, (a, b) in {"queries": (old_q, new_q), "documents": (old_d, new_d)}.items():
        if len(a) != len(b):
            raise BridgeInputError(
                f"the old and new encoders embed {len(a)} and {len(b)} {name}; embed the same {name} with both."
            )
    for name, (a, b) in {"old": (old_q, old_d), "new": (new_q, new_d)}.items():
        if a.shape[1] != b.shape[1]:
            raise IncompatibleEncoderError(
                f"the {name} queries have dimension {a.shape[1]} but the {name} documents {b.shape[1]}; pass "
                "vectors of one encoder per side."
            )
    qrels = as_qrels(relevant, len(old_q), len(old_d))
    old_top, new_top = (cosine_search(q, d, k)[1] for q, d in ((old_q, old_d), (new_q, new_d)))
    target_top = old_top if side == "queries" else new_top
    source, target = (
        (new_q.shape[1], old_q.shape[1]) if side == "queries" else (old_q.shape[1], new_q.shape[1])
    )
    held_out = np.setdiff1d(
        np.arange(len(old_d)), np.asarray(anchor_documents if anchor_documents is not None else [])
    )

    for name, bridge in bridges.items():
        if (bridge.config.source_dim, bridge.config.target_dim) != (source, target):
            raise IncompatibleEncoderError(
                f"bridge {name!r} maps {bridge.config.source_dim} -> {bridge.config.target_dim} dimensions, but the "
                f"{side} direction needs {source} -> {target} ({'new -> old' if side == 'queries' else 'old -> new'})."
            )
    for name, ids in (rankings or {}).items():
        if np.ndim(ids) != 2 or np.shape(ids)[0] != len(new_q) or np.shape(ids)[1] < k:
            raise BridgeInputError(
                f"ranking {name!r} has shape {np.shape(ids)}; pass ({len(new_q)}, >= {k}) document rows."
            )

    def row(
        name: str, top: np.ndarray, bridge: str | None = None, reference: Any = None, **cells: Any
    ) -> dict[str, Any]:
        cells = {"self top-1": None, f"self mrr@{k}": None, **cells}
        overlap = neighbour_overlap(top, target_top if reference is None else reference, k)
        metrics = {**ranking_metrics(top, qrels, k), **cells, f"overlap@{k}": overlap}
        return {"side": side, "row": name, "bridge": bridge, **{m: metrics[m] for m in metric_names(k)}}

    rows = [row("keep old", old_top), row("re-index", new_top)]
    for name, bridge in bridges.items():
        if side == "queries":
            translated = bridge.translate(new_q)
            top, own = cosine_search(translated, old_d, k)[1], self_retrieval(translated, old_q, k)
        else:
            translated = bridge.translate(old_d)
            top = cosine_search(new_q, translated, k)[1]
            own = self_retrieval(translated[held_out], new_d, k, rows=held_out) if len(held_out) else {}
        rows.append(row(name, top, _describe(bridge), **own))
    for name, ids in (rankings or {}).items():
        rows.append(row(name, np.asarray(ids), reference=new_top))
    return rows


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows (e.g. of :func:`score_direction`) as a markdown table: numbers to 3 decimals, None as n/a."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _describe(bridge: Any) -> str:
    selection = bridge.config.selection
    return selection["chosen"] if selection else bridge.config.method


def _row(value: Any, count: int | None, what: str) -> int:
    """A query or document row number from an int or a string of one, within ``count`` when given."""
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
    except (TypeError, ValueError):
        raise BridgeInputError(
            f"{what} id {value!r} is not a row number; identify {what}s by their rows."
        ) from None
    if number < 0 or (count is not None and number >= count):
        raise BridgeInputError(
            f"{what} row {number} is out of range (there are {count} {what}s); check the relevance judgements."
        )
    return number
