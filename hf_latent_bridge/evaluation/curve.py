"""Translation quality as the number of anchors grows: per selection strategy, method and ensemble size."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..core.anchors import select_anchors
from ..core.metrics import accuracy, cell_metrics
from ..core.options import check
from ..errors import BridgeInputError
from ..models.bridge import LatentBridge
from .matrix import (
    DEFAULT_METHODS,
    RELATIVE,
    HeadFactory,
    _check_embeddings,
    _check_methods,
    default_head_factory,
    head_predict,
)
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
    train, test, train_labels, test_labels = _check_embeddings(train, test, train_labels, test_labels)
    methods = _check_methods(methods)
    strategies = [anchor_strategy] if isinstance(anchor_strategy, str) else list(anchor_strategy)
    strategies = [check("strategy", s, "anchor_strategy") for s in strategies or [None]]
    ensembles = [check("ensemble", e, "an ensemble size") for e in ensembles or [None]]
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

    def bridge(s: str, t: str, rows: torch.Tensor, method: str, members: int) -> LatentBridge:
        with warnings.catch_warnings():  # small counts are the point of the curve
            warnings.filterwarnings("ignore", message=".*anchors for a .*-dimensional target")
            options = {"ensemble": members, "head": heads[t], **(bridge_options or {})}
            return LatentBridge.fit(train[s][rows], train[t][rows], method, seed=seed, **options)

    for k, strategy, s, t in tqdm(jobs, desc="anchor curve", leave=False, disable=show_progress is False):
        rows = select_anchors(strategy, k, num_rows=n, labels=train_labels, embeddings=train[s], seed=seed)
        for method in methods:
            if method == "identity" and train[s].shape[1] != train[t].shape[1]:
                continue
            if method == RELATIVE:
                key = (t, rows.numpy().tobytes())
                if key not in relative_heads:
                    relative_heads[key] = RelativeHead.fit(train[t][rows], train[t], train_labels)
                relative_head = relative_heads[key]
                translated = relative_head.relative(test[s], train[s][rows])
                runs = [(1, translated, relative_head.relative(test[t]), relative_head.head)]
            else:
                runs = [(m, bridge(s, t, rows, method, m)(test[s]), test[t], heads[t]) for m in ensembles]
            base = {"source": s, "target": t, "method": method, "anchor_strategy": strategy, "num_anchors": k}
            for members, translated, reference, head in runs:
                metrics = cell_metrics(translated, reference, head_predict(head, translated), test_labels)
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
