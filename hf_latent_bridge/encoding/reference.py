"""Where an encoder comes from: the record bridges, heads and cards keep of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import BridgeInputError, CheckpointError
from .provenance import is_hub_id


@dataclass(frozen=True)
class EncoderRef:
    """How to get an encoder back: Hub id (or local path) at a pinned revision, with its pooling."""

    name_or_path: str
    revision: str | None = None
    pooling: str | None = None
    modality: str | None = None  # "text" | "image" | None when unknown
    dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def is_portable(self) -> bool:
        """Whether the name is a Hub id (loadable anywhere), not a path on this machine."""
        return is_hub_id(self.name_or_path)

    @classmethod
    def from_any(cls, value: Any) -> EncoderRef | None:
        """From a ref, a dict, a name, or anything that carries a ``ref`` (an :class:`Encoder`)."""
        if isinstance(getattr(value, "ref", None), EncoderRef):
            return value.ref
        if value is None or isinstance(value, EncoderRef):
            return value
        if isinstance(value, str):
            return cls(name_or_path=value)
        if not isinstance(value, dict):
            raise BridgeInputError(
                f"an encoder reference must be an Encoder, an EncoderRef, a dict or a name, got "
                f"{type(value).__name__}."
            )
        known = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
        if "name_or_path" not in known:
            raise CheckpointError(f"encoder reference {value!r} has no 'name_or_path'.")
        return cls(**known)
