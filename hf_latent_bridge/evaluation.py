"""Judging bridges: stitching metrics, N x N stitching matrices, anchor curves, and accelerate sharding.

Three layers, each usable alone:

* pure metrics on tensors (:func:`accuracy`, :func:`macro_f1`, :func:`row_outcomes`,
  :func:`cell_metrics`): tensors in, numbers out;
* :func:`stitching_matrix`: embeddings of N encoders on one labelled train/test split in, every
  (source, target, method) cell out. One head is trained per target; N x N translations are cheap;
* :func:`embed_inputs` / :func:`evaluate_encoders`: the encoder passes (one per encoder and split,
  cached on disk) followed by the matrix.

Sharding: with an :class:`accelerate.Accelerator` of several processes, embedding and the per-row
evaluation are split over the processes and gathered with ``gather_for_metrics``. The unit of work is a
fixed *global* chunk of rows, identical whatever the number of processes, so every row is computed in
exactly the same batch as in a single-process run; gathered rows carry their global index and are put
back in order; aggregate metrics are computed from the full gathered set. The results are therefore the
single-process results, bit for bit (tested with two CPU processes under ``torchrun``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .alignment import METHODS
from .anchors import STRATEGIES, fingerprint, select_anchors
from .bridge import LatentBridge
from .errors import BridgeInputError

if TYPE_CHECKING:
    from accelerate import Accelerator

logger = logging.getLogger(__name__)

#: Metrics of every cell, in table order.
METRICS = ("accuracy", "macro_f1", "cosine", "mse", "top1_retrieval")
#: Pseudo-method of the diagonal: the target head on the target's own test embeddings.
NATIVE = "native"
#: Per-row outcome columns produced by :func:`row_outcomes`.
OUTCOME_COLUMNS = ("correct", "predicted", "cosine", "squared_error", "retrieval_hit")
DEFAULT_METHODS = ("irp", "procrustes")

HeadFactory = Callable[[torch.Tensor, torch.Tensor, Mapping[int, str] | None], Any]


# ====================================================================================== pure metrics
def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose predicted class id equals the label."""
    _check_same_length(predicted, labels)
    return float((predicted.long() == labels.long()).double().mean())


