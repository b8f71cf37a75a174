"""save_pretrained never loses what was there: atomic swaps, the user's files kept, interruptions survived.

A failure or a kill at any point of a save leaves the folder holding one whole save (the previous one,
or the new one once it was swapped in), loadable, with the user's own files untouched; what a SIGKILL
leaves beside the folder is removed by the next save; a SIGTERM cleans up before it ends the process.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
import transformers.modeling_utils

from hf_latent_bridge import LatentBridge
from hf_latent_bridge import files as files_module
from hf_latent_bridge.errors import OutputError
from hf_latent_bridge.files import SIBLING_TAG, recover_interrupted
from hf_latent_bridge.models.cards import CARD_MARKER

ROOT = Path(__file__).resolve().parents[2]


def bridge(seed: int, k: int = 60, d_x: int = 16, d_y: int = 12) -> LatentBridge:
    g = torch.Generator().manual_seed(seed)
    return LatentBridge.fit(torch.randn(k, d_x, generator=g), torch.randn(k, d_y, generator=g), ridge=0.1)


def same(a: LatentBridge, b: LatentBridge) -> bool:
    return a.state_dict().keys() == b.state_dict().keys() and all(
        torch.equal(a.state_dict()[n], b.state_dict()[n]) for n in a.state_dict()
    )


def debris(folder: Path) -> list[str]:
    """Hidden siblings a save left beside ``folder``."""
    return sorted(p.name for p in folder.parent.iterdir() if SIBLING_TAG in p.name)


def user_files(folder: Path) -> dict[str, bytes]:
    """The user's own files, with their content."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and not p.is_symlink()
        and p.name not in ("config.json", "model.safetensors", "README.md")
    }


def with_user_files(folder: Path) -> dict[str, bytes]:
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "data").mkdir()
    (folder / "data" / "rows.jsonl").write_text('{"text": "hello"}\n')
    (folder / "data" / "deeper").mkdir()
    (folder / "data" / "deeper" / "blob.bin").write_bytes(os.urandom(3000))
    (folder / "link-to-notes").symlink_to("notes.txt")
    return user_files(folder)


@pytest.fixture
def previous(tmp_path) -> tuple[Path, LatentBridge, dict[str, bytes]]:
    """A folder holding a save and the user's own files."""
    folder = tmp_path / "bridge"
    first = bridge(1)
    first.save_pretrained(folder)
    return folder, first, with_user_files(folder)


# ----------------------------------------------------------------------------------- what is replaced
def test_a_save_replaces_only_the_packages_files(previous):
    folder, _, mine = previous
    second = bridge(2)
    second.save_pretrained(folder)
    assert same(LatentBridge.from_pretrained(folder), second)
    assert user_files(folder) == mine
    assert os.readlink(folder / "link-to-notes") == "notes.txt"
    assert debris(folder) == []
    assert CARD_MARKER in (folder / "README.md").read_text()


def test_stale_package_files_of_an_earlier_save_are_dropped(tmp_path):
    folder = tmp_path / "bridge"
    bridge(1).save_pretrained(folder, max_shard_size="1KB", remote_code=True)
    assert (
        len(list(folder.glob("model-*.safetensors"))) > 1 and (folder / "modeling_latent_bridge.py").exists()
    )
    (folder / "keep.md").write_text("mine")
    second = bridge(2)
    second.save_pretrained(folder)
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md", "keep.md"}
    assert same(LatentBridge.from_pretrained(folder), second)


def test_the_users_readme_is_kept_unless_asked(previous):
    folder, _, _ = previous
    (folder / "README.md").write_text("# My bridge\nWritten by hand.\n")
    bridge(2).save_pretrained(folder)
    assert (folder / "README.md").read_text() == "# My bridge\nWritten by hand.\n"
    bridge(3).save_pretrained(folder, overwrite_model_card=True)
    assert CARD_MARKER in (folder / "README.md").read_text()
    bridge(4).save_pretrained(folder)  # a generated card is replaced by the next one
    assert "Written by hand" not in (folder / "README.md").read_text()


