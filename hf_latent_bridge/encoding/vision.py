"""Image encoders: a transformers vision model with its image processor."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import IncompatibleEncoderError
from .base import _ModelEncoder, model_name
from .inputs import load_images
from .pooling import VISION_POOLINGS, _finish, parse_pooling, pool_tokens
from .reference import EncoderRef


def pixel_values(encoder: _ModelEncoder, items: Any, rows: list[int]) -> torch.Tensor:
    """The image processor's pixels of ``items[rows]``, on the model's device and in its dtype."""
    images = load_images([items[i] for i in rows], rgb=True)
    pixels = encoder.image_processor(images=images, return_tensors="pt")["pixel_values"]
    return pixels.to(encoder.device, encoder.float_dtype)


class VisionEncoder(_ModelEncoder):
    """A transformers vision model with its image processor; pooled output, or mean or CLS of the tokens."""

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
        self.pool_mode, self.normalize = parse_pooling(pooling, VISION_POOLINGS)
        self.model = model.eval()
        self.image_processor = image_processor
        sizes = getattr(model.config, "hidden_sizes", None) or [0]  # convolutional backbones
        self.dim = int(dim or getattr(model.config, "hidden_size", None) or sizes[-1])
        if self.dim <= 0:
            raise IncompatibleEncoderError(
                f"cannot tell the embedding size of {type(model).__name__}; pass dim= to the encoder."
            )
        self.ref = EncoderRef(model_name(model, name_or_path), revision, pooling, "image", self.dim)

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values(self, items, rows), return_dict=True)
        if self.pool_mode != "pooler":
            return _finish(pool_tokens(out.last_hidden_state, None, self.pool_mode), self.normalize)
        if getattr(out, "pooler_output", None) is None:
            raise IncompatibleEncoderError(
                f"{self.ref.name_or_path} returns no pooled output; use pooling='mean' or 'cls'."
            )
        return _finish(out.pooler_output.flatten(1), self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        return {**super()._key_payload(), "processor": getattr(self.image_processor, "to_dict", dict)()}
