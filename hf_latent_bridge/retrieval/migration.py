"""Index migration: stored vectors of an old encoder, moved into a new encoder's space through a bridge.

- :func:`translate_vectors` translates every stored vector (a ``.npy`` file, an array or a faiss index)
  into the bridge's target space, chunk by chunk, to a float32 ``.npy`` file or a flat faiss index. Memory
  stays bounded by the chunk; accelerate processes share the chunks and write the same bytes as one.
- :func:`write_faiss_index` builds a flat faiss index (cosine, inner product or L2) from stored vectors.
- :func:`translate_dataset` translates a column of a ``datasets.Dataset`` into a new dataset.
- :func:`prefix_transform` keeps the old index as it is and translates the new encoder's queries on the
  way in, for a bridge that is one affine map.

Every check runs before any output exists. Outputs are written to a hidden sibling, flushed to disk and
renamed over the destination once complete (a failure midway removes it); an existing file is replaced
only with ``overwrite=True``, and inputs are only read.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import hashlib
import io
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.options import check
from ..encoding.base import state_fingerprint
from ..encoding.sharding import _is_distributed, _is_main
from ..encoding.tables import require_columns
from ..errors import BridgeInputError, IncompatibleEncoderError, OutputExistsError
from ..files import check_file_target, staged_file
from ..models.bridge import LatentBridge

if TYPE_CHECKING:
    import datasets
    import faiss
    from accelerate import Accelerator

NPY_SUFFIX = ".npy"
FAISS_SUFFIXES = (".faiss", ".index")
#: Metrics of the faiss indexes written here: ``"cosine"`` is inner product over unit rows.
METRICS = ("cosine", "ip", "l2")
#: How far from 1 a row norm may be for the row to count as a unit vector.
UNIT_TOLERANCE = 1e-3
#: Alignment of direct writes: file offsets, lengths and memory (the largest logical block in common use).
BLOCK = 4096
FLOAT32 = np.dtype(np.float32)


# ---------------------------------------------------------------------------------------------- public
def translate_vectors(
    bridge: LatentBridge,
    vectors: Any,
    output: str | os.PathLike,
    *,
    chunk_size: int = 16384,
    normalize: bool = False,
    metric: str | None = None,
    accelerator: Accelerator | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    """Translate stored source-space vectors into the bridge's target space, written to ``output``.

    Args:
        vectors: ``(n, source_dim)`` rows: a ``.npy`` file (read by row ranges, never loaded whole), a numpy
            array (a memmap included), a CPU tensor, or a faiss index that can return its vectors
            (``reconstruct_n``: flat, IVF, HNSW...; a lossy index gives its approximations) or the path of one
            (``.faiss`` / ``.index``).
        output: a ``.npy`` file (float32 rows, in input order) or a ``.faiss`` / ``.index`` file (a flat index
            of the rows, ids 0..n-1).
        chunk_size: rows translated at a time; memory held grows with it, not with n.
        normalize: scale every translated row to unit length.
        metric: faiss outputs only: ``"cosine"`` (unit rows, inner product), ``"ip"`` or ``"l2"``. Default:
            the input index's (an inner-product index of unit vectors stays cosine), else ``"cosine"``.
        accelerator: a distributed ``accelerate.Accelerator`` shares the chunks out (chunk j to process
            j % P); the file is the same, byte for byte, as one process writes. Call it on every process.
        overwrite: replace an existing ``output``.
        show_progress: a progress bar (on the main process).

    Rows are the bridge's own forward pass, so they equal ``bridge.translate`` of the same rows. Returns
    the output path.
    """
    _check_bridge(bridge)
    chunk_size = check("batch_size", chunk_size, "chunk_size")
    output = _output_path(output, (NPY_SUFFIX, *FAISS_SUFFIXES))
    to_index = output.suffix.lower() in FAISS_SUFFIXES
    if metric is not None and not to_index:
        raise BridgeInputError(
            f"metric={metric!r} applies to faiss outputs only; drop it, or write to a .faiss file."
        )
    if metric is not None:
        _check_metric(metric)
    with _opened(vectors) as rows:
        _check_target(output, rows, overwrite)
        _check_source_dim(bridge, rows.dim, rows.name)
        if to_index and metric is None:
            metric = _kept_metric(rows)
        normalize = normalize or metric == "cosine"

        def compute(chunk: np.ndarray, start: int, out: torch.Tensor) -> np.ndarray:
            return _translate_chunk(bridge, chunk, start, normalize, rows.name, out)

        fill = functools.partial(
            _fill_npy,
            n=rows.n,
            dim=bridge.config.target_dim,
            chunk_size=chunk_size,
            read=rows.read,
            compute=compute,
            accelerator=accelerator,
            show_progress=show_progress and _is_main(accelerator),
        )
        try:
            if not to_index:
                with _staged_on_main(output, overwrite, accelerator) as staging:
                    fill(staging)
            else:  # translate into a scratch .npy (shared by the processes), then index it on the main one
                with _scratch_on_main(output.parent, accelerator) as scratch:
                    fill(scratch)
                    error = None
                    if _is_main(accelerator):
                        try:
                            with _opened(scratch) as translated:
                                _write_index(
                                    translated, output, metric, chunk_size, overwrite, normalized=True
                                )
                        except Exception as failure:  # shared with every process below
                            error = failure
                    _agree(accelerator, error)
        finally:
            if _is_distributed(accelerator):
                accelerator.wait_for_everyone()  # the output is in place before any process returns
    return output


def write_faiss_index(
    vectors: Any,
    output: str | os.PathLike,
    *,
    metric: str = "cosine",
    chunk_size: int = 16384,
    overwrite: bool = False,
) -> Path:
    """Build a flat faiss index of ``vectors`` (a ``.npy`` file, an array or a faiss index, as in
    :func:`translate_vectors`) in ``output`` (``.faiss`` / ``.index``), adding ``chunk_size`` rows at a time.

    ``metric``: ``"cosine"`` (rows scaled to unit length, ``IndexFlatIP``), ``"ip"`` (``IndexFlatIP``) or
    ``"l2"`` (``IndexFlatL2``). The index itself holds every row in memory, as faiss's flat indexes do.
    """
    _check_metric(metric)
    chunk_size = check("batch_size", chunk_size, "chunk_size")
    output = _output_path(output, FAISS_SUFFIXES)
    with _opened(vectors) as rows:
        _check_target(output, rows, overwrite)
        _write_index(rows, output, metric, chunk_size, overwrite, normalized=False)
    return output


def translate_dataset(
    bridge: LatentBridge,
    dataset: datasets.Dataset,
    column: str,
    new_column: str | None = None,
    *,
    chunk_size: int = 1000,
    normalize: bool = False,
) -> datasets.Dataset:
    """A new dataset with ``dataset[column]`` translated into the bridge's target space, as float32 vectors in
    ``new_column`` (default: replacing ``column`` in the new dataset). ``dataset`` itself is left as it is.

    The translation runs in ``Dataset.map`` batches of ``chunk_size`` rows, written to datasets' cache as it
    goes (for a dataset backed by cache files), under a fingerprint made of the dataset's, the bridge's
    tensors and these arguments: the same call again reads the cache.
    """
    import datasets as ds_lib

    _check_bridge(bridge)
    chunk_size = check("batch_size", chunk_size, "chunk_size")
    if not isinstance(dataset, ds_lib.Dataset):
        raise BridgeInputError(
            f"dataset must be a datasets.Dataset, got {type(dataset).__name__}; pass one split (e.g. "
            "dataset['train'])."
        )
    require_columns(dataset, column)
    target = new_column or column
    if target != column and target in dataset.column_names:
        raise BridgeInputError(
            f"column {target!r} is already in the dataset; choose another new_column, or drop it first with "
            f"dataset.remove_columns({target!r})."
        )
    if len(dataset) == 0:
        raise BridgeInputError("the dataset has no rows; pass a dataset with at least one row.")
    numpy_view = dataset.with_format("numpy", columns=[column])
    first = np.asarray(numpy_view[0][column])
    if first.ndim != 1 or first.dtype.kind not in "fiu":
        raise BridgeInputError(
            f"column {column!r} does not hold vectors (its feature is {dataset.features[column]}); pass the "
            "column of embeddings."
        )
    where = f"the vectors of column {column!r}"
    _check_source_dim(bridge, len(first), where)

    def translate(batch: Any, indices: list[int]) -> dict[str, np.ndarray]:
        x = np.asarray(batch)
        if x.dtype.kind == "O" or x.ndim != 2 or x.shape[1] != len(first):
            raise BridgeInputError(
                f"rows {indices[0]} to {indices[-1]} of column {column!r} are not all vectors of length "
                f"{len(first)}; make every row an embedding of the bridge's source encoder."
            )
        return {target: _translate_chunk(bridge, x, indices[0], normalize, where)}

    features = dataset.features.copy()
    features[target] = ds_lib.List(ds_lib.Value("float32"), length=bridge.config.target_dim)
    key = [dataset._fingerprint, state_fingerprint(bridge), column, target, normalize, chunk_size]
    fmt = dataset.format
    translated = dataset.with_format("numpy").map(
        translate,
        batched=True,
        batch_size=chunk_size,
        with_indices=True,
        input_columns=column,
        features=features,
        new_fingerprint=hashlib.sha256(repr(key).encode()).hexdigest()[:16],
        desc="translating",
    )
    columns = fmt["columns"]  # the input's format, showing the new column with the one it translates
    if columns is not None and column in columns and target not in columns:
        columns = [*columns, target]
    return translated.with_format(
        fmt["type"], columns=columns, output_all_columns=fmt["output_all_columns"], **fmt["format_kwargs"]
    )


def prefix_transform(
    bridge: LatentBridge, index: faiss.Index, *, normalize: bool = True
) -> faiss.IndexPreTransform:
    """``index`` (of the bridge's target space) behind the bridge as a faiss pre-transform.

    The result takes vectors of the bridge's source space: ``search(queries, k)`` equals searching ``index``
    with ``bridge.translate(queries)``, scaled to unit length when ``normalize`` (cosine search), and
    ``add(vectors)`` translates them into ``index``. The bridge must be one affine map: Procrustes, linear,
    l-ortho or identity, or an ensemble of them (their members add up); IRP's renormalised output is not
    linear.

    Ownership: ``index`` stays the caller's (faiss ``own_fields`` is False; the wrapper keeps a reference
    to it and changes it only through ``add``/``reset``); keep using ``index`` for old-space queries.
    """
    faiss = _faiss()
    _check_bridge(bridge)
    if not isinstance(index, faiss.Index):
        raise BridgeInputError(
            f"index must be a faiss index (faiss.Index), got {type(index).__name__}; load one with "
            "faiss.read_index(path)."
        )
    config = bridge.config
    if index.d != config.target_dim:
        other_way = " (the bridge's source dimension: use the bridge fitted the other way)" * (
            index.d == config.source_dim
        )
        raise IncompatibleEncoderError(
            f"the index holds {index.d}-dimensional vectors but the bridge translates into {config.target_dim} "
            f"dimensions{_encoder_of(config.target)}{other_way}; pass the index of the bridge's target encoder, "
            "or fit a bridge from the new encoder into the index's."
        )
    metric = _index_metric(index, "the index")
    if bool((bridge.output_norm > 0).any()):
        raise BridgeInputError(
            f"this bridge ({config.method_selected or config.method}) renormalises its output, which no faiss "
            "linear transform can do; refit with method='procrustes' or 'linear' (and blend=False), or translate "
            "the index itself with translate_vectors."
        )
    if normalize and metric == "l2" and index.ntotal:
        sample = _reconstructed(index, min(index.ntotal, 1024))
        if sample is not None and not _unit_rows(sample):
            raise BridgeInputError(
                "this L2 index holds vectors that are not of unit length, so L2 distances to normalised queries do "
                "not rank by cosine; pass normalize=False (queries translated as they are), or index unit vectors."
            )
    weight = bridge.weight.detach().sum(0).to("cpu", torch.float32)  # the members of a direct map add up
    bias = bridge.bias.detach().sum(0).to("cpu", torch.float32)
    linear = faiss.LinearTransform(config.source_dim, config.target_dim, True)
    faiss.copy_array_to_vector(weight.T.contiguous().numpy().ravel(), linear.A)  # A: (d_out, d_in), row-major
    faiss.copy_array_to_vector(bias.numpy(), linear.b)
    linear.is_trained = True
    wrapped = faiss.IndexPreTransform(index)
    if normalize:
        wrapped.prepend_transform(faiss.NormalizationTransform(config.target_dim, 2.0))
    wrapped.prepend_transform(linear)
    return wrapped


# ------------------------------------------------------------------------------------------ the inputs
@dataclass
class _Rows:
    """A matrix read by row ranges: ``read(start, stop)`` gives rows ``start:stop`` as a numpy array, valid
    until the next call (files and indexes are read into one reused buffer)."""

    n: int
    dim: int
    read: Callable[[int, int], np.ndarray]
    name: str  # how messages name it
    path: Path | None = None  # the file it comes from
    metric: str | None = None  # a faiss index's: "ip" or "l2"
    close: Callable[[], None] = lambda: None


@contextlib.contextmanager
def _opened(vectors: Any) -> Iterator[_Rows]:
    rows = _open_rows(vectors)
    try:
        yield rows
    finally:
        rows.close()


def _open_rows(vectors: Any) -> _Rows:
    if isinstance(vectors, (str, os.PathLike)):
        path = Path(vectors).expanduser()
        if not path.is_file():
            raise BridgeInputError(
                f"{path} is not a file; pass the path of a .npy file or a faiss index file."
            )
        if path.suffix.lower() == NPY_SUFFIX:
            return _npy_rows(path)
        if path.suffix.lower() in FAISS_SUFFIXES:
            faiss = _faiss()
            try:
                index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)  # flat codes stay on disk
            except RuntimeError as error:
                raise BridgeInputError(
                    f"{path} is not a faiss index ({_first_line(error)}); pass a file written by faiss.write_index."
                ) from None
            return _index_rows(index, f"index {path}", path)
        raise BridgeInputError(
            f"{path} is neither a .npy file nor a faiss index (.faiss / .index); save the vectors with "
            "np.save(path, array)."
        )
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().cpu().numpy()
    if isinstance(vectors, np.ndarray):
        _check_array(vectors, "the vectors")
        filename = getattr(vectors, "filename", None)  # a memmap's file
        return _Rows(
            len(vectors),
            vectors.shape[1],
            lambda a, b: vectors[a:b],
            "the vectors",
            filename and Path(filename),
        )
    if type(vectors).__module__.startswith("faiss"):
        return _index_rows(vectors, "the index")
    raise BridgeInputError(
        f"vectors must be a .npy path, a numpy array or a faiss index, got {type(vectors).__name__}."
    )


def _check_array(array: np.ndarray, name: str) -> None:
    if array.ndim != 2:
        raise BridgeInputError(
            f"{name} must be a 2-D (n, d) matrix, got shape {array.shape}; reshape to (n, d)."
        )
    if array.dtype.kind != "f":
        raise BridgeInputError(
            f"{name} hold {array.dtype} values, not floating-point embeddings; convert with "
            "array.astype(np.float32)."
        )
    if len(array) == 0:
        raise BridgeInputError(f"{name} have no rows; pass at least one vector.")


def _npy_rows(path: Path) -> _Rows:
    """Rows of a .npy file read with positioned reads: the pages read are the OS's cache, not this process's."""
    try:
        mapped = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise BridgeInputError(
            f"{path} cannot be read as a .npy matrix ({error}); write it with np.save(path, array)."
        ) from None
    name = f"the vectors in {path}"
    _check_array(mapped, name)
    if not mapped.flags.c_contiguous:  # column-major: rows are scattered, read them through the map
        return _Rows(len(mapped), mapped.shape[1], lambda a, b: np.ascontiguousarray(mapped[a:b]), name, path)
    n, dim = mapped.shape
    dtype, offset, row_bytes = mapped.dtype, mapped.offset, mapped.shape[1] * mapped.dtype.itemsize
    file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by _Rows.close
    buffer = _Buffer(dim, dtype)

    def read(start: int, stop: int) -> np.ndarray:
        out = buffer.take(stop - start)
        _read_at(file, out.reshape(-1).view(np.uint8), offset + start * row_bytes, path)
        return out

    return _Rows(n, dim, read, name, path, close=file.close)


class _Buffer:
    """One row buffer that every read fills again. Reading into fresh memory costs a page fault per 4 KiB:
    it made reading a cached file ~10x slower than the copy itself."""

    def __init__(self, dim: int, dtype: np.dtype) -> None:
        self.dim, self.dtype, self.rows = dim, dtype, None

    def take(self, count: int) -> np.ndarray:
        if self.rows is None or len(self.rows) < count:
            self.rows = np.empty((count, self.dim), self.dtype)
        return self.rows[:count]


def _index_rows(index: Any, label: str, path: Path | None = None) -> _Rows:
    faiss = _faiss()
    owner = index  # a downcast proxy does not own the index: keep the one that does
    index = faiss.downcast_index(index) if isinstance(index, faiss.Index) else index
    if not isinstance(index, faiss.Index):
        raise BridgeInputError(
            f"{label} is a {type(index).__name__}, not a float faiss index; translate the vectors it was built from."
        )
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        raise BridgeInputError(
            f"{label} maps its own ids, which a translated copy would lose; translate its sub-index (index.index) "
            "and wrap the result in faiss.IndexIDMap with the same ids."
        )
    metric = _index_metric(index, label)
    if index.ntotal == 0:
        raise BridgeInputError(f"{label} is empty; add vectors to it first.")
    if _reconstructed(index, 1) is None:
        raise BridgeInputError(
            f"{label} ({type(index).__name__}) cannot return its stored vectors; translate the vectors it was "
            "built from instead (a .npy file or an array)."
        )
    buffer = _Buffer(index.d, np.dtype(np.float32))
    read = lambda a, b, _owner=owner: index.reconstruct_n(a, b - a, buffer.take(b - a))  # noqa: E731
    return _Rows(index.ntotal, index.d, read, f"the vectors of {label}", path, metric)


def _reconstructed(index: Any, count: int) -> np.ndarray | None:
    """The first ``count`` stored vectors, or None if ``index`` cannot return them. faiss's generic
    ``reconstruct_n`` aborts the process when ``reconstruct`` is missing, so one ``reconstruct`` probes
    first (IVF indexes reconstruct ranges without a direct map, but not single vectors)."""
    faiss = _faiss()
    if not isinstance(index, faiss.IndexIVF):
        try:
            index.reconstruct(0)
        except RuntimeError:
            return None
    return index.reconstruct_n(0, count)


def _index_metric(index: Any, name: str) -> str:
    faiss = _faiss()
    metric = {faiss.METRIC_INNER_PRODUCT: "ip", faiss.METRIC_L2: "l2"}.get(index.metric_type)
    if metric is None:
        names = {getattr(faiss, m): m for m in dir(faiss) if m.startswith("METRIC_")}
        raise BridgeInputError(
            f"{name} uses {names.get(index.metric_type, index.metric_type)}; only inner-product and L2 indexes "
            "can be migrated: translate the vectors it was built from and index them with the metric you need."
        )
    return metric


def _read_at(file: io.RawIOBase, buffer: np.ndarray, offset: int, path: Path) -> None:
    view = memoryview(buffer)
    file.seek(offset)
    while view:
        count = file.readinto(view)
        if not count:
            raise BridgeInputError(f"{path} ends before its header says; write it again with np.save.")
        view = view[count:]


# ----------------------------------------------------------------------------------------------- checks
def _check_bridge(bridge: Any) -> None:
    if not isinstance(bridge, LatentBridge):
        raise BridgeInputError(
            f"bridge must be a LatentBridge, got {type(bridge).__name__}; fit one with LatentBridge.fit or load "
            "one with LatentBridge.from_pretrained."
        )


def _check_metric(metric: Any) -> None:
    if metric not in METRICS:
        raise BridgeInputError(f"metric must be one of {', '.join(map(repr, METRICS))}, got {metric!r}.")


def _encoder_of(ref: Any) -> str:
    return f" of {ref.name_or_path}" if ref is not None and ref.name_or_path else ""


def _check_source_dim(bridge: LatentBridge, dim: int, name: str) -> None:
    config = bridge.config
    if dim != config.source_dim:
        source = config.source.name_or_path if config.source is not None else None
        fix = (
            f"pass vectors embedded by {source}" if source else "pass vectors of the bridge's source encoder"
        )
        other_way = " (the bridge's target dimension: use the bridge fitted the other way)" * (
            dim == config.target_dim
        )
        raise IncompatibleEncoderError(
            f"{name} have {dim} columns but the bridge translates {config.source_dim}-dimensional "
            f"embeddings{_encoder_of(config.source)}{other_way}; {fix}, or fit a bridge from the encoder that made "
            "them."
        )


def _output_path(output: str | os.PathLike, suffixes: tuple[str, ...]) -> Path:
    path = Path(output).expanduser()
    if path.suffix.lower() not in suffixes:
        kinds = {NPY_SUFFIX: ".npy (float32 rows)", FAISS_SUFFIXES[0]: ".faiss / .index (a flat faiss index)"}
        allowed = " or ".join(kinds[s] for s in kinds if s in suffixes)
        raise BridgeInputError(f"output {path} must end in {allowed}; choose such a file name.")
    if not path.absolute().parent.is_dir():
        raise BridgeInputError(f"folder {path.absolute().parent} does not exist; create it first.")
    return path


def _check_target(output: Path, rows: _Rows, overwrite: bool) -> None:
    """The output is neither the input (even with ``overwrite``) nor, unless ``overwrite``, an existing file."""
    if rows.path is not None and (
        output.absolute().resolve() == rows.path.absolute().resolve()
        or (output.exists() and os.path.samefile(output, rows.path))
    ):
        raise OutputExistsError(
            f"output {output} is the input file; write to another path (the input is read while the output is "
            "written, and never replaced)."
        )
    check_file_target(output, overwrite)


def _check_finite(x: torch.Tensor, start: int, name: str) -> None:
    # NaN and Inf survive a sum; only a sum that overflows needs the element-wise look
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        row = start + int((~torch.isfinite(x)).any(dim=1).nonzero()[0])
        raise BridgeInputError(
            f"row {row} of {name} holds NaN or Inf; repair or drop the rows that are not finite, then migrate again "
            "(nothing was written)."
        )


def _kept_metric(rows: _Rows) -> str:
    """The metric a faiss output keeps: the input index's (cosine for an inner-product index whose first
    rows are unit vectors), else cosine."""
    if rows.metric == "ip" and _unit_rows(rows.read(0, min(rows.n, 1024))):
        return "cosine"
    return rows.metric or "cosine"


def _unit_rows(x: np.ndarray) -> bool:
    norms = np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)
    return bool(np.all(np.abs(norms - 1) <= UNIT_TOLERANCE))


# ---------------------------------------------------------------------------------------------- compute
def _translate_chunk(
    bridge: LatentBridge,
    chunk: np.ndarray,
    start: int,
    normalize: bool,
    name: str,
    out: torch.Tensor | None = None,
) -> np.ndarray:
    """Rows ``start:`` translated by the bridge's forward pass (as ``bridge.translate``), as float32, written
    into ``out`` (a float32 CPU buffer of the result's shape) if the bridge computes in float32 on the CPU."""
    if out is not None and (bridge.weight.dtype, bridge.weight.device.type) != (torch.float32, "cpu"):
        out = None
    if not (chunk.flags.writeable and chunk.flags.c_contiguous and chunk.dtype.isnative):
        chunk = np.array(chunk, dtype=chunk.dtype.newbyteorder("="), order="C")  # a copy torch can take
    x = torch.from_numpy(chunk)
    x = x.float() if x.dtype == torch.float16 else x  # computed in the bridge's dtype; kept in float32
    try:
        with torch.no_grad():
            y = bridge(x, out=out)  # checks its result
    except BridgeInputError:
        _check_finite(x, start, name)  # name the row if the input was not finite
        raise
    if normalize:
        y = y.div_(torch.linalg.vector_norm(y, dim=1, keepdim=True).clamp_min(1e-12))
    return y.to("cpu", torch.float32).numpy()


def _npy_header(n: int, dim: int) -> bytes:
    """A ``.npy`` 1.0 header for (n, dim) float32 rows, padded to one :data:`BLOCK` (the format allows any
    multiple of 64) so that the rows start block-aligned, as direct writes need."""
    fields = f"{{'descr': '{FLOAT32.str}', 'fortran_order': False, 'shape': ({n}, {dim}), }}"
    text = fields.ljust(BLOCK - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _fill_npy(
    path: Path,
    *,
    n: int,
    dim: int,
    chunk_size: int,
    read: Callable[[int, int], np.ndarray],
    compute: Callable[[np.ndarray, int, torch.Tensor], np.ndarray],
    accelerator: Accelerator | None,
    show_progress: bool,
) -> None:
    """Write the (n, dim) float32 ``.npy`` at ``path``: the main process writes the header and sizes the file,
    then each process writes ``compute(read(start, stop), start, buffer)`` of its chunks in place. Raises on
    every process if any failed.

    Rows are computed into two reused output buffers (fresh memory for every chunk costs a page fault per
    4 KiB, more than the copy itself) and written from one by a writer thread while the next is computed
    (file writes, like torch, release the GIL). Writes bypass the OS's cache where the file system allows
    (:class:`_RowWriter`); reads stay on the caller's thread, from the OS's cache into a reused buffer: a
    second helper thread was slower on 2 cores, competing with the matmul's threads."""
    header = _npy_header(n, dim)
    size_in_bytes = len(header) + n * dim * 4
    error = None
    if _is_main(accelerator):
        try:
            with open(path, "r+b") as file:
                file.write(header)
                file.truncate(size_in_bytes)
        except OSError as failure:
            error = failure
    _agree(accelerator, error)
    rank, size = (
        (accelerator.process_index, accelerator.num_processes) if _is_distributed(accelerator) else (0, 1)
    )
    starts = range(rank * chunk_size, n, size * chunk_size)

    start, stop, error = 0, 0, None
    try:
        with (
            _RowWriter(path, direct=chunk_size * dim * 4 % BLOCK == 0) as writer,
            ThreadPoolExecutor(1, thread_name_prefix="migration-writer") as thread,
            tqdm(total=n, desc="translating", unit="row", disable=not show_progress, leave=False) as bar,
        ):
            buffers = [_aligned_bytes(min(chunk_size, n) * dim * 4) for _ in range(2)]
            writes = [None, None]  # the write from each buffer still in flight
            for turn, start in enumerate(starts):
                slot, stop = turn % 2, min(start + chunk_size, n)
                if writes[slot] is not None:
                    writes[slot].result()
                nbytes = (stop - start) * dim * 4
                out = torch.from_numpy(buffers[slot][:nbytes].view(FLOAT32).reshape(-1, dim))
                rows = compute(read(start, stop), start, out)
                if not np.shares_memory(rows, buffers[slot]):  # computed elsewhere: a float64 or GPU bridge
                    out.copy_(torch.from_numpy(rows))
                offset = len(header) + start * dim * 4
                writes[slot] = thread.submit(writer.write, buffers[slot], nbytes, offset)
                bar.update(stop - start)
            for write in writes:
                if write is not None:
                    write.result()
        if stop == n:  # the last chunk's direct write ran past the end, to a whole block
            os.truncate(path, size_in_bytes)
    except Exception as failure:  # shared with every process below
        error = failure
    _agree(accelerator, error, start)


def _aligned_bytes(nbytes: int) -> np.ndarray:
    """``nbytes`` rounded up to whole blocks of uninitialised memory starting at a :data:`BLOCK` boundary."""
    padded = -(-nbytes // BLOCK) * BLOCK
    raw = np.empty(padded + BLOCK, np.uint8)
    skip = -raw.ctypes.data % BLOCK
    return raw[skip : skip + padded]


class _RowWriter:
    """Positioned writes of translated rows that keep out of the OS's cache.

    A migration writes gigabytes it will not read back soon. Through the OS's cache every page of it is
    allocated, copied into and written back later: on the VM of benchmarks/migration.py, 3 GB cost 2-5
    CPU-seconds with each chunk's pages dropped after its write-back, and up to 34 s without, against 0.5
    written directly. So rows go to the disk
    with ``O_DIRECT`` where the file system takes it (block-aligned offsets, lengths and buffers:
    :func:`_npy_header`, :func:`_aligned_bytes`), else through the cache, each chunk's write-back started at
    once and its pages dropped a few chunks later (as ``dd oflag=nocache``). Either way the file is flushed
    to disk on a clean exit, so the rename that publishes it never waits on a write-back."""

    LAG = 3  # cached writes: chunks written back before their pages are dropped

    FLAGS = os.O_WRONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows would translate newlines

    def __init__(self, path: Path, direct: bool) -> None:
        self.path, self.direct, self.behind = path, direct and hasattr(os, "O_DIRECT"), collections.deque()
        try:
            self.descriptor = os.open(path, self.FLAGS | (os.O_DIRECT if self.direct else 0))
        except OSError:  # not every file system takes O_DIRECT
            self.descriptor, self.direct = os.open(path, self.FLAGS), False

    def __enter__(self) -> _RowWriter:
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        try:
            if failure is None:
                os.fsync(self.descriptor)
        finally:
            os.close(self.descriptor)

    def write(self, buffer: np.ndarray, nbytes: int, offset: int) -> None:
        """Write ``buffer[:nbytes]`` at ``offset`` (a direct write: up to the next block boundary)."""
        if self.direct:
            try:
                self._write(memoryview(buffer)[: -(-nbytes // BLOCK) * BLOCK], offset)
                return
            except OSError as error:  # alignment refused after all: through the cache from here on
                if error.errno != errno.EINVAL:
                    raise
                os.close(self.descriptor)
                self.descriptor, self.direct = os.open(self.path, self.FLAGS), False
        self._write(memoryview(buffer)[:nbytes], offset)
        self._advise(offset, nbytes)  # dirty pages: starts their write-back
        self.behind.append((offset, nbytes))
        if len(self.behind) > self.LAG:
            self._advise(*self.behind.popleft())  # written back by now: drops them

    def _write(self, view: memoryview, offset: int) -> None:
        os.lseek(self.descriptor, offset, os.SEEK_SET)
        while view:
            view = view[os.write(self.descriptor, view) :]

    def _advise(self, offset: int, length: int) -> None:
        if hasattr(os, "posix_fadvise"):  # Linux and most Unixes; elsewhere the cache keeps the pages
            os.posix_fadvise(self.descriptor, offset, length, os.POSIX_FADV_DONTNEED)


# ---------------------------------------------------------------------------- outputs and processes
def _write_index(
    rows: _Rows, output: Path, metric: str, chunk_size: int, overwrite: bool, normalized: bool
) -> None:
    """A flat index of ``rows`` (unit rows for ``"cosine"``, unless already ``normalized``) at ``output``."""
    faiss = _faiss()
    index = (faiss.IndexFlatL2 if metric == "l2" else faiss.IndexFlatIP)(rows.dim)
    for start in range(0, rows.n, chunk_size):
        chunk = rows.read(start, min(start + chunk_size, rows.n))
        x = torch.from_numpy(chunk.astype(np.float32, copy=False))
        _check_finite(x, start, rows.name)
        if metric == "cosine" and not normalized:
            x = torch.nn.functional.normalize(x, dim=1)
        index.add(np.ascontiguousarray(x.numpy()))
    with staged_file(output, overwrite=overwrite) as staging:
        faiss.write_index(index, str(staging))


def _agree(accelerator: Accelerator | None, error: BaseException | None, row: int = 0) -> None:
    """Return if no process failed; else raise on every process the failure at the lowest row (its own
    exception on the process that had it, its message elsewhere), so all processes stop alike."""
    if not _is_distributed(accelerator):
        if error is not None:
            raise error
        return
    from accelerate.utils import gather_object

    mine = (
        None
        if error is None
        else (row, accelerator.process_index, str(error), isinstance(error, BridgeInputError))
    )
    reports = [report for report in gather_object([mine]) if report is not None]
    if not reports:
        return
    first = min(reports)
    if first == mine:
        raise error  # type: ignore[misc]
    row, process, message, input_error = first
    raise BridgeInputError(message) if input_error else RuntimeError(f"process {process} failed: {message}")


def _from_main(accelerator: Accelerator | None, value: Any) -> Any:
    if not _is_distributed(accelerator):
        return value
    from accelerate.utils import gather_object

    return gather_object([value])[0]


@contextlib.contextmanager
def _staged_on_main(output: Path, overwrite: bool, accelerator: Accelerator | None) -> Iterator[Path]:
    """The staged sibling of ``output`` (:func:`~hf_latent_bridge.files.staged_file`), created by the main
    process and shared with all; the main process renames it over ``output`` when the block succeeds."""
    with contextlib.ExitStack() as stack:
        staging, error = None, None
        if _is_main(accelerator):
            try:
                staging = stack.enter_context(staged_file(output, overwrite=overwrite))
            except OSError as failure:
                error = failure
        _agree(accelerator, error)
        yield _from_main(accelerator, staging)


@contextlib.contextmanager
def _scratch_on_main(folder: Path, accelerator: Accelerator | None) -> Iterator[Path]:
    """A hidden scratch file in ``folder``, created by the main process, shared, removed at the end."""
    path, error = None, None
    if _is_main(accelerator):
        try:
            descriptor, path = tempfile.mkstemp(
                dir=folder.absolute(), prefix=".translated-", suffix=".tmp.npy"
            )
            os.close(descriptor)
        except OSError as failure:
            error = failure
    _agree(accelerator, error)
    path = _from_main(accelerator, path)
    try:
        yield Path(path)
    finally:
        if _is_main(accelerator):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise BridgeInputError(
            "faiss is not installed; pip install 'hf-latent-bridge[retrieval]' (or faiss-cpu)."
        ) from None
    return faiss


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
