"""Writing outputs so that a failure or a kill never loses what was there before, nor leaves debris.

Every output (a folder or a file) is written into a hidden sibling of its destination
(``.<name>.hlb-stage-<pid>-<token>``) and put in place with one atomic step: on Linux two folders are swapped with
``renameat2(RENAME_EXCHANGE)``, elsewhere with two renames that a later save can finish if the process
dies between them. Whatever the moment of a failure, the destination holds either the whole previous
output or the whole new one. A SIGTERM during the work raises inside the process, so the staging folder
is removed before the signal takes its usual effect; what a SIGKILL leaves behind (its pid is dead) is
cleaned up by the next save to the same destination.

- :func:`update_folder`: replace the files a package save owns and keep every other entry of the folder
  (what ``save_pretrained`` uses);
- :func:`staged_directory`: produce a whole output folder (the CLI's and the demo's outputs);
- :func:`staged_file` / :func:`write_text_atomic`: one file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from .errors import OutputError

#: Marks the hidden siblings a write creates: ``.<name>.hlb-stage-<pid>-<token>`` and ``...hlb-old-...``.
SIBLING_TAG = ".hlb-"


# ---------------------------------------------------------------------------------------------- one file
def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary sibling and an atomic rename."""
    path = Path(path)
    with staged_file(path, check=False) as staging, open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def check_output_file(output: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any compute, an output file path that is a folder, lies in a missing folder, or
    names an existing file (without ``overwrite``). Returns the expanded path."""
    output = Path(output).expanduser()
    parent = output.absolute().parent
    if output.is_dir():
        raise OutputError(f"output {output} is a folder; give a file path to --output.")
    if not parent.is_dir():
        raise OutputError(f"cannot write {output}: folder {parent} does not exist; create it first.")
    if os.path.lexists(output) and not overwrite:
        raise OutputError(
            f"output file {output} exists; pass --overwrite to replace it, or choose another --output."
        )
    return output


@contextlib.contextmanager
def staged_file(output: Path, *, check: bool = True, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path of ``output``, renamed onto ``output`` on success.

    With ``check``, :func:`check_output_file` runs first (an existing file is replaced only with
    ``overwrite``). On failure (or SIGTERM) the sibling is removed and ``output`` is left as it was.
    """
    output = check_output_file(output, overwrite) if check else Path(output).expanduser()
    parent = output.absolute().parent
    with _sigterm_cleans_up() as guard:
        recover_interrupted(output)  # what a killed write to the same file left
        staging = _sibling(output, "stage")
        try:
            os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as error:
            raise OutputError(
                f"cannot write to {parent} ({error.strerror or error}); choose a writable --output."
            ) from None
        try:
            os.chmod(staging, stat.S_IMODE(output.stat().st_mode) if output.is_file() else _new_file_mode())
            yield staging
            with guard.deferred():
                os.replace(staging, output)
        finally:
            with guard.deferred(), contextlib.suppress(FileNotFoundError):
                staging.unlink()


# ------------------------------------------------------------------------------------------ whole folders
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
    _check_parent_writable(output)
    return output


@contextlib.contextmanager
def staged_directory(output: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``output``; on success it replaces ``output`` atomically.

    Checks up front (before any compute) that ``output`` may be written (an existing non-empty folder
    only with ``overwrite``); on failure the staging folder is removed and ``output`` is untouched.
    """
    output = check_output_dir(output, overwrite).absolute()
    with _staging(output) as (staging, guard):
        yield staging
        with guard.deferred():
            _put_in_place(staging, output)


@contextlib.contextmanager
def update_folder(
    target: str | os.PathLike, owned: Collection[str], *, overwrite: bool = False
) -> Iterator[Path]:
    """Yield an empty staging folder; on success ``target`` becomes the staged files plus every entry of
    the previous ``target`` whose name is not in ``owned``, in one atomic step.

    ``owned`` names the entries a previous save of the same kind wrote: they are replaced (or dropped if
    this save does not write them). Any other entry of ``target`` is kept untouched (hard-linked, or
    copied where links are not possible, into the new folder). A staged file that would replace an entry
    not in ``owned`` is refused with :class:`OutputError` unless ``overwrite``; so is a ``target`` that
    is an existing file.
    """
    target = Path(target).expanduser().absolute()
    if target.is_symlink() and target.is_dir():
        target = target.resolve()
    if os.path.lexists(target) and not target.is_dir() and not overwrite:
        raise OutputError(
            f"{target} is an existing file, not a folder: choose a folder path (or pass overwrite=True to "
            "replace the file with the saved folder)."
        )
    _check_parent_writable(target)
    owned = frozenset(owned)
    with _staging(target) as (staging, guard):
        yield staging
        _keep_foreign_entries(target, staging, owned, overwrite)
        with guard.deferred():
            old = _put_in_place(staging, target, keep_old=True)
            if old is not None:
                # Anything the user created in the folder while it was being staged moves over too.
                _rescue(old, target, owned)
                _remove(old)


def _check_parent_writable(output: Path) -> None:
    ancestor = output.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to {output.absolute().parent}: {ancestor} is not a writable folder; choose a "
            "writable output."
        )


@contextlib.contextmanager
def _staging(output: Path) -> Iterator[tuple[Path, _SigtermGuard]]:
    """A fresh hidden sibling folder of ``output`` (same permissions), removed on exit whatever happens."""
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create {parent} ({error.strerror or error}); choose a writable output."
        ) from None
    recover_interrupted(output)
    with _sigterm_cleans_up() as guard:
        staging = _sibling(output, "stage")
        try:
            os.mkdir(staging, 0o777)  # the umask applies, as for any new folder
        except OSError as error:
            raise OutputError(
                f"cannot write to {parent} ({error.strerror or error}); choose a writable output."
            ) from None
        try:
            if output.is_dir():
                os.chmod(staging, stat.S_IMODE(output.stat().st_mode))
            yield staging, guard
        finally:
            with guard.deferred():
                _remove(staging)
                _fsync_dir(parent)


def _sibling(output: Path, kind: str) -> Path:
    return output.absolute().parent / f"{_sibling_prefix(output)}{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _sibling_prefix(output: Path) -> str:
    name = output.absolute().name
    if len(name) > 100:  # keep sibling names under the file system's 255 bytes, still unique per target
        name = f"{name[:80]}~{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return f".{name}{SIBLING_TAG}"


def recover_interrupted(output: str | os.PathLike) -> None:
    """Finish what a killed write to ``output`` left beside it.

    A staging folder of a dead process is removed, with what saves into it left beside it (a model saved
    into a command's staged output stages beside that); a previous version moved aside by a process that
    died between its two renames (systems without an atomic swap) is put back if ``output`` is missing.
    Siblings of live processes (a concurrent save) are left alone.
    """
    output = Path(output).expanduser()
    parent, prefix = output.absolute().parent, _sibling_prefix(output)
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(prefix):
            continue
        kind, _, rest = entry.name[len(prefix) :].partition("-")
        pid = rest.partition("-")[0]
        if kind not in ("stage", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not os.path.lexists(output):
            os.rename(entry, output)
        else:
            recover_interrupted(entry)  # a save into that staging folder staged beside it too
            _remove(entry)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _keep_foreign_entries(target: Path, staging: Path, owned: frozenset[str], overwrite: bool) -> None:
    """Link every entry of ``target`` not in ``owned`` into ``staging``; refuse to replace one unless
    ``overwrite``."""
    if not target.is_dir():
        return
    staged = set(os.listdir(staging))
    foreign = sorted(set(os.listdir(target)) - owned)
    clashes = [name for name in foreign if name in staged]
    if clashes and not overwrite:
        raise OutputError(
            f"saving would replace {', '.join(clashes)} in {target}, which this package did not write. Move "
            "them away, choose another folder, or pass overwrite=True to replace them."
        )
    for name in foreign:
        if name not in staged:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: nothing to keep
                _link_tree(target / name, staging / name)


def _link_tree(source: Path, destination: Path) -> None:
    """Reproduce ``source`` at ``destination`` with hard links (copies where a link is impossible)."""
    if _is_real_dir(source):
        os.mkdir(destination)
        for child in os.listdir(source):
            _link_tree(source / child, destination / child)
        shutil.copystat(source, destination)
        return
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        if source.is_symlink():
            os.symlink(os.readlink(source), destination)
        else:
            shutil.copy2(source, destination)


def _rescue(old: Path, new: Path, skip: Collection[str] = ()) -> None:
    """Move the entries of ``old`` that ``new`` lacks (created while the save was staged) into ``new``."""
    if not _is_real_dir(old):
        return
    for name in os.listdir(old):
        source, destination = old / name, new / name
        if name in skip:
            continue
        if not os.path.lexists(destination):
            os.rename(source, destination)
        elif _is_real_dir(source) and _is_real_dir(destination):
            _rescue(source, destination)


def _is_cwd(path: Path) -> bool:
    try:
        return path.is_dir() and os.path.samefile(path, os.getcwd())
    except OSError:
        return False


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _put_in_place(staging: Path, output: Path, *, keep_old: bool = False) -> Path | None:
    """Make ``staging`` the ``output``. The previous output is removed, or with ``keep_old`` returned
    (under a hidden sibling name) for the caller to remove."""
    parent = output.absolute().parent
    if not os.path.lexists(output):
        os.rename(staging, output)
        _fsync_dir(parent)
        return None
    inside = _is_cwd(output)
    old = _sibling(output, "old")
    if _exchange(staging, output):
        os.rename(staging, old)
    else:
        os.rename(output, old)  # a kill right here is repaired by recover_interrupted
        try:
            os.rename(staging, output)
        except BaseException:
            os.rename(old, output)
            raise
    _fsync_dir(parent)
    if inside:  # this process worked inside the folder: follow it to the new one
        os.chdir(output)
    if keep_old:
        return old
    _remove(old)
    return None


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); ``False`` where that is unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


_RENAMEAT2: list = []


def _renameat2():
    if not _RENAMEAT2:
        function = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                function = ctypes.CDLL(None, use_errno=True).renameat2
                function.argtypes = [
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_uint,
                ]
                function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]


def _new_file_mode() -> int:
    """The permissions a new file gets here (0o666 less the umask), read without changing the umask."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _remove(path: Path) -> None:
    if _is_real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# --------------------------------------------------------------------------------------------- SIGTERM
class _Terminated(BaseException):
    """Raised by the SIGTERM handler so that ``finally`` blocks remove what was staged."""


class _SigtermGuard:
    """SIGTERM raises :class:`_Terminated`, except inside :meth:`deferred` (commit and cleanup), where it
    waits until the section ends."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.depth = 0
        self.pending = False  # a SIGTERM arrived: deliver it again on the way out
        self.aborted = False  # ... and it stopped the work

    def handle(self, signum: int, frame: object) -> None:
        first = not self.pending
        self.pending = True
        if first and not self.depth:
            self.aborted = True
            raise _Terminated

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[_SigtermGuard]:
    """While inside, a SIGTERM aborts the work through an exception (cleanup runs), then takes its usual
    effect (the default ends the process). Only in the main thread, where Python runs signal handlers."""
    previous = (
        signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    )
    guard = _SigtermGuard(active=previous not in (None, signal.SIG_IGN))
    if not guard.active:
        yield guard
        return
    signal.signal(signal.SIGTERM, guard.handle)
    try:
        yield guard
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if guard.pending:
        signal.raise_signal(
            signal.SIGTERM
        )  # now with the previous disposition (the default ends the process)
    if guard.aborted:  # a handler of the caller's let the process live on
        raise OutputError("the write was interrupted by SIGTERM; the previous output was kept.")
