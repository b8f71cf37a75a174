"""Writing files so that a failure or a kill never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary sibling and an atomic rename."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
    ) as f:
        f.write(text)
        tmp = f.name
    os.replace(tmp, path)
    return path


def check_output_dir(output: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any compute, an output folder that is a file, is not empty (without
    ``overwrite``) or lies under a file or a read-only folder. Returns the expanded path."""
    output = Path(output).expanduser()
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} exists and is not a folder; choose another output folder.")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputError(
            f"output folder {output} is not empty; pass --overwrite or choose another output folder."
        )
    ancestor = output.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to {output.absolute().parent}: {ancestor} is not a writable folder; choose a writable output."
        )
    return output


@contextlib.contextmanager
def staged_directory(output: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``output``; on success it replaces ``output`` in one rename.

    Checks up front (before any compute) that ``output`` may be written; on failure the temporary
    folder is removed and an existing ``output`` is left untouched.
    """
    output = check_output_dir(output, overwrite)
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=parent))
    except OSError as error:
        raise OutputError(
            f"cannot write to {parent} ({error.strerror or error}); choose a writable --output."
        ) from None
    try:
        yield staging
        if output.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=parent))
            output.rename(backup / "old")
            staging.rename(output)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_file(output: Path) -> Iterator[Path]:
    """Yield a temporary sibling path of ``output``, renamed onto ``output`` on success."""
    output = output.expanduser()
    parent = output.absolute().parent
    if output.is_dir():
        raise OutputError(f"output {output} is a folder; give a file path to --output.")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {parent} does not exist; create it first.")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.tmp-", dir=parent)
    except OSError as error:
        raise OutputError(
            f"cannot write to {parent} ({error.strerror or error}); choose a writable --output."
        ) from None
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, output)
    finally:
        if staging.exists():
            staging.unlink()
