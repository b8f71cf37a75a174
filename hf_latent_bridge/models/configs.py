"""The configs of every artifact: what it is, recorded in config.json and checked once."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .._version import __version__
from ..core.alignment import KNOWN_METHODS, METHODS
from ..encoding.reference import EncoderRef
from ..errors import CheckpointError

SCALES = ("mean", "none")


class LatentBridgeConfig(PreTrainedConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.LatentBridge`.

    Args:
        method: ``"irp"`` (inverse relative projection, default) or a direct baseline:
            ``"procrustes"``, ``"linear"``, ``"l-ortho"``, ``"identity"`` (``"affine"``: saved by older versions, the same map as ``"linear"``).
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
        self.library_version = library_version or __version__
        super().__init__(**kwargs)
        self._check()

    def _check(self) -> None:
        if self.method not in KNOWN_METHODS:
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


class AnchorSpaceConfig(PreTrainedConfig):
    r"""Configuration of an :class:`AnchorSpace`.

    Args:
        encoder: :class:`~hf_latent_bridge.EncoderRef` as a dict (id or path, revision, pooling, ...).
        anchor_set: :class:`~hf_latent_bridge.AnchorSet` as a dict (data set, revision, split, indices).
        anchor_fingerprint: the anchor set's fingerprint; spaces compose only when theirs are equal.
        num_anchors / dim: shape of the anchor embeddings.
        norm_scale: mean norm of the centred anchors (the scale IRP restores on the output side).
    """

    model_type = "latent_anchor_space"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        anchor_set: dict[str, Any] | None = None,
        anchor_fingerprint: str | None = None,
        num_anchors: int | None = None,
        dim: int | None = None,
        norm_scale: float | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        ref = EncoderRef.from_any(encoder)
        self.encoder = None if ref is None else ref.to_dict()
        self.anchor_set = anchor_set
        self.anchor_fingerprint = anchor_fingerprint
        self.num_anchors = num_anchors
        self.dim = dim
        self.norm_scale = norm_scale
        self.library_version = library_version or __version__
        super().__init__(**kwargs)
        for name in ("num_anchors", "dim"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise CheckpointError(f"{name} must be a positive integer, got {value!r}.")


class StitchedConfig(PreTrainedConfig):
    r"""Configuration of a :class:`StitchedModel`.

    Args:
        bridge: the :class:`~hf_latent_bridge.LatentBridgeConfig` of the bridge, as a dict.
        head: the classification head's config (``input_dim``, ``num_labels``, ``pooling``, ...).
        source_encoder: the encoder whose embeddings the bridge takes (``EncoderRef`` as a dict); by
            default the bridge's own record.
        source_tower: ``"text"`` or ``"image"`` when the source encoder is a CLIP-style dual encoder.
        id2label / label2id: the head's classes (standard transformers fields).
    """

    model_type = "stitched_model"

    def __init__(
        self,
        bridge: dict[str, Any] | None = None,
        head: dict[str, Any] | None = None,
        source_encoder: dict[str, Any] | None = None,
        source_tower: str | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.bridge = bridge
        self.head = head
        ref = EncoderRef.from_any(source_encoder)
        if ref is None and bridge is not None:
            ref = EncoderRef.from_any(bridge.get("source_encoder"))
        self.source_encoder = None if ref is None else ref.to_dict()
        self.source_tower = source_tower
        self.library_version = library_version or __version__
        super().__init__(**kwargs)

    @property
    def source(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.source_encoder)

    @property
    def bridge_config(self) -> LatentBridgeConfig:
        if not self.bridge:
            raise CheckpointError(
                "this StitchedConfig has no bridge; build stitched models with StitchedModel.from_parts."
            )
        return LatentBridgeConfig.from_dict(dict(self.bridge))
