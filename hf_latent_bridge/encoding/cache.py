"""The embedding cache: one safetensors file per (encoder, inputs, batch plan), written atomically.

A file's name is a hash of the encoder's :attr:`~hf_latent_bridge.encoding.Encoder.cache_key`, the
inputs' content and the batches of the plan, so a hit returns exactly the bits a fresh run would. A file
that cannot be read or does not match (truncated, foreign, wrong shape, non-finite) counts as a miss and
is replaced by the next write.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import staged_file
from .base import EmbeddingPlan, Encoder

logger = logging.getLogger(__name__)

#: Recorded in every cache file; a change of format makes old files misses instead of wrong answers.
CACHE_FORMAT = "hf_latent_bridge.embeddings/2"
_TENSOR = "embeddings"


def cache_path(cache_dir: str | os.PathLike, encoder: Encoder, plan: EmbeddingPlan) -> Path:
    """The file that holds (or will hold) ``encoder``'s embeddings of ``plan``."""
    folder = Path(cache_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{CACHE_FORMAT};{encoder.cache_key};".encode())
    digest.update(inputs_fingerprint(plan.items, encoder.modality).encode())
    for rows in plan.batches:
        digest.update(f";{rows.numel()}:".encode())
        digest.update(rows.to(torch.int64).contiguous().numpy().tobytes())
    return folder / f"embeddings-{digest.hexdigest()[:32]}.safetensors"


def read_cached(path: Path, n: int, dim: int) -> torch.Tensor | None:
    """The ``(n, dim)`` embeddings stored at ``path``, or ``None`` when absent or unusable."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            ours = (handle.metadata() or {}).get("format") == CACHE_FORMAT and _TENSOR in list(handle.keys())
            embeddings = handle.get_tensor(_TENSOR) if ours else None
    except Exception as error:  # a truncated or foreign file: recompute and replace it
        logger.warning("ignoring unreadable embedding cache %s (%s)", path, error)
        return None
    if embeddings is None or embeddings.dtype != torch.float32 or tuple(embeddings.shape) != (n, dim):
        embeddings = None
    if embeddings is None or not bool(torch.isfinite(embeddings).all()):
        logger.warning("ignoring embedding cache %s: not (%d, %d) finite float32 embeddings", path, n, dim)
        return None
    logger.info("embeddings read from cache %s", path)
    return embeddings


def write_cached(path: Path, embeddings: torch.Tensor, about: dict[str, Any]) -> None:
    """Store ``embeddings`` at ``path`` through a temporary sibling and a rename.

    A failed write (disk full...) leaves no debris and is logged, not raised: the embeddings are still
    returned to the caller, and the next run computes them again.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    metadata = {"format": CACHE_FORMAT, **{k: str(v) for k, v in about.items()}}
    try:
        with staged_file(path, overwrite=True) as staging:
            save_file({_TENSOR: embeddings.contiguous()}, str(staging), metadata=metadata)
    except (OSError, SafetensorError) as error:
        logger.warning("could not write the embedding cache %s: %s", path, error)


def inputs_fingerprint(items: Any, modality: str) -> str:
    """Hash of a batch of inputs' content, for the embedding cache.

    Texts and arrays are hashed whole (dtype and shape included), PIL images by mode and pixels, image
    files by resolved path, size and modification time.
    """
    digest = hashlib.sha256(f"{modality};".encode())
    if isinstance(items, (np.ndarray, torch.Tensor)):
        _update_array(digest, items)
        return digest.hexdigest()[:32]
    digest.update(f"{len(items)} items;".encode())
    for x in items:
        if isinstance(x, (str, os.PathLike)) and modality == "image":
            path = Path(x).resolve()
            stat = path.stat()
            x = f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"
        if isinstance(x, str):
            data = x.encode("utf-8", "surrogatepass")
            digest.update(f"s{len(data)}:".encode() + data)
        elif isinstance(x, (np.ndarray, torch.Tensor)):
            _update_array(digest, x)
        else:  # a PIL image
            palette = x.getpalette() if x.mode == "P" else None
            digest.update(f"pil:{x.mode}:{palette};".encode())
            _update_array(digest, np.asarray(x))
    return digest.hexdigest()[:32]


def _update_array(digest: Any, array: np.ndarray | torch.Tensor) -> None:
    if isinstance(array, torch.Tensor):  # as bytes: numpy has no bfloat16
        tensor = array.detach().cpu().contiguous()
        digest.update(f"t{tensor.dtype}{tuple(tensor.shape)};".encode())
        array = tensor.reshape(-1).view(torch.uint8).numpy()
    array = np.ascontiguousarray(array)
    digest.update(f"a{array.dtype.str}{array.shape};".encode())
    digest.update(array.tobytes())
