"""Reading labelled tables: local files, saved data sets or Hub ids; their columns, labels and splits."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.options import check
from ..errors import BridgeInputError

LOCAL_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


def load_table(
    spec: Any, split: str = "train", *, config: str | None = None, revision: str | None = None
) -> Any:
    """A ``datasets.Dataset`` from a ``Dataset`` / ``DatasetDict``, a local file (csv/json/jsonl/parquet/txt),
    a folder saved with ``save_to_disk``, or a Hub data set id."""
    import datasets

    if isinstance(spec, datasets.Dataset):
        return spec
    if isinstance(spec, datasets.DatasetDict):
        if split not in spec:
            raise BridgeInputError(f"the data set has no split {split!r} (splits: {', '.join(spec)}).")
        return spec[split]
    if not isinstance(spec, (str, os.PathLike)):
        raise BridgeInputError(
            f"data must be a datasets.Dataset, a file, a saved data set folder or a Hub id, got "
            f"{type(spec).__name__}."
        )
    spec, path = str(spec), Path(spec).expanduser()
    try:
        if path.is_file():
            if path.suffix.lower() not in LOCAL_FORMATS:
                raise BridgeInputError(
                    f"cannot read {spec}: unknown file type {path.suffix!r}; use one of "
                    f"{', '.join(LOCAL_FORMATS)} or a Hub data set id."
                )
            if split != "train":
                raise BridgeInputError(
                    f"a single file has only the 'train' split, not {split!r}; pass --split train."
                )
            return _load_file(path, LOCAL_FORMATS[path.suffix.lower()])
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return load_table(datasets.load_from_disk(str(path)), split)  # saved with save_to_disk
        return datasets.load_dataset(spec, config, split=split, revision=revision)
    except BridgeInputError:
        raise
    except ValueError as error:  # datasets' own words say what was wrong (an unknown split, a config...)
        raise BridgeInputError(
            f"cannot load split {split!r} of data set {spec!r}: {' '.join(str(error).split())}"
        ) from None
    except (OSError, ImportError) as error:
        raise BridgeInputError(
            f"cannot load data set {spec!r} ({type(error).__name__}: {' '.join(str(error).split())[:300]}); "
            "pass a local csv/json/jsonl/parquet file or a reachable Hub data set id."
        ) from None


def _load_file(path: Path, builder: str) -> Any:
    """A local data file as a ``datasets.Dataset``; a file without rows or with a bad line is refused
    naming the file (and the line, for JSON lines)."""
    import datasets

    if not _has_content(path):
        raise BridgeInputError(
            f"{path} is empty; it holds no rows. Write one example per row (a header first for CSV)."
        )
    try:
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as error:  # datasets wraps a bad line in several layers of its own errors
        if isinstance(error, MemoryError):
            raise
        if builder == "json":
            _check_json_lines(path)  # raises naming the first bad line
        cause = error.__cause__ or error.__context__ or error
        raise BridgeInputError(
            f"cannot read {path} as {builder} ({type(cause).__name__}: {' '.join(str(cause).split())[:200]}); "
            "fix the file or convert it to JSON lines, CSV or Parquet."
        ) from None
    if len(dataset) == 0:
        raise BridgeInputError(f"{path} holds no rows; write one example per row (a header first for CSV).")
    return dataset


def _has_content(path: Path) -> bool:
    with open(path, "rb") as handle:
        return any(chunk.strip() for chunk in iter(lambda: handle.read(1 << 16), b""))


def _check_json_lines(path: Path) -> None:
    """Raise :class:`BridgeInputError` at the first line of a JSON lines file that is not a JSON object."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.read(1)
        if first in ("[", "{") and path.suffix.lower() == ".json":
            return  # one JSON document, not JSON lines
        handle.seek(0)
        for number, line in enumerate(handle, start=1):
            if line.strip():
                _json_record(line, path, number)


