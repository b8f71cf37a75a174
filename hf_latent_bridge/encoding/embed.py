"""One way to embed inputs: sharded over processes, cached on disk as safetensors."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.anchor_set import fingerprint
from ..errors import BridgeInputError
from .base import _CACHE_FORMAT_VERSION, Encoder
from .sharding import _is_distributed, _is_main, fixed_chunks, sharded_map, text_chunks

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator

logger = logging.getLogger(__name__)


def _is_texts(inputs: Sequence[Any]) -> bool:
    return not isinstance(inputs, (np.ndarray, torch.Tensor)) and all(isinstance(x, str) for x in inputs)


def embedding_chunks(inputs: Sequence[Any], batch_size: int) -> list[torch.Tensor]:
    """The units of embedding work: cost-balanced length-sorted chunks for texts, fixed ones otherwise."""
    return text_chunks(inputs, batch_size) if _is_texts(inputs) else fixed_chunks(len(inputs), batch_size)


def _inputs_fingerprint(inputs: Sequence[Any]) -> str:
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        return fingerprint(inputs)
    if _is_texts(inputs):
        return fingerprint(list(inputs))
    return fingerprint([np.asarray(x) for x in inputs])


def embed_inputs(
    encoder: Any,
    inputs: Sequence[Any],
    *,
    batch_size: int = 32,
    accelerator: Accelerator | None = None,
    cache_dir: str | os.PathLike | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Embed ``inputs`` with ``encoder`` (an :class:`~hf_latent_bridge.encoders.Encoder`), sharded.

    Rows are cut into chunks (:func:`embedding_chunks`) that do not depend on the number of processes,
    so a distributed run returns exactly the single-process embeddings, on every process. With
    ``cache_dir`` the result is stored as safetensors under a key made of the encoder's ``cache_key``, a
    hash of the inputs and the chunking; a second call with the same encoder and inputs reads it back.
    """
    if batch_size < 1:
        raise BridgeInputError(f"batch_size must be at least 1, got {batch_size}.")
    chunks = embedding_chunks(inputs, batch_size)
    key = getattr(encoder, "cache_key", None)
    cache_file = None
    if cache_dir is not None and key:
        name = fingerprint([str(key), _inputs_fingerprint(inputs), [len(c) for c in chunks]])
        cache_file = Path(cache_dir) / f"embeddings-{name}.safetensors"
        if cache_file.is_file():
            from safetensors.torch import load_file

            logger.info("embeddings of %s read from cache %s", key, cache_file)
            return load_file(str(cache_file))["embeddings"]

    def embed_rows(rows: torch.Tensor) -> torch.Tensor:
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            batch: Any = inputs[rows.numpy()] if isinstance(inputs, np.ndarray) else inputs[rows]
        else:
            batch = [inputs[int(i)] for i in rows]
        out = encoder.embed(batch, batch_size=max(len(rows), 1), show_progress=False)
        return torch.as_tensor(out).detach().to("cpu", torch.float32)

    result, _ = sharded_map(
        embed_rows,
        chunks,
        accelerator=accelerator,
        desc=desc or f"embedding with {getattr(encoder, 'ref', encoder)!s:.60}",
        show_progress=show_progress,
    )
    if cache_file is not None:
        if _is_main(accelerator):
            from safetensors.torch import save_file

            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cache_file.parent, suffix=".tmp", delete=False) as handle:
                tmp = handle.name
            save_file({"embeddings": result.contiguous()}, tmp)
            os.replace(tmp, cache_file)
        if _is_distributed(accelerator):
            accelerator.wait_for_everyone()  # type: ignore[union-attr]
    return result


def embed_dataset(
    encoder: Encoder,
    dataset: datasets.Dataset,
    column: str,
    *,
    batch_size: int = 32,
    cache_dir: str | None = None,
) -> torch.Tensor:
    """Embed ``dataset[column]`` to ``(n, dim)``, cached on disk through ``datasets``.

    The cache file is named by a fingerprint of ``encoder.cache_key``, the dataset's fingerprint and the
    column, so a second run over the same data with the same encoder reads the file and runs no model.
    Without ``cache_dir`` the dataset's own cache folder is used, or, for in-memory datasets,
    ``<HF_DATASETS_CACHE>/hf_latent_bridge_embeddings``.
    """
    import datasets as ds_lib

    if column not in dataset.column_names:
        raise BridgeInputError(
            f"column {column!r} is not in the dataset (columns: {dataset.column_names}); pass the input column."
        )
    if len(dataset) == 0:
        raise BridgeInputError("the dataset is empty; pass at least one row.")
    fingerprint = hashlib.sha256(
        f"{encoder.cache_key}|{dataset._fingerprint}|{column}|{_CACHE_FORMAT_VERSION}".encode()
    ).hexdigest()[:32]
    if cache_dir is None:
        if dataset.cache_files:
            cache_dir = os.path.dirname(dataset.cache_files[0]["filename"])
        else:
            cache_dir = os.path.join(ds_lib.config.HF_DATASETS_CACHE, "hf_latent_bridge_embeddings")
    os.makedirs(cache_dir, exist_ok=True)
    cache_file = os.path.join(cache_dir, f"embeddings-{fingerprint}.arrow")
    features = ds_lib.Features({"embedding": ds_lib.List(ds_lib.Value("float32"), length=encoder.dim)})
    source = dataset.select_columns([column])
    if encoder.modality == "image":
        source = source.with_format("numpy")

    def embed_chunk(values: Any) -> dict[str, Any]:
        return {"embedding": encoder.embed(values, batch_size=batch_size, show_progress=False).numpy()}

    result = source.map(
        embed_chunk,
        batched=True,
        batch_size=max(batch_size * 32, 1024),
        input_columns=column,
        remove_columns=[column],
        features=features,
        new_fingerprint=fingerprint,
        cache_file_name=cache_file,
        desc=f"embedding {column}",
    )
    return torch.from_numpy(np.asarray(result.with_format("numpy")["embedding"], dtype=np.float32))
