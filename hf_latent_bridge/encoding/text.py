"""Text encoders: a transformers text model with a pooling recipe."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import IncompatibleEncoderError
from .base import _ModelEncoder
from .pooling import TEXT_POOLINGS, _finish, parse_pooling, pool_tokens
from .reference import EncoderRef
from .tokens import TokenizedTexts, pad_batch, tokenize


class TextEncoder(_ModelEncoder):
    """A transformers text model with a pooling recipe.

    Texts are tokenised once per call; the batches are balanced by token count (so each pads little),
    embedded and put back in input order.
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

    def _prepare(self, items: list[str]) -> TokenizedTexts:
        return tokenize(self.tokenizer, items, self.max_length)

    def _costs(self, items: list[str], prepared: TokenizedTexts) -> list[int]:
        return prepared.lengths

    def _embed_batch(self, prepared: TokenizedTexts, rows: list[int]) -> torch.Tensor:
        device = self.device
        inputs = {k: v.to(device) for k, v in pad_batch(prepared, rows, self.tokenizer).items()}
        out = self.model(**inputs, return_dict=True)
        if self.pool_mode == "pooler":
            pooled = out.pooler_output
        else:
            pooled = pool_tokens(out.last_hidden_state, inputs["attention_mask"], self.pool_mode)
        return _finish(pooled, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        return {**super()._key_payload(), "max_length": self.max_length}
