"""Figures of evaluations: stitching heatmaps and accuracy-versus-anchors curves (matplotlib, Agg).

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


def plot_anchor_curve(curve: Mapping[str, Any], path: str | os.PathLike, metric: str = "accuracy") -> Path:
    """Stitched ``metric`` versus number of anchors, one line per (pair, method), log-scaled x axis.

    ``curve`` is :func:`hf_latent_bridge.evaluation.anchor_curve` output; native target accuracies are
    drawn as dotted horizontal lines.
    """
    plt = _pyplot()
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for point in curve["points"]:
        key = (point["source"], point["target"], point["method"])
        series.setdefault(key, []).append((point["num_anchors"], point[metric]))
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    try:
        for (s, t, method), values in sorted(series.items()):
            values.sort()
            ax.plot([k for k, _ in values], [v for _, v in values], marker="o", label=f"{s} → {t} ({method})")
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
