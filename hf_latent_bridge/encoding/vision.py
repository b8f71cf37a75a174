"""Image encoders: a transformers vision model with its image processor."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import IncompatibleEncoderError
from .base import _ModelEncoder
from .inputs import _load_images, _to_rgb_arrays
from .pooling import VISION_POOLINGS, _finish, parse_pooling, pool_tokens
from .reference import EncoderRef


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
