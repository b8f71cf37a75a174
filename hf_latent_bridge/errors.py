"""Every exception hf_latent_bridge raises on purpose.

All derive from :class:`LatentBridgeError`, a ``ValueError``, so callers that guard on the standard type
keep working; every message says what was wrong and how to fix it.
"""

from __future__ import annotations


class LatentBridgeError(ValueError):
    """Base class of the package's errors."""


class BridgeInputError(LatentBridgeError):
    """Embeddings or options given to a bridge are unusable (shape, dtype, NaN, too few anchors...)."""


class CheckpointError(LatentBridgeError):
    """A saved artifact is corrupt, foreign, or disagrees with its own config."""


class IncompatibleEncoderError(LatentBridgeError):
    """An encoder, head or anchor space does not match what a bridge was built for."""


class DataError(LatentBridgeError):
    """A data set or input file cannot be read, or lacks the columns, rows or labels needed."""


class OutputError(LatentBridgeError):
    """An output path cannot be written (exists and is not empty, is a file, or is not writable)."""


class MissingDependencyError(LatentBridgeError, ImportError):
    """An optional package (model weights, data set or helper library) is not installed."""


class UsageError(LatentBridgeError):
    """A command-line argument or option is missing, malformed or contradicts another."""


class EncoderLoadError(LatentBridgeError, OSError):
    """An encoder cannot be loaded: unknown Hub id or folder, revision, offline cache miss, missing files."""
