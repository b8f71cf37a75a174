"""The N x N stitching matrix: every (source, target, method) cell of N encoders on one data set."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.alignment import METHODS
from ..core.anchors import choose_anchor_rows
from ..core.metrics import METRICS, OUTCOME_COLUMNS, _unit64, aggregate_outcomes, row_outcomes
from ..encoding.sharding import _is_main, fixed_chunks, sharded_map
from ..errors import BridgeInputError
from ..files import write_text_atomic
from ..models.bridge import LatentBridge
from .heads import HeadFactory, default_head_factory, head_predict
from .relative import RelativeHead

if TYPE_CHECKING:
    from accelerate import Accelerator


#: Pseudo-method of the diagonal: the target head on the target's own test embeddings.
NATIVE = "native"


DEFAULT_METHODS = ("irp", "procrustes")


#: The relative baseline (Moschella et al., 2023): no bridge; a head trained on the target's cosines to
#: the anchors classifies the source's cosines to the same anchors (see :class:`RelativeHead`). Its cosine,
#: MSE and retrieval compare relative representations, not embeddings.
RELATIVE = "relative"


#: Every method a matrix cell can use: the translation methods and the relative baseline.
MATRIX_METHODS = (*METHODS, RELATIVE)


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
    #: The fitted bridges by (source, target, method) (not serialised), e.g. to save stitched models.
    bridges: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False, compare=False)
    #: The relative baseline's heads by target (not serialised), when ``"relative"`` was evaluated.
    relative_heads: dict[str, RelativeHead] = field(default_factory=dict, repr=False, compare=False)

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
            from .plots import plot_stitching_heatmap

            paths["heatmap"] = plot_stitching_heatmap(self.to_dict(), folder / "heatmap.png")
        return paths


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


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
    encoders: Mapping[str, Any] | None = None,
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
        methods: translation methods (see :data:`hf_latent_bridge.core.alignment.METHODS`), and
            ``"relative"``: the relative baseline, which fits no bridge but one :class:`RelativeHead` per
            target on the cosines of its train rows to its anchors (``head_factory`` if given, else
            :meth:`RelativeHead.fit`), applied to the source's cosines to the same anchor rows. Its
            cosine, MSE and retrieval compare relative representations (cells say ``space="relative"``);
            ``extra["relative_native_accuracy"]`` holds each relative head on its own space.
        num_anchors / anchor_strategy / seed: how anchors are chosen among the train rows (all of them
            by default); ``farthest`` runs in the first encoder's space. ``anchor_rows`` overrides.
        bridge_options: extra keyword arguments for :meth:`LatentBridge.fit` (ridge, scale, ...).
        accelerator: shard the per-row evaluation over its processes (results are identical).
        encoders: encoder name -> :class:`~hf_latent_bridge.EncoderRef` (or encoder), recorded in the bridges.
    """
    _check_embeddings(train, test, torch.as_tensor(train_labels), torch.as_tensor(test_labels))
    train_labels = torch.as_tensor(np.asarray(train_labels)).long()
    test_labels = torch.as_tensor(np.asarray(test_labels)).long()
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in MATRIX_METHODS]
    if unknown or not methods:
        raise BridgeInputError(
            f"unknown method(s) {unknown or methods}; choose from {', '.join(MATRIX_METHODS)}."
        )
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
    custom_head_factory, head_factory = head_factory, head_factory or default_head_factory
    options = dict(bridge_options or {})
    progress = _is_main(accelerator) and show_progress is not False

    heads = {}
    for t in tqdm(names, desc="training heads", disable=not progress):
        heads[t] = head_factory(train[t], train_labels, id2label)
    relative = _RelativeSpaces(train, test, anchor_rows) if RELATIVE in methods else None
    relative_heads = {}
    if relative is not None:
        for t in tqdm(names, desc="training relative heads", disable=not progress):
            relative_heads[t] = relative.fit_head(t, train_labels, id2label, custom_head_factory)

    # Fit every bridge (cheap, deterministic: every process fits the same ones).
    cells: list[dict[str, Any]] = []
    scorers: list[_Scorer | None] = []
    bridges: dict[tuple[str, str, str], LatentBridge] = {}
    for s, t in tqdm([(s, t) for s in names for t in names], desc="fitting bridges", disable=not progress):
        for method in [NATIVE] if s == t else methods:
            cell: dict[str, Any] = {"source": s, "target": t, "method": method}
            if method == NATIVE:
                scorer = _Scorer(lambda rows, t=t: test[t][rows], heads[t], test[t])
            elif method == RELATIVE:
                cell["space"] = "relative"
                scorer = _Scorer(
                    lambda rows, s=s: relative.project(s, rows),  # type: ignore[union-attr]
                    relative_heads[t].head,
                    relative.test[t],  # type: ignore[union-attr]
                )
            elif method == "identity" and train[s].shape[1] != train[t].shape[1]:
                cell["note"] = f"dimensions differ ({train[s].shape[1]} vs {train[t].shape[1]})"
                scorer = None
            else:
                started = time.perf_counter()
                bridge = LatentBridge.fit(
                    train[s][anchor_rows],
                    train[t][anchor_rows],
                    method,
                    seed=seed,
                    source_encoder=(encoders or {}).get(s),
                    target_encoder=(encoders or {}).get(t),
                    **options,
                )
                cell["seconds"] = round(time.perf_counter() - started, 4)
                if bridge.config.ridge_selected is not None:
                    cell["ridge_selected"] = bridge.config.ridge_selected
                bridges[(s, t, method)] = bridge
                scorer = _Scorer(lambda rows, s=s, b=bridge: b(test[s][rows]), heads[t], test[t])
            cells.append(cell)
            scorers.append(scorer)

    active = [(i, scorer) for i, scorer in enumerate(scorers) if scorer is not None]
    banks: dict[int, torch.Tensor] = {}  # one retrieval bank per reference space

    def evaluate_rows(rows: torch.Tensor) -> torch.Tensor:
        columns = []
        for _, scorer in active:
            bank = banks.setdefault(id(scorer.reference), _unit64(scorer.reference))
            translated = scorer.translate(rows)
            predicted = head_predict(scorer.head, translated)
            reference = scorer.reference[rows]
            columns.append(row_outcomes(translated, reference, predicted, test_labels[rows], bank, rows))
        return torch.cat(columns, dim=1)

    outcomes, gathered = sharded_map(
        evaluate_rows,
        fixed_chunks(len(test_labels), chunk_size),
        accelerator=accelerator,
        desc="evaluating cells",
        show_progress=show_progress,
    )
    width = len(OUTCOME_COLUMNS)
    for j, (i, _) in enumerate(active):
        cells[i].update(aggregate_outcomes(outcomes[:, j * width : (j + 1) * width], test_labels))
    for c in cells:
        for m in METRICS:
            c.setdefault(m, None)
    extra: dict[str, Any] = {}
    if relative is not None:
        # the relative head on its own space's test rows: what the baseline keeps of the native accuracy
        extra["relative_native_accuracy"] = {
            t: float((head_predict(relative_heads[t].head, relative.test[t]) == test_labels).double().mean())
            for t in names
        }
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
        extra=extra,
        heads=heads,
        bridges=bridges,
        relative_heads=relative_heads,
    )


