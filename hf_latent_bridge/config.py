"""LatentBridgeConfig: what a bridge is, recorded in config.json next to its tensors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from transformers import PreTrainedConfig

from .alignment import METHODS
from .errors import CheckpointError

SCALES = ("mean", "none")


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

    @classmethod
    def from_any(cls, value: EncoderRef | dict[str, Any] | str | None) -> EncoderRef | None:
        if value is None or isinstance(value, EncoderRef):
            return value
        if isinstance(value, str):
            return cls(name_or_path=value)
        known = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
        if "name_or_path" not in known:
            raise CheckpointError(f"encoder reference {value!r} has no 'name_or_path'.")
        return cls(**known)


class LatentBridgeConfig(PreTrainedConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.LatentBridge`.

    Args:
        method: ``"irp"`` (inverse relative projection, default) or a direct baseline:
            ``"procrustes"``, ``"linear"``, ``"affine"``, ``"l-ortho"``, ``"identity"``.
        source_dim / target_dim / num_anchors: shapes of the fitted tensors.
        ridge: IRP regularisation asked for: ``"auto"`` (cross-validated on the anchors) or a
            strength relative to the mean squared singular value of the target anchors.
        ridge_selected: the relative strength actually used (the chosen one when ``ridge="auto"``).
        whitening: IRP shrinkage-whitening strength of both sides (``None``: plain relative projection).
        scale: IRP output norm: ``"mean"`` (mean norm of the centred target anchors), ``"none"``
            (unit norm) or a positive number.
        ensemble / ensemble_fraction: number of anchor subsets averaged, and the share of anchors each.
        source_encoder / target_encoder: :class:`EncoderRef` as dicts (id, revision, pooling, ...).
        anchor_set: the anchor inputs (data set, revision, split, indices) when known.
        anchor_fingerprint: hash naming the anchors (of the anchor set, else of the anchor tensors).
        fit_report: diagnostics of the fit (e.g. cross-validation scores).
        metrics: stitching metrics measured on the bridge, shown on its model card.
    """

    model_type = "latent_bridge"

    def __init__(
        self,
        method: str = "irp",
        source_dim: int | None = None,
        target_dim: int | None = None,
        num_anchors: int | None = None,
        ridge: float | str = "auto",
        ridge_selected: float | None = None,
        scale: float | str = "mean",
        whitening: float | None = None,
        ensemble: int = 1,
        ensemble_fraction: float = 0.8,
        seed: int = 0,
        source_encoder: dict[str, Any] | None = None,
        target_encoder: dict[str, Any] | None = None,
        anchor_set: dict[str, Any] | None = None,
        anchor_fingerprint: str | None = None,
        fit_report: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.method = method
        self.source_dim = source_dim
        self.target_dim = target_dim
        self.num_anchors = num_anchors
        self.ridge = ridge
        self.ridge_selected = ridge_selected
        self.scale = scale
        self.whitening = whitening
        self.ensemble = ensemble
        self.ensemble_fraction = ensemble_fraction
        self.seed = seed
        self.source_encoder = _ref_dict(source_encoder)
        self.target_encoder = _ref_dict(target_encoder)
        self.anchor_set = anchor_set
        self.anchor_fingerprint = anchor_fingerprint
        self.fit_report = fit_report
        self.metrics = metrics
        if library_version is None:
            from . import __version__

            library_version = __version__
        self.library_version = library_version
        super().__init__(**kwargs)
        self._check()

    def _check(self) -> None:
        if self.method not in METHODS:
            raise CheckpointError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")
        if not (self.scale in SCALES or (isinstance(self.scale, (int, float)) and self.scale > 0)):
            raise CheckpointError(f"scale must be 'mean', 'none' or a positive number, got {self.scale!r}.")
        if not (self.ridge == "auto" or (isinstance(self.ridge, (int, float)) and self.ridge >= 0)):
            raise CheckpointError(f"ridge must be 'auto' or a number >= 0, got {self.ridge!r}.")
        for name in ("source_dim", "target_dim", "num_anchors"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise CheckpointError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(self.ensemble, int) or self.ensemble < 1:
            raise CheckpointError(f"ensemble must be a positive integer, got {self.ensemble!r}.")

    @property
    def source(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.source_encoder)

    @property
    def target(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.target_encoder)


def _ref_dict(value: EncoderRef | dict[str, Any] | str | None) -> dict[str, Any] | None:
    ref = EncoderRef.from_any(value)
    return None if ref is None else ref.to_dict()
