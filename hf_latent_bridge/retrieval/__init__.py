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

__all__ = [
    "BRIDGE_FOLDER",
    "MIN_CALIBRATION",
    "Compatibility",
    "bridge_modules",
    "bridged_sentence_transformer",
    "estimate_compatibility",
    "push_bridged",
    "save_bridged",
]