@dataclass(frozen=True)
class _Scorer:
    """How one cell is scored: test rows -> representation, the head on it, and the true reference."""

    translate: Callable[[torch.Tensor], torch.Tensor]
    head: Any
    reference: torch.Tensor  # (n_test, d) in the space ``translate`` maps into


class _RelativeSpaces:
    """Every encoder's train and test rows as cosines to its own anchors (the relative baseline's space)."""

    def __init__(
        self, train: Mapping[str, torch.Tensor], test: Mapping[str, torch.Tensor], anchor_rows: torch.Tensor
    ) -> None:
        self.anchors = {n: train[n][anchor_rows] for n in train}
        self.train = train
        self.test = {n: RelativeHead.project(test[n], a) for n, a in self.anchors.items()}

    def project(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        return self.test[name][rows]

    def fit_head(
        self,
        name: str,
        labels: torch.Tensor,
        id2label: Mapping[int, str] | None,
        head_factory: HeadFactory | None,
    ) -> RelativeHead:
        """The default logistic head (:meth:`RelativeHead.fit`), or ``head_factory``'s on the cosines."""
        if head_factory is None:
            return RelativeHead.fit(self.anchors[name], self.train[name], labels, id2label=id2label)
        features = RelativeHead.project(self.train[name], self.anchors[name])
        return RelativeHead(head_factory(features, labels, id2label), self.anchors[name])
