"""StitchedModel: source encoder + LatentBridge + classification head, shareable as one repo.

The repo holds ``config.json`` (the bridge's config, the head's config with ``id2label``, and the source
encoder's id, revision and pooling) and ``model.safetensors`` with the bridge's tensors (``bridge.*``) and
the head's (``head.*``). The source encoder is *not* saved: it is loaded by the recorded id and revision
on first use, or attached with ``source_encoder=`` (offline or custom encoders) after a compatibility
check that runs before any compute.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..core.validation import as_tensor, check_matrix
from ..encoding.base import Encoder
from ..encoding.clip import ClipTowerEncoder
from ..encoding.loading import load_encoder
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, EncoderLoadError, IncompatibleEncoderError
from .bridge import LatentBridge
from .cards import REPO_PLACEHOLDER, CardInfo, classification_task, example_inputs
from .configs import LatentBridgeConfig, StitchedConfig
from .from_encoders import fit_from_encoders
from .head import ClassificationHead, check_output
from .hub_mixin import HubCardMixin


class StitchedModel(HubCardMixin, PreTrainedModel):
    """Classify inputs of a source encoder with a head trained in another encoder's space.

    Build one with :meth:`from_parts` (bridge + head [+ source encoder]); save and load it with
    ``save_pretrained`` / ``from_pretrained`` (``source_encoder=`` attaches an encoder instead of loading
    the recorded one). ``forward`` takes source embeddings; :meth:`classify` takes raw inputs.
    """

    config_class = StitchedConfig
    base_model_prefix = "stitched"
    main_input_name = "embeddings"
    _keys_to_ignore_on_load_unexpected = None

    def __init__(self, config: StitchedConfig) -> None:
        super().__init__(config)
        self.bridge = LatentBridge(config.bridge_config)
        self.head = ClassificationHead(config.head_config)
        _check_head_fits(self.bridge.config, self.head)
        self._source_encoder: Encoder | None = None
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # The parts initialise themselves; loading refuses checkpoints that miss any tensor.
        if module is not self and isinstance(module, (LatentBridge, ClassificationHead)):
            module._init_weights(module)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_parts(
        cls,
        bridge: LatentBridge,
        head: ClassificationHead,
        *,
        source_encoder: Encoder | None = None,
        strict: bool = True,
    ) -> StitchedModel:
        """Combine a fitted bridge and a head (trained on the bridge's target space).

        Raises :class:`IncompatibleEncoderError` if the head's input size or pooling does not match the
        bridge's target, or if ``source_encoder`` disagrees with the bridge's recorded source.
        """
        if not isinstance(bridge, LatentBridge):
            raise BridgeInputError(f"bridge must be a LatentBridge, got {type(bridge).__name__}.")
        if not isinstance(head, ClassificationHead):
            raise BridgeInputError(
                f"head must be a ClassificationHead (see ClassificationHead.fit or head_from_classifier), "
                f"got {type(head).__name__}."
            )
        _check_head_fits(bridge.config, head)
        _warn_if_head_needs_norms(bridge, head)
        recorded = bridge.config.source
        if source_encoder is not None:
            check_source_encoder(source_encoder, recorded, bridge.config.source_dim, strict=strict)
            recorded = _merge_ref(recorded, source_encoder.ref)
        config = StitchedConfig(
            bridge=bridge.config.to_diff_dict(),
            head=head.config.fields(),
            source_encoder=None if recorded is None else recorded.to_dict(),
            source_tower=source_encoder.tower if isinstance(source_encoder, ClipTowerEncoder) else None,
            id2label=dict(head.id2label),
            label2id=head.label2id,
        )
        model = cls(config)
        with torch.no_grad():
            model.bridge.to(bridge.dtype)
            model.bridge.load_state_dict(bridge.state_dict(), strict=True)
            model.head.load_state_dict(head.state_dict(), strict=True)
        if source_encoder is not None:
            model._source_encoder = source_encoder
        return model.eval()

    @classmethod
    def from_encoders(cls, source: Any, target: Any, data: Any, **options: Any) -> StitchedModel:
        """Build a stitched classifier from two encoders and labelled data, in one call.

        Embeds the data once per encoder (cached), selects anchors among the train rows, fits the bridge,
        trains a head on the target's embeddings (or takes ``head=``: a :class:`ClassificationHead` or a
        transformers classifier), and scores the result on held-out rows; the scores go on the model card.

        Example::

            model = StitchedModel.from_encoders(
                "sentence-transformers/all-MiniLM-L6-v2",   # source: what users will run
                "sentence-transformers/all-mpnet-base-v2",  # target: whose space the head lives in
                "data.jsonl", text_column="text", label_column="topic", num_anchors=1000,
            )

        ``source`` and ``target`` are Hub ids (``source_revision=``...), local folders (``source_id=`` names
        the Hub model a folder holds), :class:`Encoder` s or ``SentenceTransformer`` objects; ``data`` is a
        ``datasets.Dataset``, a Hub data set id or a JSONL/CSV/Parquet file. Every option of
        :func:`~hf_latent_bridge.models.from_encoders.fit_from_encoders` is accepted; ``label_column`` is
        required.
        """
        if options.get("label_column") is None:
            raise BridgeInputError(
                "StitchedModel.from_encoders needs labelled data: pass label_column= (the class column)."
            )
        fitted = fit_from_encoders(source, target, data, **options)
        model = cls.from_parts(fitted.bridge, fitted.head, source_encoder=fitted.source_encoder)
        model.config.metrics = dict(fitted.metrics)
        return model

    # ------------------------------------------------------------------ source encoder
    def attach_source_encoder(self, encoder: Encoder, *, strict: bool = True) -> None:
        """Use ``encoder`` as the source encoder after checking it against the bridge's record."""
        check_source_encoder(encoder, self.config.source, self.bridge.config.source_dim, strict=strict)
        self._source_encoder = encoder

    @property
    def source_encoder(self) -> Encoder:
        """The attached encoder, or the recorded one loaded (once) by id, revision and pooling."""
        if self._source_encoder is None:
            ref = self.config.source
            if ref is None:
                raise IncompatibleEncoderError(
                    "this stitched model records no source encoder; pass source_encoder=load_encoder(...) "
                    "(e.g. to pipeline(...) or StitchedModel.from_pretrained)."
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
            except EncoderLoadError as error:
                name = self.config._name_or_path or "this stitched model"
                raise EncoderLoadError(
                    f"{name} embeds its inputs with {ref.name_or_path!r} at revision "
                    f"{ref.revision or '(unpinned)'}, which cannot be loaded here ({error}). Either pass the "
                    "encoder yourself: pipeline(..., source_encoder=load_encoder(LOCAL_COPY)) or "
                    "StitchedModel.from_pretrained(..., source_encoder=...), adding strict=False if your copy "
                    "is saved under another name; or make the recorded encoder loadable (online once, or "
                    "a token for a private repo) so that it is cached."
                ) from error
            check_source_encoder(encoder, ref, self.bridge.config.source_dim, strict=True)
            self._source_encoder = encoder
        return self._source_encoder

    # ------------------------------------------------------------------ inference
    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, embeddings: torch.Tensor) -> SequenceClassifierOutput:
        """Source embeddings ``(n, d_source)`` -> bridge -> head logits ``(n, num_labels)``."""
        return SequenceClassifierOutput(logits=self.head(self.bridge(embeddings)))

    def logits_from_embeddings(self, embeddings: Any) -> torch.Tensor:
        """Checked :meth:`forward` on a tensor or array of source embeddings."""
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings", self.bridge.config.source_dim)
        with torch.inference_mode():
            logits = self(x.to(self.device)).logits.float().cpu()
        return check_output(logits, "logits")

    def classify(
        self, inputs: Any, *, batch_size: int = 32, show_progress: bool | None = None
    ) -> torch.Tensor:
        """Logits for raw inputs (texts or images), embedded by the source encoder."""
        encoder = self.source_encoder
        items = encoder.check_inputs(inputs)
        embeddings = encoder.embed(items, batch_size=batch_size, show_progress=show_progress)
        return self.logits_from_embeddings(embeddings)

    def predict_proba(self, inputs: Any, *, batch_size: int = 32) -> torch.Tensor:
        """Class probabilities for raw inputs."""
        return torch.softmax(self.classify(inputs, batch_size=batch_size), dim=-1)

    # ------------------------------------------------------------------ sharing (card, loading checks)
    def card_info(self) -> CardInfo:
        """The model card: the pipeline call, the classes, measured results, the bridge's details."""
        info = self.bridge.card_info()
        source = self.config.source or info.source
        if source is not None and source.dim is None:
            source = replace(source, dim=self.bridge.config.source_dim)
        classes = [self.config.id2label[i] for i in range(len(self.config.id2label))]
        _, inputs = example_inputs(source)
        imports = "from PIL import Image\n" if source is not None and source.modality == "image" else ""
        info.title = "Stitched classifier: " + info.title.split(": ", 1)[1]
        info.summary = (
            "A classifier for the source encoder obtained without training: the source encoder's embeddings "
            "are translated by a latent bridge into the target encoder's space, where a classification head "
            "trained on the target encoder classifies them. The source encoder is loaded by the recorded id "
            "and revision; only the bridge and the head are stored here."
        )
        info.usage = (
            f"{imports}import hf_latent_bridge  # registers the stitched-classification task\n"
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("stitched-classification", model="{REPO_PLACEHOLDER}")\n'
            f"classifier({inputs[1:-1]})"
        )
        info.source = source
        info.classes = classes
        info.parameters["classes"] = len(classes)
        info.metrics = self.config.metrics or self.bridge.config.metrics or {}
        info.task = classification_task(source)
        info.tags = ["latent-bridge", "stitched-classification"]
        return info

    def _check_loaded_tensors(self, where: str) -> None:
        """The bridge's and the head's checks."""
        super()._check_loaded_tensors(where)
        self.bridge._check_loaded_tensors(f"{where} (bridge)")
        self.head._check_loaded_tensors(f"{where} (head)")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> StitchedModel:
        """Load a stitched model; refuses missing or unexpected tensors.

        Extra keyword arguments: ``source_encoder`` (an :class:`Encoder` to attach instead of loading
        the recorded one) and ``strict`` (``False`` accepts a source encoder recorded under another
        name, still checking dimension, modality and pooling).
        """
        source_encoder = kwargs.pop("source_encoder", None)
        strict = kwargs.pop("strict", True)
        wants_info = kwargs.pop("output_loading_info", False)
        # The hub mixin downloads, checks the model type and refuses missing or unexpected tensors.
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
        )
        if source_encoder is not None:
            model.attach_source_encoder(source_encoder, strict=strict)
        model.eval()
        return (model, info) if wants_info else model


