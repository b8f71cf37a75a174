"""Texts tokenised once per call, then padded batch by batch for a text model."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

# A fast tokenizer stores its truncation and padding settings on the shared Rust object and changes them
# in place when a call asks for other ones; a change while another thread encodes raises "Already
# borrowed". Tokenising is a small share of the time, so calls take turns.
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
    """Tokenise ``texts`` once, without padding."""
    with _TOKENIZER_LOCK:
        encoded = tokenizer(
            list(texts),
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
    types = encoded.get("token_type_ids")
    return TokenizedTexts(list(encoded["input_ids"]), list(types) if types is not None else None)


def pad_batch(tokens: TokenizedTexts, rows: Sequence[int], tokenizer: Any) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` (and ``token_type_ids``) of ``rows``, padded on the tokenizer's side."""
    ids = [tokens.input_ids[i] for i in rows]
    width = max(len(x) for x in ids)
    pad_id = tokenizer.pad_token_id or 0
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    types = tokens.token_type_ids
    token_type_ids = torch.zeros((len(rows), width), dtype=torch.long) if types is not None else None
    for j, seq in enumerate(ids):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        input_ids[j, span] = torch.as_tensor(seq, dtype=torch.long)
        mask[j, span] = 1
        if token_type_ids is not None:
            token_type_ids[j, span] = torch.as_tensor(types[rows[j]], dtype=torch.long)
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if token_type_ids is not None:
        batch["token_type_ids"] = token_type_ids
    return batch
