"""Fitting translation maps: IRP and the direct-translation baselines of Maiorca et al. (2023).

Every method produces the same :class:`TranslationMap`, a small affine pipeline::

    z = (x - source_mean) / source_std
    y = z @ transform + bias
    y = normalize(y) * output_norm          (IRP only: the relative step discards norms)
    y = y * target_std + target_mean

IRP needs each side's anchors separately (see :mod:`.projection`); the baselines standard-scale both
sides with anchor statistics and fit a map between them, so they need both anchor sets at once.
Procrustes and l-ortho return the semi-orthogonal ``U V^T``, which equals zero-padding the smaller
space, solving the square problem and cropping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import BridgeInputError
from .projection import (
    TRUNCATION_RTOL,
    AnchorSide,
    AnchorSpectrum,
    anchor_side,
    coupled_factors,
    irp_transform,
    normalize_rows,
    spectrum_of,
)
from .ridge import RIDGE_GRID, choose_ridge_for


@dataclass
class TranslationMap:
    """A fitted translation, all tensors float64 until the bridge stores them."""

    source_mean: torch.Tensor  # (d_x,)
    source_std: torch.Tensor  # (d_x,)
    transform: torch.Tensor  # (d_x, d_y)
    bias: torch.Tensor  # (d_y,)
    output_norm: float  # > 0: renormalise rows to this norm; 0: leave norms alone
    target_std: torch.Tensor  # (d_y,)
    target_mean: torch.Tensor  # (d_y,)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The map as written above (the reference for :meth:`folded`)."""
        y = ((x - self.source_mean) / self.source_std) @ self.transform + self.bias
        if self.output_norm > 0:
            y = normalize_rows(y) * self.output_norm
        return y * self.target_std + self.target_mean

    def folded(self) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
        """The same map as ``(weight, bias, output_norm, output_shift)`` for one fused matmul::

            y = x @ weight + bias;  if output_norm: y = output_shift + normalize(y) * output_norm

        Centring and scaling are folded into ``weight`` and ``bias``; so are the target statistics when
        nothing is renormalised (the baselines), which leaves ``output_shift`` at zero.
        """
        weight = self.transform / self.source_std[:, None]
        bias = self.bias - self.source_mean @ weight
        if self.output_norm > 0:
            if not torch.all(self.target_std == 1):
                raise ValueError("renormalised maps must not rescale features afterwards")
            return weight, bias, self.output_norm, self.target_mean
        return (
            weight * self.target_std,
            bias * self.target_std + self.target_mean,
            0.0,
            torch.zeros_like(self.target_mean),
        )


def _ones(d: int) -> torch.Tensor:
    return torch.ones(d, dtype=torch.float64)


def _zeros(d: int) -> torch.Tensor:
    return torch.zeros(d, dtype=torch.float64)


Progress = Callable[[str], None]


def _no_progress(stage: str) -> None:
    pass


@dataclass(frozen=True)
class IrpProblem:
    """Both sides of an IRP fit, decomposed once: every ridge strength (and its choice) reuses them.

    ``source`` and ``target`` are each computed from one side's anchors only; ``coupled`` (see
    :func:`~.projection.coupled_factors`) is the one product of the two.
    """

    source: AnchorSide
    target: AnchorSpectrum
    coupled: torch.Tensor

    @classmethod
    def prepare(
        cls,
        source_anchors: torch.Tensor,
        target_anchors: torch.Tensor,
        whitening_strength: float | None = None,
        progress: Progress = _no_progress,
    ) -> IrpProblem:
        source = anchor_side(source_anchors, "source_anchors", whitening_strength)
        progress("source anchors")
        target = spectrum_of(anchor_side(target_anchors, "target_anchors", whitening_strength))
        progress("target anchors")
        coupled = coupled_factors(source, target)
        progress("coupling")
        return cls(source, target, coupled)

    def choose_ridge(self, grid: Sequence[float] = RIDGE_GRID) -> tuple[float, dict[float, float]]:
        """Relative ridge with the best exact leave-one-out cosine on the anchors (see :mod:`.ridge`)."""
        return choose_ridge_for(self.source, self.target, self.coupled, grid)

    def map(self, relative_ridge: float, output_norm: float | str = "mean") -> TranslationMap:
        """The translation at a ridge relative to the target's mean squared singular value; outputs get
        ``output_norm`` (``"mean"``: the target anchors' mean centred norm, ``"none"``: 1, or a number)."""
        output_norm = {"mean": self.target.mean_norm, "none": 1.0}.get(output_norm, output_norm)  # type: ignore[call-overload]
        ridge = relative_ridge * self.target.mean_square
        transform = irp_transform(self.source, self.target, ridge, self.coupled)
        d_x, d_y = transform.shape
        return TranslationMap(
            self.source.mean,
            _ones(d_x),
            transform,
            _zeros(d_y),
            float(output_norm),
            _ones(d_y),
            self.target.mean,
        )


