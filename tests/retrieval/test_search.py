"""The two-stage search: candidates recalled through the bridge, re-scored by the new encoder; exact cosine
search; and the one-line refusals of inputs that do not fit together."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.errors import BridgeInputError, IncompatibleEncoderError
from hf_latent_bridge.retrieval.search import cosine_search, two_stage_search

WORDS = ["sky", "tree", "book", "song", "road", "cat"]


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def swap():
    """New-model documents (16-d) and queries, an old model (12-d, a noisy non-linear image of the new
    one) and a bridge new -> old fitted on 150 of the 200 documents."""
    g = np.random.default_rng(0)
    new_docs = g.normal(size=(200, 16)).astype(np.float32)
    mix = g.normal(size=(16, 12)).astype(np.float32)
    old_docs = np.tanh(new_docs @ mix / 3) + 0.05 * g.normal(size=(200, 12)).astype(np.float32)
    new_queries = new_docs[g.integers(0, 200, 30)] + 0.6 * g.normal(size=(30, 16)).astype(np.float32)
    bridge = LatentBridge.fit(new_docs[:150], old_docs[:150], method="linear")
    return new_queries, old_docs.astype(np.float32), new_docs, bridge


def test_cosine_search_ranks_every_document_by_cosine():
    g = np.random.default_rng(1)
    queries, documents = g.normal(size=(7, 5)), 3 * g.normal(size=(40, 5))
    scores, ids = cosine_search(queries, documents, 6)
    expected = _unit(queries) @ _unit(documents).T
    assert ids.shape == scores.shape == (7, 6) and ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, np.argsort(-expected, axis=1)[:, :6])
    np.testing.assert_allclose(scores, np.take_along_axis(expected, ids, 1), rtol=1e-5)


def test_the_new_encoder_reranks_the_bridges_candidates(swap):
    new_queries, old_docs, new_docs, bridge = swap
    scores, ids = two_stage_search(
        new_queries, old_docs, bridge, k=5, candidates=20, document_vectors=new_docs
    )
    recalled = cosine_search(bridge.translate(new_queries), old_docs, 20)[1]
    cosines = _unit(new_queries) @ _unit(new_docs).T
    for row, (found, pool) in enumerate(zip(ids, recalled, strict=True)):
        assert set(found) <= set(pool)  # the ceiling: only what the bridge recalled
        best = pool[np.argsort(-cosines[row, pool], kind="stable")[:5]]
        np.testing.assert_array_equal(found, best)
        np.testing.assert_allclose(scores[row], cosines[row, best], rtol=1e-5)


def test_recalling_the_whole_index_is_reindexing(swap):
    new_queries, old_docs, new_docs, bridge = swap
    _, ids = two_stage_search(new_queries, old_docs, bridge, k=10, candidates=500, document_vectors=new_docs)
    np.testing.assert_array_equal(ids, cosine_search(new_queries, new_docs, 10)[1])


def test_a_faiss_index_gives_the_matrix_result(swap):
    new_queries, old_docs, new_docs, bridge = swap
    index = faiss.IndexFlatIP(old_docs.shape[1])
    index.add(_unit(old_docs))
    by_matrix = two_stage_search(new_queries, old_docs, bridge, k=5, candidates=30, document_vectors=new_docs)
    by_faiss = two_stage_search(new_queries, index, bridge, k=5, candidates=30, document_vectors=new_docs)
    np.testing.assert_array_equal(by_faiss[1], by_matrix[1])
    np.testing.assert_allclose(by_faiss[0], by_matrix[0], rtol=1e-5)


def test_an_index_already_in_the_new_space_needs_no_bridge(swap):
    new_queries, _, new_docs, _ = swap
    translated = new_docs + 0.3 * np.random.default_rng(2).normal(size=new_docs.shape).astype(np.float32)
    _, ids = two_stage_search(new_queries, translated, None, k=4, candidates=15, document_vectors=new_docs)
    recalled = cosine_search(new_queries, translated, 15)[1]
    assert all(set(a) <= set(b) for a, b in zip(ids, recalled, strict=True))


class _ShortIndex:
    """A flat inner-product index that returns at most ``limit`` results (-1 after), as IVF indexes may."""

    def __init__(self, vectors, limit):
        self.index, self.limit = faiss.IndexFlatIP(vectors.shape[1]), limit
        self.index.add(_unit(vectors))
        self.d, self.ntotal = self.index.d, self.index.ntotal

    def search(self, x, n):
        distances, ids = self.index.search(x, n)
        ids[:, self.limit :] = -1
        return distances, ids


def test_missing_candidates_are_padded(swap):
    new_queries, old_docs, new_docs, bridge = swap
    scores, ids = two_stage_search(
        new_queries, _ShortIndex(old_docs, 3), bridge, k=5, candidates=10, document_vectors=new_docs
    )
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all() and (ids[:, :3] >= 0).all()


class _CountingModel(SentenceTransformer):
    """The real tiny model, recording what it is asked to encode as documents."""

    encoded: list[str]

    def encode_document(self, inputs, **kwargs):
        self.encoded = [*getattr(self, "encoded", []), *inputs]
        return super().encode_document(inputs, **kwargs)


def test_texts_are_encoded_by_the_new_model_each_candidate_once(tiny_st_path):
    model = _CountingModel(tiny_st_path)
    documents = [f"answer number {i} about {w}" for i, w in enumerate(WORDS * 5)]
    queries = ["a question about a cat", "what about the sky", "tell me of a road"]
    g = np.random.default_rng(3)
    old_docs = g.normal(size=(len(documents), 6)).astype(np.float32)
    new_doc_vectors = model.encode_document(documents)
    bridge = LatentBridge.fit(new_doc_vectors, old_docs, method="linear")
    model.encoded = []
    by_text = two_stage_search(queries, old_docs, bridge, k=3, candidates=8, model=model, documents=documents)
    recalled = cosine_search(bridge.translate(model.encode_query(queries)), old_docs, 8)[1]
    assert sorted(model.encoded) == sorted(documents[i] for i in np.unique(recalled))
    by_vector = two_stage_search(
        model.encode_query(queries), old_docs, bridge, k=3, candidates=8, document_vectors=new_doc_vectors
    )
    np.testing.assert_array_equal(by_text[1], by_vector[1])
    np.testing.assert_allclose(by_text[0], by_vector[0], atol=1e-5)


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        ({"document_vectors": None}, BridgeInputError, "exactly one of documents"),
        ({"documents": ["a"] * 200}, BridgeInputError, "exactly one of documents"),
        ({"candidates": 3}, BridgeInputError, "fewer than k=5"),
        ({"k": 0}, BridgeInputError, "k must be a positive integer"),
        ({"k": 300, "candidates": 300}, BridgeInputError, "more than the 200 documents"),
        ({"queries": "one query"}, BridgeInputError, "pass a list of texts"),
        ({"queries": ["a text"]}, BridgeInputError, "pass model=SentenceTransformer"),
        (
            {"queries": np.zeros((2, 12), np.float32)},
            IncompatibleEncoderError,
            "pass the bridge fitted new -> old",
        ),
        ({"bridge": None}, IncompatibleEncoderError, "pass the bridge new -> old"),
        ({"document_vectors": np.zeros((200, 12))}, BridgeInputError, "dimension 12 but 16 was expected"),
        ({"document_vectors": np.ones((50, 16))}, BridgeInputError, "only 50 documents were given"),
        ({"old_index": np.full((200, 12), np.nan)}, BridgeInputError, "NaN or Inf"),
    ],
)
def test_inputs_that_do_not_fit_are_refused_in_one_line(swap, change, error, fragment):
    new_queries, old_docs, new_docs, bridge = swap
    arguments = {
        "queries": new_queries,
        "old_index": old_docs,
        "bridge": bridge,
        "document_vectors": new_docs,
        "k": 5,
        "candidates": 10,
    } | change
    with pytest.raises(error, match=fragment) as raised:
        two_stage_search(
            arguments.pop("queries"), arguments.pop("old_index"), arguments.pop("bridge"), **arguments
        )
    assert "\n" not in str(raised.value)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:200 anchors for a 384-dimensional target")
def test_real_encoders_rescore_from_texts_as_from_their_vectors():
    """MiniLM's index, mpnet's queries: re-scoring from the candidates' texts equals re-scoring from their
    stored mpnet vectors, and the cascade's top 5 are mpnet's own ranking of the candidates."""
    from hf_latent_bridge.demo import chatterbot_topics, minilm_path, mpnet_path

    texts = list(chatterbot_topics()["text"])[:240]
    documents, queries = texts[:200], texts[200:]
    old, new = SentenceTransformer(minilm_path()), SentenceTransformer(mpnet_path())
    old_docs, new_docs = old.encode_document(documents), new.encode_document(documents)
    bridge = LatentBridge.fit(new_docs, old_docs, method="procrustes")
    by_text = two_stage_search(queries, old_docs, bridge, k=5, candidates=20, model=new, documents=documents)
    by_vector = two_stage_search(
        new.encode_query(queries), old_docs, bridge, k=5, candidates=20, document_vectors=new_docs
    )
    np.testing.assert_array_equal(by_text[1], by_vector[1])
    np.testing.assert_allclose(by_text[0], by_vector[0], atol=1e-4)
