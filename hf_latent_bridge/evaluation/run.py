"""Evaluating encoders end to end: embed each split once per encoder, then the stitching matrix."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..encoding.embed import embed_inputs
from ..errors import BridgeInputError
from .matrix import StitchingMatrix, stitching_matrix

if TYPE_CHECKING:
    from accelerate import Accelerator


def evaluate_encoders(
    encoders: Mapping[str, Any],
    train_inputs: Sequence[Any],
    test_inputs: Sequence[Any],
    train_labels: Any,
    test_labels: Any,
    *,
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    accelerator: Accelerator | None = None,
    show_progress: bool | None = None,
    **matrix_options: Any,
) -> tuple[StitchingMatrix, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Embed both splits once per encoder (sharded, cached) and compute the :func:`stitching_matrix`.

    Returns the matrix and the train / test embeddings by encoder name (for curves or further use).
    The seconds spent embedding each encoder are recorded in ``matrix.extra["embedding_seconds"]``.
    """
    if len(encoders) < 2:
        raise BridgeInputError(f"a stitching matrix needs at least 2 encoders, got {len(encoders)}.")
    train: dict[str, torch.Tensor] = {}
    test: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        for split, inputs, store in (("train", train_inputs, train), ("test", test_inputs, test)):
            store[name] = embed_inputs(
                encoder,
                inputs,
                batch_size=batch_size,
                accelerator=accelerator,
                cache_dir=cache_dir,
                desc=f"embedding {split} with {name}",
                show_progress=show_progress,
            )
        seconds[name] = round(time.perf_counter() - started, 3)
    matrix = stitching_matrix(
        train,
        test,
        train_labels,
        test_labels,
        encoders=encoders,
        accelerator=accelerator,
        show_progress=show_progress,
        **matrix_options,
    )
    matrix.extra["embedding_seconds"] = seconds
    return matrix, train, test
