"""Encoders: turn raw inputs (texts, images) into embeddings, the same way every time.

One :class:`Encoder` interface covers transformers text models (:class:`TextEncoder`), vision models
(:class:`VisionEncoder`), one tower of a CLIP-style dual encoder (:class:`ClipTowerEncoder`) and any callable
or torch module (:class:`CallableEncoder`). :func:`load_encoder` picks the right one for a Hub id or folder
at a pinned revision; :func:`embed_dataset` embeds a ``datasets`` column with an on-disk cache keyed by
:attr:`Encoder.cache_key`.

Pooling is a string: ``"mean"``, ``"cls"``, ``"max"``, ``"pooler"`` (the model's pooled output) or, for
CLIP towers, ``"projection"`` (the projected features); ``"+norm"`` appended means L2-normalised
(e.g. ``"mean+norm"``, the recipe of sentence-transformers' all-MiniLM-L6-v2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import EncoderRef
from .errors import BridgeInputError, IncompatibleEncoderError

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

MODALITIES = ("text", "image")
TEXT_POOLINGS = ("mean", "cls", "max", "pooler")
VISION_POOLINGS = ("mean", "cls", "pooler")
CLIP_POOLINGS = ("projection", "pooler")
#: Inputs above this count get a progress bar when ``show_progress`` is left to ``None``.
PROGRESS_THRESHOLD = 2048
_CACHE_FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------- pooling
def parse_pooling(pooling: str, allowed: Sequence[str]) -> tuple[str, bool]:
    """Split ``"mean+norm"`` into ``("mean", True)``, refusing unknown modes."""
    if not isinstance(pooling, str):
        raise BridgeInputError(f"pooling must be a string such as 'mean' or 'mean+norm', got {pooling!r}.")
    base, _, suffix = pooling.partition("+")
    if base not in allowed or suffix not in ("", "norm"):
        options = ", ".join(f"'{p}'" for p in allowed)
        raise BridgeInputError(
            f"unknown pooling {pooling!r}; use one of {options}, optionally followed by '+norm' "
            "for L2-normalised embeddings."
        )
    return base, suffix == "norm"


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Pool ``(n, t, d)`` token states (or ``(n, d, h, w)`` feature maps) to ``(n, d)``."""
    if hidden.ndim == 4:  # convolutional feature maps
        return hidden.mean((2, 3)) if mode == "mean" else hidden.amax((2, 3))
    if mode == "cls":
        return hidden[:, 0]
    if mask is None:
        return hidden.mean(1) if mode == "mean" else hidden.amax(1)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)


def _finish(pooled: torch.Tensor, normalize: bool) -> torch.Tensor:
    pooled = pooled.float()
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


# ---------------------------------------------------------------------------------------------- inputs
def _is_image(x: Any) -> bool:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.ndim in (2, 3)
    return type(x).__module__.startswith("PIL.")


def check_inputs(inputs: Any, modality: str, name: str = "encoder") -> list[Any] | np.ndarray | torch.Tensor:
    """Validate a batch for ``modality`` before any compute; return it as an indexable sequence.

    Text: a string or a list of strings. Images: a PIL image, a path to an image file, a grey ``(h, w)``
    array, a list of those or of ``(h, w, c)`` arrays, or a stacked array ``(n, h, w[, c])`` (a 3-D array
    is read as ``n`` grey images; put a single colour image in a list).
    """
    if modality == "text":
        if isinstance(inputs, str):
            inputs = [inputs]
        elif isinstance(inputs, (np.ndarray, torch.Tensor)) or _is_image(inputs):
            raise IncompatibleEncoderError(
                f"{name} embeds text but got an image or array ({type(inputs).__name__}); pass strings, or "
                "use a bridge whose source encoder takes images."
            )
        inputs = list(inputs)
        if not inputs:
            raise BridgeInputError(f"{name} got an empty batch; pass at least one text.")
        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                kind = "an image" if _is_image(x) else type(x).__name__
                raise IncompatibleEncoderError(
                    f"{name} embeds text but input {i} is {kind}; pass strings, or use a bridge whose source "
                    "encoder takes that modality."
                )
        return inputs
    if modality != "image":
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        if inputs.ndim not in (2, 3, 4):
            raise BridgeInputError(
                f"{name} takes image arrays (n, h, w[, c]) or (h, w); got shape {tuple(inputs.shape)}."
            )
        if inputs.ndim == 2:  # one grey image
            return [inputs]
        if inputs.shape[0] == 0:
            raise BridgeInputError(f"{name} got an empty batch; pass at least one image.")
        return inputs  # a stack of images, one per row
    if isinstance(inputs, (str, os.PathLike)) or _is_image(inputs):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise BridgeInputError(f"{name} got an empty batch; pass at least one image.")
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            if not Path(x).is_file():
                raise IncompatibleEncoderError(
                    f"{name} embeds images but input {i} is a string that is not an image file "
                    f"({str(x)[:60]!r}); pass PIL images, arrays or image paths, or use a bridge whose "
                    "source encoder takes text."
                )
        elif not _is_image(x):
            raise IncompatibleEncoderError(
                f"{name} embeds images but input {i} is {type(x).__name__}; pass PIL images, (h, w[, c]) "
                "arrays or image file paths."
            )
    return inputs


