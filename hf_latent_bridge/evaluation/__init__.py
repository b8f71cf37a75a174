"""Judging bridges: the N x N stitching matrix, accuracy against the number of anchors, and plots.

The metrics themselves are pure functions in :mod:`hf_latent_bridge.core.metrics`; embedding and
sharding live in :mod:`hf_latent_bridge.encoding`.
"""

from __future__ import annotations

from ..core.metrics import METRICS, accuracy, aggregate_outcomes, cell_metrics, macro_f1, row_outcomes
from ..encoding.embed import embed_inputs
from ..encoding.sharding import fixed_chunks, sharded_map, text_chunks
from .curve import anchor_curve, default_anchor_counts, dimension_anchor_counts
from .heads import default_head_factory, head_predict
from .matrix import DEFAULT_METHODS, MATRIX_METHODS, NATIVE, RELATIVE, StitchingMatrix, stitching_matrix
from .relative import RelativeHead
from .run import evaluate_encoders
from .scale_check import check_head

__all__ = [
    "DEFAULT_METHODS",
    "MATRIX_METHODS",
    "METRICS",
    "NATIVE",
    "RELATIVE",
    "RelativeHead",
    "StitchingMatrix",
    "accuracy",
    "aggregate_outcomes",
    "anchor_curve",
    "cell_metrics",
    "check_head",
    "default_anchor_counts",
    "default_head_factory",
    "dimension_anchor_counts",
    "embed_inputs",
    "evaluate_encoders",
    "fixed_chunks",
    "head_predict",
    "macro_f1",
    "row_outcomes",
    "sharded_map",
    "stitching_matrix",
    "text_chunks",
]
