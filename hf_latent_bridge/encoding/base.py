"""The :class:`Encoder` interface: a batch of inputs in, a ``(n, dim)`` float32 tensor out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import BridgeInputError, IncompatibleEncoderError
from .fingerprints import _source_fingerprint
from .inputs import check_inputs
from .reference import EncoderRef

#: Inputs above this count get a progress bar when ``show_progress`` is left to ``None``.
PROGRESS_THRESHOLD = 2048


_CACHE_FORMAT_VERSION = 1


class Encoder:
    """Turns a batch of inputs into a ``(n, dim)`` float32 CPU tensor.

    Attributes:
        ref: where the encoder comes from (id, revision, pooling, modality, dim), recorded in bridges.
        dim: embedding size.
        modality: ``"text"`` or ``"image"``.
    """

    ref: EncoderRef
    dim: int
    modality: str
    #: Where the weights were loaded from (a folder or Hub id); ``ref`` is the portable name recorded.
    location: str | None = None

    def embed(
        self, inputs: Sequence[Any], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> torch.Tensor:
        """Embed ``inputs`` in batches under ``torch.inference_mode``; rows follow the input order."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise BridgeInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
        items = self.check_inputs(inputs)
        n = len(items)
        out = torch.empty(n, self.dim, dtype=torch.float32)
        order = self._order(items)
        progress = n > PROGRESS_THRESHOLD if show_progress is None else show_progress
        with (
            torch.inference_mode(),
            tqdm(total=n, disable=not progress, desc="embedding", unit="input") as bar,
        ):
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                batch = self._embed_batch(items, rows)
                if batch.shape != (len(rows), self.dim):
                    raise IncompatibleEncoderError(
                        f"{self.ref.name_or_path} returned shape {tuple(batch.shape)} for a batch of "
                        f"{len(rows)} inputs; expected ({len(rows)}, {self.dim}). Check the encoder's dim."
                    )
                out[torch.as_tensor(rows)] = batch.detach().float().cpu()
                bar.update(len(rows))
        return out

    def check_inputs(self, inputs: Any) -> Any:
        """Raise a clear error for an empty batch or inputs of the wrong modality."""
        return check_inputs(inputs, self.modality, f"encoder {self.ref.name_or_path!r}")

    @property
    def cache_key(self) -> str:
        """Hash of everything that determines the embeddings: id, revision, weights, pooling, preprocessing."""
        payload = {"class": type(self).__name__, "version": _CACHE_FORMAT_VERSION, **self._key_payload()}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    # subclasses implement these
    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def _order(self, items: Any) -> list[int]:
        return list(range(len(items)))

    def _key_payload(self) -> dict[str, Any]:
        return {"ref": self.ref.to_dict()}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Encoder:
        """Move the underlying model (if any); returns ``self``."""
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.ref.name_or_path!r}, pooling={self.ref.pooling!r}, dim={self.dim})"
        )


class _ModelEncoder(Encoder):
    """Shared parts of encoders backed by a transformers model."""

    model: torch.nn.Module

    @property
    def location(self) -> str:
        return self.__dict__.get("location") or self.ref.name_or_path

    @location.setter
    def location(self, value: str) -> None:
        self.__dict__["location"] = value

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Encoder:
        if device is not None or dtype is not None:
            self.model.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def float_dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _key_payload(self) -> dict[str, Any]:
        return {
            "ref": self.ref.to_dict(),
            "weights": _source_fingerprint(self.location, self.ref.revision),
            "dtype": str(self.float_dtype),
        }
