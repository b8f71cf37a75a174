"""Random option values and argument vectors for every command.

Property: a command either succeeds (exit 0, its output complete and loadable, nothing non-finite in it)
or fails with exactly one ``error: ...`` line on stderr and a non-zero exit code; never a traceback,
never a half-written output, never a file of the user's replaced. Commands run in process (typer's
CliRunner) on the tiny real models of tests/conftest.py and a small real-text data file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hf_latent_bridge import LatentBridge, StitchedModel
from hf_latent_bridge.cli import app
from tests.adversarial.conftest import no_hang
from tests.cli.common import assert_one_line_failure, debris

runner = CliRunner()
CLI_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

INTEGERS = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "6",
    "2.5",
    "1e400",
    "nan",
    "",
    "abc",
    "99999999999999999999999",
    "0x10",
]
NUMBERS = [
    "0",
    "-1",
    "0.5",
    "1",
    "1e-300",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "",
    "auto",
    "mean",
    "none",
    "x",
    "1,5",
]
WORDS = ["", " ", "x", "text", "topic", "train", "test", "mean", "cls", "irp", "procrustes", "uniform",
         "balanced", "farthest", "../..", "é☃", "a" * 300, "a->b", "a=b@c"]  # fmt: skip


def paths(root: Path) -> list[str]:
    """Path-like values: missing, an existing file, a non-empty folder, unwritable places, empty."""
    return [
        str(root / "missing" / "deeper"),
        str(root / "existing.txt"),
        str(root / "full-folder"),
        "/dev/null",
        "/proc/no-such-place",
        "",
        str(root / "fresh"),
    ]


#: Options per command and the kind of value each takes (push-to-hub is left out: no Hub here).
OPTIONS = {
    "fit": {
        "-k": "int", "--batch-size": "int", "--seed": "int", "--ridge": "number", "--output-norm": "number",
        "--whitening": "number", "--method": "word", "--strategy": "word", "--column": "word",
        "--label-column": "word", "--split": "word", "--source-pooling": "word", "--target-revision": "word",
        "--cache-dir": "path", "-o": "path", "-d": "path", "--source-id": "word",
    },
    "stitch": {
        "-k": "int", "--batch-size": "int", "--seed": "int", "--whitening": "number", "--test-size": "number",
        "--method": "word", "--strategy": "word", "--label-column": "word", "--test-split": "word",
        "--head": "path", "-o": "path", "-d": "path", "--target-pooling": "word",
    },
    "eval": {
        "-k": "int", "--batch-size": "int", "--seed": "int", "--limit": "int", "--chunk-size": "int",
        "--test-size": "number", "--methods": "word", "--strategy": "word", "--pooling": "word",
        "--curve": "word", "--anchor-counts": "word", "-o": "path", "-d": "path", "--label-column": "word",
    },
    "predict": {"--top-k": "int", "--batch-size": "int", "--column": "word", "-o": "path", "--source-encoder": "path"},
    "demo": {"-k": "bad int", "--batch-size": "bad int", "--text": "word", "-o": "path"},
}  # fmt: skip


def base_arguments(command: str, ws: dict[str, str], out: Path) -> list[str]:
    if command == "fit":
        return ["fit", ws["source"], ws["target"], "-d", ws["data"], "-o", str(out), "-k", "8"]
    if command == "stitch":
        return ["stitch", ws["source"], ws["target"], "-d", ws["data"], "-o", str(out), "--label-column",
                "topic", "-k", "8", "--strategy", "uniform"]  # fmt: skip
    if command == "eval":
        return ["eval", f"a={ws['source']}", f"b={ws['target']}", "-d", ws["data"], "--label-column", "topic",
                "-o", str(out), "-k", "8", "--methods", "irp"]  # fmt: skip
    if command == "predict":
        return ["predict", ws["stitched"], ws["inputs"], "-o", str(out)]
    return ["demo", "-o", str(out)]


def with_option(arguments: list[str], option: str, value: str) -> list[str]:
    """``arguments`` with ``option`` set to ``value`` (replacing an earlier value of it)."""
    if option in arguments:
        position = arguments.index(option)
        return [*arguments[: position + 1], value, *arguments[position + 2 :]]
    return [*arguments, option, value]


def assert_complete_output(command: str, out: Path) -> None:
    """A successful command left a whole, loadable output with finite numbers in it."""
    if command == "fit":
        bridge = LatentBridge.from_pretrained(out)
        x = torch.randn(3, bridge.config.source_dim)
        assert bool(torch.isfinite(bridge.translate(x)).all())
    elif command == "stitch":
        model = StitchedModel.from_pretrained(out)
        x = torch.randn(3, model.bridge.config.source_dim)
        assert bool(torch.isfinite(model.logits_from_embeddings(x)).all())
    elif command == "eval":
        report = json.loads((out / "stitching_matrix.json").read_text())
        assert report
    elif command == "predict":
        for line in out.read_text().splitlines():
            for prediction in json.loads(line)["predictions"]:
                assert math.isfinite(prediction["score"]) and 0 <= prediction["score"] <= 1


def prepare(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "existing.txt").write_text("the user's file\n")
    (root / "full-folder").mkdir(exist_ok=True)
    (root / "full-folder" / "mine.txt").write_text("the user's file\n")


def users_files(root: Path) -> dict[str, str]:
    return {
        "existing.txt": (root / "existing.txt").read_text(),
        "full-folder/mine.txt": (root / "full-folder" / "mine.txt").read_text(),
    }


@CLI_SETTINGS
@given(command=st.sampled_from(list(OPTIONS)), data=st.data())
def test_any_option_values_succeed_completely_or_fail_in_one_line(command, data, workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    prepare(root)
    out = root / ("out.jsonl" if command == "predict" else "out")
    arguments = base_arguments(command, workspace, out)
    pools = {
        "int": INTEGERS,
        "bad int": ["0", "-1", "1", "2.5", "", "abc", "1e400"],
        "number": NUMBERS,
        "word": WORDS,
        "path": paths(root),
    }
    if command == "demo":  # "1" is a valid value, and the demo's real run is the slow tests' job
        pools["bad int"] = [v for v in pools["bad int"] if v != "1"]
    chosen = data.draw(
        st.lists(st.sampled_from(sorted(OPTIONS[command])), min_size=0, max_size=3, unique=True)
    )
    for option in chosen:
        arguments = with_option(
            arguments, option, data.draw(st.sampled_from(pools[OPTIONS[command][option]]), label=option)
        )
    if command == "demo" and not {"-k", "--batch-size"} & set(chosen):
        arguments = with_option(arguments, "--batch-size", "0")  # the demo's real run is the slow tests' job
    before = users_files(root)
    target = Path(arguments[arguments.index("-o") + 1]) if "-o" in arguments else out
    existed = target.exists()
    with no_hang(240):
        result = runner.invoke(app, arguments)
    event(f"{command}: {'succeeded' if result.exit_code == 0 else 'refused'}")
    if result.exit_code == 0:
        assert command != "demo"
        assert_complete_output(command, target)
    else:
        assert_one_line_failure(result)
        assert existed or not target.exists(), "a refused command left an output behind"
    assert users_files(root) == before  # no --overwrite is ever passed: nothing of the user's is replaced
    for entry in root.iterdir():
        assert not debris(entry), debris(entry)


#: Tokens of hostile argument vectors: unknown options, options without values, flags with values...
#: ("demo" is left out: with no arguments it is a valid command that runs the real demo.)
TOKENS = st.sampled_from(
    [
        "fit",
        "stitch",
        "eval",
        "predict",
        "--overwrite",
        "--no-overwrite",
        "-k",
        "--num-anchors",
        "--batch-size",
        "-o",
        "-d",
        "--ridge",
        "--method",
        "--bogus",
        "-",
        "--",
        "-x",
        "3",
        "-1",
        "nan",
        "a",
        "é",
        "",
        "--top-k=0",
        "--ridge=",
        "--help=1",
        "--private",
        "--overwrite=maybe",
    ]
)


@settings(max_examples=80, deadline=None)
@given(tokens=st.lists(TOKENS, min_size=1, max_size=7))
def test_any_argument_vector_gets_help_or_a_one_line_error(tokens):
    """Garbled command lines (never reaching compute: no model or data exists) end in one line."""
    with no_hang(120):
        result = runner.invoke(app, tokens)
    if result.exit_code == 0:
        assert "Usage" in result.output  # asked for help
        return
    assert_one_line_failure(result)
