"""One tower (text or image) of a CLIP-style dual encoder."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import BridgeInputError, IncompatibleEncoderError
from .base import _ModelEncoder, model_name
from .inputs import MODALITIES
from .pooling import CLIP_POOLINGS, _finish, parse_pooling
from .reference import EncoderRef
from .text import pad_batch, token_limit, tokenize
from .vision import pixel_values


class ClipTowerEncoder(_ModelEncoder):
    """One tower of a CLIP-style dual encoder: ``"projection"`` (``get_*_features``) or ``"pooler"``."""

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
        needs = "tokenizer" if tower == "text" else "image_processor"
        if {"tokenizer": tokenizer, "image_processor": image_processor}[needs] is None:
            raise IncompatibleEncoderError(f"the {tower} tower needs a {needs}; save one with the model.")
        self.pool_mode, self.normalize = parse_pooling(pooling, CLIP_POOLINGS)
        self.model = model.eval()
        self.tower = self.modality = tower
        self.tokenizer, self.image_processor = tokenizer, image_processor
        config = model.config
        sub = config.text_config if tower == "text" else config.vision_config
        self.dim = int(config.projection_dim if self.pool_mode == "projection" else sub.hidden_size)
        self.ref = EncoderRef(model_name(model, name_or_path), revision, pooling, tower, self.dim)
        if tower == "text":
            self.max_length = token_limit(tokenizer, config.text_config.max_position_embeddings)

    def _prepare(self, items: Any) -> Any:
        return tokenize(self.tokenizer, items, self.max_length) if self.tower == "text" else items

    def _costs(self, items: Any, prepared: Any) -> list[int] | None:
        return prepared.lengths if self.tower == "text" else None

    def _embed_batch(self, prepared: Any, rows: list[int]) -> torch.Tensor:
        projection = self.pool_mode == "projection"
        if self.tower == "text":
            batch = pad_batch(prepared, rows, self.tokenizer)
            inputs = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask")}
            out = self.model.get_text_features(**inputs) if projection else self.model.text_model(**inputs)
        else:
            pixels = pixel_values(self, prepared, rows)
            out = (
                self.model.get_image_features(pixel_values=pixels)
                if projection
                else self.model.vision_model(pixel_values=pixels)
            )
        return _finish(out if isinstance(out, torch.Tensor) else out.pooler_output, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        if self.tower == "image":
            return {
                **super()._key_payload(),
                "tower": "image",
                "processor": getattr(self.image_processor, "to_dict", dict)(),
            }
        return {**super()._key_payload(), "tower": "text", "max_length": self.max_length}
