"""Checking a saved model folder before any tensor is loaded: its config, and the safetensors headers.

A checkpoint is refused, with a :class:`~hf_latent_bridge.errors.CheckpointError` naming the problem and
the fix, when its ``config.json`` is too large, not JSON, of another model type or holds an invalid
setting, or when the tensors its ``model.safetensors`` declares (names, dtypes and shapes, read from the
header alone: bounded, no tensor data is read) differ from those of the model its config describes.
That model is built on the ``meta`` device, so a crafted config (a billion dimensions, a huge ensemble)
costs nothing before it is refused. The header's byte offsets must tile the file exactly, so a truncated
or padded file is caught here too.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, LatentBridgeError

CONFIG_NAME = "config.json"

WEIGHTS_NAME = "model.safetensors"

WEIGHTS_INDEX_NAME = "model.safetensors.index.json"

#: Shards written by ``save_pretrained(max_shard_size=...)``.
SHARD_PATTERN = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")

#: Largest config.json / index read (an anchor set of a million rows takes about 8 MB).
MAX_JSON_BYTES = 64 << 20

#: Largest safetensors header read (the limit of the safetensors library itself).
MAX_HEADER_BYTES = 100_000_000

#: safetensors dtype names and their sizes in bytes.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip

_TORCH_DTYPES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32", torch.int64: "I64", torch.float64: "F64",
}  # fmt: skip

_FLOAT_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


@dataclass(frozen=True)
class TensorSpec:
    """What a checkpoint says about one tensor (or what a model expects of it)."""

    dtype: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def _corrupt(path: Path, where: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path.name} of {where} is not a valid safetensors file ({detail}): it is corrupt or truncated. "
        "Download it again (force_download=True) or re-save the model with save_pretrained."
    )


def read_json(path: Path, where: str) -> dict[str, Any]:
    """A JSON object from a file of bounded size; :class:`CheckpointError` if it is not one."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CheckpointError(
            f"{where}/{path.name} is {size} bytes, more than the {MAX_JSON_BYTES} a saved model's file can be; "
            "it is not a file this package wrote. Re-save the model."
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested or numbers beyond reason
        raise CheckpointError(
            f"{where}/{path.name} is not valid JSON ({str(error)[:200]}): the file is corrupt."
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{where}/{path.name} holds a {type(data).__name__}, not a JSON object: it is corrupt."
        )
    return data


