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
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..core.options import check
from ..errors import IncompatibleEncoderError
from .inputs import check_inputs
from .reference import EncoderRef
from .sharding import balanced_chunks, fixed_chunks

#: Inputs above this count get a progress bar when ``show_progress`` is left to ``None``.
PROGRESS_THRESHOLD = 2048


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
    #: Where the weights were loaded from (a folder or Hub id; ``None`` for a model built in memory, whose
    #: weights the cache key then hashes); ``ref`` is the portable name recorded.
    location: str | None = None

    def plan(self, inputs: Sequence[Any], batch_size: int = 32) -> EmbeddingPlan:
        """Check ``inputs``, prepare them once and cut them into batches of at most ``batch_size``.

        With a cost measure (token counts for text models), inputs are sorted by cost and the batches
        are balanced: none costs more than ``batch_size`` inputs of mean cost, so long inputs travel in
        smaller batches and short ones pad little. The plan depends only on the inputs, the encoder
        and ``batch_size``.
        """
        batch_size = check("batch_size", batch_size)
        items = self.check_inputs(inputs)
        prepared = self._prepare(items)
        costs = self._costs(items, prepared)
        batches = (
            fixed_chunks(len(items), batch_size) if costs is None else balanced_chunks(costs, batch_size)
        )
        return EmbeddingPlan(items, prepared, tuple(batches))

    def batches(self, inputs: Sequence[Any], batch_size: int = 32) -> list[torch.Tensor]:
        """The row indices of each forward pass :meth:`embed` makes."""
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
        """Embed ``inputs`` batch by batch (:meth:`plan`) under ``torch.inference_mode``, rows in input order."""
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
        payload = {"class": type(self).__name__, **self._key_payload()}
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
        """Move the underlying torch module (``model`` or ``fn``, if any); returns ``self``."""
        module = getattr(self, "model", getattr(self, "fn", None))
        if isinstance(module, torch.nn.Module) and (device is not None or dtype is not None):
            module.to(device=device, dtype=dtype)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.ref.name_or_path!r}, pooling={self.ref.pooling!r}, dim={self.dim})"
        )


class _ModelEncoder(Encoder):
    """Shared parts of encoders backed by a transformers model."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def float_dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _key_payload(self) -> dict[str, Any]:
        # a model not loaded by load_encoder may hold weights of its own: hash them
        weights = (
            state_fingerprint(self.model)
            if self.location is None
            else source_fingerprint(self.location, self.ref.revision)
        )
        return {"ref": self.ref.to_dict(), "weights": weights, "dtype": str(self.float_dtype)}


def model_name(model: torch.nn.Module, name_or_path: str | None) -> str:
    """``name_or_path``, else the name the model was loaded by, else its class name."""
    return name_or_path or getattr(model.config, "_name_or_path", "") or type(model).__name__


def source_fingerprint(name: str, revision: str | None) -> str:
    """Identify a model's weights: the revision for Hub ids, file names/sizes/mtimes for local folders."""
    local = Path(name)
    if not local.is_dir():
        return f"hub:{name}@{revision or 'main'}"
    digest = hashlib.sha256()
    for path in sorted(local.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            digest.update(f"{path.relative_to(local)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "dir:" + digest.hexdigest()[:24]


def state_fingerprint(module: torch.nn.Module) -> str:
    """Hash of a module's weights and buffers (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(data.shape)}:{data.dtype};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:24]
