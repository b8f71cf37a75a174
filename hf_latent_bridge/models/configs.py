"""The configs of every artifact: what it is, recorded in config.json and checked once.

Every field is type- and range-checked when a config is built, so also when ``config.json`` is read
and before any tensor is allocated. Sizes are bounded (:data:`MAX_DIM`, :data:`MAX_ANCHORS`,
:data:`MAX_LABELS`); loading then also requires them to equal the shapes of the stored tensors.

``metrics`` (bridges, heads, stitched models) is what the model card reports as measured results: a
flat or nested dict of numbers (``{"stitched_accuracy": 0.79, "native": {"accuracy": 0.81}}``), plus
optional context keys saying what they were measured on: ``dataset`` (a Hub id or a description),
``dataset_revision``, ``dataset_config``, ``split``, ``num_samples`` and ``task`` (a Hub task id).
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .._version import __version__
from ..core.anchor_set import AnchorSet
from ..core.options import (
    MAX_ENSEMBLE,
    check_fraction,
    check_method,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_ridge,
    check_scale,
    check_whitening,
)
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError

#: Largest embedding dimension a config may declare (no encoder comes near it).
MAX_DIM = 1 << 20

#: Largest number of anchors a config may declare.
MAX_ANCHORS = 1 << 24

#: Largest number of classes a head may declare.
MAX_LABELS = 1 << 20


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
        """Normalise and check every option (the same rules as ``fit`` and the CLI)."""
        self.method = check_method(self.method)
        self.ridge = check_ridge(self.ridge)
        if self.ridge_selected is not None:
            self.ridge_selected = check_ridge(self.ridge_selected)
        self.scale = check_scale(self.scale)
        self.whitening = check_whitening(self.whitening)
        self.ensemble = check_positive_int("ensemble", self.ensemble, MAX_ENSEMBLE)
        self.ensemble_fraction = check_fraction("ensemble_fraction", self.ensemble_fraction)
        self.seed = check_non_negative_int("seed", self.seed)
        for name, maximum in (("source_dim", MAX_DIM), ("target_dim", MAX_DIM), ("num_anchors", MAX_ANCHORS)):
            if getattr(self, name) is not None:
                setattr(self, name, check_positive_int(name, getattr(self, name), maximum))
        self.anchor_set = _anchor_set_dict(self.anchor_set)
        for name in ("fit_report", "metrics"):
            _check_mapping(name, getattr(self, name))
        _check_text("anchor_fingerprint", self.anchor_fingerprint)

    @property
    def source(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.source_encoder)

    @property
    def target(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.target_encoder)


def _ref_dict(
    value: EncoderRef | dict[str, Any] | str | None, name: str = "encoder"
) -> dict[str, Any] | None:
    """An encoder record as a dict, its fields type-checked (an :class:`Encoder` gives its ``ref``)."""
    value = getattr(value, "ref", value)
    if value is not None and not isinstance(value, (EncoderRef, dict, str)):
        raise BridgeInputError(
            f"{name} must be a Hub id, an Encoder, an EncoderRef or its dict, got {type(value).__name__}."
        )
    try:
        ref = EncoderRef.from_any(value)
    except CheckpointError as error:
        raise BridgeInputError(f"{name}: {error}") from None
    if ref is None:
        return None
    if not isinstance(ref.name_or_path, str) or not ref.name_or_path:
        raise BridgeInputError(f"{name} needs a non-empty name_or_path, got {ref.name_or_path!r}.")
    for field_name in ("revision", "pooling", "modality"):
        _check_text(f"{name}.{field_name}", getattr(ref, field_name))
    if ref.dim is not None:
        check_positive_int(f"{name}.dim", ref.dim, MAX_DIM)
    return ref.to_dict()


def _anchor_set_dict(value: Any) -> dict[str, Any] | None:
    """An anchor-set record, checked by building the :class:`AnchorSet` it describes."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BridgeInputError(
            f"anchor_set must be a dict (AnchorSet.to_dict()), got {type(value).__name__}."
        )
    try:
        anchor_set = AnchorSet.from_dict(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise BridgeInputError(f"anchor_set {_short(value)} is malformed ({error}).") from None
    if not isinstance(anchor_set.dataset, str) or any(
        not isinstance(i, int) or i < 0 for i in anchor_set.indices
    ):
        raise BridgeInputError("anchor_set needs a dataset name and non-negative row indices.")
    for field_name in ("revision", "split", "column"):
        _check_text(f"anchor_set.{field_name}", getattr(anchor_set, field_name))
    _check_mapping("anchor_set.extra", anchor_set.extra)
    return value


def _check_mapping(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise BridgeInputError(f"{name} must be a dict or None, got {type(value).__name__} {_short(value)}.")


def _check_part(name: str, value: Any, model_type: str) -> None:
    """A nested part's config: a dict whose ``model_type``, when recorded, names the part's own type."""
    _check_mapping(name, value)
    if value is not None and value.get("model_type", model_type) != model_type:
        raise BridgeInputError(
            f"{name}.model_type must be {model_type!r}, got {_short(value.get('model_type'))}; the {name} "
            "part was not written by this package."
        )


def _check_text(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise BridgeInputError(
            f"{name} must be a string or None, got {type(value).__name__} {_short(value)}."
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        self.encoder = _ref_dict(encoder)
        self.anchor_set = _anchor_set_dict(anchor_set)
        self.anchor_fingerprint = anchor_fingerprint
        self.num_anchors = num_anchors
        self.dim = dim
        self.norm_scale = norm_scale
        self.library_version = library_version or __version__
        super().__init__(**kwargs)
        for name, maximum in (("num_anchors", MAX_ANCHORS), ("dim", MAX_DIM)):
            if getattr(self, name) is not None:
                setattr(self, name, check_positive_int(name, getattr(self, name), maximum))
        if self.norm_scale is not None:
            self.norm_scale = check_positive("norm_scale", self.norm_scale)
        _check_text("anchor_fingerprint", self.anchor_fingerprint)


class StitchedConfig(PreTrainedConfig):
    r"""Configuration of a :class:`StitchedModel`.

    Args:
        bridge: the :class:`~hf_latent_bridge.LatentBridgeConfig` of the bridge, as a dict.
        head: the head's :class:`ClassificationHeadConfig` fields (``input_dim``, ``num_labels``,
            ``pooling``, ``encoder``, ``fit_report``), as a dict; its classes are ``id2label``.
        source_encoder: the encoder whose embeddings the bridge takes (``EncoderRef`` as a dict); by
            default the bridge's own record.
        source_tower: ``"text"`` or ``"image"`` when the source encoder is a CLIP-style dual encoder.
        metrics: results measured on the stitched model, shown on its card (see the module docstring).
        id2label / label2id: the head's classes (standard transformers fields).
    """

    model_type = "stitched_model"

    def __init__(
        self,
        bridge: dict[str, Any] | None = None,
        head: dict[str, Any] | None = None,
        source_encoder: dict[str, Any] | None = None,
        source_tower: str | None = None,
        metrics: dict[str, Any] | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_part("bridge", bridge, LatentBridgeConfig.model_type)
        _check_part("head", head, ClassificationHeadConfig.model_type)
        self.bridge = bridge
        self.head = head
        if source_encoder is None and bridge is not None:
            source_encoder = bridge.get("source_encoder")
        self.source_encoder = _ref_dict(source_encoder, "source_encoder")
        if source_tower not in (None, "text", "image"):
            raise BridgeInputError(
                f"source_tower must be 'text', 'image' or None, got {_short(source_tower)}."
            )
        self.source_tower = source_tower
        _check_mapping("metrics", metrics)
        self.metrics = metrics
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

    @property
    def head_config(self) -> ClassificationHeadConfig:
        if not self.head:
            raise CheckpointError(
                "this StitchedConfig has no head; build stitched models with StitchedModel.from_parts."
            )
        return ClassificationHeadConfig.from_fields(self.head, self.id2label)


class ClassificationHeadConfig(PreTrainedConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.ClassificationHead`.

    Args:
        input_dim: size of the embeddings the head takes; ``weight`` is ``(num_labels, input_dim)``.
        id2label / label2id / num_labels: the classes (standard transformers fields; at least 2).
        pooling: the pooling of the embeddings the head was trained on (checked against bridges).
        encoder: where those embeddings came from (an :class:`EncoderRef` as a dict), when known.
        fit_report: training diagnostics (loss, iterations, regularisation).
        metrics: results measured on the head, shown on its card (see the module docstring).
    """

    model_type = "latent_classification_head"

    #: The fields a stitched model's config keeps of its head (its classes are the stitched model's own).
    FIELDS = ("input_dim", "num_labels", "pooling", "encoder", "fit_report", "metrics")

    def __init__(
        self,
        input_dim: int | None = None,
        pooling: str | None = None,
        encoder: dict[str, Any] | str | None = None,
        fit_report: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.input_dim = input_dim
        self.pooling = pooling
        self.encoder = _ref_dict(encoder)
        self.fit_report = fit_report
        self.metrics = metrics
        self.library_version = library_version or __version__
        num_labels = kwargs.get("num_labels")
        if num_labels is not None and kwargs.get("id2label") is None:
            kwargs["num_labels"] = check_positive_int("num_labels", num_labels, MAX_LABELS)
        super().__init__(**kwargs)
        self._check()

    def _check(self) -> None:
        if self.input_dim is not None:
            self.input_dim = check_positive_int("input_dim", self.input_dim, MAX_DIM)
        labels = self.id2label or {}
        if len(labels) > MAX_LABELS:
            raise BridgeInputError(f"a head may have at most {MAX_LABELS} classes, got {len(labels)}.")
        if len(labels) < 2:
            raise BridgeInputError(f"a classification head needs at least 2 labels, got {len(labels)}.")
        if sorted(labels) != list(range(len(labels))):
            raise BridgeInputError(
                f"id2label must name every class 0..{len(labels) - 1} exactly once, got keys {_short(sorted(labels))}."
            )
        if not all(isinstance(v, str) for v in labels.values()):
            self.id2label = {k: str(v) for k, v in labels.items()}
        if self.label2id is None or set(self.label2id) != set(self.id2label.values()):
            self.label2id = {label: i for i, label in self.id2label.items()}
        _check_text("pooling", self.pooling)
        _check_mapping("fit_report", self.fit_report)
        _check_mapping("metrics", self.metrics)

    def fields(self) -> dict[str, Any]:
        """What a stitched model's config records of this head (:attr:`FIELDS`)."""
        values = {name: getattr(self, name) for name in self.FIELDS}
        return {k: v for k, v in values.items() if v is not None or k in ("pooling", "encoder", "fit_report")}

    @classmethod
    def from_fields(
        cls, fields: dict[str, Any], id2label: dict[Any, str] | None = None
    ) -> ClassificationHeadConfig:
        """The config of a head recorded as :meth:`fields` (a stitched model's ``head``, a 0.1.0 head's
        ``head_config.json``), with its classes."""
        if not isinstance(fields, dict):
            raise BridgeInputError(f"a head's config must be a dict, got {type(fields).__name__}.")
        known = {k: v for k, v in fields.items() if k in cls.FIELDS and k != "num_labels"}
        id2label = id2label if id2label is not None else fields.get("id2label")
        if not isinstance(id2label, dict):
            raise BridgeInputError(f"the head's classes (id2label) must be a dict, got {_short(id2label)}.")
        try:
            labels = {int(k): v for k, v in id2label.items()}
        except (TypeError, ValueError):
            raise BridgeInputError(
                f"id2label keys must be class indices, got {_short(list(id2label))}."
            ) from None
        num_labels = fields.get("num_labels")
        if num_labels is not None and num_labels != len(labels):
            raise BridgeInputError(
                f"the head declares num_labels={_short(num_labels)} but names {len(labels)} classes in id2label."
            )
        return cls(**known, id2label=labels)
