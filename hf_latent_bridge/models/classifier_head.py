"""Using the final linear classifier of an existing transformers classification model as a head."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, IncompatibleEncoderError
from .head import ClassificationHead

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
    labels = {int(k): v for k, v in (config.id2label or {}).items()}
    modality = "image" if getattr(config, "num_channels", None) is not None else "text"
    ref = EncoderRef(str(name), revision, pooling, modality, linear.in_features) if name else None
    return ClassificationHead.from_linear(
        linear.weight.detach().float(),
        None if linear.bias is None else linear.bias.detach().float(),
        id2label=labels if len(labels) == linear.out_features else None,
        pooling=pooling,
        encoder=ref,
        fit_report={"source": f"classifier of {type(model).__name__}"},
    )


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
