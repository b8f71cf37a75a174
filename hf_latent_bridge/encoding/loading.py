"""``load_encoder``: a Hub id or a local folder at a pinned revision, as the right :class:`Encoder`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import BridgeInputError, EncoderLoadError, IncompatibleEncoderError
from .base import Encoder
from .clip import ClipTowerEncoder
from .inputs import MODALITIES
from .local_copies import local_copy, remember
from .provenance import is_hub_id, portable_name
from .sentence_transformers_config import read_sentence_transformers_config
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
    from transformers import AutoConfig

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path):
        raise BridgeInputError(f"name_or_path must be a Hub id or a folder, got {name_or_path!r}.")
    if modality is not None and modality not in MODALITIES:
        raise BridgeInputError(f"modality must be 'text' or 'image', got {modality!r}.")
    name = str(name_or_path)
    _check_where(name)
    hub = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except OSError as error:  # transformers' error for unknown ids, folders, revisions and cache misses
        copy = local_copy(name, revision) if is_hub_id(name) else None
        if copy is not None:  # this machine made models from its own copy of exactly this id and revision
            encoder = load_encoder(
                copy, pooling=pooling, modality=modality, tower=tower, device=device, dtype=dtype,
                trust_remote_code=trust_remote_code, hub_id=name,
            )  # fmt: skip
            encoder.ref = replace(encoder.ref, revision=revision)
            return encoder
        where = f"{name!r}" + (f" at revision {revision!r}" if revision else "")
        reason = " ".join(str(error).split()).split(". ")[0][:300]
        raise EncoderLoadError(
            f"cannot load encoder {where} ({reason}). Pass a local model folder or a Hub id that is cached "
            "or reachable (offline: HF_HUB_OFFLINE=1 needs it in the cache)."
        ) from error
    is_dual = hasattr(config, "text_config") and hasattr(config, "vision_config")
    if is_dual:
        tower = tower or modality
        if tower not in MODALITIES:
            raise BridgeInputError(
                f"{name} is a dual (text and image) encoder; choose its tower with tower='text' or 'image'."
            )
        encoder = _load_clip(name, config, tower, pooling or "projection", hub)
    else:
        if tower is not None:
            raise BridgeInputError(f"tower= applies to CLIP-style dual encoders only; {name} has one tower.")
        guessed = "image" if _looks_visual(config) else "text"
        if modality is not None and modality != guessed:
            raise IncompatibleEncoderError(
                f"{name} embeds {guessed}, not {modality} (its config is a {type(config).__name__}); "
                "load an encoder of the right modality."
            )
        encoder = _load_vision(name, pooling, hub) if guessed == "image" else _load_text(name, pooling, hub)
    recorded, pinned = portable_name(
        name, revision, hub_id=hub_id, commit_hash=getattr(config, "_commit_hash", None)
    )
    encoder.location = name
    encoder.ref = replace(encoder.ref, name_or_path=recorded, revision=pinned)
    if recorded != name and is_hub_id(recorded):  # a folder named by a Hub id: note where it lives
        remember(recorded, pinned, name)
    return encoder.to(device=device, dtype=dtype)


def _check_where(name: str) -> None:
    """Refuse, before asking the Hub, a path that is a file or that names no folder and no Hub id."""
    path = Path(name).expanduser()
    if path.exists() and not path.is_dir():
        raise EncoderLoadError(
            f"cannot load encoder {name!r}: it is a file, not a model folder; pass the folder that holds the "
            "model's config.json, or a Hub id."
        )
    if not path.exists() and not is_hub_id(name):
        raise EncoderLoadError(
            f"cannot load encoder {name!r}: no such folder on this machine, and it is not a Hub model id "
            "('name' or 'namespace/name'); check the path."
        )


def _looks_visual(config: Any) -> bool:
    return getattr(config, "num_channels", None) is not None and getattr(config, "vocab_size", None) is None


def _load_text(name: str, pooling: str | None, hub: dict[str, Any]) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    st = read_sentence_transformers_config(name, hub.get("revision"))
    max_length = None
    if st is not None:
        max_length = st.get("max_seq_length")
        if pooling is None:
            pooling = st["pooling"]
    model = AutoModel.from_pretrained(name, **hub)
    tokenizer = AutoTokenizer.from_pretrained(name, **hub)
    return TextEncoder(
        model,
        tokenizer,
        pooling=pooling or "mean",
        max_length=max_length,
        name_or_path=name,
        revision=hub.get("revision"),
    )


def _load_vision(name: str, pooling: str | None, hub: dict[str, Any]) -> VisionEncoder:
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(name, **hub)
    processor = AutoImageProcessor.from_pretrained(name, **hub)
    if pooling is None:
        pooling = (
            "pooler" if getattr(model, "pooler", None) is not None or _has_pooled_output(model) else "mean"
        )
    return VisionEncoder(model, processor, pooling=pooling, name_or_path=name, revision=hub.get("revision"))


def _has_pooled_output(model: torch.nn.Module) -> bool:
    # Convolutional backbones (ResNet, ConvNeXt...) pool inside the model without a "pooler" attribute.
    return any(
        n in type(model).__name__ for n in ("ResNet", "ConvNext", "RegNet", "EfficientNet", "MobileNet")
    )


def _load_clip(name: str, config: Any, tower: str, pooling: str, hub: dict[str, Any]) -> ClipTowerEncoder:
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(name, **hub)
    tokenizer = AutoTokenizer.from_pretrained(name, **hub) if tower == "text" else None
    processor = AutoImageProcessor.from_pretrained(name, **hub) if tower == "image" else None
    return ClipTowerEncoder(
        model,
        tower=tower,
        tokenizer=tokenizer,
        image_processor=processor,
        pooling=pooling,
        name_or_path=name,
        revision=hub.get("revision"),
    )


def as_encoder(
    spec: Any,
    *,
    revision: str | None = None,
    pooling: str | None = None,
    hub_id: str | None = None,
) -> Encoder:
    """An :class:`Encoder` from an encoder (returned as is), a ``SentenceTransformer`` object, or a Hub id
    or local folder (loaded with :func:`load_encoder`)."""
    from .sentence_transformer import SentenceTransformerEncoder, is_sentence_transformer

    if isinstance(spec, Encoder):
        if hub_id is not None:
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
