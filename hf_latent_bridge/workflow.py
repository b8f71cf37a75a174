"""From two encoders and data to a fitted bridge (and a scored stitched classifier), in one call.

:func:`stitch` and :func:`fit_from_encoders` are what the ``stitch`` and ``fit`` commands and the demo
run. Each split is embedded once per encoder (cached on disk), anchors are selected among the train rows,
the bridge is fitted, a head is trained on the target's train embeddings (or the one given is used) and
the stitched classifier is scored on held-out rows; the scores go on the model card.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .core.anchor_set import AnchorSet
from .core.anchors import select_anchors
from .core.metrics import accuracy, cell_metrics
from .core.options import check
from .encoding.base import Encoder
from .encoding.embed import embed_inputs
from .encoding.loading import as_encoder
from .encoding.tables import column_values, labelled_splits, load_table, require_columns
from .errors import BridgeInputError, IncompatibleEncoderError
from .models.bridge import LatentBridge
from .models.classifier_head import head_from_classifier
from .models.configs import LatentBridgeConfig
from .models.head import ClassificationHead
from .models.stitched import StitchedModel

if TYPE_CHECKING:
    import datasets
    from huggingface_hub import CommitInfo

#: Anchors drawn when ``num_anchors`` is not given: at most this many of the train rows.
DEFAULT_NUM_ANCHORS = 2000


@dataclass
class FitResult:
    """What :func:`fit_from_encoders` produced: the bridge, both encoders and, with labels, the head, the
    stitched model and its scores on the held-out rows (with what they were measured on)."""

    bridge: LatentBridge
    source_encoder: Encoder
    target_encoder: Encoder
    head: ClassificationHead | None = None
    model: StitchedModel | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def stitch(source: Any, target: Any, data: Any, *, label_column: str, **options: Any) -> StitchedModel:
    """A stitched classifier for ``source``'s inputs with a head in ``target``'s space, scored on held-out rows.

    Example::

        model = stitch(
            "sentence-transformers/all-MiniLM-L6-v2",   # source: what users will run
            "sentence-transformers/all-mpnet-base-v2",  # target: whose space the head lives in
            "topics.jsonl", text_column="text", label_column="topic", num_anchors=1000,
        )
        model.config.metrics   # stitched and native accuracy on the held-out rows
        model.push_to_hub("you/minilm-to-mpnet-topics")

    Every option of :func:`fit_from_encoders` is accepted.
    """
    return fit_from_encoders(source, target, data, label_column=label_column, **options).model


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
    method: str = "auto",
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
) -> FitResult:
    """Fit a bridge from ``source`` to ``target`` on anchors drawn from ``data``; with labels, a head too.

    Args:
        source / target: Hub ids or local folders (with ``*_revision``, ``*_pooling`` and, for a local
            folder, ``*_id``: the Hub id of the model it holds), :class:`Encoder` s or ``SentenceTransformer`` s.
        data: a ``datasets.Dataset`` or ``DatasetDict``, a Hub data set id, or a JSONL/CSV/Parquet file.
        text_column / target_column: what each encoder embeds (``target_column`` defaults to ``text_column``;
            another column makes cross-modal pairs, e.g. captions for images).
        label_column: class labels. With them ``test_size`` of ``split`` (or ``test_split``) is held out and
            the stitched classifier is scored there; without them the bridge alone is fitted on ``split``.
        head: ``None`` trains a :class:`ClassificationHead` on the target's train embeddings (when
            ``train_head``); a ``ClassificationHead`` or a transformers classifier (model or id) is used as is.
        num_anchors / strategy: anchors among the train rows (default: up to 2000, class-balanced with
            labels, uniform without).
        bridge_options: options of :meth:`LatentBridge.fit` (ridge, whitening, output_norm, ensemble...).
    """
    # Every option is checked here, before any encoder is loaded or anything embedded.
    inspect.signature(LatentBridge.fit).bind(None, None, method, **bridge_options)  # unknown names: TypeError
    LatentBridgeConfig(method=method, **bridge_options)
    batch_size, seed = check("batch_size", batch_size), check("seed", seed)
    strategy = check("strategy", strategy or ("balanced" if label_column else "uniform"))
    if (strategy == "balanced" or head is not None) and label_column is None:
        raise BridgeInputError(
            "class-balanced anchors and heads need labels: pass label_column (--label-column)."
        )
    target_column = target_column or text_column
    encoders = (
        as_encoder(source, revision=source_revision, pooling=source_pooling, hub_id=source_id),
        as_encoder(target, revision=target_revision, pooling=target_pooling, hub_id=target_id),
    )
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
        train, labels = splits.train, splits.train_labels
    else:
        train = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(train, text_column, target_column, label_column)
        labels = None if label_column is None else list(train[label_column])
    k = check("num_anchors", min(len(train), DEFAULT_NUM_ANCHORS) if num_anchors is None else num_anchors)
    if k > len(train):
        raise BridgeInputError(
            f"{k} anchors were asked for but the train split has {len(train)} rows; use at most {len(train)}."
        )

    def embed(encoder: Encoder, rows: Any, column: str) -> torch.Tensor:
        values = column_values(rows, column)
        return embed_inputs(
            encoder, values, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress
        )

    # Only what is needed is embedded: the anchor rows, plus every train row where farthest-point
    # selection or the head needs them.
    source_train = embed(encoders[0], train, text_column) if strategy == "farthest" else None
    rows = select_anchors(strategy, k, num_rows=len(train), labels=labels, embeddings=source_train, seed=seed)
    anchors = train.select(rows.tolist())
    target_train = embed(encoders[1], train, target_column) if scored and head is None else None
    anchor_set = AnchorSet(
        dataset=_dataset_name(data),
        indices=tuple(rows.tolist()),
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
    # The head first: the default method judges candidate bridges by the decisions of the head they feed.
    head = _head(head, target_train, labels, splits.id2label, encoders[1], show_progress) if scored else None
    bridge = LatentBridge.fit(
        embed(encoders[0], anchors, text_column) if source_train is None else source_train[rows],
        embed(encoders[1], anchors, target_column) if target_train is None else target_train[rows],
        method,
        seed=seed,
        head=head,
        source_encoder=encoders[0].ref,
        target_encoder=encoders[1].ref,
        anchor_set=anchor_set,
        show_progress=show_progress,
        **bridge_options,
    )
    result = FitResult(bridge, *encoders, head=head)
    if not scored:
        return result
    test_labels = _relabel(splits.test_labels, splits.id2label, result.head)
    source_test, target_test = (
        embed(encoders[0], splits.test, text_column),
        embed(encoders[1], splits.test, target_column),
    )
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
        "num_samples": len(splits.test),
    }
    bridge.config.metrics = dict(result.metrics)
    result.model = StitchedModel.from_parts(bridge, result.head, source_encoder=encoders[0])
    result.model.config.metrics = dict(result.metrics)
    return result


def _head(
    head: Any, embeddings: Any, labels: Any, id2label: dict[int, str], target: Encoder, show_progress: bool
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
    head = head if isinstance(head, ClassificationHead) else head_from_classifier(head)
    if head.input_dim != target.dim:
        raise IncompatibleEncoderError(
            f"the head takes {head.input_dim}-dimensional embeddings but the target encoder {target.ref.name_or_path!r} "
            f"gives {target.dim}; pass the head trained on that encoder."
        )
    return head


def _relabel(labels: torch.Tensor, id2label: dict[int, str], head: ClassificationHead) -> torch.Tensor:
    """The data's class ids as the head's class ids, matched by name."""
    if head.id2label == id2label:
        return labels
    missing = sorted(set(id2label.values()) - set(head.label2id))
    if missing:
        raise BridgeInputError(
            f"the data has classes the head does not know ({', '.join(missing[:5])}); the head's classes are "
            f"{', '.join(head.id2label.values())}. Use data labelled with the head's classes."
        )
    return torch.tensor([head.label2id[id2label[i]] for i in range(len(id2label))])[labels]


def _dataset_name(data: Any) -> str:
    """A name for the anchor data that means the same on every machine (never an absolute path)."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        return path.name if path.exists() else str(data)
    if isinstance(data, dict) and data:  # a DatasetDict: its splits share one data set
        data = next(iter(data.values()))
    name = getattr(getattr(data, "info", None), "dataset_name", None)
    return name or f"datasets.Dataset (fingerprint {getattr(data, '_fingerprint', 'unknown')})"


