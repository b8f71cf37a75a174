"""Any callable or torch module as an encoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError
from .base import Encoder
from .fingerprints import _state_fingerprint
from .inputs import MODALITIES, _load_images
from .reference import EncoderRef


class CallableEncoder(Encoder):
    """Wrap any callable or ``torch.nn.Module`` mapping a (preprocessed) batch to a ``(n, d)`` tensor.

    Args:
        fn: the encoder. It receives ``preprocess(batch)`` (or the raw list of inputs without
            ``preprocess``) and returns a tensor or array of shape ``(len(batch), dim)``.
        name: identifier recorded in bridges (a Hub id, package name...).
        modality: ``"text"`` or ``"image"``.
        dim: embedding size; read from ``fn.hidden_size`` when omitted.
        preprocess: turns a list of raw inputs into what ``fn`` takes (e.g. a pixel tensor).
        revision / pooling: recorded in :attr:`ref` and the cache key.
        key: extra text folded into :attr:`cache_key` (e.g. the preprocessing settings).

    Texts are batched by character count (longer texts in smaller batches); images in input order.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        name: str,
        modality: str,
        dim: int | None = None,
        preprocess: Callable[[Any], Any] | None = None,
        revision: str | None = None,
        pooling: str | None = None,
        key: str | None = None,
    ) -> None:
        if not callable(fn):
            raise BridgeInputError(
                f"fn must be callable (a function or torch module), got {type(fn).__name__}."
            )
        if modality not in MODALITIES:
            raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
        if not isinstance(name, str) or not name:
            raise BridgeInputError("CallableEncoder needs a non-empty name (e.g. the model's Hub id).")
        dim = dim if dim is not None else getattr(fn, "hidden_size", None)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise BridgeInputError(
                f"cannot tell the embedding size of {name!r}; pass dim= (a positive integer), got {dim!r}."
            )
        self.fn = fn
        self.preprocess = preprocess
        self.modality = modality
        self.dim = dim
        self.key = key
        self.ref = EncoderRef(name, revision, pooling, modality, dim)
        if isinstance(fn, torch.nn.Module):
            fn.eval()

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Encoder:
        if isinstance(self.fn, torch.nn.Module) and (device is not None or dtype is not None):
            self.fn.to(device=device, dtype=dtype)
        return self

    def _costs(self, items: Any, prepared: Any) -> list[int] | None:
        # without a tokenizer, a text's length in characters stands for its cost
        return [len(t) for t in items] if self.modality == "text" else None

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        if isinstance(items, (np.ndarray, torch.Tensor)):
            batch: Any = items[rows]
        else:
            batch = [items[i] for i in rows]
            if self.modality == "image":
                batch = _load_images(batch)
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        if isinstance(self.fn, torch.nn.Module) and isinstance(batch, torch.Tensor):
            param = next(self.fn.parameters(), None)
            if param is not None:
                batch = batch.to(param.device, param.dtype if batch.is_floating_point() else batch.dtype)
        out = self.fn(batch)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    def _key_payload(self) -> dict[str, Any]:
        def describe(f: Any) -> str | None:
            return (
                None
                if f is None
                else f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', type(f).__name__)}"
            )

        payload: dict[str, Any] = {
            "ref": self.ref.to_dict(),
            "fn": describe(self.fn)
            if not isinstance(self.fn, torch.nn.Module)
            else type(self.fn).__qualname__,
            "preprocess": describe(self.preprocess),
            "key": self.key,
        }
        if isinstance(self.fn, torch.nn.Module):
            payload["weights"] = _state_fingerprint(self.fn)
        return payload
