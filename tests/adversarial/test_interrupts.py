"""Command outputs interrupted at every stage: processes killed with SIGKILL, and failing writes.

tests/models kills ``save_pretrained`` itself; here whole commands are attacked (``fit`` writing a bridge
folder, ``predict`` writing a file) in real processes killed with SIGKILL (nothing can clean up) while
writing, inside the swap and after it, and in process with a full disk. The output is always whole:
the previous result or the new one (killed between the two renames of a swap, the previous output is
whole in its hidden ``.old`` sibling). A killed run may leave hidden ``.<name>.<hex>.tmp`` (or ``.old``)
siblings, nothing else, and the next run succeeds.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import transformers.modeling_utils
from typer.testing import CliRunner

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.cli import app
from tests.adversarial.test_cli import base_arguments, with_option
from tests.cli.common import assert_one_line_failure, debris

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

#: Runs the command given on its command line, pausing (printing READY) at ``point`` to be killed there.
CHILD = textwrap.dedent(
    """
    import os, pathlib, shutil, sys, time
    point, argv = sys.argv[1], sys.argv[2:]
    output = os.path.abspath(argv[argv.index("-o") + 1])

    def pause():
        print("READY", flush=True)
        time.sleep(300)

    if point == "weights":  # half of model.safetensors written into the staged output
        import transformers.modeling_utils as modeling_utils
        real_save = modeling_utils.safe_save_file
        def half_then_pause(tensors, filename, metadata=None):
            real_save(tensors, filename, metadata=metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            pause()
        modeling_utils.safe_save_file = half_then_pause
    elif point == "swap":  # the previous output renamed aside, the new one not yet renamed in
        real_rename = os.rename
        def rename_then_pause(src, dst, *args, **kwargs):
            real_rename(src, dst, *args, **kwargs)
            if os.path.abspath(src) == output:
                pause()
        os.rename = rename_then_pause
    elif point == "cleanup":  # the new output in place, the previous one not yet removed
        real_rmtree = shutil.rmtree
        def pause_then_rmtree(path, *args, **kwargs):
            name = os.path.basename(path)
            if name.startswith("." + os.path.basename(output) + ".") and name.endswith(".old"):
                pause()
            return real_rmtree(path, *args, **kwargs)
        shutil.rmtree = pause_then_rmtree
    elif point == "write":  # predict, its output half written into the staged file
        real_write = pathlib.Path.write_text
        def half_then_pause(self, text, *args, **kwargs):
            real_write(self, text[: len(text) // 2], *args, **kwargs)
            pause()
        pathlib.Path.write_text = half_then_pause

    from hf_latent_bridge.cli import app
    sys.argv = ["hf-latent-bridge", *argv]
    app()
    """
)

#: (command, point) -> what the output must hold after the kill: the previous result or the new one.
KILLS = {
    ("fit", "weights"): "previous",  # the staged output half written
    ("fit", "swap"): "aside",  # between the two renames of files._swap_in: the previous one is kept aside
    ("fit", "cleanup"): "new",  # the new output in place, the previous one not yet removed
    ("predict", "write"): "previous",  # the staged file half written
}


@pytest.fixture(scope="module")
def killed(workspace, tmp_path_factory) -> dict[tuple[str, str], tuple[Path, dict[str, bytes], list[str]]]:
    """Every case of KILLS run in its own process side by side, killed with SIGKILL at its point: the
    output, what it held before, and the arguments of the run."""
    root = tmp_path_factory.mktemp("killed")
    script = root / "child.py"
    script.write_text(CHILD)
    children = {}
    for case in KILLS:
        command, point = case
        (root / point).mkdir()
        output = root / point / ("out.jsonl" if command == "predict" else "out")
        arguments = [*base_arguments(command, workspace, output), "--overwrite"]
        if command == "fit":  # the previous output: a bridge of another seed
            assert runner.invoke(app, with_option(arguments, "--seed", "1")).exit_code == 0
            arguments = with_option(arguments, "--seed", "2")
        else:
            output.write_text("previous results\n")
        process = subprocess.Popen(
            [sys.executable, str(script), point, *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        children[case] = (output, snapshot(output), arguments, process)
    for case, (*_, process) in children.items():
        if not reached_ready(process):
            process.kill()
            pytest.fail(f"{case}: the child never reached the point: {process.communicate()[1][-2000:]}")
        process.send_signal(signal.SIGKILL)
    for case, (*_, process) in children.items():
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, case
    return {case: child[:3] for case, child in children.items()}


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id="-".join(case)) for case in KILLS],
)
def test_a_command_killed_at_any_point_leaves_the_previous_output_or_the_new_one(case, killed):
    command, _ = case
    output, previous, arguments = killed[case]
    if KILLS[case] == "previous":
        assert snapshot(output) == previous
    elif KILLS[case] == "aside":  # the documented window: the previous output whole in a hidden sibling
        (aside,) = [output.parent / name for name in debris(output) if name.endswith(".old")]
        assert not output.exists() and snapshot(aside) == previous
    else:
        assert snapshot(output) != previous and whole(command, output)
    beside = {p.name for p in output.parent.iterdir()} - {output.name}
    assert beside <= set(debris(output)), beside  # at most hidden staging siblings
    result = runner.invoke(app, arguments)  # the next run is not disturbed by them
    assert result.exit_code == 0, result.output
    assert whole(command, output)


def reached_ready(process: subprocess.Popen, seconds: float = 240) -> bool:
    while True:
        ready, _, _ = select.select([process.stdout], [], [], seconds)
        line = process.stdout.readline() if ready else ""
        if not line or line.strip() == "READY":
            return line.strip() == "READY"


def snapshot(output: Path) -> dict[str, bytes]:
    if not output.exists():
        return {}
    if output.is_file():
        return {output.name: output.read_bytes()}
    return {str(p.relative_to(output)): p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file()}


def whole(command: str, output: Path) -> bool:
    if command == "fit":
        LatentBridge.from_pretrained(output)  # raises unless whole
        return True
    lines = output.read_text().splitlines()
    return bool(lines) and all(line.startswith('{"input"') and line.endswith("}") for line in lines)


# ---------------------------------------------------------------------------------------- failing writes
def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("command", ["fit", "stitch", "predict"])
def test_a_failing_write_fails_in_one_line_and_keeps_the_previous_output(
    command, workspace, tmp_path, monkeypatch
):
    output = tmp_path / ("out.jsonl" if command == "predict" else "out")
    arguments = [*base_arguments(command, workspace, output), "--overwrite"]
    if command == "predict":
        output.write_text("previous results\n")
    else:
        assert runner.invoke(app, arguments).exit_code == 0
    previous = snapshot(output)
    if command == "predict":
        monkeypatch.setattr(Path, "write_text", disk_full)
    else:
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
    result = runner.invoke(app, arguments)
    monkeypatch.undo()
    assert_one_line_failure(result, "No space left on device")
    assert snapshot(output) == previous and debris(output) == []
    assert sorted(os.listdir(tmp_path)) == [output.name]
