"""Hostile bytes and file system states: artifacts, data files and the folders saves write into.

- safetensors files of every kind: damaged bytes, crafted headers, foreign files, special files;
- data files (JSON lines, CSV): bad lines are named with their file and line, empty files say so;
- saving into a folder in any state keeps every file of the user's, byte for byte, or refuses.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from hf_latent_bridge import BridgeInputError, CheckpointError, OutputExistsError
from hf_latent_bridge.encoding.tables import load_table
from hf_latent_bridge.models.cards import CARD_MARKER
from tests.adversarial.conftest import no_hang
from tests.adversarial.test_configs import CLASSES, load_or_refuse
from tests.cli.common import debris

FILE_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KINDS = list(CLASSES)


def copy_of(kind: str, saved_artifacts: dict[str, Path], root: Path) -> Path:
    folder = root / kind
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(saved_artifacts[kind], folder)
    return folder


def header_of(data: bytes) -> tuple[int, dict]:
    length = int.from_bytes(data[:8], "little")
    return length, json.loads(data[8 : 8 + length])


# ------------------------------------------------------------------------------------- safetensors bytes
@FILE_SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    damage=st.sampled_from(["flip", "cut", "insert", "zero run"]),
    position=st.integers(0, 10**6),
    value=st.binary(min_size=1, max_size=16),
)
def test_damaged_safetensors_of_every_kind_load_or_are_refused(
    kind, damage, position, value, saved_artifacts, tmp_path_factory
):
    folder = copy_of(kind, saved_artifacts, tmp_path_factory.mktemp("bytes"))
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    position %= len(data)
    if damage == "flip":
        data[position : position + len(value)] = value[: len(data) - position]
    elif damage == "cut":
        del data[position:]
    elif damage == "insert":
        data[position:position] = value
    else:
        data[position : position + 8 * len(value)] = bytes(min(8 * len(value), len(data) - position))
    path.write_bytes(bytes(data))
    load_or_refuse(kind, folder)


HOSTILE_COUNTS = st.sampled_from([0, 1, 2, 3, 5, -1, 2**31, 2**40, 2**63, 2**64 + 1, 1.5, "8", None, True])


@FILE_SETTINGS
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_crafted_safetensors_headers_are_refused_before_anything_is_read(
    kind, data, saved_artifacts, tmp_path_factory
):
    """A header that lies (shapes, dtypes, offsets, extra or missing entries, metadata): refused from the
    header alone, or loaded with finite outputs."""
    folder = copy_of(kind, saved_artifacts, tmp_path_factory.mktemp("header"))
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    length, header = header_of(raw)
    payload = raw[8 + length :]
    name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")), label="tensor")
    field = data.draw(
        st.sampled_from(["dtype", "shape", "data_offsets", "entry", "extra", "metadata"]), label="field"
    )
    if field == "dtype":
        header[name]["dtype"] = data.draw(
            st.sampled_from(["F64", "F16", "BF16", "I64", "BOOL", "U8", "F8_E4M3", "X", 3])
        )
    elif field == "shape":
        header[name]["shape"] = data.draw(
            st.lists(HOSTILE_COUNTS, max_size=4) | st.sampled_from(["[2]", None, {}])
        )
    elif field == "data_offsets":
        header[name]["data_offsets"] = data.draw(st.lists(HOSTILE_COUNTS, min_size=0, max_size=3))
    elif field == "entry":
        header[name] = data.draw(st.sampled_from([None, [], "x", 1, {}]))
    elif field == "extra":
        header[data.draw(st.sampled_from(["stowaway", "weight.T", "../x", ""]))] = dict(header[name])
    else:
        header["__metadata__"] = data.draw(
            st.sampled_from([{"format": "pt"}, {"format": 1}, [], "x", {"a": None}])
        )
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload)
    load_or_refuse(kind, folder)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "foreign", ["bert weights", "no tensors", "metadata only", "one scalar", "empty file"]
)
def test_foreign_safetensors_are_refused(kind, foreign, saved_artifacts, tmp_path, tiny_bert_path):
    folder = copy_of(kind, saved_artifacts, tmp_path)
    path = folder / "model.safetensors"
    path.unlink()
    if foreign == "bert weights":
        shutil.copyfile(Path(tiny_bert_path) / "model.safetensors", path)
    elif foreign == "no tensors":
        save_file({}, str(path))
    elif foreign == "metadata only":
        save_file({}, str(path), metadata={"format": "pt", "note": "x" * 1000})
    elif foreign == "one scalar":
        save_file({"weight": torch.tensor(1.0)}, str(path))
    else:
        path.write_bytes(b"")
    with no_hang(), pytest.raises(CheckpointError):
        CLASSES[kind].from_pretrained(folder)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


SPECIAL_FILES = {
    "a FIFO (would block a reader forever)": _fifo,
    "a link to /dev/zero (endless)": lambda path: os.symlink("/dev/zero", path),
    "a link to /dev/urandom": lambda path: os.symlink("/dev/urandom", path),
    "a folder": lambda path: path.mkdir(),
    "a dangling link": lambda path: os.symlink(path.parent / "nowhere", path),
    "a link loop": lambda path: os.symlink(path, path),
    "a sparse terabyte": lambda path: open(path, "wb").truncate(1 << 40),  # noqa: SIM115
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("name", "special"),
    [(name, special) for name in ("config.json", "model.safetensors") for special in SPECIAL_FILES],
)
def test_special_files_in_place_of_an_artifacts_files_never_hang(
    kind, special, name, saved_artifacts, tmp_path
):
    """Refused at once with an OSError naming the folder (ours, or transformers' own: it loads only
    regular files), never read forever."""
    folder = copy_of(kind, saved_artifacts, tmp_path)
    (folder / name).unlink()
    SPECIAL_FILES[special](folder / name)
    with no_hang(), pytest.raises(OSError, match=str(folder)):
        CLASSES[kind].from_pretrained(folder)


# ----------------------------------------------------------------------------------------------- data files
GOOD_ROWS = [{"text": f"utterance {i}", "topic": ["food", "sports", "money"][i % 3]} for i in range(12)]

BAD_LINES = [
    '{"text": "unterminated',
    "not json at all",
    "[1, 2, 3]",
    '"a string"',
    "{'single': 'quotes'}",
    '{"text": "x", "topic": }',
    "\x00\x01\x02",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.integers(0, len(GOOD_ROWS)), bad=st.sampled_from(BAD_LINES) | st.text(min_size=1, max_size=30))
def test_a_bad_json_line_is_named_by_file_and_line(line, bad, tmp_path_factory):
    rows = [json.dumps(r) for r in GOOD_ROWS]
    rows.insert(line, bad.replace("\n", " ").replace("\r", " "))
    path = tmp_path_factory.mktemp("data") / "rows.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8", errors="surrogateescape")
    try:
        with no_hang():
            dataset = load_table(str(path))
    except BridgeInputError as error:
        message = str(error)
        assert "rows.jsonl" in message
        if "not JSON" in message or "not an object" in message:
            assert f"line {line + 1} " in message, message
        return
    assert len(dataset) >= len(GOOD_ROWS)  # the odd line was valid JSON after all (e.g. "{}")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.jsonl", "", "is empty"),
        ("blank.jsonl", "\n\n  \n", "is empty"),
        ("empty.csv", "", "is empty"),
        ("header-only.csv", "text,topic\n", "empty.csv|header-only.csv"),
        ("binary.jsonl", "\x00" * 100, "binary.jsonl"),
        (
            "mixed-types.jsonl",
            '{"text": "a", "topic": 1}\n{"text": "b", "topic": {"x": [1]}}\n',
            "mixed-types.jsonl",
        ),
        ("ragged.csv", "text,topic\na,b,c,d\ne\n", "ragged.csv"),
    ],
)
def test_empty_and_malformed_data_files_name_the_file(name, content, fragment, tmp_path):
    path = tmp_path / name
    path.write_text(content)
    try:
        with no_hang():
            dataset = load_table(str(path))
    except BridgeInputError as error:
        assert any(part in str(error) for part in fragment.split("|")), str(error)
        return
    assert len(dataset) > 0


# ----------------------------------------------------------------------------------- saving keeps user files
USER_ENTRIES = {
    "notes.txt": b"my notes\n",
    "README.md": b"# My own card\nhand written\n",
    "config.json": json.dumps({"model_type": "bert", "hidden_size": 8}).encode(),
    "model.safetensors": b"not the package's weights",
    "modeling_latent_bridge.py": b"# my own code\n",
    "head_config.json": b'{"mine": true}',
    "data/rows.jsonl": b'{"text": "hello"}\n',
}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if not p.is_symlink() else os.readlink(p).encode())
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["bridge", "head", "stitched", "anchor_space"]),
    mine=st.sets(st.sampled_from(sorted(USER_ENTRIES))),
    previous_save=st.booleans(),
    remote_code=st.booleans(),
    overwrite=st.booleans(),
)
def test_saving_into_any_folder_never_loses_a_users_file(
    kind, mine, previous_save, remote_code, overwrite, artifacts, tmp_path_factory
):
    """Whatever the folder holds (a previous save, the user's own files, some named like the package's),
    a save keeps every user file the package did not write byte for byte, or refuses and changes
    nothing; replacing one of them needs overwrite=True."""
    # The one known exception is pinned below; drop this assume when that test passes.
    assume(not (previous_save and "modeling_latent_bridge.py" in mine and not remote_code and not overwrite))
    model = artifacts[kind]
    folder = tmp_path_factory.mktemp("save") / "out"
    if previous_save:
        model.save_pretrained(folder)
    folder.mkdir(exist_ok=True)
    for name in mine:
        if previous_save and name in ("config.json", "model.safetensors"):
            continue  # those are the previous save's
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(USER_ENTRIES[name])
    before = snapshot(folder)
    users = {
        name: data for name, data in before.items() if name in USER_ENTRIES and data == USER_ENTRIES[name]
    }
    try:
        with no_hang():
            model.save_pretrained(folder, remote_code=remote_code and kind == "bridge", overwrite=overwrite)
    except OutputExistsError:
        assert snapshot(folder) == before and debris(folder) == []
        assert not overwrite
        return
    after = snapshot(folder)
    written = {"config.json", "model.safetensors", "README.md", "modeling_latent_bridge.py"}
    for name, data in users.items():
        if name == "README.md":
            assert after[name] == data  # the user's card is kept, overwrite or not
        elif name not in written or not overwrite:
            assert after.get(name) == data, name
    assert debris(folder) == []
    assert type(model).from_pretrained(folder) is not None
    if "README.md" not in users:
        assert CARD_MARKER in (folder / "README.md").read_text()


def test_a_users_modeling_file_beside_a_save_without_remote_code_is_kept(artifacts, tmp_path):
    """Found by the property above: the previous save wrote no modeling code (its config has no auto_map),
    so a modeling_latent_bridge.py in the folder is the user's; the next save deletes it."""
    folder = tmp_path / "out"
    artifacts["bridge"].save_pretrained(folder)
    (folder / "modeling_latent_bridge.py").write_text("# my own code\n")
    artifacts["bridge"].save_pretrained(folder)
    assert (folder / "modeling_latent_bridge.py").read_text() == "# my own code\n"