def read_config_dict(folder: Path, expected_type: str, where: str) -> dict[str, Any]:
    """``config.json`` of ``folder`` as a dict, refused if missing, corrupt or of another model type."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{where} has no {CONFIG_NAME}: it is not a saved {expected_type} model.")
    data = read_json(path, where)
    model_type = data.get("model_type")
    if model_type != expected_type:
        raise CheckpointError(
            f"{where} holds a {model_type!r} model, not a {expected_type!r}. Load it with the class made for it "
            "(e.g. transformers.AutoModel), or point to a repo saved by hf_latent_bridge."
        )
    return data


def build_config(make: Callable[[dict[str, Any]], Any], data: dict[str, Any], where: str) -> Any:
    """``make(data)`` (e.g. ``LatentBridgeConfig.from_dict``); an invalid setting is reported as a bad
    checkpoint."""
    dtype = data.get("dtype", data.get("torch_dtype"))
    if dtype is not None and not (isinstance(dtype, str) and dtype in _FLOAT_DTYPES):
        raise CheckpointError(
            f"{where}/{CONFIG_NAME} records dtype {dtype!r}; a saved model is float16, bfloat16, float32 or "
            "float64. Re-save the model, or fix the file."
        )
    try:
        return make(dict(data))
    except CheckpointError:
        raise
    except (LatentBridgeError, ValueError, TypeError, LookupError, AttributeError, OverflowError) as error:
        raise CheckpointError(
            f"{where}/{CONFIG_NAME} holds an invalid setting: {error} Re-save the model, or fix the file."
        ) from None


def read_header(path: Path, where: str) -> dict[str, TensorSpec]:
    """Names, dtypes and shapes declared by a safetensors file, checked against the file's size.

    Reads the 8-byte header length and the JSON header only (at most :data:`MAX_HEADER_BYTES`).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _corrupt(path, where, f"{size} bytes, shorter than the 8-byte header length")
            length = int.from_bytes(prefix, "little")
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise _corrupt(path, where, f"header length {length} does not fit in a file of {size} bytes")
            raw = handle.read(length)
    except OSError as error:
        raise CheckpointError(
            f"cannot read {path} ({error.strerror or error}); check the file's permissions."
        ) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _corrupt(path, where, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, where, "its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise _corrupt(path, where, "its __metadata__ is not a map of strings")
    specs: dict[str, TensorSpec] = {}
    spans = []
    for name, entry in header.items():
        spec, span = _tensor_entry(path, where, name, entry)
        specs[name] = spec
        spans.append(span)
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise _corrupt(path, where, f"tensor data overlaps or leaves a gap at byte {position}")
        position = end
    if position != size - 8 - length:
        raise _corrupt(
            path, where, f"the tensors need {position} bytes of data, the file holds {size - 8 - length}"
        )
    return specs


def _tensor_entry(path: Path, where: str, name: str, entry: Any) -> tuple[TensorSpec, tuple[int, int]]:
    if not isinstance(entry, dict):
        raise _corrupt(path, where, f"entry {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise _corrupt(path, where, f"tensor {name!r} has unknown dtype {dtype!r}")
    if not (isinstance(shape, list) and all(_is_count(n) for n in shape)):
        raise _corrupt(path, where, f"tensor {name!r} has shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
        raise _corrupt(path, where, f"tensor {name!r} has data offsets {offsets!r}")
    begin, end = offsets
    if end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise _corrupt(
            path, where, f"tensor {name!r} declares {end - begin} bytes for shape {shape} of {dtype}"
        )
    return TensorSpec(dtype, tuple(shape)), (begin, end)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def stored_tensors(folder: Path, where: str) -> dict[str, TensorSpec]:
    """Every tensor of ``folder``'s ``model.safetensors`` (or of the shards its index lists)."""
    index_path, single = folder / WEIGHTS_INDEX_NAME, folder / WEIGHTS_NAME
    if single.is_file():
        return read_header(single, where)
    if not index_path.is_file():
        raise CheckpointError(
            f"{where} has no {WEIGHTS_NAME}; only safetensors are loaded (never pickle). Re-save it with "
            "save_pretrained."
        )
    weight_map = read_json(index_path, where).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{where}/{WEIGHTS_INDEX_NAME} has no valid weight_map: re-save the model.")
    specs: dict[str, TensorSpec] = {}
    for shard in sorted(set(weight_map.values())):
        if not SHARD_PATTERN.match(shard) or not (folder / shard).is_file():
            raise CheckpointError(
                f"{where}/{WEIGHTS_INDEX_NAME} lists {shard!r}, which is not a shard of this folder; re-save the model."
            )
        for name, spec in read_header(folder / shard, where).items():
            if name in specs or weight_map.get(name) != shard:
                raise CheckpointError(
                    f"{where}: tensor {name!r} of {shard} is not where {WEIGHTS_INDEX_NAME} says (or is stored "
                    "twice); re-save the model."
                )
            specs[name] = spec
    if set(specs) != set(weight_map):
        missing = sorted(set(weight_map) - set(specs))
        raise CheckpointError(
            f"{where}: the shards lack tensors the index lists ({_names(missing)}); re-save the model."
        )
    return specs


def config_dtype(config: Any, where: str) -> torch.dtype:
    """The floating dtype config.json records (transformers builds the model in it); float32 if none."""
    dtype = getattr(config, "dtype", None)
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = _FLOAT_DTYPES.get(dtype)
    if dtype not in _FLOAT_DTYPES.values():
        raise CheckpointError(
            f"{where}/{CONFIG_NAME} records dtype {getattr(config, 'dtype', None)!r}; a saved model is float16, "
            "bfloat16, float32 or float64. Re-save the model, or fix the file."
        )
    return dtype


def expected_tensors(model_class: Any, config: Any, where: str) -> dict[str, TensorSpec]:
    """The tensors a ``model_class`` built from ``config`` holds, built on the meta device (no memory)."""
    dtype = config_dtype(config, where)
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        with torch.device("meta"):
            model = model_class(config)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from None
    except (
        LatentBridgeError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
        RuntimeError,
    ) as error:
        raise CheckpointError(
            f"{where}/{CONFIG_NAME} does not describe a valid {model_class.__name__} ({error}). Re-save the "
            "model, or fix the file."
        ) from None
    finally:
        torch.set_default_dtype(previous)
    return {
        name: TensorSpec(_TORCH_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
        for name, t in model.state_dict().items()
    }


def compare_tensors(expected: dict[str, TensorSpec], stored: dict[str, TensorSpec], where: str) -> None:
    """Refuse stored tensors that are missing, unexpected, or of another dtype or shape than expected."""
    problems = []
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing:
        problems.append(f"missing: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected: {_names(unexpected)}")
    wrong = [
        f"{name} is {stored[name]} where config.json implies {expected[name]}"
        for name in sorted(set(expected) & set(stored))
        if stored[name] != expected[name]
    ]
    if wrong:
        problems.append("; ".join(wrong[:10]) + (f"; and {len(wrong) - 10} more" if len(wrong) > 10 else ""))
    if problems:
        raise CheckpointError(
            f"the tensors of {where} do not match its config.json ({'; '.join(problems)}). The config or the "
            "weights were edited or come from different saves: re-save the model with save_pretrained, or "
            "download it again (force_download=True)."
        )


def check_checkpoint(model_class: Any, config: Any, folder: Path, where: str) -> None:
    """Refuse ``folder`` unless its stored tensors are exactly those ``config`` describes."""
    compare_tensors(expected_tensors(model_class, config, where), stored_tensors(folder, where), where)


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def local_folder(name: str, subfolder: str) -> Path | None:
    """The local folder ``name``/``subfolder`` if ``name`` is a folder on disk, else ``None``."""
    if not os.path.isdir(name):
        return None
    return Path(name) / subfolder if subfolder else Path(name)
