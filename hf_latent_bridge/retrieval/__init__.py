"""Serving a new encoder against an index built with an old one, without re-embedding the corpus.

A bridged ``SentenceTransformer`` (sentence-transformers' own modules, loadable with plain
``SentenceTransformer(repo)``), index migration (chunked, sharded with accelerate, written as faiss or
back into a dataset), the two-stage search, and a compatibility estimate before migrating. Needs the
``retrieval`` extra: ``pip install "hf-latent-bridge[retrieval]"``.
"""

from __future__ import annotations

from .bridged_model import (
    BRIDGE_FOLDER,
    bridge_modules,
    bridged_sentence_transformer,
    push_bridged,
    save_bridged,
)
from .compatibility import MIN_CALIBRATION, Compatibility, estimate_compatibility
from .migration import prefix_transform, translate_dataset, translate_vectors, write_faiss_index
from .search import cosine_search, two_stage_search

__all__ = [
    "BRIDGE_FOLDER",
    "MIN_CALIBRATION",
    "Compatibility",
    "bridge_modules",
    "bridged_sentence_transformer",
    "cosine_search",
    "estimate_compatibility",
    "prefix_transform",
    "push_bridged",
    "save_bridged",
    "translate_dataset",
    "translate_vectors",
    "two_stage_search",
    "write_faiss_index",
]
