"""ClassificationHead: a linear classifier on embeddings, trained here or taken from an existing model.

``logits = x W^T + b`` with classes ``id2label``. :meth:`ClassificationHead.fit` trains it as
multinomial logistic regression (L2 penalty, full-batch L-BFGS in float64, deterministic) on standardised
features and folds the standardisation back into ``W`` and ``b``, so the head takes raw embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..core.logistic import fit_logistic
from ..core.options import check
from ..core.validation import as_class_ids, as_tensor, binary_unit, check_matrix
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError
from .artifact import ArtifactMixin
from .cards import (
    REPO_PLACEHOLDER,
    CardInfo,
    classification_task,
    example_inputs,
    load_encoder_call,
    short_name,
)
from .configs import ClassificationHeadConfig


class ClassificationHead(ArtifactMixin, PreTrainedModel):
    """A linear classifier on ``input_dim``-dimensional embeddings.

    Build one with :meth:`fit`, :meth:`from_linear` or :func:`~hf_latent_bridge.head_from_classifier`.
    """

    config_class = ClassificationHeadConfig
    base_model_prefix = "classification_head"
    main_input_name = "embeddings"

    def __init__(self, config: ClassificationHeadConfig) -> None:
        super().__init__(config)
        if config.input_dim is None:
            raise BridgeInputError(
                "this config has no input_dim: it does not describe a head. Create heads with "
                "ClassificationHead.fit(embeddings, labels) or ClassificationHead.from_linear(weight, bias)."
            )
        dtype = config.dtype or torch.float32
        self.weight = nn.Parameter(
            torch.empty(config.num_labels, config.input_dim, dtype=dtype), requires_grad=False
        )
        self.bias = nn.Parameter(torch.empty(config.num_labels, dtype=dtype), requires_grad=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Loading refuses checkpoints that miss a tensor, so these zeros never reach a user.
        if module is self:
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)

    @classmethod
    def from_linear(
        cls,
        weight: Any,
        bias: Any = None,
        *,
        id2label: dict[int, str] | list[str] | None = None,
        pooling: str | None = None,
        encoder: Any = None,
        fit_report: dict[str, Any] | None = None,
    ) -> ClassificationHead:
        """A head from a ``(num_labels, input_dim)`` weight and an optional ``(num_labels,)`` bias."""
        w = check_matrix(as_tensor(weight, "weight"), "weight")
        b = torch.zeros(len(w)) if bias is None else as_tensor(bias, "bias").flatten()
        if len(b) != len(w):
            raise BridgeInputError(f"bias has {len(b)} values for a weight of {len(w)} classes.")
        if id2label is None:
            id2label = [f"LABEL_{i}" for i in range(len(w))]
        labels = dict(enumerate(id2label)) if isinstance(id2label, (list, tuple)) else dict(id2label)
        if len(labels) != len(w):
            raise BridgeInputError(f"id2label names {len(labels)} classes but the weight has {len(w)} rows.")
        config = ClassificationHeadConfig(
            input_dim=w.shape[1], id2label=labels, pooling=pooling, encoder=encoder, fit_report=fit_report
        )
        head = cls(config)
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b)
        return head.eval()

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
        encoder: Any = None,
        show_progress: bool = False,
    ) -> ClassificationHead:
        """Train a multinomial logistic-regression head on ``(n, d)`` target embeddings and class ids.

        Minimises ``mean cross-entropy + ||W||^2 / (2 C n)`` (scikit-learn's ``LogisticRegression(C=C)``
        objective; the bias is not penalised) with full-batch L-BFGS in float64. With ``standardize`` the
        features are scaled to zero mean and unit variance first, the scaling folded into the weights.
        ``id2label`` names the classes (default: ``LABEL_i`` for each id up to the largest).
        """
        x = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings")
        y = as_class_ids(labels, len(x))
        C, max_iter, tol = check("C", C), check("max_iter", max_iter), check("tol", tol)
        num_labels = len(id2label) if id2label is not None else int(y.max()) + 1
        if (
            int(y.max()) >= num_labels
            or len(torch.unique(y)) < 2
            or (id2label is None and num_labels > max(len(x), 2))
        ):
            raise BridgeInputError(
                f"labels must hold at least two classes, numbered 0..K-1 (K = {num_labels} from id2label or the "
                f"largest label, for {len(x)} examples); number the classes densely or pass id2label naming each."
            )
        x64 = x.detach().cpu().double()
        unit = binary_unit(x64) if standardize else 1.0  # exact: the same digits at any scale
        x64 = x64 / unit
        mean = x64.mean(0) if standardize else torch.zeros(x64.shape[1], dtype=torch.float64)
        std = x64.std(0, correction=0) if standardize else torch.ones(x64.shape[1], dtype=torch.float64)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        with tqdm(
            total=int(max_iter * 1.25), desc="training head", disable=not show_progress, leave=False
        ) as bar:
            weight, bias, report = fit_logistic(
                (x64 - mean) / std, y, num_labels, C, max_iter, tol, bar.update
            )
        weight = weight / std
        bias = bias - weight @ mean
        head = cls.from_linear(
            (weight / unit).float(),
            bias.float(),
            id2label=id2label or [f"LABEL_{i}" for i in range(num_labels)],
            pooling=pooling,
            encoder=encoder,
            fit_report={**report, "C": C, "standardize": standardize, "num_samples": len(x)},
        )
        if not bool(torch.isfinite(head.weight).all() and torch.isfinite(head.bias).all()):
            raise BridgeInputError(
                "training the head diverged; keep standardize=True, lower C, or rescale the embeddings."
            )
        return head

    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    @property
    def num_labels(self) -> int:
        return self.config.num_labels

    @property
    def id2label(self) -> dict[int, str]:
        return dict(self.config.id2label)

    @property
    def label2id(self) -> dict[str, int]:
        return dict(self.config.label2id)

    @property
    def pooling(self) -> str | None:
        return self.config.pooling

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_labels)`` of a checked ``(n, input_dim)`` tensor, in the head's dtype."""
        logits = torch.addmm(self.bias, embeddings.to(self.weight), self.weight.T)
        if not bool(torch.isfinite(logits).all()):
            raise BridgeInputError(
                f"the logits overflowed {self.dtype}: the embeddings are too large for this head (largest |value| "
                f"{float(embeddings.abs().max()):.3g}); rescale them, or compute in float64 (head.double())."
            )
        return logits

    def logits(self, embeddings: Any) -> torch.Tensor:
        """Logits of a tensor or array of embeddings, checked."""
        x = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings", self.input_dim)
        with torch.no_grad():
            return self(x)

    def predict_proba(self, embeddings: Any) -> torch.Tensor:
        return torch.softmax(self.logits(embeddings).float(), dim=-1)

    def predict(self, embeddings: Any) -> torch.Tensor:
        return self.logits(embeddings).argmax(-1)

    def card_info(self) -> CardInfo:
        encoder = EncoderRef.from_any(self.config.encoder)
        report = self.config.fit_report or {}
        parameters: dict[str, Any] = {"input dimension": self.input_dim, "classes": self.config.num_labels}
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
            title=f"Classification head: {self.config.num_labels} classes on {short_name(encoder)} embeddings",
            summary=(
                "A linear classifier (multinomial logistic regression) on one encoder's embeddings. Use it on that "
                "encoder's embeddings, or on another encoder's translated into this space by a latent bridge "
                "(`StitchedModel.from_parts(bridge, head)`)."
            ),
            usage=(
                f"{imports}from hf_latent_bridge import ClassificationHead, load_encoder\n\n"
                f'head = ClassificationHead.from_pretrained("{REPO_PLACEHOLDER}")\n'
                f"encoder = {load_encoder_call(encoder, self.pooling)}\n"
                f"labels = [head.id2label[int(i)] for i in head.predict(encoder.embed({inputs}))]"
            ),
            source=encoder,
            parameters=parameters,
            classes=[self.config.id2label[i] for i in range(self.config.num_labels)],
            metrics=self.config.metrics or {},
            task=classification_task(encoder),
            tags=["latent-bridge", "classification-head"],
            limitations=(
                "The head is only as good as the embeddings it gets: feed it embeddings of the encoder (and pooling) "
                "it was trained on, or of a bridge whose target is that encoder."
            ),
        )
