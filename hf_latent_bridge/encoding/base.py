"""The :class:`Encoder` interface: a batch of inputs in, a ``(n, dim)`` float32 tensor out.

An encoder plans its own work (:meth:`Encoder.plan`): it prepares the inputs once (texts are tokenised)
and cuts them into batches by its own cost measure (token counts for text models, equal-sized batches for
images). :meth:`Encoder.embed` runs those batches in one process; :func:`~hf_latent_bridge.encoding.embed_inputs`
runs the very same batches sharded over processes and caches the result, so both give the same bits.
All per-call state lives in the plan, never on the encoder: one encoder may serve several threads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..core.options import check_positive_int
from ..errors import IncompatibleEncoderError
from .fingerprints import _source_fingerprint
from .inputs import check_inputs
from .reference import EncoderRef
from .sharding import balanced_chunks, fixed_chunks

#: Inputs above this count get a progress bar when ``show_progress`` is left to ``None``.
PROGRESS_THRESHOLD = 2048


_CACHE_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class EmbeddingPlan:
    """One call's work: the checked inputs, what the encoder prepared from them, and the batches.

    Attributes:
        items: the inputs, checked for the encoder's modality (indexable, in the caller's order).
        prepared: what the encoder's batches read (token ids for text models; ``items`` otherwise).
        batches: index tensors that partition ``range(len(items))``; each is one forward pass.
    """

    items: Any
    prepared: Any
    batches: tuple[torch.Tensor, ...]

    def __len__(self) -> int:
        return len(self.items)


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` as an ``int`` (Python, numpy or torch integers), or raise naming the fix."""
    return check_positive_int("batch_size", batch_size)


class Encoder:
    """Turns a batch of inputs into a ``(n, dim)`` float32 CPU tensor.

    Attributes:
        ref: where the encoder comes from (id, revision, pooling, modality, dim), recorded in bridges.
        dim: embedding size.
        modality: ``"text"`` or ``"image"``.

    Subclasses implement ``_embed_batch(prepared, rows)`` and may override ``_prepare(items)`` (work done
    once per call, e.g. tokenising) and ``_costs(items, prepared)`` (per-input cost used to balance the
    batches; ``None`` for equal-sized batches in input order).
    """

    ref: EncoderRef
    dim: int
    modality: str
    #: Where the weights were loaded from (a folder or Hub id); ``ref`` is the portable name recorded.
    location: str | None = None

    def plan(self, inputs: Sequence[Any], batch_size: int = 32) -> EmbeddingPlan:
        """Check ``inputs``, prepare them once and cut them into batches of at most ``batch_size``.

        With a cost measure (token counts for text models), inputs are sorted by cost and the batches
        are balanced: none costs more than ``batch_size`` inputs of mean cost, so long inputs travel in
        smaller batches and short ones pad little. The plan depends only on the inputs, the encoder
        and ``batch_size``.
        """
        batch_size = check_batch_size(batch_size)
        items = self.check_inputs(inputs)
        prepared = self._prepare(items)
        costs = self._costs(items, prepared)
        batches = (
            fixed_chunks(len(items), batch_size) if costs is None else balanced_chunks(costs, batch_size)
        )
        return EmbeddingPlan(items, prepared, tuple(batches))

    def batches(self, inputs: Sequence[Any], batch_size: int = 32) -> list[torch.Tensor]:
        """The row indices of each forward pass :meth:`embed` would make (see :meth:`plan`)."""
        return list(self.plan(inputs, batch_size).batches)

    def embed_batch(self, plan: EmbeddingPlan, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Embed the inputs ``rows`` of ``plan`` in one forward pass: ``(len(rows), dim)`` float32 on CPU."""
        rows = [int(i) for i in rows]
        with torch.inference_mode():
            batch = self._embed_batch(plan.prepared, rows)
        batch = torch.as_tensor(batch)
        if batch.shape != (len(rows), self.dim):
            raise IncompatibleEncoderError(
                f"{self.ref.name_or_path} returned shape {tuple(batch.shape)} for a batch of "
                f"{len(rows)} inputs; expected ({len(rows)}, {self.dim}). Check the encoder's dim."
            )
        return batch.detach().to("cpu", torch.float32)

    def embed(
        self, inputs: Sequence[Any], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> torch.Tensor:
        """Embed ``inputs`` batch by batch (:meth:`plan`) under ``torch.inference_mode``.

        Rows follow the input order. Sharded over processes and cached on disk, the same batches run in
        :func:`~hf_latent_bridge.encoding.embed_inputs`, which returns the same bits.
        """
        plan = self.plan(inputs, batch_size)
        n = len(plan)
        out = torch.empty(n, self.dim, dtype=torch.float32)
        progress = n > PROGRESS_THRESHOLD if show_progress is None else show_progress
        with tqdm(total=n, disable=not progress, desc="embedding", unit="input") as bar:
            for rows in plan.batches:
                out[rows] = self.embed_batch(plan, rows)
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
    def _embed_batch(self, prepared: Any, rows: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, items: Any) -> Any:
        return items

    def _costs(self, items: Any, prepared: Any) -> Sequence[int] | None:
        return None

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
