"""Where an encoder comes from: the record bridges, heads and cards keep of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..core.options import check
from ..errors import BridgeInputError
from .provenance import is_hub_id


@dataclass(frozen=True)
class EncoderRef:
    """How to get an encoder back: Hub id (or local path) at a pinned revision, with its pooling."""

    name_or_path: str
    revision: str | None = None
    pooling: str | None = None
    modality: str | None = None  # "text" | "image" | None when unknown
    dim: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise BridgeInputError(
                f"an encoder record needs a non-empty name_or_path, got {self.name_or_path!r}."
            )
        for name in ("revision", "pooling", "modality"):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise BridgeInputError(
                    f"an encoder's {name} must be a string or None, got {getattr(self, name)!r}."
                )
        if self.dim is not None:
            object.__setattr__(self, "dim", check("dim", self.dim, "an encoder's dim"))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def portable(self) -> bool:
        """Whether the name is a Hub id (loadable anywhere), not a path on this machine."""
        return is_hub_id(self.name_or_path)

    @classmethod
    def from_any(cls, value: Any) -> EncoderRef | None:
        """From a ref, its dict, a name, or anything carrying a ``ref`` (an :class:`Encoder`)."""
        value = getattr(value, "ref", value)
        if value is None or isinstance(value, EncoderRef):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            return cls(**{f.name: value[f.name] for f in fields(cls) if f.name in value})
        raise BridgeInputError(
            f"an encoder must be given as an Encoder, an EncoderRef, its dict or a name, got {type(value).__name__}."
        )

    @classmethod
    def record(cls, value: Any, name: str = "encoder") -> dict[str, Any] | None:
        """``value`` as the dict a config keeps (checked by building the ref)."""
        try:
            ref = cls.from_any(value)
        except (BridgeInputError, TypeError) as error:
            raise BridgeInputError(f"{name}: {error}") from None
        return None if ref is None else ref.to_dict()
