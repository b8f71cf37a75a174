"""Is a classifier head scale-invariant? Rescale its inputs and see whether its decisions move.

IRP discards every norm in the relative step and restores one scalar: its outputs are
``centre + output_norm * normalize(y)`` with ``centre`` the mean of the target anchors (see
:mod:`.alignment`). That is harmless only if the head's decision depends on the *direction* of
``y - centre`` and not on its length, the assumption of Maiorca et al. (2024). This module measures it:
embeddings are rescaled about a centre, ``x' = c + a (x - c)``, by fixed factors ``a``, by per-sample
random factors, and by the per-sample factors that set every norm to one value (what IRP does), and each
trial reports how many predictions stay the same, the accuracy and how the logit margins change.

The centre matters: scaling raw embeddings (``centre="origin"``) tests a different property from scaling
about the data mean (``centre="mean"``, what IRP's restore step does). A linear head
``W x + b`` is exactly invariant about ``c`` when its logits at ``c`` are equal for every class; a bias
that does not cancel ``W c`` makes small factors collapse to the class of ``c``.

Pure tensors in, numbers out; the head is any callable on ``(n, d)`` embeddings returning ``(n, classes)``
scores, or an object with ``logits`` (e.g. :class:`~hf_latent_bridge.ClassificationHead`),
``decision_function`` or ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError
from .validation import as_class_ids, as_tensor, check_matrix

#: Fixed factors of the full sweep (log-spaced, 0.1 to 10).
DEFAULT_FACTORS = (0.1, 0.2, 0.5, 0.8, 1.25, 2.0, 5.0, 10.0)

#: Per-sample factors drawn log-uniformly from these ranges.
RANDOM_RANGES = ((0.5, 2.0), (0.1, 10.0))

#: The factors the verdict is decided on. IRP rescales each sample by ``mean norm / its norm``; on the
#: encoders measured here (MiniLM, mpnet, EfficientNet-Lite0/1, ChatterBot and Fashion-MNIST) the 1st to
#: 99th percentiles of that factor lie within 0.77-1.36, so 0.5-2 covers it with a margin of 1.5x.
WORKING_RANGE = (0.5, 2.0)

#: A trial passes when at least this share of predictions is unchanged...
AGREEMENT_THRESHOLD = 0.99

#: ... and the accuracy (when labels are given) drops by at most this much. One point is the precision at
#: which the benchmarks compare translation methods, so a smaller effect would not change a conclusion.
ACCURACY_TOLERANCE = 0.01

Head = Any  # a callable on embeddings, or an object with logits / decision_function / predict_proba


@dataclass(frozen=True)
class ScaleTrial:
    """One rescaling and what it did to the head's decisions.

    ``kind`` is ``"factor"`` (every row times ``factor``), ``"random"`` (per-row factors log-uniform in
    ``[low, high]``) or ``"equalize"`` (every centred norm set to ``norm``: IRP's restore step).
    ``margin_ratio`` is the median over rows of (scaled margin / unscaled margin), the margin being the
    unscaled prediction's logit minus the best other logit (negative once the decision flips);
    ``homogeneity`` divides each row's ratio by its factor first (1 for a head that is positively
    homogeneous about the centre). ``factor_low`` / ``factor_high`` are the 5th and 95th percentiles of
    the per-row factors.
    """

    name: str
    kind: str
    agreement: float
    accuracy: float | None
    margin_ratio: float
    homogeneity: float
    factor_low: float
    factor_high: float
    factor: float | None = None
    norm: float | None = None
    in_working_range: bool = True
    passed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScaleInvarianceReport:
    """Every trial of :func:`check_head` and the verdict drawn from them."""

    centre: str
    num_samples: int
    num_classes: int
    accuracy: float | None
    trials: list[ScaleTrial]
    agreement_threshold: float = AGREEMENT_THRESHOLD
    accuracy_tolerance: float = ACCURACY_TOLERANCE
    working_range: tuple[float, float] = WORKING_RANGE
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def invariant(self) -> bool | None:
        """The paper's assumption: every rescaling within the working range left the decisions alone
        (None: no rescaling tried)."""
        scaled = [t for t in self.trials if t.kind != "equalize"]
        return all(t.passed for t in scaled if t.in_working_range) if scaled else None

    @property
    def fully_invariant(self) -> bool | None:
        """Every rescaling passed, the extreme factors included (None: no rescaling tried)."""
        scaled = [t for t in self.trials if t.kind != "equalize"]
        return all(t.passed for t in scaled) if scaled else None

    @property
    def irp_safe(self) -> bool | None:
        """What IRP needs: setting every norm to one value left the decisions alone (None: not tried)."""
        equalized = [t for t in self.trials if t.kind == "equalize"]
        return all(t.passed for t in equalized) if equalized else None

    @property
    def worst(self) -> ScaleTrial:
        """The rescaling with the lowest agreement (within the working range first)."""
        scaled = [t for t in self.trials if t.kind != "equalize"] or self.trials
        return min(scaled, key=lambda t: (not t.in_working_range, t.agreement))

    @property
    def verdict(self) -> str:
        """One sentence: scale-invariant or not (and over which range), and whether IRP may rescale."""
        low, high = self.working_range
        scaled = [t for t in self.trials if t.kind != "equalize"]
        if not scaled:
            strict = ""
        elif self.fully_invariant:
            span = f"{min(t.factor_low for t in scaled):g}-{max(t.factor_high for t in scaled):g}x"
            strict = f"scale-invariant about the {self.centre} over {span}"
        elif self.invariant:
            failed = ", ".join(t.name for t in scaled if not t.passed)
            strict = f"scale-invariant about the {self.centre} within {low:g}-{high:g}x, not beyond ({failed} failed)"
        else:
            worst = self.worst
            strict = f"NOT scale-invariant about the {self.centre}: {worst.name} changes {_change(worst, self.accuracy)}"
        equalized = [t for t in self.trials if t.kind == "equalize"]
        if not equalized:
            return strict
        t = equalized[0]
        irp = (
            f"setting every norm to {t.norm:.3g} (IRP's restore step) changes {_change(t, self.accuracy)}: "
            + ("safe for IRP" if t.passed else "NOT safe for IRP")
        )
        return f"{strict}; {irp}" if strict else irp

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre": self.centre,
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            "accuracy": self.accuracy,
            "invariant": self.invariant,
            "fully_invariant": self.fully_invariant,
            "irp_safe": self.irp_safe,
            "verdict": self.verdict,
            "agreement_threshold": self.agreement_threshold,
            "accuracy_tolerance": self.accuracy_tolerance,
            "working_range": list(self.working_range),
            "trials": [t.to_dict() for t in self.trials],
            **({"extra": self.extra} if self.extra else {}),
        }


def _change(trial: ScaleTrial, accuracy: float | None) -> str:
    text = f"{100 * (1 - trial.agreement):.1f}% of the predictions"
    if trial.accuracy is not None and accuracy is not None:
        text += f" (accuracy {accuracy:.3f} -> {trial.accuracy:.3f})"
    return text


def head_scores(head: Head, embeddings: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``(n, classes)`` float64 scores of ``head`` on ``embeddings``, in batches, without gradients."""
    if hasattr(head, "logits") and callable(head.logits):
        score: Callable[[torch.Tensor], Any] = head.logits
    elif hasattr(head, "decision_function"):
        score = head.decision_function
    elif hasattr(head, "predict_proba"):
        score = lambda x: np.log(np.clip(np.asarray(head.predict_proba(x)), 1e-300, None))  # noqa: E731
    elif callable(head):
        score = head
    else:
        raise BridgeInputError(
            f"the head must be callable on embeddings or have logits/predict_proba, got {type(head).__name__}."
        )
    parts = []
    with torch.inference_mode():
        for start in range(0, embeddings.shape[0], batch_size):
            out = score(embeddings[start : start + batch_size])
            out = getattr(out, "logits", out)  # transformers-style outputs
            parts.append(torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out))
    scores = torch.cat(parts).detach().cpu().to(torch.float64)
    if scores.ndim != 2 or scores.shape[0] != embeddings.shape[0] or scores.shape[1] < 2:
        raise BridgeInputError(
            f"the head returned scores of shape {tuple(scores.shape)} for {embeddings.shape[0]} rows; it must "
            "return (n, num_classes) logits with at least 2 classes."
        )
    return scores


