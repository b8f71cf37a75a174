"""Where this machine keeps its own copies of Hub encoders, so a model saved here also loads here.

An encoder loaded from a local folder is recorded by a Hub id (see :mod:`.provenance`), which keeps what
people share portable, but that id may be neither cached nor reachable on the machine that made the
model (a sentence-transformers folder installed by pip, a model copied from elsewhere). Loading such a
folder therefore notes ``(hub id, revision) -> folder`` in ``$HF_HOME/hf_latent_bridge/local_copies.json``,
and :func:`~hf_latent_bridge.encoding.load_encoder` falls back to that folder when the id cannot be
loaded, for the exact revision only. The note stays on this machine: nothing shared ever carries it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..files import write_text_atomic

logger = logging.getLogger(__name__)

_FILE = "local_copies.json"


def _registry() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "hf_latent_bridge" / _FILE


def _key(hub_id: str, revision: str | None) -> str:
    return f"{hub_id}@{revision or ''}"


def _read() -> dict[str, str]:
    try:
        data = json.loads(_registry().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: a missing note only costs the fallback
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def remember(hub_id: str, revision: str | None, folder: str | Path) -> None:
    """Note that ``folder`` holds ``hub_id`` at ``revision`` (best effort: a read-only home is fine)."""
    notes = _read()
    key, path = _key(hub_id, revision), str(Path(folder).expanduser().resolve())
    if notes.get(key) == path:
        return
    notes[key] = path
    try:
        registry = _registry()
        registry.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(registry, json.dumps(notes, indent=1, sort_keys=True))
    except OSError as error:
        logger.debug("could not note the local copy of %s: %s", hub_id, error)


def local_copy(hub_id: str, revision: str | None) -> str | None:
    """The folder this machine loaded ``hub_id`` at exactly ``revision`` from, if it still exists."""
    folder = _read().get(_key(hub_id, revision))
    return folder if folder and (Path(folder) / "config.json").is_file() else None
