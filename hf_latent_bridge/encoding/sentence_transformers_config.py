"""Reading a sentence-transformers folder's recipe (pooling, normalisation, maximum length)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import EncoderLoadError, IncompatibleEncoderError

#: The recipe files are a few hundred bytes; anything past this is not one.
MAX_RECIPE_BYTES = 1 << 20


def read_sentence_transformers_config(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """Read a sentence-transformers folder's recipe: ``{"pooling": "mean+norm", "max_seq_length": 256}``.

    Returns ``None`` when ``name`` has no ``modules.json``. Modules other than Transformer, Pooling and
    Normalize (e.g. Dense) cannot be reproduced here and raise :class:`IncompatibleEncoderError`.
    """
    modules_file = _optional_file(name, "modules.json", revision)
    if modules_file is None:
        return None
    modules = _read_json(modules_file, name, list)
    pooling, normalize = None, False
    for module in modules:
        if not isinstance(module, dict) or not isinstance(module.get("type", ""), str):
            raise EncoderLoadError(
                f"{name}: modules.json lists {str(module)[:60]!r}, not a module; the folder is damaged."
            )
        kind = module.get("type", "").rsplit(".", 1)[-1]
        if kind == "Transformer":
            continue
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            path = module.get("path", "") if isinstance(module.get("path", ""), str) else ""
            pooling_file = _optional_file(name, f"{path}/config.json" if path else "config.json", revision)
            if pooling_file is None:
                raise IncompatibleEncoderError(f"{name}: the Pooling module's {path}/config.json is missing.")
            pooling = _st_pooling_mode(_read_json(pooling_file, name, dict), name)
        else:
            raise IncompatibleEncoderError(
                f"{name} has a sentence-transformers module {module.get('type')!r} that this loader does not "
                "reproduce; wrap the SentenceTransformer in CallableEncoder(model.encode, ...) instead."
            )
    result: dict[str, Any] = {"pooling": (pooling or "mean") + ("+norm" if normalize else "")}
    st_file = _optional_file(name, "sentence_bert_config.json", revision)
    if st_file is not None:
        max_len = _read_json(st_file, name, dict).get("max_seq_length")
        if max_len is not None:
            if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
                raise EncoderLoadError(
                    f"{name}: sentence_bert_config.json has max_seq_length {max_len!r}, not a positive integer; "
                    "fix the file."
                )
            result["max_seq_length"] = max_len
    return result


def _read_json(path: str, name: str, kind: type) -> Any:
    """A JSON file of a sentence-transformers folder, of the given kind (list or dict)."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_RECIPE_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise EncoderLoadError(
            f"{name}: {Path(path).name} cannot be read as JSON ({str(error)[:120]}); the folder is damaged."
        ) from None
    if not isinstance(data, kind):
        raise EncoderLoadError(
            f"{name}: {Path(path).name} holds a {type(data).__name__}, not a {kind.__name__}."
        )
    return data


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
