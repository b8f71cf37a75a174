"""Running the command line in process, what a failure must look like, and what a write may leave."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from hf_latent_bridge.cli import app

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def shown_lines(stream: str) -> list[str]:
    """The lines a terminal shows: progress bars redraw their line with ``\\r`` and clear it at the end."""
    return [line.split("\r")[-1] for line in stream.split("\n") if line.split("\r")[-1].strip()]


def assert_one_line_failure(result, *fragments: str, exit_code: int | None = None) -> None:
    """A non-zero exit, no traceback, and on stderr one ``error:`` line that names ``fragments`` (any
    other line is a one-line ``warning:``)."""
    assert result.exit_code not in (0, None), result.output
    if exit_code is not None:
        assert result.exit_code == exit_code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.output + result.stderr, result.stderr
    lines = shown_lines(result.stderr)
    errors = [line for line in lines if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0] == lines[-1] and errors[0].startswith("error: "), result.stderr
    assert len(errors[0]) > len("error: ") + 10, errors[0]  # it says something
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def debris(path: Path) -> list[str]:
    """What writes staged beside ``path`` and left there: hidden ``.<name>.<hex>.tmp`` (or ``.old``)
    siblings, and those of a save into such a staging folder (``..<name>.<hex>.tmp.<hex>.tmp``)."""
    pattern = re.compile(rf"\.+{re.escape(path.name[:120])}(\.[0-9a-f]{{8}}\.(tmp|old))+")
    return sorted(p.name for p in path.parent.iterdir() if pattern.fullmatch(p.name))
