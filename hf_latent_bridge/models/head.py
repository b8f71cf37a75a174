"""ClassificationHead: a linear classifier on embeddings, trained here or taken from an existing model.

:class:`ClassificationHead` is a linear layer ``logits = x W^T + b`` with ``id2label``. :meth:`fit` trains
it as multinomial logistic regression (L2 penalty, full-batch L-BFGS in float64, deterministic) on
standardised features and folds the standardisation back into ``W`` and ``b``. It is a
``PreTrainedModel`` (model_type ``latent_classification_head``) and shares the package's one artifact
contract: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` as for bridges. Folders saved by
0.1.0 (``head.safetensors`` + ``head_config.json``) still load, with the same checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from transformers import initialization as init

from ..core.logistic import _fit_logistic
from ..core.options import check_non_negative, check_positive, check_positive_int
from ..core.validation import as_class_ids, as_tensor, check_matrix, power_of_two_scale
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError
from .cards import (
    REPO_PLACEHOLDER,
    CardInfo,
    classification_task,
    example_inputs,
    load_encoder_call,
    short_name,
)
from .checkpoint import CONFIG_NAME, build_config, compare_tensors, expected_tensors, read_header, read_json
from .configs import MAX_DIM, MAX_LABELS, ClassificationHeadConfig
from .hub_mixin import HubCardMixin, checked_name

#: Files of a head saved by hf_latent_bridge 0.1.0.
HEAD_WEIGHTS_NAME = "head.safetensors"


HEAD_CONFIG_NAME = "head_config.json"

#: More L-BFGS iterations than this never help a linear head (convergence takes tens to hundreds).
MAX_ITERATIONS = 100_000


class ClassificationHead(HubCardMixin, PreTrainedModel):
    """Linear classifier on embeddings of size ``input_dim`` with ``num_labels`` outputs.

    Build one with :meth:`fit`, :func:`~hf_latent_bridge.head_from_classifier`, from a
    :class:`~hf_latent_bridge.models.configs.ClassificationHeadConfig`, or as
    ``ClassificationHead(input_dim, num_labels, id2label=..., pooling=..., encoder=..., fit_report=...)``.

    Args:
        input_dim / num_labels: shapes of ``weight`` ``(num_labels, input_dim)`` and ``bias``.
        id2label: class names by index (defaults to ``LABEL_i``).
        pooling: the pooling of the embeddings the head was trained on (checked against bridges).
        encoder: where those embeddings came from (an :class:`EncoderRef` or its dict), when known.
        fit_report: training diagnostics (loss, iterations, regularisation).
    """

    config_class = ClassificationHeadConfig
    base_model_prefix = "classification_head"
    main_input_name = "embeddings"
    _keys_to_ignore_on_load_unexpected = None

    def __init__(
        self,
        config: ClassificationHeadConfig | int,
        num_labels: int | None = None,
        *,
        id2label: dict[int, str] | None = None,
        pooling: str | None = None,
        encoder: EncoderRef | dict[str, Any] | str | None = None,
        fit_report: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, ClassificationHeadConfig):
            config = _new_config(config, num_labels, id2label, pooling, encoder, fit_report)
        if config.input_dim is None:
            raise CheckpointError(
                "this ClassificationHeadConfig has no input_dim: it does not describe a head. Create heads "
                "with ClassificationHead.fit(embeddings, labels) or ClassificationHead(input_dim, num_labels)."
            )
        super().__init__(config)
        self.weight = nn.Parameter(torch.empty(config.num_labels, config.input_dim), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(config.num_labels), requires_grad=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Loading refuses checkpoints that miss a tensor, so these zeros only reach heads built by hand.
        if module is self:
            init.zeros_(self.weight)
            init.zeros_(self.bias)

    # ------------------------------------------------------------------ what it is
    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    @property
    def num_labels(self) -> int:
        return self.config.num_labels

    @property
    def id2label(self) -> dict[int, str]:
        return dict(self.config.id2label)

    @id2label.setter
    def id2label(self, id2label: dict[int, str] | list[str]) -> None:
        labels = dict(enumerate(id2label)) if isinstance(id2label, (list, tuple)) else id2label
        checked = ClassificationHeadConfig(input_dim=self.input_dim, id2label=labels)
        self.config.id2label, self.config.label2id = checked.id2label, checked.label2id

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in self.config.id2label.items()}

    @property
    def pooling(self) -> str | None:
        return self.config.pooling

    @property
    def encoder(self) -> dict[str, Any] | None:
        """Where the embeddings the head was trained on came from (an :class:`EncoderRef` as a dict)."""
        return self.config.encoder

    @property
    def fit_report(self) -> dict[str, Any] | None:
        return self.config.fit_report

    # ------------------------------------------------------------------ inference
    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_labels)`` for ``(n, input_dim)`` embeddings, in the head's dtype.

        Bad input (shape, NaN/Inf) raises :class:`BridgeInputError`; so do logits that are not finite,
        naming the cause (inputs too large, or a damaged weight)."""
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings", self.input_dim)
        logits = torch.addmm(
            self.bias, x.to(device=self.weight.device, dtype=self.weight.dtype), self.weight.T
        )
        if not bool(torch.isfinite(logits).all()):
            raise self._non_finite_error(x, "logits", "or compute in float64 (head.double())")
        return logits

    def logits(self, embeddings: Any) -> torch.Tensor:
        """Checked logits for a tensor or array of embeddings."""
        with torch.no_grad():
            return self(embeddings)

    def predict_proba(self, embeddings: Any) -> torch.Tensor:
        """Class probabilities (softmax of the logits)."""
        return torch.softmax(self.logits(embeddings).float(), dim=-1)

    def predict(self, embeddings: Any) -> torch.Tensor:
        """Most likely class index per row."""
        return self.logits(embeddings).argmax(-1)

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(
        cls,
        embeddings: Any,
        labels: Any,
        *,
        id2label: dict[int, str] | list[str] | None = None,
        C: float = 1.0,
        standardize: bool = True,
        max_iter: int = 500,
        tol: float = 1e-7,
        pooling: str | None = None,
        encoder: EncoderRef | dict[str, Any] | str | None = None,
        show_progress: bool = False,
    ) -> ClassificationHead:
        """Train a multinomial logistic-regression head.

        Minimises ``mean cross-entropy + ||W||^2 / (2 C n)`` (scikit-learn's ``LogisticRegression(C=C)``
        objective; the bias is not penalised) with full-batch L-BFGS in float64. With ``standardize``
        features are scaled to zero mean and unit variance first, and the scaling is folded into the
        saved weights, so the head takes raw embeddings.

        Args:
            embeddings: ``(n, d)`` training embeddings (target space).
            labels: ``(n,)`` integer class ids in ``0..num_labels-1``.
            id2label: class names (dict or list); defaults to the label ids present.
            C: inverse regularisation strength (> 0).
            show_progress: a progress bar of the solver's loss evaluations (tqdm), off by default.
        """
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings")
        n = x.shape[0]
        y = as_class_ids(labels, n)
        C, tol = check_positive("C", C), check_non_negative("tol", tol)
        max_iter = check_positive_int("max_iter", max_iter, MAX_ITERATIONS)
        if isinstance(id2label, (list, tuple)):
            id2label = dict(enumerate(id2label))
        if id2label is not None and not isinstance(id2label, dict):
            raise BridgeInputError(
                f"id2label must be a dict or a list of class names, got {type(id2label).__name__}."
            )
        largest = int(y.max())
        if id2label:
            num_labels = len(id2label)
            if largest >= num_labels:
                raise BridgeInputError(
                    f"label {largest} is out of range for {num_labels} classes in id2label; fix id2label."
                )
        elif largest >= max(n, 2):  # bounds the weights by the data's own size
            raise BridgeInputError(
                f"label {largest} implies {largest + 1} classes for {n} examples, so most classes would have "
                f"no example; number the {int(torch.unique(y).numel())} distinct labels 0..K-1, or pass id2label "
                "naming every class."
            )
        else:
            num_labels = largest + 1
        if int(torch.unique(y).numel()) < 2:
            raise BridgeInputError("labels hold a single class; a classifier needs at least two.")
        head = cls(  # checks id2label, pooling and encoder before any training
            x.shape[1], num_labels, id2label=id2label, pooling=pooling, encoder=encoder
        )

        x64 = x.detach().cpu().to(torch.float64)
        # Exact: standardisation sees the same digits at any scale. Without it the penalty's meaning
        # depends on the features' scale, which is the problem the caller asked for, so nothing is changed.
        unit = power_of_two_scale(x64) if standardize else 1.0
        x64 = x64 / unit
        mean = x64.mean(0) if standardize else torch.zeros(x64.shape[1], dtype=torch.float64)
        std = x64.std(0, correction=0) if standardize else torch.ones(x64.shape[1], dtype=torch.float64)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        z = (x64 - mean) / std
        with tqdm(
            total=int(max_iter * 1.25), desc="training head", disable=not show_progress, leave=False
        ) as bar:
            weight, bias, report = _fit_logistic(z, y, num_labels, C, max_iter, tol, lambda: bar.update())
        folded_weight = weight / std
        folded_bias = bias - folded_weight @ mean
        folded_weight = folded_weight / unit
        stored = folded_weight.to(torch.float32), folded_bias.to(torch.float32)
        if not all(bool(torch.isfinite(t).all()) for t in stored):
            raise BridgeInputError(
                "training the head diverged (its weights are not finite in float32); keep standardize=True, "
                "lower C, or rescale the embeddings."
            )
        head.config.fit_report = {**report, "C": C, "standardize": standardize, "num_samples": int(n)}
        with torch.no_grad():
            head.weight.copy_(stored[0])
            head.bias.copy_(stored[1])
        return head.eval()

    # ------------------------------------------------------------------ sharing
    def card_info(self) -> CardInfo:
        encoder = EncoderRef.from_any(self.encoder)
        labels = [self.config.id2label[i] for i in range(self.num_labels)]
        parameters: dict[str, Any] = {"input dimension": self.input_dim, "classes": self.num_labels}
        report = self.fit_report or {}
        for key, label in (
            ("C", "C (inverse L2 strength)"),
            ("num_samples", "training examples"),
            ("source", "taken from"),
        ):
            if key in report:
                parameters[label] = report[key]
        parameters["library version"] = self.config.library_version
        imports, inputs = example_inputs(encoder)
        return CardInfo(
            title=f"Classification head: {self.num_labels} classes on {short_name(encoder)} embeddings",
            summary=(
                "A linear classifier (multinomial logistic regression) on one encoder's embeddings. Use it on "
                "that encoder's embeddings, or on another encoder's embeddings translated by a latent bridge "
                "into this encoder's space (`StitchedModel.from_parts(bridge, head)`)."
            ),
            usage=(
                f"{imports}from hf_latent_bridge import ClassificationHead, load_encoder\n\n"
                f'head = ClassificationHead.from_pretrained("{REPO_PLACEHOLDER}")\n'
                f"encoder = {load_encoder_call(encoder, self.pooling)}\n"
                f"probabilities = head.predict_proba(encoder.embed({inputs}))\n"
                "labels = [head.id2label[int(i)] for i in probabilities.argmax(-1)]"
            ),
            source=encoder,
            parameters=parameters,
            classes=labels,
            metrics=self.config.metrics or {},
            task=classification_task(encoder),
            tags=["latent-bridge", "classification-head"],
            limitations=(
                "The head is only as good as the embeddings it gets: feed it embeddings of the encoder (and "
                "pooling) it was trained on, or of a bridge whose target is that encoder."
            ),
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """Load a head (local folder or Hub repo, ``revision=``, ``subfolder=``), with the strict checks of
        every model of the package; a folder saved by 0.1.0 (``head_config.json`` + ``head.safetensors``)
        loads too."""
        folder = Path(checked_name(pretrained_model_name_or_path)) / str(kwargs.get("subfolder") or "")
        if (folder / HEAD_CONFIG_NAME).is_file() and not (folder / CONFIG_NAME).exists():
            return cls._from_v0_1_0(folder, wants_info=kwargs.get("output_loading_info", False))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_v0_1_0(cls, folder: Path, wants_info: bool = False):
        where = str(folder)
        weights = folder / HEAD_WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(
                f"{where} has {HEAD_CONFIG_NAME} but no {HEAD_WEIGHTS_NAME}; save the head again."
            )
        fields = read_json(folder / HEAD_CONFIG_NAME, where)
        config = build_config(ClassificationHeadConfig.from_fields, fields, where)
        compare_tensors(expected_tensors(cls, config, where), read_header(weights, where), where)
        try:
            tensors = load_file(str(weights))
        except SafetensorError as error:
            raise CheckpointError(f"{weights} cannot be read ({error}); save the head again.") from error
        head = cls(config)
        head.load_state_dict(tensors, strict=True)
        head._check_loaded_tensors(where)
        head.eval()
        info = {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        return (head, info) if wants_info else head

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, num_labels={self.num_labels}, pooling={self.pooling!r}"


def check_output(values: torch.Tensor, name: str) -> torch.Tensor:
    """``values`` if all finite; else :class:`BridgeInputError` (inputs too large for the weights).

    Models check their own outputs and name the cause (see ``HubCardMixin._non_finite_error``); this is
    the last guard of code that combines them."""
    if not bool(torch.isfinite(values).all()):
        raise BridgeInputError(
            f"computing the {name} overflowed to Inf or NaN: the inputs are too large for this model's weights "
            "(or the weights are damaged). Check the inputs' scale, or reload the model."
        )
    return values


def _new_config(
    input_dim: Any,
    num_labels: Any,
    id2label: dict[int, str] | None,
    pooling: str | None,
    encoder: EncoderRef | dict[str, Any] | str | None,
    fit_report: dict[str, Any] | None,
) -> ClassificationHeadConfig:
    input_dim = check_positive_int("input_dim", input_dim, MAX_DIM)
    num_labels = check_positive_int("num_labels", num_labels, MAX_LABELS)
    if num_labels < 2:
        raise BridgeInputError("a classification head needs at least 2 labels.")
    if id2label is None:
        id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    if isinstance(id2label, (list, tuple)):
        id2label = dict(enumerate(id2label))
    try:
        labels = {int(k): v for k, v in id2label.items()}
    except (TypeError, ValueError, AttributeError):
        raise BridgeInputError(f"id2label must map class indices to names, got {id2label!r}.") from None
    if sorted(labels) != list(range(num_labels)):
        raise BridgeInputError(
            f"id2label must name every class 0..{num_labels - 1} exactly once, got keys {sorted(labels)}."
        )
    return ClassificationHeadConfig(
        input_dim=input_dim,
        id2label=labels,
        pooling=pooling,
        encoder=EncoderRef.from_any(encoder),
        fit_report=fit_report,
    )
