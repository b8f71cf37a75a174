"""The ``hf-latent-bridge`` command line: one module per command, each parsing its options, calling
the library once and printing the result.
"""

from __future__ import annotations

from . import check_head, demo, evaluate, fit, migrate, predict, retrieval, stitch  # noqa: F401  (each module registers its command)
from .app import app

__all__ = ["app"]
