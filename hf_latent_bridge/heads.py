"""Classification heads on embeddings: a trained logistic head, or the classifier of an existing model.

:class:`ClassificationHead` is a linear layer ``logits = x W^T + b`` with ``id2label``. :meth:`fit` trains
it as multinomial logistic regression (L2 penalty, full-batch L-BFGS in float64, deterministic) on
standardised features and folds the standardisation back into ``W`` and ``b``. It saves as
``head.safetensors`` (tensors) plus ``head_config.json`` (labels, sizes, the pooling it expects).

:func:`head_from_classifier` takes the final linear classifier of an ``AutoModelFor…Classification``
and checks, on a probe input, which pooled embedding of the base model it acts on.
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

from .config import EncoderRef
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .validation import as_tensor, check_matrix

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


def _fit_logistic(
    z: torch.Tensor, y: torch.Tensor, num_labels: int, C: float, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Full-batch L-BFGS on the L2-penalised multinomial cross-entropy (float64, deterministic)."""
    n, d = z.shape
    params = torch.zeros(d + 1, num_labels, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * C * n)
    optimizer = torch.optim.LBFGS(
        [params],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = torch.addmm(params[d], z, params[:d])
        loss = torch.nn.functional.cross_entropy(logits, y) + penalty * params[:d].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
        final = float(closure().detach())
    state = optimizer.state[optimizer._params[0]]
    report = {"loss": round(final, 8), "iterations": int(state.get("n_iter", 0))}
    weight = params.detach()[:d].T.contiguous()
    bias = params.detach()[d].clone()
    return weight, bias, report


# ---------------------------------------------------------------------------------------------- from models
_PROBE_TOLERANCE = 1e-4


def head_from_classifier(model_or_path: Any, *, revision: str | None = None) -> ClassificationHead:
    """Use the final linear classifier of an ``AutoModelFor{Sequence,Image}Classification`` as a head.

    The classifier must be one ``nn.Linear`` applied to a pooled embedding of the base model. Which
    pooling (``pooler``, ``cls`` or ``mean``) is found on a probe input by comparing the model's logits
    with the linear layer applied to each candidate; the head records it in :attr:`pooling`, so load the
    target encoder with ``load_encoder(path, pooling=head.pooling)``.

    Raises:
        IncompatibleEncoderError: if the classifier is not a single linear layer on a pooled embedding
            (e.g. RoBERTa's dense + tanh + projection head), naming what was found.
    """
    model = _load_classifier(model_or_path, revision)
    name = model_or_path if isinstance(model_or_path, str) else getattr(model.config, "_name_or_path", "")
    linear = None
    for attr in ("classifier", "score", "fc", "head"):
        candidate = getattr(model, attr, None)
        if candidate is not None:
            linear = candidate
            break
    if not isinstance(linear, nn.Linear):
        found = type(linear).__name__ if linear is not None else "no classifier attribute"
        raise IncompatibleEncoderError(
            f"{name or type(model).__name__}: the classifier is {found}, not a single linear layer on a pooled "
            "embedding, so it cannot act on translated embeddings. Train a head on target embeddings with "
            "ClassificationHead.fit instead."
        )
    base = getattr(model, model.base_model_prefix, None)
    if base is None or base is model:
        raise IncompatibleEncoderError(f"{name}: cannot find the base model under the classifier.")
    pooling = _probe_pooling(model, base, linear)
    if pooling is None:
        raise IncompatibleEncoderError(
            f"{name or type(model).__name__}: its linear classifier does not act on the pooled output, the "
            "first token or the mean of tokens of the base model (checked on a probe input), so it cannot be "
            "used as a head on embeddings. Train one with ClassificationHead.fit."
        )
    config = model.config
    id2label = {int(k): v for k, v in config.id2label.items()} if config.id2label else None
    modality = "image" if getattr(config, "num_channels", None) is not None else "text"
    ref = EncoderRef(str(name), revision, pooling, modality, linear.in_features) if name else None
    head = ClassificationHead(
        linear.in_features,
        linear.out_features,
        id2label=id2label if id2label and len(id2label) == linear.out_features else None,
        pooling=pooling,
        encoder=ref,
        fit_report={"source": f"classifier of {type(model).__name__}"},
    )
    with torch.no_grad():
        head.weight.copy_(linear.weight.float())
        if linear.bias is not None:
            head.bias.copy_(linear.bias.float())
    return head


def _load_classifier(model_or_path: Any, revision: str | None) -> nn.Module:
    if isinstance(model_or_path, nn.Module):
        return model_or_path.eval()
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise BridgeInputError(
            f"pass a classification model or its Hub id / folder, got {type(model_or_path).__name__}."
        )
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(str(model_or_path), revision=revision)
    visual = getattr(config, "num_channels", None) is not None and getattr(config, "vocab_size", None) is None
    auto = AutoModelForImageClassification if visual else AutoModelForSequenceClassification
    try:
        return auto.from_pretrained(str(model_or_path), revision=revision).eval()
    except ValueError as error:
        raise IncompatibleEncoderError(
            f"{model_or_path} is not a {auto.__name__.removeprefix('AutoModelFor')} model ({error})."
        ) from error


@torch.no_grad()
def _probe_pooling(model: nn.Module, base: nn.Module, linear: nn.Linear) -> str | None:
    config = model.config
    generator = torch.Generator().manual_seed(0)
    param = next(model.parameters())
    if getattr(config, "num_channels", None) is not None and getattr(config, "vocab_size", None) is None:
        size = getattr(config, "image_size", 224)
        size = size if isinstance(size, int) else size[0]
        pixels = torch.randn(2, config.num_channels, size, size, generator=generator).to(
            param.device, param.dtype
        )
        inputs: dict[str, torch.Tensor] = {"pixel_values": pixels}
        mask = None
    else:
        vocab = int(config.vocab_size)
        ids = torch.randint(5, max(vocab, 6), (2, 7), generator=generator).to(param.device)
        mask = torch.ones_like(ids)
        mask[1, 5:] = 0
        inputs = {"input_ids": ids, "attention_mask": mask}
    logits = model(**inputs).logits
    out = base(**inputs, return_dict=True)
    candidates: dict[str, torch.Tensor] = {}
    if getattr(out, "pooler_output", None) is not None:
        candidates["pooler"] = out.pooler_output.flatten(1)
    hidden = out.last_hidden_state
    if hidden.ndim == 3:
        candidates["cls"] = hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype) if mask is not None else torch.ones_like(hidden[..., :1])
        candidates["mean"] = (hidden * m).sum(1) / m.sum(1)
    elif hidden.ndim == 4:
        candidates["mean"] = hidden.mean((2, 3))
    for pooling, pooled in candidates.items():
        if pooled.shape[-1] != linear.in_features:
            continue
        if torch.allclose(linear(pooled), logits, atol=_PROBE_TOLERANCE, rtol=_PROBE_TOLERANCE):
            return pooling
    return None
