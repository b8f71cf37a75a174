"""The heads an evaluation trains on each target space, and their predictions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

HeadFactory = Callable[[torch.Tensor, torch.Tensor, Mapping[int, str] | None], Any]


def default_head_factory(
    embeddings: torch.Tensor, labels: torch.Tensor, id2label: Mapping[int, str] | None
) -> Any:
    """Train the package's :class:`~hf_latent_bridge.heads.ClassificationHead` on target embeddings."""
    from ..models.head import ClassificationHead

    return ClassificationHead.fit(embeddings, labels, id2label=dict(id2label) if id2label else None)


def head_predict(head: Any, embeddings: torch.Tensor) -> torch.Tensor:
    """Class ids predicted by a head (anything with ``logits``, ``predict_proba`` or ``__call__``)."""
    with torch.inference_mode():
        if hasattr(head, "logits"):
            scores = head.logits(embeddings)
        elif hasattr(head, "predict_proba"):
            scores = head.predict_proba(embeddings)
        else:
            scores = head(embeddings)
    return torch.as_tensor(scores).argmax(-1).long()