def macro_f1(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Unweighted mean F1 over the classes present in ``labels`` or ``predicted`` (scikit-learn's rule)."""
    _check_same_length(predicted, labels)
    predicted, labels = predicted.long(), labels.long()
    classes = torch.unique(torch.cat([predicted, labels]))
    scores = []
    for c in classes:
        tp = float(((predicted == c) & (labels == c)).sum())
        fp = float(((predicted == c) & (labels != c)).sum())
        fn = float(((predicted != c) & (labels == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def row_outcomes(
    translated: torch.Tensor,
    target: torch.Tensor,
    predicted: torch.Tensor,
    labels: torch.Tensor,
    retrieval_bank: torch.Tensor,
    rows: torch.Tensor,
) -> torch.Tensor:
    """Per-row stitching outcomes, ``(m, 5)`` float64 with columns :data:`OUTCOME_COLUMNS`.

    Args:
        translated: (m, d) embeddings translated into the target space.
        target: (m, d) true target embeddings of the same inputs.
        predicted / labels: (m,) class ids from the target head, and the truth.
        retrieval_bank: (n, d) unit-norm true target embeddings of the whole test set (float64).
        rows: (m,) indices of these rows in the bank; a row is retrieved when its most similar bank
            entry (cosine, first on ties) is its own.
    """
    t, y = translated.to(torch.float64), target.to(torch.float64)
    unit_t = t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(1e-12)
    unit_y = y / torch.linalg.vector_norm(y, dim=1, keepdim=True).clamp_min(1e-12)
    cosine = (unit_t * unit_y).sum(1)
    squared_error = ((t - y) ** 2).mean(1)
    hit = (unit_t @ retrieval_bank.T).argmax(1) == rows
    correct = predicted.long() == labels.long()
    return torch.stack(
        [correct.double(), predicted.double(), cosine, squared_error, hit.double()], dim=1
    ).contiguous()


def aggregate_outcomes(outcomes: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Turn the full (n, 5) :func:`row_outcomes` of one cell into its :data:`METRICS`."""
    return {
        "accuracy": float(outcomes[:, 0].mean()),
        "macro_f1": macro_f1(outcomes[:, 1].long(), labels),
        "cosine": float(outcomes[:, 2].mean()),
        "mse": float(outcomes[:, 3].mean()),
        "top1_retrieval": float(outcomes[:, 4].mean()),
    }


def cell_metrics(
    translated: torch.Tensor, target: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """All :data:`METRICS` of one cell from full tensors (translated and true target test embeddings)."""
    _check_same_length(translated, target)
    _check_same_length(translated, labels)
    bank = _unit64(target)
    outcomes = row_outcomes(translated, target, predicted, labels, bank, torch.arange(len(target)))
    return aggregate_outcomes(outcomes, labels)


def _check_same_length(a: torch.Tensor, b: torch.Tensor) -> None:
    if len(a) != len(b):
        raise BridgeInputError(f"metric inputs disagree in length ({len(a)} vs {len(b)}); pass aligned rows.")


def _unit64(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float64)
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)


# ====================================================================================== sharding
def _is_distributed(accelerator: Accelerator | None) -> bool:
    return accelerator is not None and accelerator.num_processes > 1


def _is_main(accelerator: Accelerator | None) -> bool:
    return accelerator is None or accelerator.is_main_process


def fixed_chunks(n: int, size: int) -> list[torch.Tensor]:
    """``range(n)`` cut into consecutive chunks of ``size`` rows."""
    return list(torch.arange(n).split(size))


def text_chunks(texts: Sequence[str], batch_size: int) -> list[torch.Tensor]:
    """Texts sorted by length, cut into chunks of similar cost.

    A chunk holds at most ``batch_size`` texts and at most ``batch_size`` x the mean length in padded
    characters. Fixed-size chunks of sorted texts would leave the longest texts in one chunk costing many
    times the others (on ChatterBot, the last of 29 chunks took 28% of the time), and under sharding every
    process would wait for it. The chunks depend only on the texts and ``batch_size``.
    """
    lengths = torch.tensor([max(len(t), 1) for t in texts])
    order = torch.sort(lengths, stable=True).indices
    budget = batch_size * float(lengths.double().mean()) if len(texts) else 0.0
    chunks, start = [], 0
    for end, length in enumerate(lengths[order].tolist()):
        size = end - start
        if size and (size == batch_size or (size + 1) * length > budget):
            chunks.append(order[start:end])
            start = end
    chunks.append(order[start:])
    return chunks


def sharded_map(
    fn: Callable[[torch.Tensor], torch.Tensor],
    chunks: Sequence[torch.Tensor],
    *,
    accelerator: Accelerator | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> tuple[torch.Tensor, int]:
    """Apply ``fn`` to chunks of row indices and return the results in row order on every process.

    ``chunks`` partition ``range(n)`` and are the same whatever the number of processes; ``fn(rows)``
    returns one output row per index (m, w). With a distributed ``accelerator`` the chunks are dealt out
    by ``accelerator.prepare`` and collected with ``gather_for_metrics`` (which drops the padding chunks
    of the last step); the gathered rows carry their indices and are scattered back into place.

    Returns:
        ``(result, gathered)``: the (n, w) result and how many rows were gathered (== n).
    """
    n = sum(int(c.numel()) for c in chunks)
    if n == 0:
        raise BridgeInputError("nothing to evaluate: the data set has no rows.")
    chunk_size = max(int(c.numel()) for c in chunks)
    items = torch.full((len(chunks), chunk_size), -1, dtype=torch.long)
    for j, chunk in enumerate(chunks):
        items[j, : len(chunk)] = chunk
    loader: Any = torch.utils.data.DataLoader(items, batch_size=1, shuffle=False)
    if _is_distributed(accelerator):
        loader = accelerator.prepare(loader)  # type: ignore[union-attr]
    disable = (
        (not _is_main(accelerator))
        if show_progress is None
        else not (show_progress and _is_main(accelerator))
    )
    indices: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    for item in tqdm(loader, desc=desc, disable=disable, leave=False):
        rows = item[0].cpu()
        valid = rows[rows >= 0]
        out = fn(valid)
        if out.ndim != 2 or out.shape[0] != len(valid):
            raise RuntimeError(f"sharded function returned shape {tuple(out.shape)} for {len(valid)} rows")
        padded = out.new_zeros((chunk_size, out.shape[1]))
        padded[: len(valid)] = out
        if _is_distributed(accelerator):
            rows_g, padded_g = accelerator.gather_for_metrics((rows[None], padded[None]))  # type: ignore[union-attr]
        else:
            rows_g, padded_g = rows[None], padded[None]
        indices.append(rows_g.reshape(-1).cpu())
        values.append(padded_g.reshape(-1, padded.shape[1]).cpu())
    flat_rows = torch.cat(indices)
    flat_values = torch.cat(values)
    keep = flat_rows >= 0
    flat_rows, flat_values = flat_rows[keep], flat_values[keep]
    gathered = int(flat_rows.numel())
    if gathered != n or not torch.equal(torch.sort(flat_rows).values, torch.arange(n)):
        raise RuntimeError(f"gathered {gathered} rows for a data set of {n}: sharding lost or repeated rows")
    result = flat_values.new_empty((n, flat_values.shape[1]))
    result[flat_rows] = flat_values
    return result, gathered


# ====================================================================================== embedding
def _is_texts(inputs: Sequence[Any]) -> bool:
    return not isinstance(inputs, (np.ndarray, torch.Tensor)) and all(isinstance(x, str) for x in inputs)


def embedding_chunks(inputs: Sequence[Any], batch_size: int) -> list[torch.Tensor]:
    """The units of embedding work: cost-balanced length-sorted chunks for texts, fixed ones otherwise."""
    return text_chunks(inputs, batch_size) if _is_texts(inputs) else fixed_chunks(len(inputs), batch_size)


def _inputs_fingerprint(inputs: Sequence[Any]) -> str:
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        return fingerprint(inputs)
    if _is_texts(inputs):
        return fingerprint(list(inputs))
    return fingerprint([np.asarray(x) for x in inputs])


def embed_inputs(
    encoder: Any,
    inputs: Sequence[Any],
    *,
    batch_size: int = 32,
    accelerator: Accelerator | None = None,
    cache_dir: str | os.PathLike | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """Embed ``inputs`` with ``encoder`` (an :class:`~hf_latent_bridge.encoders.Encoder`), sharded.

    Rows are cut into chunks (:func:`embedding_chunks`) that do not depend on the number of processes,
    so a distributed run returns exactly the single-process embeddings, on every process. With
    ``cache_dir`` the result is stored as safetensors under a key made of the encoder's ``cache_key``, a
    hash of the inputs and the chunking; a second call with the same encoder and inputs reads it back.
    """
    if batch_size < 1:
        raise BridgeInputError(f"batch_size must be at least 1, got {batch_size}.")
    chunks = embedding_chunks(inputs, batch_size)
    key = getattr(encoder, "cache_key", None)
    cache_file = None
    if cache_dir is not None and key:
        name = fingerprint([str(key), _inputs_fingerprint(inputs), [len(c) for c in chunks]])
        cache_file = Path(cache_dir) / f"embeddings-{name}.safetensors"
        if cache_file.is_file():
            from safetensors.torch import load_file

            logger.info("embeddings of %s read from cache %s", key, cache_file)
            return load_file(str(cache_file))["embeddings"]

    def embed_rows(rows: torch.Tensor) -> torch.Tensor:
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            batch: Any = inputs[rows.numpy()] if isinstance(inputs, np.ndarray) else inputs[rows]
        else:
            batch = [inputs[int(i)] for i in rows]
        out = encoder.embed(batch, batch_size=max(len(rows), 1), show_progress=False)
        return torch.as_tensor(out).detach().to("cpu", torch.float32)

    result, _ = sharded_map(
        embed_rows,
        chunks,
        accelerator=accelerator,
        desc=desc or f"embedding with {getattr(encoder, 'ref', encoder)!s:.60}",
        show_progress=show_progress,
    )
    if cache_file is not None:
        if _is_main(accelerator):
            from safetensors.torch import save_file

            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cache_file.parent, suffix=".tmp", delete=False) as handle:
                tmp = handle.name
            save_file({"embeddings": result.contiguous()}, tmp)
            os.replace(tmp, cache_file)
        if _is_distributed(accelerator):
            accelerator.wait_for_everyone()  # type: ignore[union-attr]
    return result


# ====================================================================================== heads
def default_head_factory(
    embeddings: torch.Tensor, labels: torch.Tensor, id2label: Mapping[int, str] | None
) -> Any:
    """Train the package's :class:`~hf_latent_bridge.heads.ClassificationHead` on target embeddings."""
    from .heads import ClassificationHead

    return ClassificationHead.fit(embeddings, labels, id2label=dict(id2label) if id2label else None)


def head_predict(head: Any, embeddings: torch.Tensor) -> torch.Tensor:
    """Class ids predicted by a head (anything with ``logits``, ``predict_proba`` or ``__call__``)."""
    with torch.inference_mode():
        if hasattr(head, "logits"):
            scores = head.logits(embeddings)
        elif hasattr(head, "predict_proba"):
            scores = head.predict_proba(embeddings)
        else:
            scores = head(embeddings)
    return torch.as_tensor(scores).argmax(-1).long()


# ====================================================================================== the matrix
@dataclass
class StitchingMatrix:
    """Every (source, target, method) cell of a stitching evaluation, with how it was obtained."""

    encoders: list[str]
    dims: dict[str, int]
    methods: list[str]
    cells: list[dict[str, Any]]
    num_train: int
    num_test: int
    num_anchors: int
    anchor_strategy: str | None
    num_classes: int
    num_gathered: int
    num_processes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    #: The trained target heads by encoder name (not serialised); reusable by :func:`anchor_curve`.
    heads: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def cell(self, source: str, target: str, method: str) -> dict[str, Any]:
        """The cell of one pair and method (``method="native"`` for the diagonal)."""
        for c in self.cells:
            if (c["source"], c["target"], c["method"]) == (source, target, method):
                return c
        raise KeyError(f"no cell {source} -> {target} with method {method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoders": self.encoders,
            "dims": self.dims,
            "methods": self.methods,
            "num_train": self.num_train,
            "num_test": self.num_test,
            "num_anchors": self.num_anchors,
            "anchor_strategy": self.anchor_strategy,
            "num_classes": self.num_classes,
            "num_gathered": self.num_gathered,
            "num_processes": self.num_processes,
            "cells": self.cells,
            **({"extra": self.extra} if self.extra else {}),
        }

    def metrics_only(self) -> list[dict[str, Any]]:
        """Cells without anything run dependent (for comparing runs)."""
        return [{k: v for k, v in c.items() if k != "seconds"} for c in self.cells]

    def to_markdown(self, metric: str = "accuracy") -> str:
        """A table with one row per ordered pair: the native target score, then one column per method."""
        if metric not in METRICS:
            raise BridgeInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")
        header = ["source → target", "native (target)", *self.methods]
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for s in self.encoders:
            for t in self.encoders:
                if s == t:
                    continue
                native = self.cell(t, t, NATIVE)[metric]
                row = [f"{s} → {t}", _fmt(native)]
                row += [_fmt(self.cell(s, t, m).get(metric)) for m in self.methods]
                lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def details_markdown(self) -> str:
        """Every cell with every metric."""
        header = ["source", "target", "method", *METRICS]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for c in self.cells:
            lines.append(
                "| "
                + " | ".join([c["source"], c["target"], c["method"], *(_fmt(c.get(m)) for m in METRICS)])
                + " |"
            )
        return "\n".join(lines)

    def save(self, folder: str | os.PathLike, *, heatmap: bool = True) -> dict[str, Path]:
        """Write ``stitching_matrix.json``, ``stitching_matrix.md`` and (optionally) ``heatmap.png``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "stitching_matrix.json", "markdown": folder / "stitching_matrix.md"}
        write_text_atomic(paths["json"], json.dumps(self.to_dict(), indent=2) + "\n")
        body = (
            f"## Stitching accuracy ({self.num_test} test rows, {self.num_anchors} anchors)\n\n"
            f"{self.to_markdown('accuracy')}\n\n## All metrics\n\n{self.details_markdown()}\n"
        )
        write_text_atomic(paths["markdown"], body)
        if heatmap:
            from .plotting import plot_stitching_heatmap

            paths["heatmap"] = plot_stitching_heatmap(self.to_dict(), folder / "heatmap.png")
        return paths


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary sibling and an atomic rename."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
    ) as f:
        f.write(text)
        tmp = f.name
    os.replace(tmp, path)
    return path


class OutputError(ValueError):
    """An output path cannot be written (exists and is not empty, is a file, or is not writable)."""


def check_output_dir(output: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before any compute, an output folder that is a file, is not empty (without
    ``overwrite``) or lies under a file or a read-only folder. Returns the expanded path."""
    output = Path(output).expanduser()
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} exists and is not a folder; choose another output folder.")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputError(
            f"output folder {output} is not empty; pass --overwrite or choose another output folder."
        )
    ancestor = output.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write to {output.absolute().parent}: {ancestor} is not a writable folder; choose a writable output."
        )
    return output


@contextlib.contextmanager
def staged_directory(output: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``output``; on success it replaces ``output`` in one rename.

    Checks up front (before any compute) that ``output`` may be written; on failure the temporary
    folder is removed and an existing ``output`` is left untouched.
    """
    output = check_output_dir(output, overwrite)
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=parent))
    except OSError as error:
        raise OutputError(
            f"cannot write to {parent} ({error.strerror or error}); choose a writable --output."
        ) from None
    try:
        yield staging
        if output.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=parent))
            output.rename(backup / "old")
            staging.rename(output)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _check_embeddings(
    train: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_labels: torch.Tensor,
) -> None:
    if set(train) != set(test):
        raise BridgeInputError(
            f"train and test embeddings name different encoders ({sorted(train)} vs {sorted(test)})."
        )
    if len(train) < 2:
        raise BridgeInputError(f"a stitching matrix needs at least 2 encoders, got {len(train)}.")
    for name in train:
        a, b = train[name], test[name]
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise BridgeInputError(
                f"embeddings of {name!r} must be (n, d) matrices of one dimension; got "
                f"train {tuple(a.shape)} and test {tuple(b.shape)}."
            )
        if len(a) != len(train_labels) or len(b) != len(test_labels):
            raise BridgeInputError(
                f"{name!r} has {len(a)} train / {len(b)} test embeddings but there are "
                f"{len(train_labels)} / {len(test_labels)} labels; embed every row of both splits."
            )


def choose_anchor_rows(
    num_rows: int,
    num_anchors: int | None,
    strategy: str,
    *,
    labels: torch.Tensor | None = None,
    embeddings: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Anchor row indices in the train split (all rows when ``num_anchors`` is None)."""
    if strategy not in STRATEGIES:
        raise BridgeInputError(
            f"unknown anchor strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}."
        )
    if num_anchors is None or num_anchors == num_rows:
        return torch.arange(num_rows)
    return select_anchors(
        strategy, num_anchors, num_rows=num_rows, labels=labels, embeddings=embeddings, seed=seed
    ).long()


def stitching_matrix(
    train: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    train_labels: Any,
    test_labels: Any,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    num_anchors: int | None = None,
    anchor_strategy: str = "balanced",
    anchor_rows: torch.Tensor | None = None,
    seed: int = 0,
    id2label: Mapping[int, str] | None = None,
    head_factory: HeadFactory | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    accelerator: Accelerator | None = None,
    chunk_size: int = 256,
    show_progress: bool | None = None,
) -> StitchingMatrix:
    """Evaluate every (source, target, method) cell of N encoders' embeddings of one labelled data set.

    Bridges are fitted on the same anchor rows of the train split in every space; one head per target is
    trained on that target's train embeddings (``head_factory``, default
    :func:`default_head_factory`). Each off-diagonal cell translates the source's test embeddings and
    scores them with the target's head and against the target's true test embeddings; diagonal cells
    (``method="native"``) score the target's own embeddings. ``identity`` is reported as ``n/a`` where
    dimensions differ.

    Args:
        train / test: encoder name -> (n, d) embeddings of the train / test split (rows aligned).
        train_labels / test_labels: class ids.
        methods: translation methods (see :data:`hf_latent_bridge.alignment.METHODS`).
        num_anchors / anchor_strategy / seed: how anchors are chosen among the train rows (all of them
            by default); ``farthest`` runs in the first encoder's space. ``anchor_rows`` overrides.
        bridge_options: extra keyword arguments for :meth:`LatentBridge.fit` (ridge, scale, ...).
        accelerator: shard the per-row evaluation over its processes (results are identical).
    """
    _check_embeddings(train, test, torch.as_tensor(train_labels), torch.as_tensor(test_labels))
    train_labels = torch.as_tensor(np.asarray(train_labels)).long()
    test_labels = torch.as_tensor(np.asarray(test_labels)).long()
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise BridgeInputError(f"unknown method(s) {unknown or methods}; choose from {', '.join(METHODS)}.")
    names = list(train)
    if anchor_rows is None:
        anchor_rows = choose_anchor_rows(
            len(train_labels),
            num_anchors,
            anchor_strategy,
            labels=train_labels,
            embeddings=train[names[0]],
            seed=seed,
        )
    anchor_rows = torch.as_tensor(anchor_rows).long()
    head_factory = head_factory or default_head_factory
    options = dict(bridge_options or {})

    heads = {}
    for t in tqdm(
        names, desc="training heads", disable=not (_is_main(accelerator) and show_progress is not False)
    ):
        heads[t] = head_factory(train[t], train_labels, id2label)

    # Fit every bridge (cheap, deterministic: every process fits the same ones).
    cells: list[dict[str, Any]] = []
    bridges: list[LatentBridge | None] = []
    pairs = [(s, t) for s in names for t in names]
    for s, t in tqdm(
        pairs, desc="fitting bridges", disable=not (_is_main(accelerator) and show_progress is not False)
    ):
        for method in [NATIVE] if s == t else methods:
            cell: dict[str, Any] = {"source": s, "target": t, "method": method}
            bridge = None
            if method == "identity" and train[s].shape[1] != train[t].shape[1]:
                cell["note"] = f"dimensions differ ({train[s].shape[1]} vs {train[t].shape[1]})"
            elif method != NATIVE:
                started = time.perf_counter()
                bridge = LatentBridge.fit(
                    train[s][anchor_rows], train[t][anchor_rows], method, seed=seed, **options
                )
                cell["seconds"] = round(time.perf_counter() - started, 4)
                if bridge.config.ridge_selected is not None:
                    cell["ridge_selected"] = bridge.config.ridge_selected
            cells.append(cell)
            bridges.append(bridge)

    banks = {t: _unit64(test[t]) for t in names}
    active = [i for i, c in enumerate(cells) if c["method"] == NATIVE or bridges[i] is not None]

    def evaluate_rows(rows: torch.Tensor) -> torch.Tensor:
        columns = []
        for i in active:
            s, t = cells[i]["source"], cells[i]["target"]
            bridge = bridges[i]
            translated = test[t][rows] if bridge is None else bridge(test[s][rows])
            predicted = head_predict(heads[t], translated)
            columns.append(
                row_outcomes(translated, test[t][rows], predicted, test_labels[rows], banks[t], rows)
            )
        return torch.cat(columns, dim=1)

    outcomes, gathered = sharded_map(
        evaluate_rows,
        fixed_chunks(len(test_labels), chunk_size),
        accelerator=accelerator,
        desc="evaluating cells",
        show_progress=show_progress,
    )
    width = len(OUTCOME_COLUMNS)
    for j, i in enumerate(active):
        cells[i].update(aggregate_outcomes(outcomes[:, j * width : (j + 1) * width], test_labels))
    for c in cells:
        for m in METRICS:
            c.setdefault(m, None)
    return StitchingMatrix(
        encoders=names,
        dims={n: int(train[n].shape[1]) for n in names},
        methods=methods,
        cells=cells,
        num_train=len(train_labels),
        num_test=len(test_labels),
        num_anchors=len(anchor_rows),
        anchor_strategy=None if len(anchor_rows) == len(train_labels) else anchor_strategy,
        num_classes=int(torch.unique(torch.cat([train_labels, test_labels])).numel()),
        num_gathered=gathered,
        num_processes=accelerator.num_processes if accelerator is not None else 1,
        heads=heads,
    )


# ====================================================================================== anchor curve
def anchor_curve(
    train: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    train_labels: Any,
    test_labels: Any,
    *,
    pairs: Sequence[tuple[str, str]],
    anchor_counts: Sequence[int],
    methods: Sequence[str] = DEFAULT_METHODS,
    anchor_strategy: str = "balanced",
    seed: int = 0,
    id2label: Mapping[int, str] | None = None,
    head_factory: HeadFactory | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    heads: Mapping[str, Any] | None = None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Stitched accuracy versus number of anchors for chosen (source, target) pairs and methods.

    Anchors of each count are chosen among the train rows by ``anchor_strategy`` (with ``seed``); the
    target heads are trained once on the full train split, or taken from ``heads`` (e.g.
    ``StitchingMatrix.heads``). Counts above the train size are skipped.
    """
    _check_embeddings(train, test, torch.as_tensor(train_labels), torch.as_tensor(test_labels))
    train_labels = torch.as_tensor(np.asarray(train_labels)).long()
    test_labels = torch.as_tensor(np.asarray(test_labels)).long()
    for s, t in pairs:
        if s not in train or t not in train:
            raise BridgeInputError(
                f"curve pair {s} -> {t} names an encoder not evaluated ({', '.join(train)})."
            )
    head_factory = head_factory or default_head_factory
    given = dict(heads or {})
    heads = {
        t: given[t] if t in given else head_factory(train[t], train_labels, id2label)
        for t in dict.fromkeys(t for _, t in pairs)
    }
    counts = sorted({int(k) for k in anchor_counts if 2 <= int(k) <= len(train_labels)})
    points = []
    for k in tqdm(counts, desc="anchor curve", leave=False, disable=show_progress is False):
        for s, t in pairs:
            rows = choose_anchor_rows(
                len(train_labels), k, anchor_strategy, labels=train_labels, embeddings=train[s], seed=seed
            )
            for method in methods:
                if method == "identity" and train[s].shape[1] != train[t].shape[1]:
                    continue
                with warnings.catch_warnings():  # small counts are the point of the curve
                    warnings.filterwarnings("ignore", message=".*anchors for a .*-dimensional target")
                    bridge = LatentBridge.fit(
                        train[s][rows], train[t][rows], method, seed=seed, **(bridge_options or {})
                    )
                translated = bridge(test[s])
                predicted = head_predict(heads[t], translated)
                points.append(
                    {
                        "source": s,
                        "target": t,
                        "method": method,
                        "num_anchors": k,
                        "accuracy": accuracy(predicted, test_labels),
                        "cosine": float((_unit64(translated) * _unit64(test[t])).sum(1).mean()),
                    }
                )
    native = {t: accuracy(head_predict(h, test[t]), test_labels) for t, h in heads.items()}
    return {"anchor_strategy": anchor_strategy, "seed": seed, "native_accuracy": native, "points": points}


# ====================================================================================== with encoders
def evaluate_encoders(
    encoders: Mapping[str, Any],
    train_inputs: Sequence[Any],
    test_inputs: Sequence[Any],
    train_labels: Any,
    test_labels: Any,
    *,
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    accelerator: Accelerator | None = None,
    show_progress: bool | None = None,
    **matrix_options: Any,
) -> tuple[StitchingMatrix, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Embed both splits once per encoder (sharded, cached) and compute the :func:`stitching_matrix`.

    Returns the matrix and the train / test embeddings by encoder name (for curves or further use).
    The seconds spent embedding each encoder are recorded in ``matrix.extra["embedding_seconds"]``.
    """
    if len(encoders) < 2:
        raise BridgeInputError(f"a stitching matrix needs at least 2 encoders, got {len(encoders)}.")
    train: dict[str, torch.Tensor] = {}
    test: dict[str, torch.Tensor] = {}
    seconds: dict[str, float] = {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        for split, inputs, store in (("train", train_inputs, train), ("test", test_inputs, test)):
            store[name] = embed_inputs(
                encoder,
                inputs,
                batch_size=batch_size,
                accelerator=accelerator,
                cache_dir=cache_dir,
                desc=f"embedding {split} with {name}",
                show_progress=show_progress,
            )
        seconds[name] = round(time.perf_counter() - started, 3)
    matrix = stitching_matrix(
        train,
        test,
        train_labels,
        test_labels,
        accelerator=accelerator,
        show_progress=show_progress,
        **matrix_options,
    )
    matrix.extra["embedding_seconds"] = seconds
    return matrix, train, test


def default_anchor_counts(num_train: int) -> list[int]:
    """A geometric ladder of anchor counts up to the train size."""
    counts = [c for c in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192) if c < num_train]
    return [*counts, num_train] if num_train >= 2 else []