#: A feature whose anchor standard deviation is below this fraction of the largest one is constant up
#: to round-off: it carries nothing to fit, and every direct method reproduces its anchor value.
CONSTANT_RTOL = TRUNCATION_RTOL


def _standardize(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standard-scaled informative features, and the mean, scale and mask of informative features."""
    mean = a.mean(dim=0)
    std = a.std(dim=0)
    informative = std > CONSTANT_RTOL * std.max().clamp_min(1e-300)
    # A constant feature is fitted by nothing (its weights stay zero): dividing by 1 keeps it finite.
    std = torch.where(informative, std, torch.ones_like(std))
    return (a[:, informative] - mean[informative]) / std[informative], mean, std, informative


def _lstsq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimum-norm least squares through an SVD (robust to rank deficiency, on any device)."""
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    keep = s > TRUNCATION_RTOL * s[0]
    return (vh[keep].T / s[keep]) @ (u[:, keep].T @ b)


def _semi_orthogonal(m: torch.Tensor) -> torch.Tensor:
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


def _direct(solve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    """A direct method: ``solve`` maps standardised informative source features to target ones.

    Features constant on the anchors (on either side) are left out of the fit, which is what zero
    padding does for missing dimensions: their weights stay zero, so a constant target feature is
    reproduced exactly and a source feature that never varied on the anchors cannot leak into the output.
    """

    def fit(source_anchors: torch.Tensor, target_anchors: torch.Tensor) -> TranslationMap:
        x, x_mean, x_std, x_keep = _standardize(source_anchors.to(torch.float64))
        y, y_mean, y_std, y_keep = _standardize(target_anchors.to(torch.float64))
        transform = torch.zeros(x_mean.numel(), y_mean.numel(), dtype=torch.float64)
        transform[torch.outer(x_keep, y_keep)] = solve(x, y).flatten()
        return TranslationMap(x_mean, x_std, transform, _zeros(y_mean.numel()), 0.0, y_std, y_mean)

    fit.__doc__ = solve.__doc__
    fit.__name__ = solve.__name__
    return fit


@_direct
def fit_procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Orthogonal Procrustes: the (semi-)orthogonal W maximising trace(W^T X^T Y)."""
    return _semi_orthogonal(x.T @ y)


@_direct
def fit_linear(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least squares X W ~= Y (on centred features: a bias would be zero)."""
    return _lstsq(x, y)


@_direct
def fit_l_ortho(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least squares, then projected onto the (semi-)orthogonal matrices by SVD."""
    return _semi_orthogonal(_lstsq(x, y))


def fit_identity(source_anchors: torch.Tensor, target_anchors: torch.Tensor) -> TranslationMap:
    """No translation: embeddings go to the target head as they are (same dimension only)."""
    d_x, d_y = source_anchors.shape[1], target_anchors.shape[1]
    if d_x != d_y:
        raise BridgeInputError(
            f"method='identity' needs equal dimensions, got source {d_x} and target {d_y}; "
            "use method='irp' (or a direct baseline such as 'procrustes') to translate between them."
        )
    eye = torch.eye(d_x, dtype=torch.float64)
    return TranslationMap(_zeros(d_x), _ones(d_x), eye, _zeros(d_y), 0.0, _ones(d_y), _zeros(d_y))


#: Direct (non-IRP) methods by name: each fits from both anchor sets at once.
DIRECT_METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor], TranslationMap]] = {
    "procrustes": fit_procrustes,
    "linear": fit_linear,
    "l-ortho": fit_l_ortho,
    "identity": fit_identity,
}
