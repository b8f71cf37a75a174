"""Figures of evaluations: stitching heatmaps, anchor curves and scale checks (matplotlib, Agg).

matplotlib is imported inside the functions (it is an optional dependency, and importing this module
costs nothing); files are written through a temporary sibling and renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, which is not installed; install it with "
            "pip install 'hf-latent-bridge[demo]' (or pip install matplotlib)."
        ) from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png.tmp")
    os.close(handle)
    try:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def plot_stitching_heatmap(
    matrix: Mapping[str, Any], path: str | os.PathLike, metric: str = "accuracy"
) -> Path:
    """One N x N heatmap per method (rows: source, columns: target); the diagonal shows native scores.

    ``matrix`` is :meth:`StitchingMatrix.to_dict` output. Cells without a value (e.g. ``identity``
    between spaces of different dimension) are left blank and marked ``n/a``.
    """
    plt = _pyplot()
    import numpy as np

    names = list(matrix["encoders"])
    methods = list(matrix["methods"])
    n = len(names)
    lookup = {(c["source"], c["target"], c["method"]): c.get(metric) for c in matrix["cells"]}
    size = max(3.0, 0.9 * n + 1.6)
    figure, axes = plt.subplots(
        1, len(methods), figsize=(size * len(methods) + 1.0, size), squeeze=False, constrained_layout=True
    )
    try:
        for ax, method in zip(axes[0], methods, strict=True):
            values = np.full((n, n), np.nan)
            for i, s in enumerate(names):
                for j, t in enumerate(names):
                    value = lookup.get((s, t, "native" if s == t else method))
                    if value is not None:
                        values[i, j] = value
            image = ax.imshow(values, vmin=0.0, vmax=1.0 if metric != "mse" else None, cmap="viridis")
            for i in range(n):
                for j in range(n):
                    text = "n/a" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
                    light_cell = bool(np.isnan(values[i, j])) or values[i, j] > 0.6  # n/a cells are blank
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="black" if light_cell else "white",
                    )
            ax.set_xticks(range(n), names, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(n), names, fontsize=8)
            ax.set_xlabel("target (head)")
            if ax is axes[0][0]:
                ax.set_ylabel("source")
            ax.set_title(f"{method}: {metric}\n(diagonal: native)", fontsize=9)
            figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        return _save(figure, path)
    finally:
        plt.close(figure)


def _curve_series(
    points: list[Mapping[str, Any]], metric: str
) -> dict[tuple[str, ...], list[tuple[int, float]]]:
    """Points grouped by (source, target, method, strategy, ensemble), each sorted by anchor count."""
    series: dict[tuple[str, ...], list[tuple[int, float]]] = {}
    for point in points:
        if point.get(metric) is None:
            continue
        key = (
            point["source"],
            point["target"],
            point["method"],
            str(point.get("anchor_strategy", "")),
            str(point.get("ensemble", 1)),
        )
        series.setdefault(key, []).append((point["num_anchors"], point[metric]))
    for values in series.values():
        values.sort()
    return series


def _series_label(key: tuple[str, ...], shown: set[int]) -> str:
    """``source → target, method[, strategy][, ensemble k]``: the parts of ``key`` in ``shown``."""
    parts = [f"{key[0]} → {key[1]}"] if shown & {0, 1} else []
    parts += [("ensemble " if i == 4 else "") + key[i] for i in sorted(shown) if i >= 2]
    return ", ".join(parts)


def plot_anchor_curve(curve: Mapping[str, Any], path: str | os.PathLike, metric: str = "accuracy") -> Path:
    """Stitched ``metric`` versus number of anchors, one line per series, log-scaled x axis.

    ``curve`` is :func:`hf_latent_bridge.evaluation.anchor_curve` output; a series is a (pair, method,
    strategy, ensemble) and its label names what varies. Native target accuracies are dotted lines.
    """
    plt = _pyplot()
    series = _curve_series(list(curve["points"]), metric)
    keys = sorted(series)
    shown = {0, 2} | {i for i in range(5) if len({k[i] for k in keys}) > 1}
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    try:
        for key in keys:
            values = series[key]
            label = _series_label(key, shown)
            ax.plot([k for k, _ in values], [v for _, v in values], marker="o", label=label)
        if metric == "accuracy":
            for target, value in curve.get("native_accuracy", {}).items():
                ax.axhline(value, linestyle=":", linewidth=1, color="grey")
                ax.annotate(f"native {target}", (1.0, value), xycoords=("axes fraction", "data"), fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of anchors")
        ax.set_ylabel(f"stitched {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return _save(figure, path)
    finally:
        plt.close(figure)


def plot_anchor_grid(
    curve: Mapping[str, Any],
    path: str | os.PathLike,
    metrics: tuple[str, ...] = ("accuracy", "cosine", "mse", "top1_retrieval"),
    title: str | None = None,
) -> Path:
    """One panel per (pair, metric) of an :func:`anchor_curve`: colour = strategy, line = method, marker =
    ensemble size; the target dimension (IRP's exact-inverse threshold) is a dashed vertical line when
    ``curve["target_dims"]`` gives it."""
    plt = _pyplot()
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
        return _save(figure, path)
    finally:
        plt.close(figure)


def plot_scale_invariance(reports: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Agreement with the unscaled predictions, and the margin ratio, against the scale factor.

    ``reports`` maps a head's name to :meth:`ScaleInvarianceReport.to_dict` output; only the fixed
    factors are drawn (a dotted line marks the agreement threshold, the shaded band the working range).
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    try:
        colours = plt.get_cmap("tab10" if len(reports) <= 10 else "tab20").colors
        for i, (name, report) in enumerate(reports.items()):
            trials = [t for t in report["trials"] if t["kind"] == "factor"]
            factors = [t["factor"] for t in trials]
            style = {"marker": "o", "markersize": 3, "label": name, "color": colours[i % len(colours)]}
            style["linestyle"] = ("-", "--")[(i // len(colours)) % 2]
            left.plot(factors, [t["agreement"] for t in trials], **style)
            right.plot(factors, [t["margin_ratio"] for t in trials], **style)
        first = next(iter(reports.values()), None)
        if first is not None:
            low, high = first["working_range"]
            for ax in (left, right):
                ax.axvspan(low, high, color="grey", alpha=0.12, linewidth=0)
            left.axhline(first["agreement_threshold"], linestyle=":", color="black", linewidth=1)
            factors = sorted(
                {t["factor"] for r in reports.values() for t in r["trials"] if t["kind"] == "factor"}
            )
            right.plot(
                factors, factors, linestyle="--", color="black", linewidth=1, label="homogeneous (= factor)"
            )
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_xlabel("scale factor about the centre")
            ax.grid(alpha=0.3)
        right.set_yscale("symlog", linthresh=0.1)
        left.set_ylabel("predictions unchanged")
        left.set_ylim(0, 1.02)
        right.set_ylabel("median margin ratio (scaled / unscaled)")
        handles, labels = left.get_legend_handles_labels()
        extra_handles, extra_labels = right.get_legend_handles_labels()
        handles, labels = handles + extra_handles[len(reports) :], labels + extra_labels[len(reports) :]
        figure.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels) or 1), fontsize=7)
        return _save(figure, path)
    finally:
        plt.close(figure)