def test_a_users_modeling_file_is_not_replaced_without_overwrite(previous):
    folder, first, mine = previous
    (folder / "modeling_latent_bridge.py").write_text("# my own code\n")
    with pytest.raises(OutputError, match=r"would replace modeling_latent_bridge.py.*overwrite=True"):
        bridge(2).save_pretrained(folder, remote_code=True)
    assert (folder / "modeling_latent_bridge.py").read_text() == "# my own code\n"
    assert same(LatentBridge.from_pretrained(folder), first) and debris(folder) == []
    bridge(2).save_pretrained(folder)  # without remote code, the user's file is simply kept
    assert (folder / "modeling_latent_bridge.py").read_text() == "# my own code\n"
    bridge(3).save_pretrained(folder, remote_code=True, overwrite=True)
    assert "# my own code" not in (folder / "modeling_latent_bridge.py").read_text()
    bridge(4).save_pretrained(folder, remote_code=True)  # the package's own copy is replaced silently
    assert user_files(folder) == {
        **mine,
        "modeling_latent_bridge.py": (folder / "modeling_latent_bridge.py").read_bytes(),
    }


def test_another_libraries_model_in_the_folder_is_not_replaced(tmp_path, tiny_bert_path):
    folder = tmp_path / "bert"
    import shutil

    shutil.copytree(tiny_bert_path, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(OutputError, match="config.json"):
        bridge(1).save_pretrained(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_existing_file_is_not_replaced_by_a_folder(tmp_path):
    path = tmp_path / "bridge"
    path.write_text("precious")
    with pytest.raises(OutputError, match="existing file, not a folder"):
        bridge(1).save_pretrained(path)
    assert path.read_text() == "precious"
    bridge(1).save_pretrained(path, overwrite=True)
    assert same(LatentBridge.from_pretrained(path), bridge(1)) and debris(path) == []


def test_a_symlinked_folder_is_saved_through(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(real)
    bridge(1).save_pretrained(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (real / "notes.txt").read_text() == "mine"
    assert same(LatentBridge.from_pretrained(tmp_path / "link"), bridge(1))


def test_a_new_folder_gets_the_usual_permissions(tmp_path):
    bridge(1).save_pretrained(tmp_path / "new")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "new" / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------------------------- failures mid-way
def test_a_failing_weights_write_keeps_the_previous_save(previous, monkeypatch):
    """Disk full while the weights are half written: the previous save stays whole, nothing is left."""
    folder, first, mine = previous

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
    with pytest.raises(OutputError, match="No space left on device.*left as it was"):
        bridge(2).save_pretrained(folder)
    assert same(LatentBridge.from_pretrained(folder), first)
    assert user_files(folder) == mine and debris(folder) == []


def test_sigterm_with_a_handler_of_the_callers_cleans_up_and_reaches_it(previous, monkeypatch):
    folder, first, mine = previous
    real = transformers.modeling_utils.safe_save_file
    received = []

    def terminated_mid_write(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted by the handler

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", terminated_mid_write)

    def handler(signum, frame):
        received.append(signum)

    previous_handler = signal.signal(signal.SIGTERM, handler)
    try:
        started = time.perf_counter()
        with pytest.raises(OutputError, match="interrupted by SIGTERM"):
            bridge(2).save_pretrained(folder)
        assert time.perf_counter() - started < 5
        assert received == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    assert same(LatentBridge.from_pretrained(folder), first)
    assert user_files(folder) == mine and debris(folder) == []


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(child.stdout)


def test_a_save_killed_between_two_renames_is_repaired(previous, monkeypatch):
    """Without an atomic swap (not Linux), a kill between the two renames is repaired by the next save."""
    folder, _, mine = previous
    monkeypatch.setattr(files_module, "_exchange", lambda a, b: False)
    second = bridge(2)
    second.save_pretrained(folder)  # the fallback works
    assert same(LatentBridge.from_pretrained(folder), second) and user_files(folder) == mine

    pid = dead_pid()
    prefix = f".{folder.name}{SIBLING_TAG}"
    folder.rename(folder.parent / f"{prefix}old-{pid}-0000")  # died right after moving the folder aside
    staging = folder.parent / f"{prefix}stage-{pid}-0001"
    staging.mkdir()
    (staging / "config.json").write_text("{half")
    recover_interrupted(folder)
    assert same(LatentBridge.from_pretrained(folder), second) and user_files(folder) == mine
    assert debris(folder) == []


def test_debris_of_dead_saves_is_cleaned_and_live_ones_are_left(previous):
    folder, _, _ = previous
    prefix = f".{folder.name}{SIBLING_TAG}"
    dead = folder.parent / f"{prefix}stage-{dead_pid()}-dead"
    live = folder.parent / f"{prefix}stage-{os.getppid()}-live"  # a concurrent save of a live process
    for path in (dead, live):
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"\0" * 100)
    bridge(2).save_pretrained(folder)
    assert not dead.exists() and live.exists()
    assert debris(folder) == [live.name]


def test_concurrent_saves_leave_one_whole_save(previous):
    folder, _, mine = previous
    candidates = [bridge(seed) for seed in range(10, 14)]
    errors = []

    def save(model):
        for _ in range(2):
            try:
                model.save_pretrained(folder)
            except (OutputError, OSError) as error:  # a race may refuse a save, never corrupt one
                errors.append(error)

    threads = [threading.Thread(target=save, args=(m,)) for m in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = LatentBridge.from_pretrained(folder)
    assert any(same(loaded, m) for m in candidates)
    assert user_files(folder) == mine and debris(folder) == []
    assert len(errors) < 8


# ----------------------------------------------------------------------------- killed in a real process
CHILD = textwrap.dedent(
    """
    import os, resource, sys, time
    import torch
    import transformers.modeling_utils as modeling_utils
    import hf_latent_bridge.files as files
    from hf_latent_bridge import LatentBridge

    folder, point = sys.argv[1], sys.argv[2]
    g = torch.Generator().manual_seed(2)
    new = LatentBridge.fit(torch.randn(60, 16, generator=g), torch.randn(60, 12, generator=g), ridge=0.1)

    def pause(seconds):
        print("READY", flush=True)
        time.sleep(seconds)

    if point == "weights":  # half of model.safetensors is on disk
        real = modeling_utils.safe_save_file
        def half_then_pause(tensors, filename, metadata=None):
            real(tensors, filename, metadata=metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            pause(120)
        modeling_utils.safe_save_file = half_then_pause
    elif point == "swapped":  # the new save is in place, the old one not yet removed
        real_rescue = files._rescue
        def pause_after_swap(*args):
            pause(float(sys.argv[3]))
            return real_rescue(*args)
        files._rescue = pause_after_swap
    elif point == "disk-full":  # a real failing write: files may not grow past 6 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, resource.RLIM_INFINITY))
        print("READY", flush=True)
    try:
        new.save_pretrained(folder)
    except Exception as error:
        print("ERROR", type(error).__name__, error, flush=True)
        sys.exit(3)
    print("SAVED", flush=True)
    """
)

#: (point, signal) -> what the folder must hold afterwards and how the process ends.
KILLS = {
    ("weights", signal.SIGKILL): ("previous", -signal.SIGKILL),
    ("weights", signal.SIGTERM): ("previous", -signal.SIGTERM),
    ("swapped", signal.SIGKILL): ("new", -signal.SIGKILL),
    ("swapped", signal.SIGTERM): ("new", -signal.SIGTERM),  # the swap finishes, then the process ends
    ("disk-full", None): ("previous", 3),
}


def test_killed_saves_in_real_processes(tmp_path):
    """SIGKILL and SIGTERM during the weights write and right after the swap, and a real failing write
    (RLIMIT_FSIZE, as a full disk): the folder holds one whole save, the user's files are intact; a
    SIGTERM leaves no debris, and what a SIGKILL leaves is removed by the next save."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    first, new = bridge(1, k=60), bridge(2)
    children = {}
    for case in KILLS:
        folder = tmp_path / f"{case[0]}-{case[1] or 0}" / "bridge"
        first.save_pretrained(folder)
        mine = with_user_files(folder)
        process = subprocess.Popen(
            [sys.executable, str(script), str(folder), case[0], "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        children[case] = (folder, mine, process)
    for (point, sig), (_, _, process) in children.items():
        ready, _, _ = select.select([process.stdout], [], [], 240)
        line = process.stdout.readline() if ready else ""
        if line.strip() != "READY":
            process.kill()
            pytest.fail(
                f"{point}: the child did not reach the save ({line!r}): {process.stderr.read()[-2000:]}"
            )
        if sig is not None:
            process.send_signal(sig)
    for (point, sig), (folder, mine, process) in children.items():
        out = process.stdout.read()  # the rest, after READY (read through the same buffer)
        err = process.stderr.read()
        process.wait(timeout=240)
        expected, returncode = KILLS[(point, sig)]
        assert process.returncode == returncode, (point, sig, out, err[-2000:])
        loaded = LatentBridge.from_pretrained(folder)
        assert same(loaded, first if expected == "previous" else new), (point, sig)
        assert user_files(folder) == mine, (point, sig)
        if sig == signal.SIGKILL:  # killed mid-save: its staging (or the swapped-out old save) is left
            kind = "stage" if point == "weights" else "old"
            assert [name for name in debris(folder) if f"{SIBLING_TAG}{kind}-{process.pid}-" in name], point
        else:
            assert debris(folder) == [], (point, sig)
        if point == "disk-full":
            assert "ERROR OutputError" in out and "File too large" in out
        # The next save removes what a killed one left, and keeps the user's files.
        first.save_pretrained(folder)
        assert same(LatentBridge.from_pretrained(folder), first) and debris(folder) == []
        assert user_files(folder) == mine


# -------------------------------------------------------------------------- the CLI's folder and file
def test_staged_directory_replaces_a_folder_atomically_or_not_at_all(tmp_path):
    from hf_latent_bridge.files import staged_directory

    output = tmp_path / "out"
    output.mkdir()
    (output / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_directory(output, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("failed half-way")
    assert [p.name for p in output.iterdir()] == ["old.txt"] and debris(output) == []
    with pytest.raises(OutputError, match="not empty"), staged_directory(output, overwrite=False):
        pass
    with staged_directory(output, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in output.iterdir()] == ["new.txt"] and debris(output) == []


def test_write_text_atomic_keeps_the_old_text_on_failure(tmp_path, monkeypatch):
    from hf_latent_bridge.files import staged_file, write_text_atomic

    path = tmp_path / "report.md"
    write_text_atomic(path, "first\n")
    with pytest.raises(RuntimeError), staged_file(path, overwrite=True) as staging:
        staging.write_text("half")
        raise RuntimeError
    assert path.read_text() == "first\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    assert json.loads(json.dumps(path.read_text())) == "second\n"


def test_saving_into_the_current_folder(tmp_path, monkeypatch):
    """save_pretrained(".") swaps the folder this process works in; the process follows it."""
    folder = tmp_path / "here"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    monkeypatch.chdir(folder)
    bridge(1).save_pretrained(".")
    assert Path("notes.txt").read_text() == "mine" and Path("config.json").is_file()
    assert os.path.samefile(os.getcwd(), folder)
    assert same(LatentBridge.from_pretrained("."), bridge(1)) and debris(folder) == []


def test_sigterm_inside_a_save_inside_a_cli_output_cleans_both(tmp_path, monkeypatch):
    """The CLI saves into its own staged output folder: one SIGTERM unwinds both, leaving nothing."""
    from hf_latent_bridge.files import staged_directory

    output = tmp_path / "out"
    output.mkdir()
    (output / "previous.txt").write_text("previous run")
    real = transformers.modeling_utils.safe_save_file

    def terminated_mid_write(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", terminated_mid_write)
    received = []
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with (
            pytest.raises(OutputError, match="interrupted by SIGTERM"),
            staged_directory(output, overwrite=True) as staging,
        ):
            bridge(1).save_pretrained(staging / "bridge")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    assert received == [signal.SIGTERM]
    assert [p.name for p in output.iterdir()] == ["previous.txt"] and debris(output) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
