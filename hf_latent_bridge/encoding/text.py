"""Text encoders: a transformers text model with a pooling recipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import IncompatibleEncoderError
from .base import _ModelEncoder
from .pooling import TEXT_POOLINGS, _finish, parse_pooling, pool_tokens
from .reference import EncoderRef


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
