"""Naming an encoder so that anyone can load it again: a Hub id pinned to a commit, never a local path.

A Hub id is pinned to the commit the model was loaded from (found in the Hub cache, where loading put
the files, also offline). A local folder is named by the Hub id the user gives, or by the one
the folder proves: a Hub cache snapshot (``.../models--org--name/snapshots/<sha>``) or a
sentence-transformers folder whose README loads it by id. Anything else stays a local path, which only
loads on the machine that has it: pushing an artifact that records one is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import BridgeInputError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_SNAPSHOT = re.compile(r"models--(?P<owner>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<sha>[0-9a-f]{40})$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: How a sentence-transformers model card loads its own model.
_ST_README_ID = re.compile(r"SentenceTransformer\(\s*['\"](?P<id>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)['\"]")


def is_hub_id(name: str | None) -> bool:
    """``True`` for a Hub repo id (``name`` or ``namespace/name``) that is not also a local path."""
    if not name or os.path.isabs(name) or name.startswith((".", "~")) or os.path.exists(name):
        return False
    return bool(_HUB_ID.match(name)) and ".." not in name


def hub_id_of_folder(folder: str | os.PathLike) -> tuple[str, str | None] | None:
    """The Hub id (and commit, when known) that a local model folder proves, or ``None``."""
    path = Path(folder).expanduser().resolve()
    snapshot = _SNAPSHOT.search(path.as_posix())
    if snapshot:
        return f"{snapshot['owner']}/{snapshot['name']}", snapshot["sha"]
    readme = path / "README.md"
    if (path / "modules.json").is_file() and readme.is_file():
        named = _ST_README_ID.search(readme.read_text(encoding="utf-8", errors="replace"))
        if named:
            return named["id"], None
    return None


def hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit a Hub repo's ``revision`` resolves to: from the cache, where loading put its
    ``config.json`` (or the Hub); ``None`` when neither knows it."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if revision and _COMMIT.match(revision):
        return revision
    try:
        path = Path(hf_hub_download(repo_id, "config.json", revision=revision))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError):
        return None
    return path.parent.name if _COMMIT.match(path.parent.name) else None


def portable_name(
    name_or_path: str, revision: str | None = None, *, hub_id: str | None = None
) -> tuple[str, str | None]:
    """``(name, revision)`` to record for an encoder loaded from ``name_or_path`` at ``revision`` (a branch,
    tag or sha): a Hub id with the commit it resolved to; for a folder, ``hub_id`` if given (the Hub id the
    user says it holds) or the id it proves, else its path."""
    if hub_id is not None:
        if not _HUB_ID.match(hub_id):
            raise BridgeInputError(f"{hub_id!r} is not a Hub repo id; write it as 'namespace/name'.")
        return hub_id, revision
    if not Path(name_or_path).expanduser().exists():
        return name_or_path, hub_commit(name_or_path, revision) or revision
    proven = hub_id_of_folder(name_or_path)
    if proven is not None:
        return proven[0], proven[1] or revision
    return name_or_path, revision