def _load_images(batch: Sequence[Any]) -> list[Any]:
    """Open paths as RGB PIL images; arrays and PIL images pass through."""
    from PIL import Image

    out = []
    for x in batch:
        if isinstance(x, (str, os.PathLike)):
            with Image.open(x) as image:
                out.append(image.convert("RGB"))
        elif isinstance(x, torch.Tensor):
            out.append(x.cpu().numpy())
        else:
            out.append(x)
    return out


def _to_rgb_arrays(batch: Sequence[Any]) -> list[Any]:
    """Grey arrays ``(h, w)`` become ``(h, w, 3)`` so image processors accept them."""
    out = []
    for x in batch:
        if isinstance(x, np.ndarray) and x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=-1)
        if isinstance(x, np.ndarray) and x.dtype != np.uint8 and np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.uint8)
        out.append(x)
    return out


# ---------------------------------------------------------------------------------------------- base
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
            "weights": _source_fingerprint(self.ref.name_or_path, self.ref.revision),
            "dtype": str(self.float_dtype),
        }


# ---------------------------------------------------------------------------------------------- text
class TextEncoder(_ModelEncoder):
    """A transformers text model with a pooling recipe.

    Texts are tokenised once, sorted by token length so each batch pads little, embedded and put back
    in input order.
    """

    modality = "text"

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        pooling: str = "mean",
        max_length: int | None = None,
        name_or_path: str | None = None,
        revision: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pool_mode, self.normalize = parse_pooling(pooling, TEXT_POOLINGS)
        limit = getattr(tokenizer, "model_max_length", None)
        if max_length is None:
            max_length = limit if isinstance(limit, int) and limit < 100_000 else None
        positions = getattr(model.config, "max_position_embeddings", None)
        if max_length is None:
            max_length = positions or 512
        elif positions:  # a tokenizer may allow more tokens than the model has positions for
            max_length = min(max_length, positions)
        self.max_length = int(max_length)
        self.dim = int(model.config.hidden_size)
        name = name_or_path or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.ref = EncoderRef(name, revision, pooling, "text", self.dim)
        if self.pool_mode == "pooler" and getattr(model, "pooler", "absent") is None:
            raise IncompatibleEncoderError(
                f"{name} has no pooler layer, so pooling='pooler' is impossible; use 'mean' or 'cls'."
            )
        self._encoded: dict[str, Any] | None = None

    def embed(
        self, inputs: Sequence[Any], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> torch.Tensor:
        try:
            return super().embed(inputs, batch_size=batch_size, show_progress=show_progress)
        finally:
            self._encoded = None  # token ids of this call only

    def _order(self, items: list[str]) -> list[int]:
        enc = self.tokenizer(
            items, truncation=True, max_length=self.max_length, padding=False, return_attention_mask=False
        )
        self._encoded = {k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids")}
        lengths = [len(ids) for ids in self._encoded["input_ids"]]
        return sorted(range(len(items)), key=lambda i: -lengths[i])

    def _embed_batch(self, items: list[str], rows: list[int]) -> torch.Tensor:
        assert self._encoded is not None  # set by _order in the same embed call
        ids = [self._encoded["input_ids"][i] for i in rows]
        width = max(len(x) for x in ids)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        types = self._encoded.get("token_type_ids")
        token_type_ids = torch.zeros((len(rows), width), dtype=torch.long) if types is not None else None
        for j, seq in enumerate(ids):
            span = slice(width - len(seq), width) if left else slice(0, len(seq))
            input_ids[j, span] = torch.as_tensor(seq)
            mask[j, span] = 1
            if token_type_ids is not None:
                token_type_ids[j, span] = torch.as_tensor(types[rows[j]])
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        device = self.device
        out = self.model(**{k: v.to(device) for k, v in inputs.items()}, return_dict=True)
        if self.pool_mode == "pooler":
            pooled = out.pooler_output
        else:
            pooled = pool_tokens(out.last_hidden_state, mask.to(device), self.pool_mode)
        return _finish(pooled, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        return {**super()._key_payload(), "max_length": self.max_length}


# ---------------------------------------------------------------------------------------------- vision
class VisionEncoder(_ModelEncoder):
    """A transformers vision model with its image processor; pooled output or mean of tokens."""

    modality = "image"

    def __init__(
        self,
        model: torch.nn.Module,
        image_processor: Any,
        *,
        pooling: str = "pooler",
        name_or_path: str | None = None,
        revision: str | None = None,
        dim: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.image_processor = image_processor
        self.pool_mode, self.normalize = parse_pooling(pooling, VISION_POOLINGS)
        config = model.config
        sizes = getattr(config, "hidden_sizes", None)
        self.dim = int(dim or getattr(config, "hidden_size", None) or (sizes[-1] if sizes else 0))
        if self.dim <= 0:
            raise IncompatibleEncoderError(
                f"cannot tell the embedding size of {type(model).__name__}; pass dim= to the encoder."
            )
        name = name_or_path or getattr(config, "_name_or_path", "") or type(model).__name__
        self.ref = EncoderRef(name, revision, pooling, "image", self.dim)

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        batch = _to_rgb_arrays(_load_images([items[i] for i in rows]))
        pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
        out = self.model(pixel_values=pixels.to(self.device, self.float_dtype), return_dict=True)
        if self.pool_mode == "pooler":
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise IncompatibleEncoderError(
                    f"{self.ref.name_or_path} returns no pooled output; use pooling='mean' or 'cls'."
                )
            pooled = pooled.flatten(1)
        else:
            pooled = pool_tokens(out.last_hidden_state, None, self.pool_mode)
        return _finish(pooled, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        processor = self.image_processor.to_dict() if hasattr(self.image_processor, "to_dict") else {}
        return {**super()._key_payload(), "processor": processor}


# ---------------------------------------------------------------------------------------------- CLIP
class ClipTowerEncoder(_ModelEncoder):
    """One tower of a CLIP-style dual encoder: ``"projection"`` (get_*_features) or ``"pooler"``."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        tower: str,
        tokenizer: Any = None,
        image_processor: Any = None,
        pooling: str = "projection",
        name_or_path: str | None = None,
        revision: str | None = None,
    ) -> None:
        if tower not in MODALITIES:
            raise BridgeInputError(f"tower must be 'text' or 'image', got {tower!r}.")
        if tower == "text" and tokenizer is None:
            raise IncompatibleEncoderError("the text tower needs a tokenizer; save one with the model.")
        if tower == "image" and image_processor is None:
            raise IncompatibleEncoderError(
                "the image tower needs an image processor; save one with the model."
            )
        self.model = model.eval()
        self.tower = tower
        self.modality = tower
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.pool_mode, self.normalize = parse_pooling(pooling, CLIP_POOLINGS)
        config = model.config
        sub = config.text_config if tower == "text" else config.vision_config
        self.dim = int(config.projection_dim if self.pool_mode == "projection" else sub.hidden_size)
        name = name_or_path or getattr(config, "_name_or_path", "") or type(model).__name__
        self.ref = EncoderRef(name, revision, pooling, tower, self.dim)
        limit = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
        self.max_length = min(
            int(limit) if isinstance(limit, int) and limit < 100_000 else 10**9,
            int(config.text_config.max_position_embeddings),
        )

    def _order(self, items: Any) -> list[int]:
        if self.tower == "text":
            return sorted(range(len(items)), key=lambda i: -len(items[i]))
        return list(range(len(items)))

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        device = self.device
        if self.tower == "text":
            enc = self.tokenizer(
                [items[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            kwargs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask")}
            if self.pool_mode == "projection":
                out = self.model.get_text_features(**kwargs)
            else:
                out = self.model.text_model(**kwargs, return_dict=True)
        else:
            batch = _to_rgb_arrays(_load_images([items[i] for i in rows]))
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(device, self.float_dtype)
            if self.pool_mode == "projection":
                out = self.model.get_image_features(pixel_values=pixels)
            else:
                out = self.model.vision_model(pixel_values=pixels, return_dict=True)
        pooled = out if isinstance(out, torch.Tensor) else out.pooler_output
        return _finish(pooled, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"tower": self.tower}
        if self.tower == "image" and hasattr(self.image_processor, "to_dict"):
            extra["processor"] = self.image_processor.to_dict()
        else:
            extra["max_length"] = self.max_length
        return {**super()._key_payload(), **extra}


# ---------------------------------------------------------------------------------------------- callable
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


# ---------------------------------------------------------------------------------------------- loading
def load_encoder(
    name_or_path: str,
    *,
    revision: str | None = None,
    pooling: str | None = None,
    modality: str | None = None,
    tower: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> Encoder:
    """Load a Hub model id (at ``revision``) or a local folder as an :class:`Encoder`.

    * Text models (AutoModel + AutoTokenizer): pooling ``mean`` (default), ``cls``, ``max`` or ``pooler``.
      A sentence-transformers folder's own pooling, normalisation and ``max_seq_length`` are used
      unless ``pooling`` is given.
    * Vision models (AutoModel + AutoImageProcessor): ``pooler`` (default when the model has one) or
      ``mean`` / ``cls`` of the tokens.
    * CLIP-style dual encoders: ``tower="text"`` or ``"image"``; pooling ``projection`` (default) or
      ``pooler``.

    ``modality`` overrides the guess from the model config. Remote code runs only with
    ``trust_remote_code=True``.
    """
    from transformers import AutoConfig

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise BridgeInputError(f"name_or_path must be a Hub id or a folder, got {name_or_path!r}.")
    if modality is not None and modality not in MODALITIES:
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    name = str(name_or_path)
    hub = {"revision": revision, "trust_remote_code": trust_remote_code}
    config = AutoConfig.from_pretrained(name, **hub)
    is_dual = hasattr(config, "text_config") and hasattr(config, "vision_config")
    if is_dual:
        tower = tower or modality
        if tower not in MODALITIES:
            raise BridgeInputError(
                f"{name} is a dual (text and image) encoder; choose its tower with tower='text' or 'image'."
            )
        encoder = _load_clip(name, config, tower, pooling or "projection", hub)
    else:
        if tower is not None:
            raise BridgeInputError(f"tower= applies to CLIP-style dual encoders only; {name} has one tower.")
        guessed = "image" if _looks_visual(config) else "text"
        if modality is not None and modality != guessed:
            raise IncompatibleEncoderError(
                f"{name} embeds {guessed}, not {modality} (its config is a {type(config).__name__}); "
                "load an encoder of the right modality."
            )
        encoder = _load_vision(name, pooling, hub) if guessed == "image" else _load_text(name, pooling, hub)
    return encoder.to(device=device, dtype=dtype)


def _looks_visual(config: Any) -> bool:
    return getattr(config, "num_channels", None) is not None and getattr(config, "vocab_size", None) is None


def _load_text(name: str, pooling: str | None, hub: dict[str, Any]) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    st = read_sentence_transformers_config(name, hub.get("revision"))
    max_length = None
    if st is not None:
        max_length = st.get("max_seq_length")
        if pooling is None:
            pooling = st["pooling"]
    model = AutoModel.from_pretrained(name, **hub)
    tokenizer = AutoTokenizer.from_pretrained(name, **hub)
    return TextEncoder(
        model,
        tokenizer,
        pooling=pooling or "mean",
        max_length=max_length,
        name_or_path=name,
        revision=hub.get("revision"),
    )


def _load_vision(name: str, pooling: str | None, hub: dict[str, Any]) -> VisionEncoder:
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(name, **hub)
    processor = AutoImageProcessor.from_pretrained(name, **hub)
    if pooling is None:
        pooling = (
            "pooler" if getattr(model, "pooler", None) is not None or _has_pooled_output(model) else "mean"
        )
    return VisionEncoder(model, processor, pooling=pooling, name_or_path=name, revision=hub.get("revision"))


def _has_pooled_output(model: torch.nn.Module) -> bool:
    # Convolutional backbones (ResNet, ConvNeXt...) pool inside the model without a "pooler" attribute.
    return any(
        n in type(model).__name__ for n in ("ResNet", "ConvNext", "RegNet", "EfficientNet", "MobileNet")
    )


def _load_clip(name: str, config: Any, tower: str, pooling: str, hub: dict[str, Any]) -> ClipTowerEncoder:
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(name, **hub)
    tokenizer = AutoTokenizer.from_pretrained(name, **hub) if tower == "text" else None
    processor = AutoImageProcessor.from_pretrained(name, **hub) if tower == "image" else None
    return ClipTowerEncoder(
        model,
        tower=tower,
        tokenizer=tokenizer,
        image_processor=processor,
        pooling=pooling,
        name_or_path=name,
        revision=hub.get("revision"),
    )


def read_sentence_transformers_config(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """Read a sentence-transformers folder's recipe: ``{"pooling": "mean+norm", "max_seq_length": 256}``.

    Returns ``None`` when ``name`` has no ``modules.json``. Modules other than Transformer, Pooling and
    Normalize (e.g. Dense) cannot be reproduced here and raise :class:`IncompatibleEncoderError`.
    """
    modules_file = _optional_file(name, "modules.json", revision)
    if modules_file is None:
        return None
    modules = json.loads(Path(modules_file).read_text(encoding="utf-8"))
    pooling, normalize = None, False
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        if kind == "Transformer":
            continue
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            path = module.get("path", "")
            pooling_file = _optional_file(name, f"{path}/config.json" if path else "config.json", revision)
            if pooling_file is None:
                raise IncompatibleEncoderError(f"{name}: the Pooling module's {path}/config.json is missing.")
            pooling = _st_pooling_mode(json.loads(Path(pooling_file).read_text(encoding="utf-8")), name)
        else:
            raise IncompatibleEncoderError(
                f"{name} has a sentence-transformers module {module.get('type')!r} that this loader does not "
                "reproduce; wrap the SentenceTransformer in CallableEncoder(model.encode, ...) instead."
            )
    result: dict[str, Any] = {"pooling": (pooling or "mean") + ("+norm" if normalize else "")}
    st_file = _optional_file(name, "sentence_bert_config.json", revision)
    if st_file is not None:
        max_len = json.loads(Path(st_file).read_text(encoding="utf-8")).get("max_seq_length")
        if max_len:
            result["max_seq_length"] = int(max_len)
    return result


def _st_pooling_mode(config: dict[str, Any], name: str) -> str:
    if "pooling_mode" in config and isinstance(config["pooling_mode"], str):
        modes = [config["pooling_mode"]]
    else:
        modes = [
            k.removeprefix("pooling_mode_") for k, v in config.items() if k.startswith("pooling_mode_") and v
        ]
    mapping = {
        "mean_tokens": "mean",
        "mean": "mean",
        "cls_token": "cls",
        "cls": "cls",
        "max_tokens": "max",
        "max": "max",
    }
    if len(modes) != 1 or modes[0] not in mapping:
        raise IncompatibleEncoderError(
            f"{name} pools with {modes}; only one of mean, cls or max pooling is supported. Wrap the "
            "SentenceTransformer in CallableEncoder(model.encode, ...) instead."
        )
    return mapping[modes[0]]


def _optional_file(name: str, filename: str, revision: str | None) -> str | None:
    """Path of ``filename`` in a local folder or Hub repo (downloaded), or None when absent."""
    local = Path(name)
    if local.is_dir():
        path = local / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        return hf_hub_download(name, filename, revision=revision)
    except (EntryNotFoundError, RemoteEntryNotFoundError, LocalEntryNotFoundError):
        return None


# ---------------------------------------------------------------------------------------------- fingerprints
def _source_fingerprint(name: str, revision: str | None) -> str:
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


def _state_fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(data.shape)}:{data.dtype};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:24]


# ---------------------------------------------------------------------------------------------- datasets
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
