"""The N x N stitching matrix: every (source, target, method) cell of N encoders on one data set."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..core.anchors import select_anchors
from ..core.metrics import METRICS, OUTCOME_COLUMNS, _unit64, accuracy, aggregate_outcomes, row_outcomes
from ..core.options import METHODS
from ..core.validation import as_class_ids, as_tensor, check_matrix
from ..encoding.embed import embed_inputs
from ..encoding.sharding import _is_main, fixed_chunks, sharded_map
from ..errors import BridgeInputError
from ..files import write_text
from ..models.bridge import LatentBridge
from ..models.head import ClassificationHead
from .relative import RelativeHead

if TYPE_CHECKING:
    from accelerate import Accelerator


HeadFactory = Callable[[torch.Tensor, torch.Tensor, Mapping[int, str] | None], Any]


def default_head_factory(
    embeddings: torch.Tensor, labels: torch.Tensor, id2label: Mapping[int, str] | None
) -> Any:
    """Train the package's :class:`~hf_latent_bridge.ClassificationHead` on target embeddings."""
    return ClassificationHead.fit(embeddings, labels, id2label=dict(id2label) if id2label else None)


def head_predict(head: Any, embeddings: torch.Tensor) -> torch.Tensor:
    """Class ids predicted by a head (anything with ``logits``, ``predict_proba`` or ``__call__``)."""
    scores = getattr(head, "logits", None) or getattr(head, "predict_proba", None) or head
    with torch.inference_mode():
        return torch.as_tensor(scores(embeddings)).argmax(-1).long()


#: Pseudo-method of the diagonal: the target head on the target's own test embeddings.
NATIVE = "native"
DEFAULT_METHODS = ("auto", "irp", "procrustes")
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
        """The serialised fields (not the heads and bridges); ``extra`` only when it holds something."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.repr and f.name != "extra"}
        return {**out, **({"extra": self.extra} if self.extra else {})}

    def to_markdown(self, metric: str = "accuracy") -> str:
        """A table with one row per ordered pair: the native target score, then one column per method."""
        if metric not in METRICS:
            raise BridgeInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")
        rows = [
            [f"{s} → {t}", _fmt(self.cell(t, t, NATIVE)[metric])]
            + [_fmt(self.cell(s, t, m).get(metric)) for m in self.methods]
            for s in self.encoders
            for t in self.encoders
            if s != t
        ]
        return _table(["source → target", "native (target)", *self.methods], rows)

    def details_markdown(self) -> str:
        """Every cell with every metric."""
        rows = [
            [c["source"], c["target"], c["method"], *(_fmt(c.get(m)) for m in METRICS)] for c in self.cells
        ]
        return _table(["source", "target", "method", *METRICS], rows)

    def save(self, folder: str | os.PathLike, *, heatmap: bool = True) -> dict[str, Path]:
        """Write ``stitching_matrix.json``, ``stitching_matrix.md`` and (optionally) ``heatmap.png``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "stitching_matrix.json", "markdown": folder / "stitching_matrix.md"}
        write_text(paths["json"], json.dumps(self.to_dict(), indent=2) + "\n")
        body = (
            f"## Stitching accuracy ({self.num_test} test rows, {self.num_anchors} anchors)\n\n"
            f"{self.to_markdown('accuracy')}\n\n## All metrics\n\n{self.details_markdown()}\n"
        )
        write_text(paths["markdown"], body)
        if heatmap:
            from .plots import plot_stitching_heatmap

            paths["heatmap"] = plot_stitching_heatmap(self.to_dict(), folder / "heatmap.png")
        return paths


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows])