def _check_head_fits(bridge_config: LatentBridgeConfig, head: ClassificationHead) -> None:
    if head.input_dim != bridge_config.target_dim:
        raise IncompatibleEncoderError(
            f"the head takes {head.input_dim}-dimensional embeddings but the bridge outputs "
            f"{bridge_config.target_dim}; train the head on embeddings of the bridge's target encoder."
        )
    target = bridge_config.target
    if head.pooling and target is not None and target.pooling and head.pooling != target.pooling:
        raise IncompatibleEncoderError(
            f"the head was trained on {head.pooling!r}-pooled embeddings but the bridge's target uses "
            f"{target.pooling!r} pooling; fit the bridge on target embeddings pooled with {head.pooling!r}."
        )


def _warn_if_head_needs_norms(bridge: LatentBridge, head: ClassificationHead) -> None:
    """Warn when the head's decisions on the target anchors change once IRP sets their norms."""
    from ..core.scale_invariance import quick_scale_check

    norms = bridge.output_norm.detach().double()
    if not bool((norms > 0).all()):
        return  # the direct methods keep norms: nothing is restored
    centre, norm = bridge.output_shift.detach().double().mean(0), float(norms.mean())
    report = quick_scale_check(head, bridge.target_anchors.detach(), centre, norm)
    if not report.irp_safe:
        changed = 1 - next(t for t in report.trials if t.kind == "equalize").agreement
        warnings.warn(
            f"the head's decisions depend on the norms that IRP replaces: setting the norms of "
            f"{report.num_samples} target anchors to the bridge's output norm {norm:.4g} (about their mean) "
            f"changes {100 * changed:.1f}% of its predictions, so translated embeddings will be classified "
            "differently. Train the head on norm-equalised target embeddings "
            "(hf_latent_bridge.core.scale_invariance.equalize_norms(x, bridge.output_shift[0], "
            "bridge.output_norm[0])), or fit the bridge with a direct method (method='procrustes' or "
            "'linear'), which keeps norms. `hf-latent-bridge check-head` measures a head in full.",
            UserWarning,
            stacklevel=3,
        )


