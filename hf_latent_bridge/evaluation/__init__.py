"""Judging bridges: the N x N stitching matrix, accuracy against the number of anchors, the relative
baseline, the scale check of heads, and plots. The metrics are pure functions in
:mod:`hf_latent_bridge.core.metrics`; embedding and sharding live in :mod:`hf_latent_bridge.encoding`.
"""

from __future__ import annotations

from .curve import anchor_curve, default_anchor_counts, dimension_anchor_counts
from .matrix import (
    DEFAULT_METHODS,
    MATRIX_METHODS,
    NATIVE,
    RELATIVE,
    StitchingMatrix,
    default_head_factory,
    evaluate_encoders,
    head_predict,
    stitching_matrix,
)
from .relative import RelativeHead
from .scale_report import scale_markdown, write_scale_reports

__all__ = [
    "DEFAULT_METHODS",
    "MATRIX_METHODS",
    "NATIVE",
    "RELATIVE",
    "RelativeHead",
    "StitchingMatrix",
    "anchor_curve",
    "default_anchor_counts",
    "default_head_factory",
    "dimension_anchor_counts",
    "evaluate_encoders",
    "head_predict",
    "scale_markdown",
    "stitching_matrix",
    "write_scale_reports",
]
