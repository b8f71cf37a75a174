"""The claims benchmark's one figure the package does not draw: every (pair, metric) panel of an anchor
curve, colour = strategy, line = method, marker = ensemble size."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _curve_series(
    points: list[Mapping[str, Any]], metric: str
) -> dict[tuple[str, ...], list[tuple[int, float]]]:
    """Points grouped by (source, target, method, strategy, ensemble), each sorted by anchor count."""
    series: dict[tuple[str, ...], list[tuple[int, float]]] = {}
    for point in points:
        if point.get(metric) is not None:
            key = (
                point["source"],
                point["target"],
                point["method"],
                str(point.get("anchor_strategy", "")),
                str(point.get("ensemble", 1)),
            )
            series.setdefault(key, []).append((point["num_anchors"], point[metric]))
    return {key: sorted(values) for key, values in series.items()}


def plot_anchor_grid(
    curve: Mapping[str, Any],
    path: str | os.PathLike,
    metrics: tuple[str, ...] = ("accuracy", "cosine", "mse", "top1_retrieval"),
    title: str | None = None,
) -> Path:
    """One panel per (pair, metric) of an :func:`anchor_curve`: colour = strategy, line = method, marker =
    ensemble size; the target dimension (IRP's exact-inverse threshold) is a dashed vertical line when
    ``curve["target_dims"]`` gives it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = list(curve["points"])
    pairs = list(dict.fromkeys((p["source"], p["target"]) for p in points))
    strategies = list(dict.fromkeys(str(p.get("anchor_strategy", "")) for p in points))
    methods = list(dict.fromkeys(p["method"] for p in points))
    ensembles = list(dict.fromkeys(str(p.get("ensemble", 1)) for p in points))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    figure, axes = plt.subplots(
        len(pairs), len(metrics), figsize=(3.4 * len(metrics), 2.8 * len(pairs)), squeeze=False,
        constrained_layout=True,
    )  # fmt: skip
    try:
        for row, (s, t) in enumerate(pairs):
            for col, metric in enumerate(metrics):
                ax = axes[row][col]
                series = _curve_series([p for p in points if (p["source"], p["target"]) == (s, t)], metric)
                for key, values in sorted(series.items()):
                    _, _, method, strategy, members = key
                    ax.plot(
                        [k for k, _ in values],
                        [v for _, v in values],
                        color=colours[strategies.index(strategy) % len(colours)],
                        linestyle=styles[methods.index(method) % len(styles)],
                        marker=markers[ensembles.index(members) % len(markers)],
                        markersize=3,
                        linewidth=1.2,
                        label=f"{method}, {strategy}"
                        + (f", ensemble {members}" if len(ensembles) > 1 else ""),
                    )
                if metric == "accuracy" and t in curve.get("native_accuracy", {}):
                    ax.axhline(curve["native_accuracy"][t], linestyle=":", linewidth=1, color="grey")
                dim = curve.get("target_dims", {}).get(t)
                if dim:
                    ax.axvline(dim, linestyle="--", linewidth=0.8, color="black", alpha=0.5)
                ax.set_xscale("log", base=2)
                if metric == "mse":
                    ax.set_yscale("log")
                ax.set_title(f"{s} → {t}: {metric}", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
                if row == len(pairs) - 1:
                    ax.set_xlabel("number of anchors", fontsize=8)
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels) or 1), fontsize=7)
        if title:
            figure.suptitle(title, fontsize=10)
        figure.savefig(path, dpi=120)
        return Path(path)
    finally:
        plt.close(figure)
