"""From two encoders and data to a fitted bridge (and head), scored on held-out rows.

The one fit-from-data workflow: :meth:`StitchedModel.from_encoders`, the ``fit`` and ``stitch`` commands
and the demo all run :func:`fit_from_encoders`. It embeds each split once per encoder (cached on disk),
selects anchors among the train rows, fits the bridge, trains the head on the target's train embeddings
(or takes the one given) and scores the stitched classifier on held-out rows.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.anchor_set import AnchorSet
from ..core.anchors import select_anchors
from ..core.metrics import accuracy, cell_metrics
from ..core.options import (
    MAX_ENSEMBLE,
    check_fraction,
    check_method,
    check_positive_int,
    check_ridge,
    check_scale,
    check_seed,
    check_strategy,
    check_whitening,
)
from ..encoding.base import Encoder
from ..encoding.embed import embed_inputs
from ..encoding.loading import as_encoder
from ..encoding.tables import class_ids, column_values, labelled_splits, load_table, require_columns
from ..errors import BridgeInputError, DataError, IncompatibleEncoderError
from .bridge import LatentBridge
from .classifier_head import head_from_classifier
from .head import ClassificationHead

#: Anchors drawn when ``num_anchors`` is not given: at most this many of the train rows.
DEFAULT_NUM_ANCHORS = 2000


@dataclass
class FitFromEncoders:
    """What :func:`fit_from_encoders` produced."""

    bridge: LatentBridge
    source_encoder: Encoder
    target_encoder: Encoder
    head: ClassificationHead | None = None
    #: Scores on the held-out rows (stitched accuracy and macro-F1, the head's accuracy on the target's own
    #: embeddings, cosine and top-1 retrieval of the translations against the true target embeddings) and
    #: what they were measured on (``dataset``, ``split``, ``num_samples``): what the model card reports.
    metrics: dict[str, Any] = field(default_factory=dict)


def fit_from_encoders(
    source: Any,
    target: Any,
    data: Any,
    *,
    text_column: str = "text",
    target_column: str | None = None,
    label_column: str | None = None,
    head: Any = None,
    train_head: bool = True,
    split: str = "train",
    test_split: str | None = None,
    test_size: float = 0.2,
    data_config: str | None = None,
    data_revision: str | None = None,
    num_anchors: int | None = None,
    strategy: str | None = None,
    method: str = "irp",
    source_revision: str | None = None,
    target_revision: str | None = None,
    source_pooling: str | None = None,
    target_pooling: str | None = None,
    source_id: str | None = None,
    target_id: str | None = None,
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    show_progress: bool = False,
    **bridge_options: Any,
) -> FitFromEncoders:
    """Fit a bridge from ``source`` to ``target`` on anchors drawn from ``data``; with labels, a head too.

    Args:
        source / target: Hub ids or local folders (with ``*_revision``, ``*_pooling`` and, for local
            folders, ``*_id`` naming the Hub model they hold), :class:`Encoder` s or
            ``SentenceTransformer`` objects.
        data: a ``datasets.Dataset``, a Hub data set id, or a JSONL/CSV/Parquet file.
        text_column / target_column: the inputs each encoder embeds (``target_column`` defaults to
            ``text_column``; a different one makes cross-modal pairs, e.g. captions for images).
        label_column: class labels. With them, ``test_size`` of ``split`` (or ``test_split``) is held out
            and the stitched classifier is scored on it; without them the bridge alone is fitted on ``split``.
        head: ``None`` trains a :class:`ClassificationHead` on the target's train embeddings (when
            ``train_head``); a ``ClassificationHead`` or a transformers classifier (model or id) is used as is.
        num_anchors / strategy: anchors among the train rows (default: up to 2000, class-balanced with
            labels, uniform without).
        bridge_options: passed to :meth:`LatentBridge.fit` (ridge, scale, whitening, ensemble, ...).
    """
    batch_size, seed = check_positive_int("batch_size", batch_size), check_seed(seed)
    _check_bridge_options(method, bridge_options)  # before any encoder is loaded or anything embedded
    strategy = check_strategy(strategy or ("balanced" if label_column else "uniform"))
    if strategy == "balanced" and label_column is None:
        raise BridgeInputError(
            "strategy='balanced' needs labels: pass label_column (--label-column on the command line)."
        )
    if head is not None and label_column is None:
        raise BridgeInputError("a head is scored on labelled rows: pass label_column.")
    target_column = target_column or text_column
    encoders = (
        as_encoder(source, revision=source_revision, pooling=source_pooling, hub_id=source_id),
        as_encoder(target, revision=target_revision, pooling=target_pooling, hub_id=target_id),
    )
    columns = dict.fromkeys([text_column, target_column])
    scored = label_column is not None and (head is not None or train_head)

    if scored:
        splits = labelled_splits(
            data,
            column=text_column,
            label_column=label_column,
            split=split,
            test_split=test_split,
            test_size=test_size,
            config=data_config,
            revision=data_revision,
            seed=seed,
            extra_columns=[target_column],
        )
        train, labels, id2label = splits.train, splits.train_labels, splits.id2label
    else:
        train = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(train, *columns, label_column)
        labels = torch.tensor(class_ids(train[label_column])) if label_column else None
    k = (
        min(len(train), DEFAULT_NUM_ANCHORS)
        if num_anchors is None
        else check_positive_int("num_anchors", num_anchors)
    )
    if not 2 <= k <= len(train):
        raise DataError(
            f"{k} anchors were asked for but the train split has {len(train)} rows; use between 2 and "
            f"{len(train)} anchors (--num-anchors), or more data."
        )

    def embed(encoder: Encoder, rows: Any, column: str) -> torch.Tensor:
        return embed_inputs(
            encoder,
            column_values(rows, column),
            batch_size=batch_size,
            cache_dir=cache_dir,
            show_progress=show_progress,
        )

    # Embed what is needed only: the anchor rows, plus every train row where selection (farthest points)
    # or the head needs them.
    source_train = embed(encoders[0], train, text_column) if strategy == "farthest" else None
    rows = (
        torch.arange(len(train))
        if k == len(train)
        else select_anchors(
            strategy, k, num_rows=len(train), labels=labels, embeddings=source_train, seed=seed
        )
    )
    anchors = train.select(rows.tolist())
    source_anchors = embed(encoders[0], anchors, text_column) if source_train is None else source_train[rows]
    target_train = embed(encoders[1], train, target_column) if scored and head is None else None
    target_anchors = (
        embed(encoders[1], anchors, target_column) if target_train is None else target_train[rows]
    )
    anchor_set = AnchorSet(
        dataset=_dataset_name(data),
        indices=tuple(int(i) for i in rows),
        revision=data_revision,
        split=split if not scored or test_split else f"{split} minus a {test_size:g} hold-out (seed {seed})",
        column=text_column,
        extra={
            "strategy": strategy,
            "seed": seed,
            "data_config": data_config,
            "target_column": target_column,
            **_file_digest(data),
        },
    )
    bridge = LatentBridge.fit(
        source_anchors,
        target_anchors,
        method,
        seed=seed,
        source_encoder=encoders[0].ref,
        target_encoder=encoders[1].ref,
        anchor_set=anchor_set,
        show_progress=show_progress,
        **bridge_options,
    )
    result = FitFromEncoders(bridge, *encoders)
    if not scored:
        return result

    result.head = _head(head, target_train, labels, id2label, encoders[1], show_progress)
    test = splits.test
    test_labels = _relabel(splits.test_labels, id2label, result.head)
    source_test, target_test = embed(encoders[0], test, text_column), embed(encoders[1], test, target_column)
    translated = bridge.translate(source_test)
    scores = cell_metrics(translated, target_test, result.head.predict(translated), test_labels)
    result.metrics = {
        "stitched_accuracy": scores["accuracy"],
        "stitched_macro_f1": scores["macro_f1"],
        "native_target_accuracy": accuracy(result.head.predict(target_test), test_labels),
        "cosine_to_target": scores["cosine"],
        "top1_retrieval": scores["top1_retrieval"],
        "dataset": anchor_set.dataset,
        "split": test_split or f"{test_size:g} of {split} held out (seed {seed})",
        "num_samples": len(test),
    }
    bridge.config.metrics = dict(result.metrics)
    return result


#: Options of :meth:`LatentBridge.fit` that :func:`fit_from_encoders` sets itself.
_SET_HERE = {
    "source_anchors",
    "target_anchors",
    "method",
    "seed",
    "source_encoder",
    "target_encoder",
    "anchor_set",
}


def _check_bridge_options(method: Any, options: dict[str, Any]) -> None:
    """The bridge options, checked by the rules :meth:`LatentBridge.fit` applies, before any compute."""
    accepted = set(inspect.signature(LatentBridge.fit).parameters) - _SET_HERE
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BridgeInputError(
            f"unknown bridge option(s) {', '.join(unknown)}; LatentBridge.fit takes {', '.join(sorted(accepted))}."
        )
    with warnings.catch_warnings():  # a deprecated name warns once, when the bridge is fitted
        warnings.simplefilter("ignore", DeprecationWarning)
        check_method(method)
    checks = {
        "ridge": check_ridge,
        "scale": check_scale,
        "whitening": check_whitening,
        "ensemble": lambda value: check_positive_int("ensemble", value, MAX_ENSEMBLE),
        "ensemble_fraction": lambda value: check_fraction("ensemble_fraction", value),
    }
    for name, value in options.items():
        if name in checks:
            checks[name](value)


def _head(
    head: Any,
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    id2label: dict[int, str],
    target: Encoder,
    show_progress: bool,
) -> ClassificationHead:
    if head is None:
        return ClassificationHead.fit(
            embeddings,
            labels,
            id2label=id2label,
            pooling=target.ref.pooling,
            encoder=target.ref,
            show_progress=show_progress,
        )
    if not isinstance(head, ClassificationHead):
        head = head_from_classifier(head)
    if head.input_dim != target.dim:
        raise IncompatibleEncoderError(
            f"the head takes {head.input_dim}-dimensional embeddings but the target encoder "
            f"{target.ref.name_or_path!r} gives {target.dim}; pass the head trained on that encoder."
        )
    return head


def _relabel(labels: torch.Tensor, id2label: dict[int, str], head: ClassificationHead) -> torch.Tensor:
    """The data's class ids as the head's class ids, matched by name."""
    if head.id2label == id2label:
        return labels
    missing = sorted(set(id2label.values()) - set(head.label2id))
    if missing:
        raise DataError(
            f"the data has classes the head does not know ({', '.join(missing[:5])}); the head's classes are "
            f"{', '.join(head.id2label.values())}. Use data labelled with the head's classes."
        )
    mapping = torch.tensor([head.label2id[id2label[i]] for i in range(len(id2label))])
    return mapping[labels]


def _dataset_name(data: Any) -> str:
    """A name for the anchor data that means the same on every machine (never an absolute path)."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        return path.name if path.exists() else str(data)
    if isinstance(data, dict) and data:  # a DatasetDict: its splits share one data set
        data = next(iter(data.values()))
    info = getattr(data, "info", None)
    name = getattr(info, "dataset_name", None)
    return name or f"datasets.Dataset (fingerprint {getattr(data, '_fingerprint', 'unknown')})"


def _file_digest(data: Any) -> dict[str, str]:
    """For a local file, the sha256 of its content, so the anchors can be traced without its path."""
    if isinstance(data, (str, os.PathLike)) and Path(data).expanduser().is_file():
        digest = hashlib.sha256(Path(data).expanduser().read_bytes()).hexdigest()
        return {"file_sha256": digest}
    return {}
