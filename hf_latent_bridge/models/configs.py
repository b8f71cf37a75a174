"""The configs of every artifact: what it is, recorded in ``config.json`` and checked once, when built.

Each config is a transformers config (a dataclass of typed fields). ``__post_init__`` checks every
option against the one table of rules (:data:`hf_latent_bridge.core.options.RULES`) and the records
(encoders, anchor set) by building them, so a config that exists is valid: ``fit``, loading and the
command line rely on it. ``metrics`` is what a model card reports as measured results: numbers (flat or
nested) plus optional context keys (``dataset``, ``dataset_revision``, ``dataset_config``, ``split``,
``num_samples``, ``task``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from transformers import PreTrainedConfig

from .._version import __version__
from ..core.anchor_set import AnchorSet
from ..core.options import check
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError


class ArtifactConfig(PreTrainedConfig):
    """What every config of the package records besides its own fields, and how it checks them."""

    #: Field -> the rule of :data:`~hf_latent_bridge.core.options.RULES` it obeys.
    rules: ClassVar[dict[str, str]] = {}
    #: Fields that take one value or a [source, target] pair.
    per_side: ClassVar[tuple[str, ...]] = ()
    #: Fields holding an encoder record (an :class:`EncoderRef` as a dict).
    encoder_fields: ClassVar[tuple[str, ...]] = ()

    metrics: dict[str, Any] | None = None
    library_version: str | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        recorded_type = kwargs.pop("model_type", self.model_type)
        if recorded_type != self.model_type:
            raise BridgeInputError(
                f"this is the config of a {recorded_type!r} model, not a {self.model_type!r}; load it with the "
                "class made for it (e.g. transformers.AutoModel)."
            )
        self.library_version = self.library_version or __version__
        super().__post_init__(**kwargs)
        if self.dtype is not None and not (
            isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point
        ):
            raise BridgeInputError(
                f"dtype must be a floating torch dtype such as float32, got {self.dtype!r}."
            )
        for field, rule in self.rules.items():  # a field whose default is None may stay None
            value = getattr(self, field)
            if field in self.per_side and isinstance(value, (list, tuple)) and len(value) == 2:
                value = [check(rule, v, f"{field} (source, target)") for v in value]
            elif value is not None or self.__dataclass_fields__[field].default is not None:
                value = check(rule, value, field)
            setattr(self, field, value)
        for field in self.encoder_fields:
            setattr(self, field, EncoderRef.record(getattr(self, field), field))
        for field in ("metrics", "fit_report"):
            if not isinstance(getattr(self, field, None), (dict, type(None))):
                raise BridgeInputError(f"{field} must be a dict or None, got {getattr(self, field)!r:.80}.")
        if getattr(self, "anchor_set", None) is not None:
            self.anchor_set = AnchorSet.from_dict(self.anchor_set).to_dict()


class LatentBridgeConfig(ArtifactConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.LatentBridge`.

    Args:
        method: ``"auto"`` (default: chosen on held-out anchors), ``"irp"`` (inverse relative projection) or a
            direct baseline: ``"procrustes"``, ``"linear"``, ``"l-ortho"``, ``"identity"``; ``method_selected``:
            what ``"auto"`` chose (``"blend"``: IRP blended with a direct map), ``selection``: how (the
            criterion, the choice and every candidate's held-out score).
        source_dim / target_dim / num_anchors: shapes of the fitted tensors.
        ridge: IRP's regularisation: ``"auto"`` (leave-one-out on the anchors) or a strength relative to the
            mean squared singular value of the target anchors; ``ridge_selected``: the one used.
        whitening: IRP's shrinkage-whitening strength: ``"auto"`` (each side's chosen on held-out anchors), a
            number (both sides) or ``None`` (the plain relative projection); ``whitening_selected``: the
            [source, target] strengths chosen.
        output_norm: IRP's output norm: ``"mean"`` (of the centred target anchors), ``"none"`` (1) or a number.
        ensemble / ensemble_fraction / seed: anchor subsets averaged, the share of anchors each, their seed.
        blend: whether ``"auto"`` may choose a blend of two maps (``False``: one map).
        source_encoder / target_encoder: where the embeddings came from (:class:`EncoderRef` as dicts).
        anchor_set / anchor_fingerprint: which inputs the anchors are, and the hash naming them.
        fit_report: diagnostics of the fit (e.g. every candidate ridge's leave-one-out score).
    """

    model_type = "latent_bridge"
    rules: ClassVar[dict[str, str]] = {
        "method": "method",
        "source_dim": "dim",
        "target_dim": "dim",
        "num_anchors": "num_anchors",
        "ridge": "ridge",
        "ridge_selected": "ridge",
        "whitening": "whitening",
        "output_norm": "output_norm",
        "ensemble": "ensemble",
        "ensemble_fraction": "ensemble_fraction",
        "seed": "seed",
        "blend": "blend",
    }
    encoder_fields = ("source_encoder", "target_encoder")
    per_side = ("whitening",)

    method: str = "auto"
    method_selected: str | None = None
    source_dim: int | None = None
    target_dim: int | None = None
    num_anchors: int | None = None
    ridge: float | str = "auto"
    ridge_selected: float | None = None
    whitening: float | str | None = "auto"
    whitening_selected: list[float] | None = None
    output_norm: float | str = "mean"
    ensemble: int = 1
    ensemble_fraction: float = 0.8
    seed: int = 0
    blend: bool = True
    source_encoder: dict[str, Any] | None = None
    target_encoder: dict[str, Any] | None = None
    anchor_set: dict[str, Any] | None = None
    anchor_fingerprint: str | None = None
    fit_report: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None

    @property
    def source(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.source_encoder)

    @property
    def target(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.target_encoder)


