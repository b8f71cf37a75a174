"""Before migrating: what a bridge fitted on a small calibration sample is expected to keep.

The sample (a few hundred texts embedded by both encoders) is cut into folds; each fold is translated by
a bridge fitted on the others with the method chosen on the whole sample, so every figure is measured on
texts the bridge never saw. The prediction is the **retention of the target model's neighbourhoods**:
the share of each held-out text's ten nearest calibration texts in the target's space that its
translation also ranks in its top ten. Beside it, how well the two encoders agree without a bridge.
On ChatterBot questions -> answers the prediction was within 0.05 of the retention measured on the real
questions from 500 calibration texts, and optimistic by up to 0.17 at 200 (benchmarks/compatibility.py),
where ``auto`` chose an underdetermined linear map: the estimate warns when it does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..core.projection import normalize_rows
from ..core.validation import as_tensor, check_anchor_pair
from ..errors import BridgeInputError
from ..models.bridge import LatentBridge

#: Fewer calibration pairs than this leave too few neighbours and folds for a useful estimate.
MIN_CALIBRATION = 100


@dataclass(frozen=True)
class Compatibility:
    """Held-out figures of a bridge on a calibration sample (see the module docstring)."""

    calibration: int
    method: str
    retention: float  # share of the target's top-k neighbours the translations keep (the prediction)
    self_retrieval: float  # share of translations whose nearest target vector is their own counterpart
    cosine: float  # mean cosine of a translation to its counterpart
    native_agreement: float  # the same neighbour overlap between the two encoders, without a bridge
    k: int = 10
    bridge: LatentBridge | None = field(default=None, repr=False, compare=False)  # fitted on the whole sample

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "bridge"}

    def summary(self) -> str:
        return (
            f"{self.method} bridge, {self.calibration} calibration texts (held-out folds): keeps "
            f"{self.retention:.1%} of the target model's top-{self.k} neighbours (the encoders agree on "
            f"{self.native_agreement:.1%} unbridged); its own counterpart is nearest for {self.self_retrieval:.1%}, "
            f"mean cosine {self.cosine:.3f}."
        )

    def check(self, min_retention: float | None) -> None:
        """The quality gate: refuse a bridge predicted to keep less than ``min_retention``."""
        if min_retention is not None and self.retention < min_retention:
            raise BridgeInputError(
                f"the bridge is predicted to keep {self.retention:.1%} of the target's neighbours, below the "
                f"{min_retention:.1%} you set: keep the old model or re-index; use more calibration texts, or "
                "lower the threshold to publish it anyway."
            )


def estimate_compatibility(
    source: Any,
    target: Any,
    *,
    method: str = "auto",
    folds: int = 5,
    k: int = 10,
    seed: int = 0,
    **fit_options: Any,
) -> Compatibility:
    """Fit on all but one fold of the parallel calibration embeddings ``source`` (n, d_source) and
    ``target`` (n, d_target), translate that fold, and score the held-out translations. The bridge
    fitted on the whole sample (``blend=False``, with ``fit_options`` such as ``source_encoder=``) is
    ``.bridge``: the one the estimate describes."""
    x, y = as_tensor(source, "source calibration"), as_tensor(target, "target calibration")
    check_anchor_pair(x, y)
    if len(x) < max(MIN_CALIBRATION, folds * (k + 1)):
        raise BridgeInputError(
            f"{len(x)} calibration pairs are too few to estimate a migration; embed at least "
            f"{max(MIN_CALIBRATION, folds * (k + 1))} texts (a few hundred is better) with both encoders."
        )
    whole = LatentBridge.fit(x, y, method, blend=False, seed=seed, **fit_options)
    chosen, x, y = whole.config, x.double(), y.double()
    options: dict[str, Any] = {"method": chosen.method_selected or chosen.method}
    if options["method"] == "linear" and len(x) <= x.shape[1]:
        warnings.warn(
            f"a linear least-squares bridge from {len(x)} calibration pairs, no more than the source's "
            f"{x.shape[1]} dimensions, fits them exactly and carries worse to other texts, so this estimate is "
            f"optimistic (by up to 0.17 at 200 texts in benchmarks/compatibility.py); embed more than "
            f"{x.shape[1]} texts, or pass method='procrustes'.",
            UserWarning,
            stacklevel=2,
        )
    if options["method"] == "irp":
        options["whitening"] = chosen.whitening_selected
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    translated = torch.empty_like(y)
    for held_out in order.tensor_split(folds):
        rest = torch.ones(len(x), dtype=torch.bool)
        rest[held_out] = False
        bridge = LatentBridge.fit(x[rest], y[rest], blend=False, seed=seed, **options)
        translated[held_out] = bridge.translate(x[held_out])
    y_unit = normalize_rows(y)
    scores = normalize_rows(translated) @ y_unit.T
    own = scores.diagonal()
    return Compatibility(
        calibration=len(x),
        method=options["method"],
        retention=_overlap(scores, y_unit @ y_unit.T, k),
        self_retrieval=float((scores.argmax(dim=1) == torch.arange(len(x))).double().mean()),
        cosine=float(own.mean()),
        native_agreement=_overlap(normalize_rows(x) @ normalize_rows(x).T, y_unit @ y_unit.T, k),
        k=k,
        bridge=whole,
    )


def _overlap(scores: torch.Tensor, reference: torch.Tensor, k: int) -> float:
    """Mean share of each row's top-k under ``reference`` also in its top-k under ``scores``; a row's
    own column is excluded from both."""
    eye = torch.eye(len(scores), dtype=torch.bool)
    top = scores.masked_fill(eye, -torch.inf).topk(k, dim=1).indices
    want = reference.masked_fill(eye, -torch.inf).topk(k, dim=1).indices
    hits = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, want, True).gather(1, top)
    return float(hits.double().mean())