def _margins(scores: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Score of ``classes`` minus the best other score, per row."""
    chosen = scores.gather(1, classes[:, None]).squeeze(1)
    others = scores.scatter(1, classes[:, None], float("-inf"))
    return chosen - others.max(1).values


def _resolve_centre(centre: torch.Tensor | str | None, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    if centre is None or (isinstance(centre, str) and centre == "origin"):
        return torch.zeros(x.shape[1], dtype=torch.float64), "origin"
    if isinstance(centre, str):
        if centre != "mean":
            raise BridgeInputError(f"centre must be 'mean', 'origin' or a (d,) tensor, got {centre!r}.")
        return x.mean(0), "mean"
    c = as_tensor(centre, "centre").to(torch.float64).flatten()
    if c.numel() != x.shape[1]:
        raise BridgeInputError(
            f"centre has {c.numel()} values but the embeddings have {x.shape[1]} dimensions."
        )
    return c, "given centre"


def _check_factors(factors: Sequence[float], ranges: Sequence[tuple[float, float]]) -> None:
    for a in factors:
        if not (isinstance(a, (int, float)) and np.isfinite(a) and a > 0):
            raise BridgeInputError(f"scale factors must be finite numbers > 0, got {a!r}.")
    for pair in ranges:
        low, high = pair
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise BridgeInputError(
                f"random factor ranges must be (low, high) with 0 < low < high, got {pair!r}."
            )


def check_head(
    head: Head,
    embeddings: Any,
    labels: Any = None,
    *,
    centre: torch.Tensor | str | None = "mean",
    factors: Sequence[float] = DEFAULT_FACTORS,
    random_ranges: Sequence[tuple[float, float]] = RANDOM_RANGES,
    equalize_norm: float | str | None = "mean",
    working_range: tuple[float, float] = WORKING_RANGE,
    agreement_threshold: float = AGREEMENT_THRESHOLD,
    accuracy_tolerance: float = ACCURACY_TOLERANCE,
    seed: int = 0,
    batch_size: int = 4096,
    centre_name: str | None = None,
) -> ScaleInvarianceReport:
    """Rescale ``embeddings`` about ``centre`` and measure how ``head``'s decisions change.

    Args:
        head: a callable on ``(n, d)`` embeddings returning ``(n, classes)`` logits, or an object with
            ``logits`` (:class:`~hf_latent_bridge.ClassificationHead`, :func:`head_from_classifier`),
            ``decision_function`` or ``predict_proba``.
        embeddings: ``(n, d)`` embeddings of the space the head was trained on.
        labels: optional ``(n,)`` class ids; without them accuracy is not reported and the verdict
            rests on agreement alone.
        centre: ``"mean"`` (of ``embeddings``; what matters for IRP, whose outputs sit around the target
            anchors' mean), ``"origin"`` (raw scaling) or a ``(d,)`` tensor (e.g. ``bridge.output_shift``).
        factors: fixed factors; ``random_ranges``: per-sample log-uniform factors.
        equalize_norm: also set every centred norm to one value, as IRP does: ``"mean"`` (mean centred
            norm of ``embeddings``), a number (e.g. a bridge's ``output_norm``), or ``None`` to skip.
        working_range: trials whose factors lie in this range (and the equalisation) decide
            :attr:`ScaleInvarianceReport.invariant`; the others are reported.
        agreement_threshold / accuracy_tolerance: a trial passes when at least this share of
            predictions is unchanged and accuracy drops by at most the tolerance.
        centre_name: how reports name a given centre tensor (e.g. ``"target anchors' mean"``).
    """
    x = as_tensor(embeddings, "embeddings")
    check_matrix(x, "embeddings")
    dtype = x.dtype
    x64 = x.detach().cpu().to(torch.float64)
    y = None
    if labels is not None:
        y = as_class_ids(labels, x.shape[0])
    _check_factors(factors, random_ranges)
    low_ok, high_ok = working_range
    if not 0 < low_ok <= 1 <= high_ok:
        raise BridgeInputError(f"working_range must contain 1, got {working_range!r}.")
    if not 0 < agreement_threshold <= 1 or not 0 <= accuracy_tolerance < 1:
        raise BridgeInputError("agreement_threshold must be in (0, 1] and accuracy_tolerance in [0, 1).")

    c, resolved_name = _resolve_centre(centre, x64)
    offsets = x64 - c
    norms = torch.linalg.vector_norm(offsets, dim=1)
    base_scores = head_scores(head, x, batch_size)
    if base_scores.shape[0] != x.shape[0]:
        raise BridgeInputError("the head returned a different number of rows than it was given.")
    base_pred = base_scores.argmax(1)
    base_margin = _margins(base_scores, base_pred)
    valid = base_margin > 1e-9 * base_scores.abs().max().clamp_min(1e-300)
    base_accuracy = None if y is None else float((base_pred == y).double().mean())
    generator = torch.Generator().manual_seed(seed)

    plans: list[tuple[str, str, torch.Tensor, dict[str, Any]]] = []
    for a in factors:
        plans.append((f"x{a:g}", "factor", torch.full_like(norms, float(a)), {"factor": float(a)}))
    for low, high in random_ranges:
        u = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
        per_row = torch.exp(np.log(low) + u * (np.log(high) - np.log(low)))
        plans.append((f"random {low:g}-{high:g}x", "random", per_row, {}))
    if equalize_norm is not None:
        target = float(norms.mean()) if equalize_norm == "mean" else float(equalize_norm)
        if not (np.isfinite(target) and target > 0):
            raise BridgeInputError(
                f"equalize_norm must be 'mean', a number > 0 or None, got {equalize_norm!r}."
            )
        per_row = target / norms.clamp_min(1e-12)
        plans.append((f"all norms = {target:.3g} (IRP)", "equalize", per_row, {"norm": target}))

    trials = []
    for name, kind, per_row, details in plans:
        scaled = (c + offsets * per_row[:, None]).to(dtype)
        scores = head_scores(head, scaled, batch_size)
        pred = scores.argmax(1)
        margin = _margins(scores, base_pred)
        ratio = (
            (margin[valid] / base_margin[valid]) if bool(valid.any()) else torch.ones(1, dtype=torch.float64)
        )
        homogeneity = ratio / per_row[valid] if bool(valid.any()) else ratio
        agreement = float((pred == base_pred).double().mean())
        accuracy = None if y is None else float((pred == y).double().mean())
        lo, hi = (float(q) for q in torch.quantile(per_row, torch.tensor([0.05, 0.95], dtype=torch.float64)))
        in_range = kind == "equalize" or (low_ok - 1e-12 <= lo and hi <= high_ok + 1e-12)
        passed = agreement >= agreement_threshold and (
            accuracy is None or base_accuracy is None or accuracy >= base_accuracy - accuracy_tolerance
        )
        trials.append(
            ScaleTrial(
                name=name,
                kind=kind,
                agreement=agreement,
                accuracy=accuracy,
                margin_ratio=float(ratio.median()),
                homogeneity=float(homogeneity.median()),
                factor_low=lo,
                factor_high=hi,
                in_working_range=in_range,
                passed=passed,
                **details,
            )
        )
    return ScaleInvarianceReport(
        centre=centre_name or resolved_name,
        num_samples=int(x.shape[0]),
        num_classes=int(base_scores.shape[1]),
        accuracy=base_accuracy,
        trials=trials,
        agreement_threshold=agreement_threshold,
        accuracy_tolerance=accuracy_tolerance,
        working_range=(float(low_ok), float(high_ok)),
        extra={
            "centred_norm_mean": float(norms.mean()),
            "centred_norm_cv": float(norms.std() / norms.mean()),
        },
    )
