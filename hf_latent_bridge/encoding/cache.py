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
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import OutputError
from .base import EmbeddingPlan, Encoder
from .fingerprints import inputs_fingerprint

logger = logging.getLogger(__name__)

#: Recorded in every cache file; a change of format makes old files misses instead of wrong answers.
CACHE_FORMAT = "hf_latent_bridge.embeddings/2"
_TENSOR = "embeddings"


def cache_path(cache_dir: str | os.PathLike, encoder: Encoder, plan: EmbeddingPlan) -> Path:
    """The file that holds (or will hold) ``encoder``'s embeddings of ``plan``; checks ``cache_dir`` first."""
    folder = Path(cache_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot use {folder} as the embedding cache ({error.strerror or error}); pass a writable "
            "cache_dir, or none to embed without caching."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"the embedding cache {folder} is not writable; pass a writable cache_dir, or none to embed "
            "without caching."
        )
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
            metadata = handle.metadata() or {}
            embeddings = handle.get_tensor(_TENSOR) if _TENSOR in list(handle.keys()) else None
    except Exception as error:  # a truncated or foreign file: recompute and replace it
        logger.warning("ignoring unreadable embedding cache %s (%s)", path, error)
        return None
    if (
        metadata.get("format") != CACHE_FORMAT
        or embeddings is None
        or embeddings.dtype != torch.float32
        or tuple(embeddings.shape) != (n, dim)
        or not bool(torch.isfinite(embeddings).all())
    ):
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
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        os.close(handle)
        save_file({_TENSOR: embeddings.contiguous()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as error:
        logger.warning("could not write the embedding cache %s: %s", path, error)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