def _check_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` without repeats, each a translation method or ``"relative"``."""
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in MATRIX_METHODS]
    if unknown or not methods:
        raise BridgeInputError(
            f"unknown method(s) {unknown or methods}; choose from {', '.join(MATRIX_METHODS)}."
        )
    return methods


def _check_embeddings(
    train: Mapping[str, Any], test: Mapping[str, Any], train_labels: Any, test_labels: Any
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Both splits' embeddings as finite (n, d) tensors (one d per encoder) with one class id per row."""
    if set(train) != set(test):
        raise BridgeInputError(
            f"train and test embeddings name different encoders ({sorted(train)} vs {sorted(test)})."
        )
    if len(train) < 2:
        raise BridgeInputError(f"a stitching matrix needs at least 2 encoders, got {len(train)}.")
    labels = {"train": as_class_ids(train_labels, name="train labels"), "test": as_class_ids(test_labels)}
    checked: dict[str, dict[str, torch.Tensor]] = {"train": {}, "test": {}}
    for split, embeddings in (("train", train), ("test", test)):
        for name, x in embeddings.items():
            what = f"{split} embeddings of {name!r}"
            dim = checked["train"][name].shape[1] if split == "test" else None
            checked[split][name] = x = check_matrix(as_tensor(x, what), what, dim)
            if len(x) != len(labels[split]):
                raise BridgeInputError(
                    f"{what} have {len(x)} rows for {len(labels[split])} labels; embed every row of the split."
                )
    return checked["train"], checked["test"], labels["train"], labels["test"]


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
        bridge_options: extra keyword arguments for :meth:`LatentBridge.fit` (ridge, output_norm, ...).
        accelerator: shard the per-row evaluation over its processes (results are identical).
        encoders: encoder name -> :class:`~hf_latent_bridge.EncoderRef` (or encoder), recorded in the bridges.
    """
    train, test, train_labels, test_labels = _check_embeddings(train, test, train_labels, test_labels)
    methods = _check_methods(methods)
    names = list(train)
    if anchor_rows is None:
        anchor_rows = select_anchors(
            anchor_strategy,
            num_anchors,
            num_rows=len(train_labels),
            labels=train_labels,
            embeddings=train[names[0]],
            seed=seed,
        )
    anchor_rows = torch.as_tensor(anchor_rows).long()
    anchors = {n: train[n][anchor_rows] for n in names}
    progress = _is_main(accelerator) and show_progress is not False
    heads, relative_heads, relative_test = {}, {}, {}
    for t in tqdm(names, desc="training heads", disable=not progress):
        heads[t] = (head_factory or default_head_factory)(train[t], train_labels, id2label)
        if RELATIVE in methods:
            relative_heads[t] = _relative_head(train[t], anchors[t], train_labels, id2label, head_factory)
            relative_test[t] = RelativeHead.project(test[t], anchors[t])

    # Fit every bridge (cheap, deterministic: every process fits the same ones).
    cells: list[dict[str, Any]] = []
    scorers: list[_Scorer | None] = []
    bridges: dict[tuple[str, str, str], LatentBridge] = {}
    for s, t in tqdm([(s, t) for s in names for t in names], desc="fitting bridges", disable=not progress):
        for method in [NATIVE] if s == t else methods:
            cell: dict[str, Any] = {"source": s, "target": t, "method": method}
            scorer = None
            if method == NATIVE:
                scorer = _Scorer(lambda rows, t=t: test[t][rows], heads[t], test[t])
            elif method == RELATIVE:
                cell["space"] = "relative"
                scorer = _Scorer(
                    lambda rows, s=s: relative_test[s][rows], relative_heads[t].head, relative_test[t]
                )
            elif method == "identity" and train[s].shape[1] != train[t].shape[1]:
                cell["note"] = f"dimensions differ ({train[s].shape[1]} vs {train[t].shape[1]})"
            else:
                started = time.perf_counter()
                bridge = LatentBridge.fit(
                    anchors[s],
                    anchors[t],
                    method,
                    seed=seed,
                    head=heads[t],  # what "auto" judges candidates by
                    source_encoder=(encoders or {}).get(s),
                    target_encoder=(encoders or {}).get(t),
                    **dict(bridge_options or {}),
                )
                cell["seconds"] = round(time.perf_counter() - started, 4)
                if bridge.config.ridge_selected is not None:
                    cell["ridge_selected"] = bridge.config.ridge_selected
                if bridge.config.selection:
                    cell["method_selected"] = bridge.config.selection["chosen"]
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
            columns.append(
                row_outcomes(translated, scorer.reference[rows], predicted, test_labels[rows], bank, rows)
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
    for j, (i, _) in enumerate(active):
        cells[i].update(aggregate_outcomes(outcomes[:, j * width : (j + 1) * width], test_labels))
    for c in cells:
        for m in METRICS:
            c.setdefault(m, None)
    extra: dict[str, Any] = {}
    if relative_heads:  # each relative head on its own space: what the baseline keeps of the native accuracy
        extra["relative_native_accuracy"] = {
            t: accuracy(head_predict(relative_heads[t].head, relative_test[t]), test_labels) for t in names
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


def _relative_head(
    embeddings: torch.Tensor,
    anchors: torch.Tensor,
    labels: torch.Tensor,
    id2label: Mapping[int, str] | None,
    head_factory: HeadFactory | None,
) -> RelativeHead:
    """The default logistic head (:meth:`RelativeHead.fit`), or ``head_factory``'s on the cosines."""
    if head_factory is None:
        return RelativeHead.fit(anchors, embeddings, labels, id2label=id2label)
    return RelativeHead(head_factory(RelativeHead.project(embeddings, anchors), labels, id2label), anchors)


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
        encoders=encoders,
        accelerator=accelerator,
        show_progress=show_progress,
        **matrix_options,
    )
    matrix.extra["embedding_seconds"] = seconds
    return matrix, train, test
