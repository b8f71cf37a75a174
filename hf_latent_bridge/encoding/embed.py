"""The one way to embed a collection: the encoder's own batches, sharded over processes, cached on disk;
the same bits as :meth:`Encoder.embed <hf_latent_bridge.encoding.Encoder.embed>` in one process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..errors import BridgeInputError
from .base import Encoder
from .cache import cache_path, read_cached, write_cached
from .sharding import _is_distributed, _is_main, sharded_map
from .tables import column_values, require_columns

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator


def embed_inputs(
    encoder: Encoder,
    inputs: Sequence[Any],
    *,
    batch_size: int = 32,
    accelerator: Accelerator | None = None,
    cache_dir: str | os.PathLike | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Embed ``inputs`` with ``encoder`` in its own batches, sharded over processes and cached.

    The batches are the encoder's :meth:`~hf_latent_bridge.encoding.Encoder.plan`, which does not depend
    on the number of processes: with a distributed ``accelerator`` each process embeds its share and every
    process gets the whole ``(n, dim)`` result, bit for bit what :meth:`Encoder.embed` returns. With
    ``cache_dir``, the result is stored there (see :mod:`.cache`); a later call with the same encoder,
    inputs and ``batch_size`` reads it back without running the model.
    """
    if not isinstance(encoder, Encoder):
        raise BridgeInputError(
            f"encoder must be an hf_latent_bridge Encoder, got {type(encoder).__name__}; load one with "
            "load_encoder(...) or wrap a function or torch module in CallableEncoder(...)."
        )
    plan = encoder.plan(inputs, batch_size)
    path = cache_path(cache_dir, encoder, plan) if cache_dir is not None else None
    if path is not None:
        cached = read_cached(path, len(plan), encoder.dim)
        if _all_processes(accelerator, cached is not None):
            return cached  # type: ignore[return-value]

    result, _ = sharded_map(
        lambda rows: encoder.embed_batch(plan, rows),
        plan.batches,
        accelerator=accelerator,
        desc=desc or f"embedding with {encoder.ref.name_or_path}",
        show_progress=show_progress,
    )
    if path is not None:
        if _is_main(accelerator):
            about = {"encoder": encoder.ref.name_or_path, "cache_key": encoder.cache_key}
            write_cached(path, result, about)
        if _is_distributed(accelerator):
            accelerator.wait_for_everyone()  # type: ignore[union-attr]
    return result


def _all_processes(accelerator: Accelerator | None, flag: bool) -> bool:
    """``flag`` if it holds on every process (so that all of them take the same branch)."""
    if not _is_distributed(accelerator):
        return flag
    votes = accelerator.gather(torch.tensor([int(flag)], device=accelerator.device))  # type: ignore[union-attr]
    return bool(votes.min())


def embed_dataset(
    encoder: Encoder,
    dataset: datasets.Dataset,
    column: str,
    *,
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Embed ``dataset[column]`` to ``(n, dim)``: :func:`embed_inputs` on the column's values, cached.

    The cache lives in ``cache_dir``, by default ``<HF_DATASETS_CACHE>/hf_latent_bridge_embeddings``
    (``HF_DATASETS_CACHE`` is ``~/.cache/huggingface/datasets`` unless ``HF_HOME`` or ``HF_DATASETS_CACHE``
    say otherwise); a second call over the same values with the same encoder and ``batch_size`` runs no
    model. Array features are read as one numpy array, ``Image`` features as PIL images.
    """
    import datasets as ds_lib

    if not isinstance(dataset, ds_lib.Dataset):
        raise BridgeInputError(
            f"dataset must be a datasets.Dataset, got {type(dataset).__name__}; pass one split (e.g. "
            "dataset['train']), or call embed_inputs on a list of inputs."
        )
    require_columns(dataset, column)
    if cache_dir is None:
        cache_dir = os.path.join(ds_lib.config.HF_DATASETS_CACHE, "hf_latent_bridge_embeddings")
    return embed_inputs(
        encoder,
        column_values(dataset, column),
        batch_size=batch_size,
        cache_dir=cache_dir,
        desc=f"embedding {column}",
        show_progress=show_progress,
    )
