"""Text encoders: a transformers text model with a pooling recipe; texts tokenised once per call."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import IncompatibleEncoderError
from .base import _ModelEncoder, model_name
from .pooling import TEXT_POOLINGS, _finish, parse_pooling, pool_tokens
from .reference import EncoderRef

# A fast tokenizer keeps its truncation and padding settings on the shared Rust object and changes them in
# place when a call asks for others; a change while another thread encodes raises "Already borrowed".
# Tokenising is a small share of the time, so calls take turns.
_TOKENIZER_LOCK = threading.Lock()


@dataclass(frozen=True)
class TokenizedTexts:
    """Token ids of each text, unpadded (truncated to the model's maximum length)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> TokenizedTexts:
    with _TOKENIZER_LOCK:
        encoded = tokenizer(
            list(texts), truncation=True, max_length=max_length, padding=False, return_attention_mask=False
        )
    types = encoded.get("token_type_ids")
    return TokenizedTexts(list(encoded["input_ids"]), None if types is None else list(types))


def pad_batch(tokens: TokenizedTexts, rows: Sequence[int], tokenizer: Any) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` (and ``token_type_ids``) of ``rows``, padded on the tokenizer's side."""
    width = max(len(tokens.input_ids[i]) for i in rows)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if tokens.token_type_ids else [])
    batch = {name: torch.zeros((len(rows), width), dtype=torch.long) for name in names}
    batch["input_ids"].fill_(tokenizer.pad_token_id or 0)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for j, i in enumerate(rows):
        n = len(tokens.input_ids[i])
        span = slice(width - n, width) if left else slice(0, n)
        batch["input_ids"][j, span] = torch.as_tensor(tokens.input_ids[i])
        batch["attention_mask"][j, span] = 1
        if tokens.token_type_ids:
            batch["token_type_ids"][j, span] = torch.as_tensor(tokens.token_type_ids[i])
    return batch


def token_limit(tokenizer: Any, positions: int | None, requested: int | None = None) -> int:
    """The most tokens per text: ``requested`` or the tokenizer's limit, at most the model's positions."""
    limits = [
        n
        for n in (requested or getattr(tokenizer, "model_max_length", None), positions)
        if isinstance(n, int)
    ]
    limits = [n for n in limits if n < 100_000]  # tokenizers without a limit say 10**30
    return min(limits) if limits else 512


class TextEncoder(_ModelEncoder):
    """A transformers text model with a pooling recipe (``mean``, ``cls``, ``max`` or ``pooler``, ``+norm``).

    Texts are tokenised once per call; the batches are balanced by token count (so each pads little).
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
        self.pool_mode, self.normalize = parse_pooling(pooling, TEXT_POOLINGS)
        name = model_name(model, name_or_path)
        if self.pool_mode == "pooler" and getattr(model, "pooler", "absent") is None:
            raise IncompatibleEncoderError(
                f"{name} has no pooler layer, so pooling='pooler' is impossible; use 'mean' or 'cls'."
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = token_limit(
            tokenizer, getattr(model.config, "max_position_embeddings", None), max_length
        )
        self.dim = int(model.config.hidden_size)
        self.ref = EncoderRef(name, revision, pooling, "text", self.dim)

    def _prepare(self, items: list[str]) -> TokenizedTexts:
        return tokenize(self.tokenizer, items, self.max_length)

    def _costs(self, items: list[str], prepared: TokenizedTexts) -> list[int]:
        return prepared.lengths

    def _embed_batch(self, prepared: TokenizedTexts, rows: list[int]) -> torch.Tensor:
        inputs = {k: v.to(self.device) for k, v in pad_batch(prepared, rows, self.tokenizer).items()}
        out = self.model(**inputs, return_dict=True)
        mask = inputs["attention_mask"]
        pooled = (
            out.pooler_output
            if self.pool_mode == "pooler"
            else pool_tokens(out.last_hidden_state, mask, self.pool_mode)
        )
        return _finish(pooled, self.normalize)

    def _key_payload(self) -> dict[str, Any]:
        return {**super()._key_payload(), "max_length": self.max_length}