def _same_name(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return False


def check_source_encoder(
    encoder: Encoder, recorded: EncoderRef | None, source_dim: int, *, strict: bool = True
) -> None:
    """Raise :class:`IncompatibleEncoderError` if ``encoder`` is not the one the bridge was fitted on.

    Checks dimension, modality and pooling always, and the id and revision when ``strict``.
    """
    if not isinstance(encoder, Encoder):
        raise BridgeInputError(
            f"source_encoder must be an hf_latent_bridge Encoder (load_encoder(...) or CallableEncoder(...)), "
            f"got {type(encoder).__name__}."
        )
    got = encoder.ref
    hint = (
        f" Load it with load_encoder({recorded.name_or_path!r}, revision={recorded.revision!r}, "
        f"pooling={recorded.pooling!r})."
        if recorded is not None
        else ""
    )
    if encoder.dim != source_dim:
        raise IncompatibleEncoderError(
            f"the source encoder {got.name_or_path!r} gives {encoder.dim}-dimensional embeddings but the "
            f"bridge takes {source_dim}.{hint}"
        )
    if recorded is None:
        return
    if recorded.modality and encoder.modality != recorded.modality:
        raise IncompatibleEncoderError(
            f"the bridge was fitted on {recorded.modality} embeddings but {got.name_or_path!r} embeds "
            f"{encoder.modality}.{hint}"
        )
    if recorded.pooling and got.pooling and recorded.pooling != got.pooling:
        raise IncompatibleEncoderError(
            f"the bridge was fitted on {recorded.pooling!r}-pooled embeddings but the encoder pools with "
            f"{got.pooling!r}.{hint}"
        )
    if strict and not _same_name(recorded.name_or_path, got.name_or_path):
        raise IncompatibleEncoderError(
            f"the bridge was fitted on embeddings of {recorded.name_or_path!r} but the encoder given is "
            f"{got.name_or_path!r}.{hint} If it is the same model under another name, pass strict=False."
        )
    if strict and recorded.revision and got.revision and recorded.revision != got.revision:
        raise IncompatibleEncoderError(
            f"the bridge was fitted on {recorded.name_or_path!r} at revision {recorded.revision!r} but the "
            f"encoder is at {got.revision!r}.{hint}"
        )


def _merge_ref(recorded: EncoderRef | None, given: EncoderRef) -> EncoderRef:
    """Fill the gaps of the bridge's record with what the attached encoder knows."""
    if recorded is None:
        return given
    return EncoderRef(
        name_or_path=recorded.name_or_path,
        revision=recorded.revision or given.revision,
        pooling=recorded.pooling or given.pooling,
        modality=recorded.modality or given.modality,
        dim=recorded.dim or given.dim,
    )
