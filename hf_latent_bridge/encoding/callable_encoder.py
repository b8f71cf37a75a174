"""Any callable or torch module as an encoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..core.options import check
from ..errors import BridgeInputError
from .base import Encoder, state_fingerprint
from .inputs import MODALITIES, load_images
from .reference import EncoderRef


class CallableEncoder(Encoder):
    """Wrap any callable or ``torch.nn.Module`` mapping a (preprocessed) batch to a ``(n, d)`` tensor.

    Args:
        fn: the encoder. It receives ``preprocess(batch)`` (or the raw list of inputs without
            ``preprocess``; image paths are opened as RGB PIL images) and returns a tensor or array of
            shape ``(len(batch), dim)``.
        name: identifier recorded in bridges (a Hub id, package name...).
        modality: ``"text"`` or ``"image"``.
        dim: embedding size; read from ``fn.hidden_size`` when omitted.
        preprocess: turns a list of raw inputs into what ``fn`` takes (e.g. a pixel tensor).
        revision / pooling: recorded in :attr:`ref` and the cache key.
        key: extra text folded into :attr:`cache_key` (e.g. the preprocessing settings).

    Texts are batched by character count (longer texts in smaller batches); images in input order. A
    module's weights are part of the cache key; a function is known by its qualified name only.
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
        dim = getattr(fn, "hidden_size", None) if dim is None else dim
        self.dim = check("dim", dim, f"the embedding size of {name!r} (pass dim=)")
        self.fn, self.preprocess, self.modality, self.key = fn, preprocess, modality, key
        self.ref = EncoderRef(name, revision, pooling, modality, self.dim)
        if isinstance(fn, torch.nn.Module):
            fn.eval()

    def _costs(self, items: Any, prepared: Any) -> list[int] | None:
        # without a tokenizer, a text's length in characters stands for its cost
        return [len(t) for t in items] if self.modality == "text" else None

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        if isinstance(items, (np.ndarray, torch.Tensor)):  # a stacked batch of images
            batch: Any = items[rows]
        else:
            batch = [items[i] for i in rows]
            batch = load_images(batch) if self.modality == "image" else batch
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        param = next(self.fn.parameters(), None) if isinstance(self.fn, torch.nn.Module) else None
        if param is not None and isinstance(batch, torch.Tensor):
            batch = batch.to(param.device, param.dtype if batch.is_floating_point() else batch.dtype)
        out = self.fn(batch)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    def _key_payload(self) -> dict[str, Any]:
        payload = {"ref": self.ref.to_dict(), "fn": _qualified_name(self.fn), "key": self.key}
        if isinstance(self.fn, torch.nn.Module):
            payload["weights"] = state_fingerprint(self.fn)
        return {**payload, "preprocess": _qualified_name(self.preprocess)}


def _qualified_name(f: Any) -> str | None:
    if f is None:
        return None
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', type(f).__qualname__)}"
