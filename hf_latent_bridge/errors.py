"""Exceptions raised by hf_latent_bridge.

Every error subclasses ``ValueError`` so callers that guard on the standard type keep working, and
every message says what was wrong and how to fix it.
"""

from __future__ import annotations


class BridgeInputError(ValueError):
    """Embeddings or options given to a bridge are unusable (shape, dtype, NaN, too few anchors...)."""


class CheckpointError(ValueError):
    """A saved bridge or anchor space is corrupt, foreign, or disagrees with its own config."""


class IncompatibleEncoderError(ValueError):
    """An encoder, head or anchor space does not match what a bridge was built for."""
