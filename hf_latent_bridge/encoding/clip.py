"""One tower (text or image) of a CLIP-style dual encoder."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import BridgeInputError, IncompatibleEncoderError
from .base import _ModelEncoder
from .inputs import MODALITIES, _load_images, _to_rgb_arrays
from .pooling import CLIP_POOLINGS, _finish, parse_pooling
from .reference import EncoderRef
from .tokens import pad_batch, tokenize


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

    def _prepare(self, items: Any) -> Any:
        return tokenize(self.tokenizer, items, self.max_length) if self.tower == "text" else items

    def _costs(self, items: Any, prepared: Any) -> list[int] | None:
        return prepared.lengths if self.tower == "text" else None

    def _embed_batch(self, prepared: Any, rows: list[int]) -> torch.Tensor:
        device = self.device
        if self.tower == "text":
            batch = pad_batch(prepared, rows, self.tokenizer)
            kwargs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}
            if self.pool_mode == "projection":
                out = self.model.get_text_features(**kwargs)
            else:
                out = self.model.text_model(**kwargs, return_dict=True)
        else:
            images = _to_rgb_arrays(_load_images([prepared[i] for i in rows]))
            pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
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
