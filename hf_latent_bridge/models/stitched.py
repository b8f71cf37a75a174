"""StitchedModel: source encoder + LatentBridge + classification head, shareable as one repo.

The repo holds ``config.json`` (the bridge's and the head's configs as typed sub-configs, and the source
encoder's id, revision and pooling) and ``model.safetensors`` with the parts' tensors (``bridge.*``,
``head.*``). The source encoder is not saved: it is loaded by the recorded id and revision on first use,
or attached with ``source_encoder=`` (an offline copy, a custom encoder) after a compatibility check.
"""

from __future__ import annotations

import copy
import threading
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..core.scale_invariance import check_head
from ..core.validation import as_tensor, check_matrix
from ..encoding.base import Encoder
from ..encoding.clip import ClipTowerEncoder
from ..encoding.loading import load_encoder
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .artifact import ArtifactMixin
from .bridge import LatentBridge
from .cards import REPO_PLACEHOLDER, CardInfo, classification_task, example_inputs
from .configs import LatentBridgeConfig, StitchedConfig
from .head import ClassificationHead

#: Loading a recorded source encoder happens once, whichever thread asks first.
_LOADING = threading.Lock()


class StitchedModel(ArtifactMixin, PreTrainedModel):
    """Classify inputs of a source encoder with a head trained in another encoder's space.

    Build one with :meth:`from_parts` (or :func:`hf_latent_bridge.stitch` from two encoder ids and data);
    ``forward`` takes source embeddings, :meth:`classify` raw inputs.
    """

    config_class = StitchedConfig
    base_model_prefix = "stitched"
    main_input_name = "embeddings"

    def __init__(self, config: StitchedConfig) -> None:
        super().__init__(config)
        self.bridge = LatentBridge(config.bridge_config)
        self.head = ClassificationHead(config.head_config)
        check_head_fits(config.bridge_config, self.head)
        self._source_encoder: Encoder | None = None
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, (LatentBridge, ClassificationHead)):
            module._init_weights(module)

    @classmethod
    def from_parts(
        cls,
        bridge: LatentBridge,
        head: ClassificationHead,
        *,
        source_encoder: Encoder | None = None,
        strict: bool = True,
    ) -> StitchedModel:
        """Combine a fitted bridge and a head trained on the bridge's target space (stored in the bridge's
        dtype). Refuses a head whose input size or pooling does not match the bridge's target, and a
        ``source_encoder`` that disagrees with the bridge's recorded source; warns when IRP's restore step
        changes the head's decisions."""
        if not isinstance(bridge, LatentBridge) or not isinstance(head, ClassificationHead):
            raise BridgeInputError(
                f"from_parts takes a LatentBridge and a ClassificationHead, got {type(bridge).__name__} and "
                f"{type(head).__name__} (see ClassificationHead.fit or head_from_classifier)."
            )
        check_head_fits(bridge.config, head)
        _warn_if_head_needs_norms(bridge, head)
        recorded = bridge.config.source
        if source_encoder is not None:
            check_source_encoder(source_encoder, recorded, bridge.config.source_dim, strict=strict)
            recorded = _merge_ref(recorded, source_encoder.ref)
        parts = copy.deepcopy(bridge.config), copy.deepcopy(head.config)
        for part in parts:
            part.dtype = bridge.dtype  # one dtype per model: transformers loads every sub-model in it
        config = StitchedConfig(
            bridge_config=parts[0],
            head_config=parts[1],
            source_encoder=recorded,
            source_tower=source_encoder.tower if isinstance(source_encoder, ClipTowerEncoder) else None,
            dtype=bridge.dtype,
        )
        model = cls(config)
        with torch.no_grad():
            model.bridge.load_state_dict(bridge.state_dict(), strict=True)
            model.head.load_state_dict(head.state_dict(), strict=True)
        model._source_encoder = source_encoder
        return model.eval()

    # ------------------------------------------------------------------ source encoder
    def attach_source_encoder(self, encoder: Encoder, *, strict: bool = True) -> None:
        """Use ``encoder`` as the source encoder after checking it against the bridge's record."""
        check_source_encoder(encoder, self.config.source, self.bridge.config.source_dim, strict=strict)
        self._source_encoder = encoder

    @property
    def source_encoder(self) -> Encoder:
        """The attached encoder, or the recorded one, loaded once by id, revision and pooling."""
        with _LOADING:
            if self._source_encoder is None:
                self._source_encoder = self._load_source_encoder()
        return self._source_encoder

    def _load_source_encoder(self) -> Encoder:
        ref = self.config.source
        if ref is None:
            raise IncompatibleEncoderError(
                "this stitched model records no source encoder; pass source_encoder=load_encoder(...) (to pipeline(...) "
                "or StitchedModel.from_pretrained)."
            )
        tower = self.config.source_tower
        try:
            encoder = load_encoder(
                ref.name_or_path,
                revision=ref.revision,
                pooling=ref.pooling,
                modality=None if tower else ref.modality,
                tower=tower,
            )
        except CheckpointError as error:
            raise CheckpointError(
                f"{self.config.name_or_path or 'this stitched model'} embeds its inputs with {ref.name_or_path!r} at "
                f"revision {ref.revision or '(unpinned)'}, which cannot be loaded here ({error}). Pass your copy: "
                "pipeline(..., source_encoder=load_encoder(LOCAL_COPY)) or StitchedModel.from_pretrained(..., "
                "source_encoder=...), with strict=False if it is saved under another name."
            ) from error
        check_source_encoder(encoder, ref, self.bridge.config.source_dim)
        return encoder

    # ------------------------------------------------------------------ inference
    def forward(self, embeddings: torch.Tensor) -> SequenceClassifierOutput:
        """Checked source embeddings ``(n, d_source)`` -> bridge -> head logits ``(n, num_labels)``."""
        return SequenceClassifierOutput(logits=self.head(self.bridge(embeddings)))

    def logits_from_embeddings(self, embeddings: Any) -> torch.Tensor:
        """Float32 logits of a tensor or array of source embeddings, checked."""
        x = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings", self.bridge.config.source_dim)
        with torch.inference_mode():
            return self(x.to(self.device)).logits.float().cpu()

    def classify(
        self, inputs: Any, *, batch_size: int = 32, show_progress: bool | None = None
    ) -> torch.Tensor:
        """Logits for raw inputs (texts or images), embedded by the source encoder."""
        encoder = self.source_encoder
        return self.logits_from_embeddings(
            encoder.embed(inputs, batch_size=batch_size, show_progress=show_progress)
        )

    def predict_proba(self, inputs: Any, *, batch_size: int = 32) -> torch.Tensor:
        return torch.softmax(self.classify(inputs, batch_size=batch_size), dim=-1)

    # ------------------------------------------------------------------ sharing
    def card_info(self) -> CardInfo:
        """The bridge's card, told as a classifier: the pipeline call, the classes, measured results."""
        info = self.bridge.card_info()
        source = self.config.source or info.source
        source = source and replace(source, dim=source.dim or self.bridge.config.source_dim)
        _, inputs = example_inputs(source)
        imports = "from PIL import Image\n" if source is not None and source.modality == "image" else ""
        classes = [self.config.id2label[i] for i in range(len(self.config.id2label))]
        info.title = "Stitched classifier: " + info.title.split(": ", 1)[1]
        info.summary = (
            "A classifier for the source encoder obtained without training: the source encoder's embeddings are "
            "translated by a latent bridge into the target encoder's space, where a classification head trained on "
            "the target encoder classifies them. The source encoder is loaded by the recorded id and revision; only "
            "the bridge and the head are stored here."
        )
        info.usage = (
            f"{imports}import hf_latent_bridge  # registers the stitched-classification task\n"
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("stitched-classification", model="{REPO_PLACEHOLDER}")\n'
            f"classifier({inputs[1:-1]})"
        )
        info.source, info.classes, info.task = source, classes, classification_task(source)
        info.parameters["classes"] = len(classes)
        info.metrics = self.config.metrics or self.bridge.config.metrics or {}
        info.tags = ["latent-bridge", "stitched-classification"]
        return info

    def _check_loaded(self, where: str) -> None:
        super()._check_loaded(where)
        self.bridge._check_loaded(f"{where} (bridge)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> StitchedModel:
        """Load a stitched model. ``source_encoder=`` attaches an :class:`Encoder` instead of loading the
        recorded one; ``strict=False`` accepts it under another name (dimension, modality and pooling are
        still checked)."""
        source_encoder, strict = kwargs.pop("source_encoder", None), kwargs.pop("strict", True)
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if source_encoder is not None:
            model.attach_source_encoder(source_encoder, strict=strict)
        return loaded


def check_head_fits(bridge_config: LatentBridgeConfig, head: ClassificationHead) -> None:
    """Refuse a head that does not take the bridge's output: its size or its pooling differ."""
    target = bridge_config.target
    if head.input_dim != bridge_config.target_dim:
        raise IncompatibleEncoderError(
            f"the head takes {head.input_dim}-dimensional embeddings but the bridge outputs {bridge_config.target_dim}; "
            "train the head on embeddings of the bridge's target encoder."
        )
    if head.pooling and target is not None and target.pooling and head.pooling != target.pooling:
        raise IncompatibleEncoderError(
            f"the head was trained on {head.pooling!r}-pooled embeddings but the bridge's target uses {target.pooling!r}; "
            f"fit the bridge on target embeddings pooled with {head.pooling!r}."
        )


def _warn_if_head_needs_norms(bridge: LatentBridge, head: ClassificationHead) -> None:
    """Warn when setting the target anchors' norms as IRP does changes more than 1% of the head's decisions."""
    if not bool((bridge.output_norm > 0).all()):
        return  # the direct methods keep norms: nothing is restored
    anchors = bridge.target_anchors.detach()
    rows = torch.linspace(0, len(anchors) - 1, min(1024, len(anchors))).round().long().unique()
    norm = float(bridge.output_norm.double().sum())  # the members' shares are folded in: they sum
    report = check_head(
        head,
        anchors[rows],
        centre=bridge.output_shift.detach().double().sum(0),
        factors=(),
        random_ranges=(),
        equalize_norm=norm,
    )
    if not report.irp_safe:
        changed = 1 - report.trials[-1].agreement
        warnings.warn(
            f"the head's decisions depend on the norms IRP replaces: setting the norms of {report.num_samples} target "
            f"anchors to the bridge's output norm {norm:.4g} changes {100 * changed:.1f}% of its predictions. Train the "
            "head on norm-equalised target embeddings, or fit the bridge with a direct method (method='procrustes' "
            "or 'linear'), which keeps norms; `hf-latent-bridge check-head` measures a head in full.",
            UserWarning,
            stacklevel=3,
        )


def check_source_encoder(
    encoder: Encoder, recorded: EncoderRef | None, source_dim: int, *, strict: bool = True
) -> None:
    """Refuse an encoder that is not the one the bridge was fitted on: dimension, modality and pooling
    always, the id and revision when ``strict``."""
    if not isinstance(encoder, Encoder):
        raise BridgeInputError(
            f"source_encoder must be an hf_latent_bridge Encoder (load_encoder(...) or CallableEncoder(...)), got "
            f"{type(encoder).__name__}."
        )
    got = encoder.ref
    hint = "" if recorded is None else f" Load it with {_load_call(recorded)}."
    problem = None
    if encoder.dim != source_dim:
        problem = f"gives {encoder.dim}-dimensional embeddings but the bridge takes {source_dim}"
    elif recorded is None:
        return
    elif recorded.modality and encoder.modality != recorded.modality:
        problem = f"embeds {encoder.modality} but the bridge was fitted on {recorded.modality}"
    elif recorded.pooling and got.pooling and recorded.pooling != got.pooling:
        problem = (
            f"pools with {got.pooling!r} but the bridge was fitted on {recorded.pooling!r}-pooled embeddings"
        )
    elif strict and not _same_name(recorded.name_or_path, got.name_or_path):
        problem = f"is not {recorded.name_or_path!r}, the bridge's source (if it is the same model, pass strict=False)"
    elif strict and recorded.revision and got.revision and recorded.revision != got.revision:
        problem = f"is at revision {got.revision!r} but the bridge was fitted at {recorded.revision!r}"
    if problem:
        raise IncompatibleEncoderError(f"the source encoder {got.name_or_path!r} {problem}.{hint}")


def _load_call(ref: EncoderRef) -> str:
    return f"load_encoder({ref.name_or_path!r}, revision={ref.revision!r}, pooling={ref.pooling!r})"


def _same_name(a: str, b: str) -> bool:
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def _merge_ref(recorded: EncoderRef | None, given: EncoderRef) -> EncoderRef:
    """Fill the gaps of the bridge's record with what the attached encoder knows."""
    if recorded is None:
        return given
    return replace(
        recorded,
        revision=recorded.revision or given.revision,
        pooling=recorded.pooling or given.pooling,
        modality=recorded.modality or given.modality,
        dim=recorded.dim or given.dim,
    )
