"""Stitched accuracy as the number of anchors grows."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.anchors import choose_anchor_rows
from ..core.metrics import _unit64, accuracy
from ..errors import BridgeInputError
from ..models.bridge import LatentBridge
from .heads import HeadFactory, default_head_factory, head_predict
from .matrix import DEFAULT_METHODS, _check_embeddings


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


def default_anchor_counts(num_train: int) -> list[int]:
    """A geometric ladder of anchor counts up to the train size."""
    counts = [c for c in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192) if c < num_train]
    return [*counts, num_train] if num_train >= 2 else []
