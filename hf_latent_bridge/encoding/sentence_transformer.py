"""A ``SentenceTransformer`` object as an encoder: it embeds with its own modules (pooling, normalisation,
dense layers), and is recorded by the Hub id it was loaded from, so artifacts fitted with it load anywhere.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Encoder
from .fingerprints import _state_fingerprint
from .provenance import portable_name
from .reference import EncoderRef

#: sentence-transformers pooling modes (``pooling_mode``, sentence-transformers >= 5) as pooling names of
#: :mod:`.pooling`.
_POOLING_NAMES = {
    "mean": "mean",
    "mean_tokens": "mean",
    "cls": "cls",
    "cls_token": "cls",
    "max": "max",
    "max_tokens": "max",
}


def is_sentence_transformer(obj: Any) -> bool:
    """Duck-typed, so that sentence-transformers is imported only by those who use it."""
    return type(obj).__module__.startswith("sentence_transformers") and hasattr(obj, "encode")


class SentenceTransformerEncoder(Encoder):
    """Wrap a loaded ``sentence_transformers.SentenceTransformer``.

    Args:
        model: the SentenceTransformer.
        hub_id: the Hub id it holds, when it was loaded from a local folder that does not name it.
        revision: the revision it was loaded at, when known.
    """

    modality = "text"

    def __init__(self, model: Any, *, hub_id: str | None = None, revision: str | None = None) -> None:
        self.model = model.eval()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        config = getattr(getattr(model[0], "auto_model", None), "config", None)
        self.location = str(getattr(config, "_name_or_path", "") or type(model).__name__)
        name, revision = portable_name(
            self.location, revision, hub_id=hub_id, commit_hash=getattr(config, "_commit_hash", None)
        )
        self.ref = EncoderRef(name, revision, _pooling_name(model), "text", self.dim)

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        batch = [items[i] for i in rows]
        out = self.model.encode(batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False)
        return out.float().cpu()

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Encoder:
        if device is not None or dtype is not None:
            self.model.to(device=device, dtype=dtype)
        return self

    def _key_payload(self) -> dict[str, Any]:
        return {"ref": self.ref.to_dict(), "weights": _state_fingerprint(self.model)}


def _pooling_name(model: Any) -> str | None:
    """The model's recipe as a pooling name (``"mean+norm"``), or ``None`` when it has other modules."""
    kinds = [type(module).__name__ for module in model]
    if kinds[0] != "Transformer" or not set(kinds[1:]) <= {"Pooling", "Normalize"}:
        return None
    pooling = next((m for m in model if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling, "pooling_mode", "mean") if pooling is not None else "mean"
    if not isinstance(mode, str) or mode not in _POOLING_NAMES:
        return None
    return _POOLING_NAMES[mode] + ("+norm" if "Normalize" in kinds else "")
