"""Atomic writes: stage beside the destination, then rename; never replace a user's file unasked.

A failure at any point leaves the destination as it was (the staged copy is removed). A process killed
outright may leave a hidden ``.<name>.*.tmp`` sibling behind and the destination whole, but for one
window: replacing an existing folder takes two renames (the old one aside, the new one in), and a kill
between them leaves the previous save in its hidden ``.<name>.*.old`` sibling and the user's files in
one of the two hidden siblings. Saves to one folder from threads of one process take turns.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from .errors import OutputExistsError


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write a text file through a temporary sibling and one rename."""
    with staged_file(path, overwrite=overwrite) as staging:
        staging.write_text(text, encoding="utf-8")
    return Path(path)


def check_file_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any work, an existing file (without ``overwrite``) or a folder at ``path``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder; give a file path.")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} exists; pass overwrite (--overwrite) to replace it, or choose another path."
        )
    return path


@contextlib.contextmanager
def staged_file(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path`` in one rename."""
    path = check_file_target(path, overwrite)
    staging = _sibling(path, ".tmp")
    os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
    try:
        yield staging
        os.replace(staging, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)


def check_folder_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any work, a file at ``path`` or a non-empty folder (without ``overwrite``)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} is a file, not a folder; choose a folder path.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"folder {path} is not empty; pass overwrite (--overwrite) to replace it, or choose another folder."
        )
    return path


@contextlib.contextmanager
def staged_folder(
    path: str | os.PathLike, *, overwrite: bool = False, owned: Collection[str] | None = None
) -> Iterator[Path]:
    """Yield an empty folder beside ``path``; on success it becomes ``path``.

    ``owned=None``: the folder is one output; an existing non-empty one is replaced only with
    ``overwrite``. ``owned`` given (a save into a folder the user may share): the entries named there
    belong to a previous save and are replaced; every other entry is the user's and moves into the new
    folder, and a staged file that would replace one is refused unless ``overwrite``.
    """
    path = Path(path).expanduser().absolute()
    path = path.resolve() if path.is_symlink() and path.is_dir() else path  # save through a linked folder
    if owned is None:
        check_folder_target(path, overwrite)
    elif path.exists() and not path.is_dir() and not overwrite:
        raise OutputExistsError(
            f"{path} is a file, not a folder; choose a folder path (or pass overwrite=True)."
        )
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputExistsError(f"cannot create {path}: {blocking} is a file; choose a path in a folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(path, ".tmp")
    os.mkdir(staging)  # the umask applies, as for any new folder
    if path.is_dir():
        os.chmod(staging, stat.S_IMODE(path.stat().st_mode))
    try:
        yield staging
        with _lock_for(path):  # saves of one process to one folder take turns
            _swap_in(staging, path, owned, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


def _sibling(path: Path, suffix: str) -> Path:
    return path.absolute().parent / f".{path.name[:120]}.{secrets.token_hex(4)}{suffix}"


def _swap_in(staging: Path, path: Path, owned: Collection[str] | None, overwrite: bool) -> None:
    """Put ``staging`` at ``path``. With ``owned``, the previous folder's other entries (the user's) move
    into ``staging`` first, so they are never in a folder about to be deleted."""
    if not os.path.lexists(path):
        os.rename(staging, path)
        return
    aside = _sibling(path, ".old")
    os.rename(path, aside)
    users = set(os.listdir(aside)) - set(owned) if owned is not None and aside.is_dir() else set()
    clashes = sorted(users & set(os.listdir(staging)))
    moved = []
    try:
        if clashes and not overwrite:
            raise OutputExistsError(
                f"saving would replace {', '.join(clashes)} in {path}, which this package did not write; move "
                "them away, choose another folder, or pass overwrite=True."
            )
        for name in users - set(clashes):
            os.rename(aside / name, staging / name)
            moved.append(name)
        os.rename(staging, path)
    except BaseException:
        for name in moved:
            os.rename(staging / name, aside / name)
        os.rename(aside, path)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()
