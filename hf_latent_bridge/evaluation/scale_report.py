"""Reporting scale-invariance checks of a head (:func:`hf_latent_bridge.core.scale_invariance.check_head`,
one report per centre): markdown tables, JSON and a figure."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.scale_invariance import ScaleInvarianceReport
from ..files import write_text


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def scale_table(report: ScaleInvarianceReport) -> str:
    """One markdown row per trial: factors, agreement, accuracy, margin ratios, pass or fail."""
    lines = [
        "| rescaling | factors (5-95%) | predictions unchanged | accuracy | margin ratio | ratio / factor | "
        "in working range | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in report.trials:
        span = (
            f"{t.factor_low:.3g}"
            if t.factor_low == t.factor_high
            else f"{t.factor_low:.3g}-{t.factor_high:.3g}"
        )
        lines.append(
            f"| {t.name} | {span} | {_fmt(t.agreement)} | {_fmt(t.accuracy)} | {t.margin_ratio:.3g} | "
            f"{t.homogeneity:.3g} | {'yes' if t.in_working_range else 'no'} | {'yes' if t.passed else '**no**'} |"
        )
    return "\n".join(lines)


def scale_markdown(reports: Mapping[str, ScaleInvarianceReport], title: str = "Scale invariance") -> str:
    """A section per centre: the verdict, the unscaled accuracy, then :func:`scale_table`."""
    parts = [f"## {title}", ""]
    for centre, report in reports.items():
        parts += [
            f"### About the {centre}",
            "",
            f"**Verdict:** {report.verdict}.",
            "",
            f"{report.num_samples} rows, {report.num_classes} classes, unscaled accuracy "
            f"{_fmt(report.accuracy)}; a rescaling passes when at least {report.agreement_threshold:.0%} of "
            f"the predictions are unchanged and accuracy drops by at most {report.accuracy_tolerance:g}; "
            f"scale-invariant = every rescaling within {report.working_range[0]:g}-{report.working_range[1]:g}x "
            "passes; safe for IRP = setting every norm to the mean norm passes.",
            "",
            scale_table(report),
            "",
        ]
    return "\n".join(parts)


def write_scale_reports(
    reports: Mapping[str, ScaleInvarianceReport],
    folder: str | os.PathLike,
    *,
    title: str = "Scale invariance",
    plot: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``scale_invariance.json``, ``.md`` and (optionally) ``.png`` (one line per centre)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "scale_invariance.json", "markdown": folder / "scale_invariance.md"}
    payload = {"reports": {c: r.to_dict() for c, r in reports.items()}, **dict(extra or {})}
    write_text(paths["json"], json.dumps(payload, indent=2) + "\n")
    write_text(paths["markdown"], scale_markdown(reports, title))
    if plot:
        from .plots import plot_scale_invariance

        curves = {f"about the {c}": r.to_dict() for c, r in reports.items()}
        paths["plot"] = plot_scale_invariance(curves, folder / "scale_invariance.png")
    return paths
