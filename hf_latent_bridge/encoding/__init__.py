"""Turning raw inputs into embeddings: encoders (one module per kind), one embedding path
(:meth:`Encoder.embed` in one process, :func:`embed_inputs` sharded and cached, both running the
encoder's own batch plan), and reading labelled tables.
"""

from __future__ import annotations

from .base import EmbeddingPlan, Encoder
from .callable_encoder import CallableEncoder
from .clip import ClipTowerEncoder
from .embed import embed_dataset, embed_inputs
from .inputs import MODALITIES, check_inputs
from .loading import load_encoder
from .pooling import CLIP_POOLINGS, TEXT_POOLINGS, VISION_POOLINGS, parse_pooling, pool_tokens
from .reference import EncoderRef
from .sentence_transformer import read_sentence_transformers_config
from .text import TextEncoder
from .vision import VisionEncoder

__all__ = [
    "CLIP_POOLINGS",
    "MODALITIES",
    "TEXT_POOLINGS",
    "VISION_POOLINGS",
    "CallableEncoder",
    "ClipTowerEncoder",
    "EmbeddingPlan",
    "Encoder",
    "EncoderRef",
    "TextEncoder",
    "VisionEncoder",
    "check_inputs",
    "embed_dataset",
    "embed_inputs",
    "load_encoder",
    "parse_pooling",
    "pool_tokens",
    "read_sentence_transformers_config",
]