def _json_record(line: str, path: Path, number: int, column: str | None = None) -> dict[str, Any]:
    """One line of a JSON lines file as an object (holding ``column`` when given), or :class:`BridgeInputError`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise BridgeInputError(
            f"{path} line {number} is not JSON ({error.msg}); write one object per line."
        ) from None
    if not isinstance(record, dict):
        raise BridgeInputError(
            f"{path} line {number} is a JSON {type(record).__name__}, not an object; write one object per line."
        )
    if column is not None and column not in record:
        raise BridgeInputError(
            f"{path} line {number} has no field {column!r}; choose the field with --column."
        )
    return record


def require_columns(dataset: Any, *columns: str | None) -> None:
    missing = [c for c in columns if c is not None and c not in dataset.column_names]
    if missing:
        raise BridgeInputError(
            f"column {missing[0]!r} is not in the data set (columns: {', '.join(dataset.column_names)}); "
            "choose one of those (--column / --label-column on the command line)."
        )


def column_values(dataset: Any, column: str) -> Any:
    """A column as encoder inputs: strings, PIL images, or a numpy array for array features."""
    import datasets

    feature = dataset.features[column]
    if isinstance(feature, (datasets.Array2D, datasets.Array3D)):
        return dataset.with_format("numpy")[column]
    return list(dataset[column])


@dataclass
class LabelledSplits:
    """A train and a held-out test split of one labelled table, with class ids and their names."""

    train: Any  # datasets.Dataset
    test: Any  # datasets.Dataset
    train_labels: Any  # torch.Tensor of class ids
    test_labels: Any
    id2label: dict[int, str]


def labelled_splits(
    data: Any,
    *,
    column: str,
    label_column: str,
    split: str = "train",
    test_split: str | None = None,
    test_size: float = 0.2,
    config: str | None = None,
    revision: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    extra_columns: Sequence[str] = (),
) -> LabelledSplits:
    """Load ``data`` and split it: ``test_split`` when given, else a seeded (stratified when the labels are a
    ``ClassLabel``) hold-out of ``test_size`` of ``split``. Labels become class ids; ``id2label`` names them."""
    limit = check("limit", limit)
    train = load_table(data, split, config=config, revision=revision)
    require_columns(train, column, label_column, *extra_columns)
    if test_split is not None:
        test = load_table(data, test_split, config=config, revision=revision)
        require_columns(test, column, label_column, *extra_columns)
    else:
        test_size = check("test_size", test_size)
        stratify = label_column if _is_class_label(train, label_column) else None
        try:
            parts = train.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify)
        except ValueError as error:  # too few rows, or a class too small to be in both splits
            raise BridgeInputError(
                f"cannot hold out {test_size:g} of {len(train)} rows as a test split ({error}); pass more rows "
                "or a test split of your own."
            ) from None
        train, test = parts["train"], parts["test"]
    if limit is not None:
        train, test = train.select(range(min(limit, len(train)))), test.select(range(min(limit, len(test))))
    train_labels, test_labels, id2label = _labels(train, test, label_column)
    return LabelledSplits(train, test, train_labels, test_labels, id2label)


def _is_class_label(dataset: Any, column: str) -> bool:
    import datasets

    return isinstance(dataset.features[column], datasets.ClassLabel)


def _labels(train: Any, test: Any, column: str) -> tuple[Any, Any, dict[int, str]]:
    """Class ids for both splits, and id2label (ClassLabel names, or sorted distinct raw labels)."""
    import torch

    if _is_class_label(train, column):
        names = train.features[column].names
        return torch.tensor(train[column]), torch.tensor(test[column]), dict(enumerate(names))
    classes = sorted({str(v) for v in train[column]})
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted({str(v) for v in test[column]} - set(index))
    if unseen:
        raise BridgeInputError(
            f"test labels {unseen[:5]} never occur in the train split; every class needs train rows."
        )
    train_ids, test_ids = ([index[str(v)] for v in part[column]] for part in (train, test))
    return torch.tensor(train_ids), torch.tensor(test_ids), dict(enumerate(classes))


def read_inputs(path: Path, column: str) -> list[str]:
    """Inputs from a text file (one per non-empty line) or a JSON lines file (field ``column``)."""
    if not path.is_file():
        raise BridgeInputError(f"input file {path} does not exist; pass a text or .jsonl file.")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BridgeInputError(f"cannot read {path}: {error}") from None
    lines = [(number, line) for number, line in enumerate(content.splitlines(), start=1) if line.strip()]
    if path.suffix.lower() != ".jsonl":
        values = [line.strip() for _, line in lines]
    else:
        values = [str(_json_record(line, path, number, column)[column]) for number, line in lines]
    if not values:
        raise BridgeInputError(f"{path} holds no inputs; write one input per line.")
    return values
