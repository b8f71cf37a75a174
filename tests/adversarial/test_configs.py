"""Crafted and malformed config.json for every artifact kind, at any depth.

tests/models/test_artifact_contract.py edits one top-level field at a time; here any field at any depth
(an encoder's ``dim``, one anchor index, one class name, the bridge inside a stitched model...) is
replaced, deleted or given a hostile value, and whole documents are crafted (deep nesting, numbers of
thousands of digits, NaN literals, other encodings). Loading must refuse fast with an OSError naming the
folder (a CheckpointError, or transformers' own for a config.json it cannot read), or give a model
whose outputs are finite.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_latent_bridge import (
    AnchorSpace,
    BridgeInputError,
    ClassificationHead,
    LatentBridge,
    StitchedModel,
)
from tests.adversarial.conftest import assert_finite, no_hang

CLASSES = {
    "bridge": LatentBridge,
    "ensemble": LatentBridge,
    "anchor_space": AnchorSpace,
    "head": ClassificationHead,
    "stitched": StitchedModel,
}


def fresh_copy(kind: str, saved_artifacts: dict[str, Path], root: Path) -> Path:
    folder = root / kind
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(saved_artifacts[kind], folder)
    return folder


def probe(model: Any) -> Any:
    """What the model computes, on a fixed input of the size its config declares."""
    if isinstance(model, LatentBridge):
        return model.translate(torch.linspace(-2, 2, 3 * model.config.source_dim).reshape(3, -1))
    if isinstance(model, StitchedModel):
        dim = model.bridge.config.source_dim
        return model.logits_from_embeddings(torch.linspace(-2, 2, 3 * dim).reshape(3, -1))
    if isinstance(model, ClassificationHead):
        return model.logits(torch.linspace(-2, 2, 3 * model.input_dim).reshape(3, -1))
    return model.source_factor()


def load_or_refuse(kind: str, folder: Path) -> Any:
    """Load ``folder``: refused with an OSError naming it (CheckpointError or transformers' own), or a
    model with finite outputs."""
    try:
        with no_hang():
            model = CLASSES[kind].from_pretrained(folder)
    except OSError as error:
        assert str(folder) in str(error), error
        return None
    try:
        assert_finite(probe(model))
    except BridgeInputError as error:  # absurd but finite stored values may overflow: then it says so
        assert "overflow" in str(error) or "exceed" in str(error), error
    return model


def json_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every position in a JSON document (long lists: the first two and the last element)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        picks = sorted({0, 1, len(value) - 1} & set(range(len(value))))
        for index in picks:
            yield from json_paths(value[index], (*prefix, index))


def set_at(document: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e-308, 0.5, 1.5]),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        ["", "x" * 5000, "../../etc/passwd", "float64", "int64", "irp", "mean", "a/b", "\0", "é"]
    ),
)
JSON_VALUES = st.recursive(
    HOSTILE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(list(CLASSES)), data=st.data())
def test_any_field_at_any_depth_loads_or_is_refused_cleanly(kind, data, saved_artifacts, tmp_path_factory):
    folder = fresh_copy(kind, saved_artifacts, tmp_path_factory.mktemp("edit"))
    path = folder / "config.json"
    document = json.loads(path.read_text())
    where = data.draw(st.sampled_from(list(json_paths(document))[1:]), label="field")
    delete = data.draw(st.booleans(), label="delete")
    value = None if delete else data.draw(JSON_VALUES, label="value")
    path.write_text(json.dumps(set_at(document, where, value, delete)))
    load_or_refuse(kind, folder)


# --------------------------------------------------------------------------- every size and count field
def integer_fields(document: Any) -> list[tuple]:
    """Positions of the numbers that size tensors or loops (dimensions, counts, indices, seeds...)."""
    return [
        path
        for path in json_paths(document)
        if path
        and isinstance(_get(document, path), int)
        and not isinstance(_get(document, path), bool)
        and "fit_report" not in path
        and "metrics" not in path
    ]


def _get(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


#: Values no size, count, index or seed may take; each must be refused before anything is allocated.
HOSTILE_SIZES = {
    "zero": 0,
    "negative": -1,
    "2**31": 2**31,
    "2**64": 2**64,
    "digits": "5000 digits",
    "float": 1e308,
    "fraction": 2.5,
    "text": "12",
    "boolean": True,
    "null": None,
    "nan": float("nan"),
}


SIZE_CASES = [pytest.param(kind, name, id=f"{kind}-{name}") for kind in CLASSES for name in HOSTILE_SIZES]


@pytest.mark.parametrize(("kind", "value_name"), SIZE_CASES)
def test_every_size_count_and_index_field_refuses_hostile_numbers_fast(
    kind, value_name, saved_artifacts, tmp_path
):
    """Each integer field of the config (dims, counts, ensemble, seed, indices, label ids) set to a hostile
    value in turn: a finite model or a CheckpointError, never an allocation or a loop sized by it."""
    folder = fresh_copy(kind, saved_artifacts, tmp_path)
    path = folder / "config.json"
    original = json.loads(path.read_text())
    for where in integer_fields(original):
        document = copy.deepcopy(original)
        value = HOSTILE_SIZES[value_name]
        text = json.dumps(set_at(document, where, "@@"))
        text = text.replace('"@@"', "9" * 5000 if value == "5000 digits" else json.dumps(value))
        path.write_text(text)
        load_or_refuse(kind, folder)
    path.write_text(json.dumps(original))


# ------------------------------------------------------------------------------------ crafted documents
def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


CRAFTED_DOCUMENTS = {
    "empty file": lambda text: "",
    "null": lambda text: "null",
    "a list": lambda text: "[]",
    "a number": lambda text: "1e999",
    "truncated": lambda text: text[: len(text) // 2],
    "trailing garbage": lambda text: text + "}}",
    "deeply nested document": lambda text: _deep(100_000),
    "deeply nested field": lambda text: text.replace("{", '{"nested": ' + _deep(50_000) + ", ", 1),
    "5000-digit number": lambda text: text.replace("{", '{"seed": ' + "9" * 5000 + ", ", 1),
    "NaN literal everywhere": lambda text: text.replace(": 1,", ": NaN,").replace(": 0,", ": Infinity,"),
    "duplicate keys, hostile last": lambda text: text.rstrip()[:-1] + ', "model_type": 7}',
    "BOM": lambda text: "\ufeff" + text,
    "UTF-16": lambda text: text.encode("utf-16").decode("latin-1"),
    "control bytes": lambda text: text.replace('"', '"\x00', 1),
    "a huge string": lambda text: text.replace("{", '{"blob": "' + "x" * 5_000_000 + '", ', 1),
}


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("craft", CRAFTED_DOCUMENTS)
def test_crafted_config_documents_are_refused_or_load(kind, craft, saved_artifacts, tmp_path):
    folder = fresh_copy(kind, saved_artifacts, tmp_path)
    path = folder / "config.json"
    text = CRAFTED_DOCUMENTS[craft](path.read_text())
    path.write_bytes(
        text.encode("utf-8", errors="surrogatepass") if craft != "UTF-16" else text.encode("latin-1")
    )
    load_or_refuse(kind, folder)
