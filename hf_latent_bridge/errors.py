"""The exceptions the package raises on purpose; each is a builtin a caller would already catch.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class BridgeInputError(ValueError):
    """A value given to the package is unusable: embeddings (shape, NaN), an option, data, an argument."""


class IncompatibleEncoderError(BridgeInputError):
    """Parts that do not belong together: an encoder, head or anchor space a bridge was not built for."""


class CheckpointError(OSError):
    """A saved artifact or an encoder cannot be loaded: missing, corrupt, foreign or not cached offline."""


class OutputExistsError(FileExistsError):
    """A write would replace a file or folder of the user's; pass ``overwrite`` to allow it."""
