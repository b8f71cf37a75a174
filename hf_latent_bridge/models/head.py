"""Classification heads on embeddings: a trained logistic head, or the classifier of an existing model.

:class:`ClassificationHead` is a linear layer ``logits = x W^T + b`` with ``id2label``. :meth:`fit` trains
it as multinomial logistic regression (L2 penalty, full-batch L-BFGS in float64, deterministic) on
standardised features and folds the standardisation back into ``W`` and ``b``. It saves as
``head.safetensors`` (tensors) plus ``head_config.json`` (labels, sizes, the pooling it expects).

"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..core.logistic import _fit_logistic
from ..core.validation import as_tensor, check_matrix
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError

HEAD_WEIGHTS_NAME = "head.safetensors"


HEAD_CONFIG_NAME = "head_config.json"


class ClassificationHead(nn.Module):
    """Linear classifier on embeddings of size ``input_dim`` with ``num_labels`` outputs.

    Args:
        input_dim / num_labels: shapes of ``weight`` ``(num_labels, input_dim)`` and ``bias``.
        id2label: class names by index (defaults to ``LABEL_i``).
        pooling: the pooling of the embeddings the head was trained on (checked against bridges).
        encoder: where those embeddings came from (an :class:`EncoderRef` as a dict), when known.
        fit_report: training diagnostics (loss, iterations, regularisation).
    """

    def __init__(
        self,
        input_dim: int,
        num_labels: int,
        *,
        id2label: dict[int, str] | None = None,
        pooling: str | None = None,
        encoder: EncoderRef | dict[str, Any] | str | None = None,
        fit_report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("num_labels", num_labels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BridgeInputError(f"{name} must be a positive integer, got {value!r}.")
        if num_labels < 2:
            raise BridgeInputError("a classification head needs at least 2 labels.")
        self.input_dim = input_dim
        self.num_labels = num_labels
        self.id2label = _check_id2label(id2label, num_labels)
        self.pooling = pooling
        ref = EncoderRef.from_any(encoder)
        self.encoder = None if ref is None else ref.to_dict()
        self.fit_report = fit_report
        self.weight = nn.Parameter(torch.zeros(num_labels, input_dim), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_labels), requires_grad=False)

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in self.id2label.items()}

    # ------------------------------------------------------------------ inference
    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_labels)`` for ``(n, input_dim)`` embeddings."""
        x = embeddings.to(device=self.weight.device, dtype=self.weight.dtype)
        return torch.addmm(self.bias, x, self.weight.T)

    def logits(self, embeddings: Any) -> torch.Tensor:
        """Checked logits for a tensor or array of embeddings."""
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings", self.input_dim)
        return self(x)

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
        """
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings")
        y = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels))
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise BridgeInputError(
                f"labels must be a 1-D sequence with one label per embedding row ({x.shape[0]}), "
                f"got shape {tuple(y.shape)}."
            )
        if y.is_floating_point() and not bool((y == y.round()).all()):
            raise BridgeInputError("labels must be integer class ids; map class names to ids first.")
        y = y.long()
        if bool((y < 0).any()):
            raise BridgeInputError("labels must be non-negative class ids.")
        if isinstance(id2label, (list, tuple)):
            id2label = dict(enumerate(id2label))
        num_labels = len(id2label) if id2label else int(y.max()) + 1
        if int(y.max()) >= num_labels:
            raise BridgeInputError(
                f"label {int(y.max())} is out of range for {num_labels} classes in id2label; fix id2label."
            )
        if int(torch.unique(y).numel()) < 2:
            raise BridgeInputError("labels hold a single class; a classifier needs at least two.")
        if not C > 0:
            raise BridgeInputError(f"C must be positive, got {C!r}.")

        x64 = x.detach().cpu().to(torch.float64)
        mean = x64.mean(0) if standardize else torch.zeros(x64.shape[1], dtype=torch.float64)
        std = x64.std(0, correction=0) if standardize else torch.ones(x64.shape[1], dtype=torch.float64)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        z = (x64 - mean) / std
        weight, bias, report = _fit_logistic(z, y, num_labels, C, max_iter, tol)
        head = cls(
            x.shape[1],
            num_labels,
            id2label=id2label,
            pooling=pooling,
            encoder=encoder,
            fit_report={**report, "C": C, "standardize": standardize, "num_samples": int(x.shape[0])},
        )
        folded_weight = weight / std
        folded_bias = bias - folded_weight @ mean
        with torch.no_grad():
            head.weight.copy_(folded_weight.to(torch.float32))
            head.bias.copy_(folded_bias.to(torch.float32))
        return head

    # ------------------------------------------------------------------ persistence
    def config_dict(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "num_labels": self.num_labels,
            "id2label": {str(k): v for k, v in self.id2label.items()},
            "pooling": self.pooling,
            "encoder": self.encoder,
            "fit_report": self.fit_report,
        }

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> ClassificationHead:
        try:
            id2label = {int(k): v for k, v in config["id2label"].items()}
            return cls(
                int(config["input_dim"]),
                int(config["num_labels"]),
                id2label=id2label,
                pooling=config.get("pooling"),
                encoder=config.get("encoder"),
                fit_report=config.get("fit_report"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(
                f"head config {config!r} is incomplete or malformed ({error}); re-save the head."
            ) from error

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write ``head.safetensors`` and ``head_config.json`` into ``save_directory``."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            "weight": self.weight.detach().cpu().contiguous(),
            "bias": self.bias.detach().cpu().contiguous(),
        }
        save_file(tensors, str(folder / HEAD_WEIGHTS_NAME), metadata={"format": "pt"})
        (folder / HEAD_CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> ClassificationHead:
        """Load a head written by :meth:`save_pretrained`; refuses missing, extra or mis-shaped tensors."""
        folder = Path(directory)
        config_file, weights_file = folder / HEAD_CONFIG_NAME, folder / HEAD_WEIGHTS_NAME
        if not config_file.is_file() or not weights_file.is_file():
            raise CheckpointError(
                f"{folder} holds no classification head ({HEAD_CONFIG_NAME} and {HEAD_WEIGHTS_NAME} are "
                "needed); save one with ClassificationHead.save_pretrained."
            )
        head = cls.from_config_dict(json.loads(config_file.read_text(encoding="utf-8")))
        try:
            tensors = load_file(str(weights_file))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"{weights_file} cannot be read ({error}); save the head again.") from error
        head.load_tensors(tensors, str(weights_file))
        return head

    def load_tensors(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        """Copy ``weight`` and ``bias`` in, refusing missing, unexpected or mis-shaped tensors."""
        expected = {"weight": tuple(self.weight.shape), "bias": tuple(self.bias.shape)}
        missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{where} is not a complete classification head (missing: {missing}, unexpected: "
                f"{unexpected}); re-save the head."
            )
        for key, shape in expected.items():
            if tuple(tensors[key].shape) != shape:
                raise CheckpointError(
                    f"{where}: tensor {key!r} has shape {tuple(tensors[key].shape)} but the config says {shape}."
                )
        with torch.no_grad():
            self.weight.copy_(tensors["weight"])
            self.bias.copy_(tensors["bias"])

    def extra_repr(self) -> str:
        return f"input_dim={self.input_dim}, num_labels={self.num_labels}, pooling={self.pooling!r}"


def _check_id2label(id2label: dict[int, str] | None, num_labels: int) -> dict[int, str]:
    if id2label is None:
        return {i: f"LABEL_{i}" for i in range(num_labels)}
    labels = {int(k): str(v) for k, v in id2label.items()}
    if sorted(labels) != list(range(num_labels)):
        raise BridgeInputError(
            f"id2label must name every class 0..{num_labels - 1} exactly once, got keys {sorted(labels)}."
        )
    return labels