def _file_digest(data: Any) -> dict[str, str]:
    """For a local file, the sha256 of its content, so the anchors can be traced without its path."""
    if isinstance(data, (str, os.PathLike)) and Path(data).expanduser().is_file():
        return {"file_sha256": hashlib.sha256(Path(data).expanduser().read_bytes()).hexdigest()}
    return {}


def anchor_rows(dataset: datasets.Dataset, anchor_set: AnchorSet) -> datasets.Dataset:
    """The anchor rows of ``dataset`` in anchor order, with ``anchor_index`` and ``row_index`` columns."""
    if anchor_set.indices and max(anchor_set.indices) >= len(dataset):
        raise BridgeInputError(
            f"anchor_set has row {max(anchor_set.indices)} but the data set has {len(dataset)} rows; pass the data "
            "set (and split) the anchor set was drawn from."
        )
    rows = dataset.select(list(anchor_set.indices)).add_column("row_index", list(anchor_set.indices))
    return rows.add_column("anchor_index", list(range(len(anchor_set.indices))))


def push_anchor_rows(
    dataset: datasets.Dataset,
    anchor_set: AnchorSet,
    repo_id: str,
    *,
    token: bool | str | None = None,
    private: bool | None = None,
) -> CommitInfo:
    """Publish the anchor rows as a Hub data set; the commit message carries the anchor-set fingerprint."""
    return anchor_rows(dataset, anchor_set).push_to_hub(
        repo_id,
        split=anchor_set.split or "train",
        token=token,
        private=private,
        commit_message=f"Anchor rows of {anchor_set.dataset} (anchor-set fingerprint {anchor_set.fingerprint})",
    )