class AnchorSpaceConfig(ArtifactConfig):
    r"""Configuration of an :class:`~hf_latent_bridge.AnchorSpace`: one encoder's embeddings of an anchor set.

    Args:
        encoder / anchor_set / anchor_fingerprint: the encoder, the anchor inputs and their hash (spaces
            compose into a bridge only when their fingerprints are equal).
        num_anchors / dim: shape of the anchor embeddings; ``mean_norm``: mean norm of the centred anchors.
    """

    model_type = "latent_anchor_space"
    rules: ClassVar[dict[str, str]] = {"num_anchors": "num_anchors", "dim": "dim", "mean_norm": "norm"}
    encoder_fields = ("encoder",)

    encoder: dict[str, Any] | None = None
    anchor_set: dict[str, Any] | None = None
    anchor_fingerprint: str | None = None
    num_anchors: int | None = None
    dim: int | None = None
    mean_norm: float | None = None


class ClassificationHeadConfig(ArtifactConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.ClassificationHead`: a linear layer with classes.

    Args:
        input_dim: size of the embeddings the head takes; the classes are ``id2label`` (at least 2).
        pooling / encoder: the pooling and encoder of the embeddings it was trained on, when known.
        fit_report: training diagnostics (loss, iterations, regularisation).
    """

    model_type = "latent_classification_head"
    rules: ClassVar[dict[str, str]] = {"input_dim": "dim"}
    encoder_fields = ("encoder",)

    input_dim: int | None = None
    pooling: str | None = None
    encoder: dict[str, Any] | None = None
    fit_report: dict[str, Any] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        check("num_labels", len(self.id2label), "the number of classes (id2label)")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise BridgeInputError(f"id2label must name every class 0..{len(self.id2label) - 1} once.")
        self.id2label = {i: str(name) for i, name in self.id2label.items()}
        self.label2id = {name: i for i, name in self.id2label.items()}


class StitchedConfig(ArtifactConfig):
    r"""Configuration of a :class:`~hf_latent_bridge.StitchedModel`: a bridge and a head, and the encoder
    that feeds them.

    Args:
        bridge_config / head_config: the parts' configs (the head's classes are this model's ``id2label``).
        source_encoder: the encoder whose embeddings the bridge takes (default: the bridge's record).
        source_tower: ``"text"`` or ``"image"`` when the source encoder is a CLIP-style dual encoder.
    """

    model_type = "stitched_model"
    sub_configs_defaults: ClassVar[dict[str, Any]] = {
        "bridge_config": LatentBridgeConfig,
        "head_config": ClassificationHeadConfig,
    }
    encoder_fields = ("source_encoder",)

    bridge_config: LatentBridgeConfig | dict[str, Any] | None = None
    head_config: ClassificationHeadConfig | dict[str, Any] | None = None
    source_encoder: dict[str, Any] | None = None
    source_tower: str | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.source_encoder is None:
            self.source_encoder = self.bridge_config.source_encoder
        if self.source_tower not in (None, "text", "image"):
            raise BridgeInputError(
                f"source_tower must be 'text', 'image' or None, got {self.source_tower!r}."
            )
        self.id2label, self.label2id = dict(self.head_config.id2label), dict(self.head_config.label2id)

    @property
    def source(self) -> EncoderRef | None:
        return EncoderRef.from_any(self.source_encoder)
