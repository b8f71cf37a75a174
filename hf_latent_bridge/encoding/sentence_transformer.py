"""sentence-transformers models: a folder's recipe (pooling, normalisation, maximum length) for
:func:`~hf_latent_bridge.encoding.load_encoder`, and a loaded ``SentenceTransformer`` as an encoder that
embeds with its own modules and is recorded by the Hub id it was loaded from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, IncompatibleEncoderError
from .base import Encoder, state_fingerprint
from .provenance import portable_name
from .reference import EncoderRef

#: sentence-transformers pooling modes (``pooling_mode``, or the ``pooling_mode_*`` flags) as pooling names.
_POOLING_NAMES = {
    **dict.fromkeys(("mean", "mean_tokens"), "mean"),
    **dict.fromkeys(("cls", "cls_token"), "cls"),
    **dict.fromkeys(("max", "max_tokens"), "max"),
}


def read_sentence_transformers_config(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """Read a sentence-transformers folder's recipe: ``{"pooling": "mean+norm", "max_seq_length": 256}``.

    Returns ``None`` when ``name`` has no ``modules.json``. Modules other than Transformer, Pooling and
    Normalize (e.g. Dense) cannot be reproduced here and raise :class:`IncompatibleEncoderError`.
    """
    modules_file = _optional_file(name, "modules.json", revision)
    if modules_file is None:
        return None
    pooling, normalize = "mean", False
    for module in _read_json(modules_file, name, list):
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str):
            raise CheckpointError(
                f"{name}: modules.json lists {str(module)[:60]!r}, not a module; the folder is damaged."
            )
        kind = kind.rsplit(".", 1)[-1]
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            path = module.get("path") or ""
            config_file = _optional_file(name, f"{path}/config.json" if path else "config.json", revision)
            if config_file is None:
                raise IncompatibleEncoderError(f"{name}: the Pooling module's {path}/config.json is missing.")
            pooling = _pooling_mode(_read_json(config_file, name, dict), name)
        elif kind != "Transformer":
            raise IncompatibleEncoderError(
                f"{name} has a sentence-transformers module {module['type']!r} that this loader does not "
                "reproduce; wrap the SentenceTransformer in CallableEncoder(model.encode, ...) instead."
            )
    recipe: dict[str, Any] = {"pooling": pooling + ("+norm" if normalize else "")}
    st_file = _optional_file(name, "sentence_bert_config.json", revision)
    max_length = None if st_file is None else _read_json(st_file, name, dict).get("max_seq_length")
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise CheckpointError(
                f"{name}: sentence_bert_config.json has max_seq_length {max_length!r}, not a positive integer; "
                "fix the file."
            )
        recipe["max_seq_length"] = max_length
    return recipe


def _read_json(path: str, name: str, kind: type) -> Any:
    """A JSON file of a sentence-transformers folder, of the given kind (list or dict)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{name}: {Path(path).name} cannot be read as JSON ({str(error)[:120]}); the folder is damaged."
        ) from None
    if not isinstance(data, kind):
        raise CheckpointError(
            f"{name}: {Path(path).name} holds a {type(data).__name__}, not a {kind.__name__}."
        )
    return data


def _pooling_mode(config: dict[str, Any], name: str) -> str:
    modes = (
        [config["pooling_mode"]]
        if isinstance(config.get("pooling_mode"), str)
        else [
            k.removeprefix("pooling_mode_") for k, v in config.items() if k.startswith("pooling_mode_") and v
        ]
    )
    if len(modes) != 1 or modes[0] not in _POOLING_NAMES:
        raise IncompatibleEncoderError(
            f"{name} pools with {modes}; only one of mean, cls or max pooling is supported. Wrap the "
            "SentenceTransformer in CallableEncoder(model.encode, ...) instead."
        )
    return _POOLING_NAMES[modes[0]]


def _optional_file(name: str, filename: str, revision: str | None) -> str | None:
    """Path of ``filename`` in a local folder or Hub repo (downloaded), or None when absent."""
    if Path(name).is_dir():
        path = Path(name) / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        return hf_hub_download(name, filename, revision=revision)
    except (EntryNotFoundError, RemoteEntryNotFoundError, LocalEntryNotFoundError):
        return None


def is_sentence_transformer(obj: Any) -> bool:
    """Duck-typed, so that sentence-transformers is imported only by those who use it."""
    return type(obj).__module__.startswith("sentence_transformers") and hasattr(obj, "encode")


class SentenceTransformerEncoder(Encoder):
    """Wrap a loaded ``sentence_transformers.SentenceTransformer``.

    Args:
        model: the SentenceTransformer.
        hub_id: the Hub id it holds, when it was loaded from a local folder that does not name it.
        revision: the revision it was loaded at, when known.
    """

    modality = "text"

    def __init__(self, model: Any, *, hub_id: str | None = None, revision: str | None = None) -> None:
        self.model = model.eval()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        config = getattr(getattr(model[0], "auto_model", None), "config", None)
        self.location = str(getattr(config, "_name_or_path", "") or type(model).__name__)
        name, revision = portable_name(self.location, revision, hub_id=hub_id)
        self.ref = EncoderRef(name, revision, _recipe_name(model), "text", self.dim)

    def _embed_batch(self, items: Any, rows: list[int]) -> torch.Tensor:
        batch = [items[i] for i in rows]
        out = self.model.encode(batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False)
        return out.float().cpu()

    def _key_payload(self) -> dict[str, Any]:
        return {"ref": self.ref.to_dict(), "weights": state_fingerprint(self.model)}


def _recipe_name(model: Any) -> str | None:
    """The model's recipe as a pooling name (``"mean+norm"``), or ``None`` when it has other modules."""
    kinds = [type(module).__name__ for module in model]
    if kinds[0] != "Transformer" or not set(kinds[1:]) <= {"Pooling", "Normalize"}:
        return None
    pooling = next((m for m in model if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling, "pooling_mode", "mean") if pooling is not None else "mean"
    if not isinstance(mode, str) or mode not in _POOLING_NAMES:
        return None
    return _POOLING_NAMES[mode] + ("+norm" if "Normalize" in kinds else "")
