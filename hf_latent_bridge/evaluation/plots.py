"""Figures of evaluations: stitching heatmaps, anchor curves and scale checks, as PNG files.

matplotlib is imported inside the functions (an optional dependency); figures are drawn with its object
API (``matplotlib.figure.Figure``), so no pyplot state or backend of the process changes, and written
through a temporary sibling renamed into place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..files import staged_file


def _figure(**options: Any) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, which is not installed; install it with "
            "pip install 'hf-latent-bridge[demo]' (or pip install matplotlib)."
        ) from error
    return Figure(**options)


def _save(figure: Any, path: str | os.PathLike) -> Path:
    with staged_file(path, overwrite=True) as staging:
        figure.savefig(staging, dpi=120, bbox_inches="tight", format="png")
    return Path(path)


def plot_stitching_heatmap(
    matrix: Mapping[str, Any], path: str | os.PathLike, metric: str = "accuracy"
) -> Path:
    """One N x N heatmap per method (rows: source, columns: target); the diagonal shows native scores.

    ``matrix`` is :meth:`StitchingMatrix.to_dict` output. Cells without a value (e.g. ``identity``
    between spaces of different dimension) are left blank and marked ``n/a``.
    """
    import numpy as np

    names, methods = list(matrix["encoders"]), list(matrix["methods"])
    n = len(names)
    lookup = {(c["source"], c["target"], c["method"]): c.get(metric) for c in matrix["cells"]}
    size = max(3.0, 0.9 * n + 1.6)
    figure = _figure(figsize=(size * len(methods) + 1.0, size), layout="constrained")
    for k, method in enumerate(methods):
        ax = figure.add_subplot(1, len(methods), k + 1)
        values = np.array(
            [[lookup.get((s, t, "native" if s == t else method)) for t in names] for s in names], dtype=float
        )  # None -> nan
        image = ax.imshow(values, vmin=0.0, vmax=1.0 if metric != "mse" else None, cmap="viridis")
        for (i, j), value in np.ndenumerate(values):
            light = bool(np.isnan(value)) or value > 0.6  # n/a cells are blank
            text = "n/a" if np.isnan(value) else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if light else "white")
        ax.set_xticks(range(n), names, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set_xlabel("target (head)")
        if k == 0:
            ax.set_ylabel("source")
        ax.set_title(f"{method}: {metric}\n(diagonal: native)", fontsize=9)
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _save(figure, path)


def plot_anchor_curve(curve: Mapping[str, Any], path: str | os.PathLike, metric: str = "accuracy") -> Path:
    """Stitched ``metric`` versus number of anchors, one line per series, log-scaled x axis.

    ``curve`` is :func:`hf_latent_bridge.evaluation.anchor_curve` output; a series is a (pair, method,
    strategy, ensemble) and its label names what varies. Native target accuracies are dotted lines.
    """
    series: dict[tuple[str, ...], list[tuple[int, float]]] = {}
    for p in curve["points"]:
        if p.get(metric) is not None:
            key = (
                p["source"],
                p["target"],
                p["method"],
                str(p.get("anchor_strategy", "")),
                str(p.get("ensemble", 1)),
            )
            series.setdefault(key, []).append((p["num_anchors"], p[metric]))
    keys = sorted(series)
    # always the pair and method, and whatever else varies (strategy, ensemble size)
    varies = [i for i in (2, 3, 4) if i == 2 or len({k[i] for k in keys}) > 1]
    figure = _figure(figsize=(6.4, 4.2))
    ax = figure.add_subplot()
    for key in keys:
        parts = [f"{key[0]} → {key[1]}"] + [("ensemble " if i == 4 else "") + key[i] for i in varies]
        values = sorted(series[key])
        ax.plot([k for k, _ in values], [v for _, v in values], marker="o", label=", ".join(parts))
    if metric == "accuracy":
        for target, value in curve.get("native_accuracy", {}).items():
            ax.axhline(value, linestyle=":", linewidth=1, color="grey")
            ax.annotate(f"native {target}", (1.0, value), xycoords=("axes fraction", "data"), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="number of anchors", ylabel=f"stitched {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(figure, path)


def plot_scale_invariance(reports: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Agreement with the unscaled predictions, and the margin ratio, against the scale factor.

    ``reports`` maps a head's name to :meth:`ScaleInvarianceReport.to_dict` output; only the fixed
    factors are drawn (a dotted line marks the agreement threshold, the shaded band the working range).
    """
    from matplotlib import colormaps

    figure = _figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    colours = colormaps["tab10" if len(reports) <= 10 else "tab20"].colors
    for i, (name, report) in enumerate(reports.items()):
        trials = [t for t in report["trials"] if t["kind"] == "factor"]
        factors = [t["factor"] for t in trials]
        style = {"marker": "o", "markersize": 3, "label": name, "color": colours[i % len(colours)]}
        style["linestyle"] = ("-", "--")[(i // len(colours)) % 2]
        left.plot(factors, [t["agreement"] for t in trials], **style)
        right.plot(factors, [t["margin_ratio"] for t in trials], **style)
    first = next(iter(reports.values()), None)
    if first is not None:
        for ax in (left, right):
            ax.axvspan(*first["working_range"], color="grey", alpha=0.12, linewidth=0)
        left.axhline(first["agreement_threshold"], linestyle=":", color="black", linewidth=1)
        factors = sorted(
            {t["factor"] for r in reports.values() for t in r["trials"] if t["kind"] == "factor"}
        )
        right.plot(
            factors, factors, linestyle="--", color="black", linewidth=1, label="homogeneous (= factor)"
        )
    for ax in (left, right):
        ax.set(xscale="log", xlabel="scale factor about the centre")
        ax.grid(alpha=0.3)
    left.set(ylabel="predictions unchanged", ylim=(0, 1.02))
    right.set(ylabel="median margin ratio (scaled / unscaled)")
    right.set_yscale("symlog", linthresh=0.1)
    handles, labels = left.get_legend_handles_labels()
    diagonal = right.get_legend_handles_labels()  # the heads again, then the "homogeneous" line
    handles, labels = handles + diagonal[0][len(reports) :], labels + diagonal[1][len(reports) :]
    figure.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels) or 1), fontsize=7)
    return _save(figure, path)
