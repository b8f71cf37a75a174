"""Translation quality as the number of anchors grows: per selection strategy, method and ensemble size."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.anchors import STRATEGIES, choose_anchor_rows
from ..core.metrics import accuracy, cell_metrics
from ..errors import BridgeInputError
from ..models.bridge import LatentBridge
from .heads import HeadFactory, default_head_factory, head_predict
from .matrix import DEFAULT_METHODS, MATRIX_METHODS, RELATIVE, _check_embeddings
from .relative import RelativeHead

#: Anchor counts by pair: ``counts(target_dim, num_train)``.
CountLadder = Callable[[int, int], Sequence[int]]


def anchor_curve(
    train: Mapping[str, torch.Tensor],
    test: Mapping[str, torch.Tensor],
    train_labels: Any,
    test_labels: Any,
    *,
    pairs: Sequence[tuple[str, str]],
    anchor_counts: Sequence[int] | CountLadder,
    methods: Sequence[str] = DEFAULT_METHODS,
    anchor_strategy: str | Sequence[str] = "balanced",
    ensembles: Sequence[int] = (1,),
    seed: int = 0,
    id2label: Mapping[int, str] | None = None,
    head_factory: HeadFactory | None = None,
    bridge_options: Mapping[str, Any] | None = None,
    heads: Mapping[str, Any] | None = None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Translation quality versus number of anchors for chosen (source, target) pairs and methods.

    For every count, strategy and pair, anchors are chosen among the train rows (``farthest`` in the
    source's space, with ``seed``) and shared by every method and ensemble size. Each point records the
    stitched accuracy and macro-F1 of the target head on the translated test rows, and the translation's
    cosine, MSE and top-1 retrieval against the true target test embeddings (for ``"relative"``, the
    baseline of :class:`RelativeHead`, those compare relative representations and ``ensemble`` is 1).

    Args:
        anchor_counts: the counts, or a function ``(target_dim, num_train) -> counts`` such as
            :func:`dimension_anchor_counts` (counts then follow each pair's target). Counts outside
            ``2..num_train`` are skipped.
        anchor_strategy: one strategy or several (see :data:`~hf_latent_bridge.core.anchors.STRATEGIES`).
        ensembles: ensemble sizes for the bridges (``LatentBridge.fit(ensemble=...)``).
        heads: target heads to reuse (e.g. ``StitchingMatrix.heads``); the others are trained once on
            the full train split with ``head_factory``.
    """
    _check_embeddings(train, test, torch.as_tensor(train_labels), torch.as_tensor(test_labels))
    train_labels = torch.as_tensor(np.asarray(train_labels)).long()
    test_labels = torch.as_tensor(np.asarray(test_labels)).long()
    strategies = [anchor_strategy] if isinstance(anchor_strategy, str) else list(anchor_strategy)
    ensembles = [int(e) for e in ensembles]
    unknown = [m for m in methods if m not in MATRIX_METHODS]
    if unknown or not methods:
        raise BridgeInputError(
            f"unknown method(s) {unknown or methods}; choose from {', '.join(MATRIX_METHODS)}."
        )
    if not strategies or any(s not in STRATEGIES for s in strategies):
        raise BridgeInputError(
            f"unknown anchor strategy in {strategies}; choose from {', '.join(STRATEGIES)}."
        )
    if not ensembles or min(ensembles) < 1:
        raise BridgeInputError(f"ensemble sizes must be integers >= 1, got {ensembles}.")
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
    n = len(train_labels)
    jobs = [
        (k, strategy, s, t)
        for s, t in pairs
        for strategy in strategies
        for k in _counts(anchor_counts, int(train[t].shape[1]), n)
    ]
    points = []
    relative_heads: dict[tuple[str, bytes], RelativeHead] = {}  # by target and anchor rows
    for k, strategy, s, t in tqdm(jobs, desc="anchor curve", leave=False, disable=show_progress is False):
        rows = choose_anchor_rows(n, k, strategy, labels=train_labels, embeddings=train[s], seed=seed)
        for method in methods:
            if method == "identity" and train[s].shape[1] != train[t].shape[1]:
                continue
            base = {"source": s, "target": t, "method": method, "anchor_strategy": strategy, "num_anchors": k}
            if method == RELATIVE:
                key = (t, rows.numpy().tobytes())
                if key not in relative_heads:
                    relative_heads[key] = RelativeHead.fit(train[t][rows], train[t], train_labels)
                head = relative_heads[key]
                translated = head.relative(test[s], train[s][rows])
                reference = head.relative(test[t])
                metrics = cell_metrics(
                    translated, reference, head_predict(head.head, translated), test_labels
                )
                points.append({**base, "ensemble": 1, **metrics})
                continue
            for members in ensembles:
                with warnings.catch_warnings():  # small counts are the point of the curve
                    warnings.filterwarnings("ignore", message=".*anchors for a .*-dimensional target")
                    bridge = LatentBridge.fit(
                        train[s][rows],
                        train[t][rows],
                        method,
                        seed=seed,
                        **{"ensemble": members, **(bridge_options or {})},
                    )
                translated = bridge(test[s])
                metrics = cell_metrics(translated, test[t], head_predict(heads[t], translated), test_labels)
                points.append({**base, "ensemble": members, **metrics})
    native = {t: accuracy(head_predict(h, test[t]), test_labels) for t, h in heads.items()}
    return {
        "anchor_strategy": strategies[0] if len(strategies) == 1 else strategies,
        "ensembles": ensembles,
        "seed": seed,
        "native_accuracy": native,
        "points": points,
    }


def _counts(anchor_counts: Sequence[int] | CountLadder, target_dim: int, num_train: int) -> list[int]:
    counts = anchor_counts(target_dim, num_train) if callable(anchor_counts) else anchor_counts
    return sorted({int(k) for k in counts if 2 <= int(k) <= num_train})


def default_anchor_counts(num_train: int) -> list[int]:
    """A geometric ladder of anchor counts up to the train size."""
    counts = [c for c in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192) if c < num_train]
    return [*counts, num_train] if num_train >= 2 else []


def dimension_anchor_counts(target_dim: int, num_train: int) -> list[int]:
    """Counts from a quarter of the target dimension, doubling, up to all train rows.

    IRP needs ``k >= d + 1`` anchors for an exact inverse (``d`` = target dimension); the ladder shows
    how quality behaves below and above that point.
    """
    counts, k = [], max(2, target_dim // 4)
    while k < num_train:
        counts.append(k)
        k *= 2
    return [*counts, num_train] if num_train >= 2 else []
