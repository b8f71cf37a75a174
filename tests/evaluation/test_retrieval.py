"""Retrieval cells: ranking metrics through ir-measures, self-retrieval, neighbour overlap, and the rows of
one direction of an encoder swap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.errors import BridgeInputError, IncompatibleEncoderError
from hf_latent_bridge.evaluation.retrieval import (
    as_qrels,
    markdown_table,
    metric_names,
    neighbour_overlap,
    ranking_metrics,
    retrieval_metrics,
    score_direction,
    self_retrieval,
)
from hf_latent_bridge.retrieval.search import cosine_search


def test_ranking_metrics_are_ir_measures_values():
    # query 0: relevant 1 and 2, found at ranks 1 and 3; query 1: relevant 0, found at rank 2;
    # query 2: relevant 4, not found (a -1 entry is no document).
    ids = [[1, 3, 2], [2, 0, 5], [5, -1, 3]]
    got = ranking_metrics(ids, [[1, 2], [0], [4]], k=3)
    ndcg = [(1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)), 1 / math.log2(3), 0.0]
    assert got == pytest.approx({"recall@3": 2 / 3, "mrr@3": 0.5, "ndcg@3": np.mean(ndcg)})


def test_only_the_first_k_count_and_unjudged_queries_are_left_out():
    ids = [[3, 1, 0], [0, 1, 2]]
    assert ranking_metrics(ids, {0: [0], 1: []}, k=2)["recall@2"] == 0.0  # rank 3 is past k; query 1 unjudged
    assert ranking_metrics(ids, {"0": {"0": 2, "1": 0}, "1": [1]}, k=3)["recall@3"] == 1.0


def test_qrels_forms_and_their_checks():
    assert as_qrels([[2, 0], []]) == {"0": {"2": 1, "0": 1}}
    assert as_qrels({"1": {"3": 2, "4": 0}}) == {"1": {"3": 2}}
    with pytest.raises(BridgeInputError, match="document row 5 is out of range"):
        as_qrels([[5]], num_documents=5)
    with pytest.raises(BridgeInputError, match="query id 'q1' is not a row number"):
        as_qrels({"q1": [0]})
    with pytest.raises(BridgeInputError, match="no query has a relevant document"):
        as_qrels([[], []])


def test_retrieval_metrics_of_a_perfect_search():
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    assert retrieval_metrics(x, 2 * x, [[i] for i in range(20)], k=5) == pytest.approx(
        {"recall@5": 1.0, "mrr@5": 1.0, "ndcg@5": 1.0}
    )


def test_self_retrieval_finds_the_counterparts():
    target = np.random.default_rng(0).normal(size=(30, 6))
    assert self_retrieval(target, target) == pytest.approx({"self top-1": 1.0, "self mrr@10": 1.0})
    rows = np.arange(30)[::-1].copy()
    assert self_retrieval(target[rows], target, rows=rows)["self top-1"] == 1.0
    shifted = self_retrieval(target, np.roll(target, 1, axis=0), k=5)  # each counterpart is the next row
    assert shifted["self top-1"] == 0.0 and shifted["self mrr@5"] < 0.5


def test_neighbour_overlap_counts_shared_neighbours():
    ids = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    assert neighbour_overlap(ids, ids, k=4) == 1.0
    assert neighbour_overlap(ids, ids[::-1], k=4) == 0.0
    assert neighbour_overlap(ids, [[1, 0, 9, 8], [7, 5, -1, 4]], k=2) == pytest.approx((2 / 2 + 1 / 2) / 2)


@pytest.fixture(scope="module")
def rotated():
    """Old vectors an exact rotation of the new ones (so a linear bridge is exact), 50 documents and
    15 queries near some of them."""
    g = torch.Generator().manual_seed(0)
    new_docs = torch.randn(50, 8, generator=g, dtype=torch.float64)
    new_queries = new_docs[:15] + 0.4 * torch.randn(15, 8, generator=g, dtype=torch.float64)
    rotation = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    relevant = [[i, (i + 1) % 50] for i in range(15)]
    return new_queries @ rotation, new_docs @ rotation, new_queries, new_docs, relevant


def _by_row(rows):
    return {r["row"]: r for r in rows}


def test_an_exact_bridge_matches_its_target_encoder_in_both_directions(rotated):
    old_q, old_d, new_q, new_d, relevant = rotated
    to_old = LatentBridge.fit(new_d, old_d, method="linear")
    queries = _by_row(score_direction("queries", old_q, old_d, new_q, new_d, relevant, {"p": to_old}, k=5))
    assert list(queries) == ["keep old", "re-index", "p"] and queries["p"]["bridge"] == "linear"
    assert queries["p"]["self top-1"] == queries["p"]["self mrr@5"] == 1.0
    for metric in [*metric_names(5)[:3], "overlap@5"]:
        assert queries["p"][metric] == pytest.approx(queries["keep old"][metric])
    assert queries["keep old"]["self top-1"] is None and queries["keep old"]["overlap@5"] == 1.0

    to_new = LatentBridge.fit(old_d, new_d, method="linear")
    documents = _by_row(
        score_direction(
            "documents", old_q, old_d, new_q, new_d, relevant, {"p": to_new}, k=5, anchor_documents=range(40)
        )
    )
    assert documents["p"]["recall@5"] == pytest.approx(documents["re-index"]["recall@5"])
    assert documents["p"]["overlap@5"] == documents["re-index"]["overlap@5"] == 1.0
    assert documents["p"]["self top-1"] == 1.0  # on the 10 documents that are not anchors
    all_anchors = score_direction(
        "documents", old_q, old_d, new_q, new_d, relevant, {"p": to_new}, k=5, anchor_documents=range(50)
    )
    assert all_anchors[-1]["self top-1"] is None


def test_rankings_are_scored_beside_and_overlap_with_reindexing(rotated):
    old_q, old_d, new_q, new_d, relevant = rotated
    ranking = np.tile(np.arange(5), (15, 1))
    rows = score_direction(
        "queries", old_q, old_d, new_q, new_d, relevant, {}, k=5, rankings={"fixed": ranking}
    )
    reindex = score_direction("queries", old_q, old_d, new_q, new_d, relevant, {}, k=5)[1]
    fixed = rows[-1]
    assert fixed["row"] == "fixed" and fixed["self top-1"] is None
    assert fixed["recall@5"] == pytest.approx(ranking_metrics(ranking, relevant, 5)["recall@5"])
    assert fixed["overlap@5"] == pytest.approx(
        neighbour_overlap(ranking, cosine_search(new_q, new_d, 5)[1], 5)
    )
    assert reindex["row"] == "re-index"


def test_inputs_that_do_not_fit_are_refused(rotated):
    old_q, old_d, new_q, new_d, relevant = rotated
    wide = LatentBridge.fit(torch.randn(40, 8), torch.randn(40, 6), method="procrustes")
    with pytest.raises(IncompatibleEncoderError, match="needs 8 -> 8 \\(new -> old\\)"):
        score_direction("queries", old_q, old_d, new_q, new_d, relevant, {"w": wide})
    with pytest.raises(BridgeInputError, match="embed 15 and 14 queries"):
        score_direction("queries", old_q, old_d, new_q[:14], new_d, relevant, {})
    with pytest.raises(BridgeInputError, match="side must be one of queries, documents"):
        score_direction("both", old_q, old_d, new_q, new_d, relevant, {})
    with pytest.raises(BridgeInputError, match=r"ranking 'short' has shape \(15, 3\)"):
        score_direction(
            "queries", old_q, old_d, new_q, new_d, relevant, {}, k=5, rankings={"short": np.zeros((15, 3))}
        )


def test_markdown_table_prints_numbers_text_and_missing_cells():
    table = markdown_table([{"row": "a", "recall@10": 0.12345, "self top-1": None}])
    assert table.splitlines() == ["| row | recall@10 | self top-1 |", "|---|---|---|", "| a | 0.123 | n/a |"]
