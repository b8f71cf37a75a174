"""``load_encoder``: a Hub id or a local folder at a pinned revision, as the right :class:`Encoder`."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .base import Encoder
from .clip import ClipTowerEncoder
from .inputs import MODALITIES
from .provenance import portable_name
from .sentence_transformer import (
    SentenceTransformerEncoder,
    is_sentence_transformer,
    read_sentence_transformers_config,
)
from .text import TextEncoder
from .vision import VisionEncoder


def load_encoder(
    name_or_path: str,
    *,
    revision: str | None = None,
    pooling: str | None = None,
    modality: str | None = None,
    tower: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    hub_id: str | None = None,
) -> Encoder:
    """Load a Hub model id (at ``revision``) or a local folder as an :class:`Encoder`.

    * Text models (AutoModel + AutoTokenizer): pooling ``mean`` (default), ``cls``, ``max`` or ``pooler``.
      A sentence-transformers folder's own pooling, normalisation and ``max_seq_length`` are used
      unless ``pooling`` is given.
    * Vision models (AutoModel + AutoImageProcessor): ``pooler`` (default when the model has one) or
      ``mean`` / ``cls`` of the tokens.
    * CLIP-style dual encoders: ``tower="text"`` or ``"image"``; pooling ``projection`` (default) or
      ``pooler``.

    ``modality`` overrides the guess from the model config. Remote code runs only with
    ``trust_remote_code=True``.

    The encoder's :attr:`~Encoder.ref` names it portably (see :mod:`.provenance`): a Hub id is pinned to
    the commit its weights came from; a local folder is named by ``hub_id`` or by the Hub id it proves.
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise BridgeInputError(f"name_or_path must be a Hub id or a folder, got {name_or_path!r}.")
    if modality is not None and modality not in MODALITIES:
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    name = str(name_or_path)
    if Path(name).expanduser().is_file():
        raise CheckpointError(
            f"cannot load encoder {name!r}: it is a file; pass the folder that holds the model's config.json, "
            "or a Hub id."
        )
    hub = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except (OSError, ValueError) as error:  # unknown ids, revisions, cache misses, folders without a model
        where = f"{name!r}" + (f" at revision {revision!r}" if revision else "")
        reason = " ".join(str(error).split()).split(". ")[0][:300]
        raise CheckpointError(
            f"cannot load encoder {where} ({reason}). Pass a local model folder or a Hub id that is cached or "
            "reachable (offline: HF_HUB_OFFLINE=1 needs it in the cache)."
        ) from error
    if hasattr(config, "text_config") and hasattr(config, "vision_config"):
        tower = tower or modality
        if tower not in MODALITIES:
            raise BridgeInputError(
                f"{name} is a dual (text and image) encoder; choose its tower with tower='text' or 'image'."
            )
    elif tower is not None:
        raise BridgeInputError(f"tower= applies to CLIP-style dual encoders only; {name} has one tower.")
    kind = tower or ("image" if _looks_visual(config) else "text")
    if modality is not None and modality != kind:
        raise IncompatibleEncoderError(
            f"{name} embeds {kind}, not {modality} (its config is a {type(config).__name__}); "
            "load an encoder of the right modality."
        )
    # a sentence-transformers folder's recipe, read before any weights are
    recipe = (read_sentence_transformers_config(name, revision) or {}) if kind == "text" and not tower else {}
    model = AutoModel.from_pretrained(name, **hub)
    tokenizer = AutoTokenizer.from_pretrained(name, **hub) if kind == "text" else None
    processor = AutoImageProcessor.from_pretrained(name, **hub) if kind == "image" else None
    where = {"name_or_path": name, "revision": revision}
    if tower is not None:
        encoder: Encoder = ClipTowerEncoder(
            model,
            tower=tower,
            tokenizer=tokenizer,
            image_processor=processor,
            pooling=pooling or "projection",
            **where,
        )
    elif kind == "image":
        encoder = VisionEncoder(model, processor, pooling=pooling or _vision_pooling(model), **where)
    else:
        pooling = pooling or recipe.get("pooling", "mean")
        encoder = TextEncoder(
            model, tokenizer, pooling=pooling, max_length=recipe.get("max_seq_length"), **where
        )
    recorded, pinned = portable_name(name, revision, hub_id=hub_id)
    encoder.location = name
    encoder.ref = replace(encoder.ref, name_or_path=recorded, revision=pinned)
    return encoder.to(device=device, dtype=dtype)


def _looks_visual(config: Any) -> bool:
    return getattr(config, "num_channels", None) is not None and getattr(config, "vocab_size", None) is None


def _vision_pooling(model: torch.nn.Module) -> str:
    """``"pooler"`` for models with a pooled output (a pooler layer, or a convolutional backbone that pools
    inside the model), else ``"mean"`` of the tokens."""
    backbones = ("ResNet", "ConvNext", "RegNet", "EfficientNet", "MobileNet")
    pooled = getattr(model, "pooler", None) is not None or any(b in type(model).__name__ for b in backbones)
    return "pooler" if pooled else "mean"


def as_encoder(
    spec: Any,
    *,
    revision: str | None = None,
    pooling: str | None = None,
    hub_id: str | None = None,
) -> Encoder:
    """An :class:`Encoder` from an encoder (returned as is), a ``SentenceTransformer`` object, or a Hub id
    or local folder (loaded with :func:`load_encoder`). ``hub_id`` renames an encoder in a copy: the
    caller's object is left as it was."""
    if isinstance(spec, Encoder):
        if hub_id is not None:
            spec = copy.copy(spec)
            spec.ref = replace(spec.ref, name_or_path=portable_name(spec.ref.name_or_path, hub_id=hub_id)[0])
        return spec
    if is_sentence_transformer(spec):
        return SentenceTransformerEncoder(spec, hub_id=hub_id, revision=revision)
    if isinstance(spec, (str, os.PathLike)):
        return load_encoder(spec, revision=revision, pooling=pooling, hub_id=hub_id)
    raise BridgeInputError(
        f"an encoder must be a Hub id, a local model folder, an hf_latent_bridge Encoder or a "
        f"SentenceTransformer, got {type(spec).__name__}."
    )
