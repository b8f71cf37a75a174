"""Reading a sentence-transformers folder's recipe (pooling, normalisation, maximum length)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import IncompatibleEncoderError


def read_sentence_transformers_config(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """Read a sentence-transformers folder's recipe: ``{"pooling": "mean+norm", "max_seq_length": 256}``.

    Returns ``None`` when ``name`` has no ``modules.json``. Modules other than Transformer, Pooling and
    Normalize (e.g. Dense) cannot be reproduced here and raise :class:`IncompatibleEncoderError`.
    """
    modules_file = _optional_file(name, "modules.json", revision)
    if modules_file is None:
        return None
    modules = json.loads(Path(modules_file).read_text(encoding="utf-8"))
    pooling, normalize = None, False
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        if kind == "Transformer":
            continue
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            path = module.get("path", "")
            pooling_file = _optional_file(name, f"{path}/config.json" if path else "config.json", revision)
            if pooling_file is None:
                raise IncompatibleEncoderError(f"{name}: the Pooling module's {path}/config.json is missing.")
            pooling = _st_pooling_mode(json.loads(Path(pooling_file).read_text(encoding="utf-8")), name)
        else:
            raise IncompatibleEncoderError(
                f"{name} has a sentence-transformers module {module.get('type')!r} that this loader does not "
                "reproduce; wrap the SentenceTransformer in CallableEncoder(model.encode, ...) instead."
            )
    result: dict[str, Any] = {"pooling": (pooling or "mean") + ("+norm" if normalize else "")}
    st_file = _optional_file(name, "sentence_bert_config.json", revision)
    if st_file is not None:
        max_len = json.loads(Path(st_file).read_text(encoding="utf-8")).get("max_seq_length")
        if max_len:
            result["max_seq_length"] = int(max_len)
    return result


def _st_pooling_mode(config: dict[str, Any], name: str) -> str:
    if "pooling_mode" in config and isinstance(config["pooling_mode"], str):
        modes = [config["pooling_mode"]]
    else:
        modes = [
            k.removeprefix("pooling_mode_") for k, v in config.items() if k.startswith("pooling_mode_") and v
        ]
    mapping = {
        "mean_tokens": "mean",
        "mean": "mean",
        "cls_token": "cls",
        "cls": "cls",
        "max_tokens": "max",
        "max": "max",
    }
    if len(modes) != 1 or modes[0] not in mapping:
        raise IncompatibleEncoderError(
            f"{name} pools with {modes}; only one of mean, cls or max pooling is supported. Wrap the "
            "SentenceTransformer in CallableEncoder(model.encode, ...) instead."
        )
    return mapping[modes[0]]


def _optional_file(name: str, filename: str, revision: str | None) -> str | None:
    """Path of ``filename`` in a local folder or Hub repo (downloaded), or None when absent."""
    local = Path(name)
    if local.is_dir():
        path = local / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        return hf_hub_download(name, filename, revision=revision)
    except (EntryNotFoundError, RemoteEntryNotFoundError, LocalEntryNotFoundError):
        return None
