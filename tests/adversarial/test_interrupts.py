"""Command-line outputs interrupted at every stage: killed processes and failing writes.

tests/models/test_atomic_save.py kills ``save_pretrained`` itself; here the whole commands are attacked
(``fit`` writing a bridge folder, ``predict`` writing a file), in real processes stopped by SIGTERM or
SIGKILL while computing, while writing and right after the swap, and in process with a full disk. The
output always holds the whole previous result or the whole new one; SIGTERM and failures leave nothing
beside it, and what SIGKILL leaves is removed by the next run.
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
from tests.adversarial.conftest import debris
from tests.adversarial.test_cli import assert_one_line_failure, base_arguments, with_option

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

CHILD = textwrap.dedent(
    """
    import os, pathlib, sys, time
    point, seconds, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]

    def pause():
        print("READY", flush=True)
        time.sleep(seconds)

    if point == "compute":  # in the middle of the work, before anything is written
        from hf_latent_bridge import LatentBridge
        import functools
        real_fit = LatentBridge.fit.__func__
        @functools.wraps(real_fit)
        def paused_fit(cls, *args, **kwargs):
            pause()
            return real_fit(cls, *args, **kwargs)
        LatentBridge.fit = classmethod(paused_fit)
    elif point == "weights":  # half of model.safetensors written into the staged output
        import transformers.modeling_utils as modeling_utils
        real_save = modeling_utils.safe_save_file
        def half_then_pause(tensors, filename, metadata=None):
            real_save(tensors, filename, metadata=metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            pause()
        modeling_utils.safe_save_file = half_then_pause
    elif point == "swap":  # the new output is in place, the previous one not yet removed
        import hf_latent_bridge.files as files
        real_remove = files._remove
        output = os.path.basename(argv[argv.index("-o") + 1])
        def pause_before_removing_the_old(path):
            if path.name.startswith(f".{output}.hlb-old-"):  # the command's output, not a save inside it
                pause()
            return real_remove(path)
        files._remove = pause_before_removing_the_old
    elif point == "classify":  # predict, while the pipeline runs
        from hf_latent_bridge import StitchedClassificationPipeline
        real_call = StitchedClassificationPipeline.__call__
        def paused_call(self, *args, **kwargs):
            pause()
            return real_call(self, *args, **kwargs)
        StitchedClassificationPipeline.__call__ = paused_call
    elif point == "write":  # predict, its output half written in the staged file
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

#: (command, point, signal) -> what the output holds afterwards: the previous result or the new one.
KILLS = {
    ("fit", "compute", signal.SIGTERM): "previous",
    ("fit", "weights", signal.SIGKILL): "previous",
    ("fit", "swap", signal.SIGTERM): "new",  # the swap is finished before the signal takes effect
    ("fit", "swap", signal.SIGKILL): "new",
    ("predict", "classify", signal.SIGKILL): "previous",
    ("predict", "write", signal.SIGTERM): "previous",
}


def test_commands_killed_at_every_stage_keep_a_whole_output(workspace, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    children = {}
    for case in KILLS:
        command, point, sig = case
        folder = tmp_path / f"{command}-{point}-{sig.name}"
        folder.mkdir()
        output = folder / ("out.jsonl" if command == "predict" else "out")
        arguments = [*base_arguments(command, workspace, output), "--overwrite"]
        if command == "fit":  # the previous output: a bridge of another seed
            assert runner.invoke(app, with_option(arguments, "--seed", "1")).exit_code == 0
            arguments = with_option(arguments, "--seed", "2")
        else:
            output.write_text("previous results\n")
        previous = snapshot(output)
        seconds = "3" if point == "swap" else "120"
        process = subprocess.Popen(
            [sys.executable, str(script), point, seconds, *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )
        children[case] = (output, previous, arguments, process)
    for (command, point, sig), (_, _, _, process) in children.items():
        ready, _, _ = select.select([process.stdout], [], [], 240)
        line = process.stdout.readline() if ready else ""
        while line and line.strip() != "READY":
            ready, _, _ = select.select([process.stdout], [], [], 240)
            line = process.stdout.readline() if ready else ""
        if line.strip() != "READY":
            process.kill()
            pytest.fail(
                f"{command}/{point}: the child never reached the point: {process.stderr.read()[-2000:]}"
            )
        process.send_signal(sig)
    for case, (output, previous, arguments, process) in children.items():
        command, point, sig = case
        process.communicate(timeout=240)
        assert process.returncode == -sig, (case, process.returncode)
        if KILLS[case] == "previous":
            assert snapshot(output) == previous, case
        else:
            assert snapshot(output) != previous and whole(command, output), case
        if sig == signal.SIGTERM:
            assert debris(output) == [], (case, debris(output))
        # The next run finishes the job and removes whatever a killed one left.
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, (case, result.output)
        assert whole(command, output) and debris(output) == [], case


def snapshot(output: Path) -> dict[str, bytes]:
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
def test_a_full_disk_fails_in_one_line_and_keeps_the_previous_output(
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
    assert_one_line_failure(result)
    assert "No space left on device" in result.stderr
    assert snapshot(output) == previous and debris(output) == []
