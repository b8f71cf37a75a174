"""Fitting translation maps: IRP and the direct-translation baselines of Maiorca et al. (2023).

Every method produces the same :class:`TranslationMap`, a small affine pipeline::

    z = (x - source_mean) / source_scale
    y = z @ transform + bias
    y = normalize(y) * output_norm          (IRP only: the relative step discards norms)
    y = y * target_scale + target_mean

IRP needs each side's anchors separately (see :mod:`.projection`); the baselines standard-scale both
sides with anchor statistics and fit a map between them, so they need both anchor sets at once.
Procrustes and l-ortho return the semi-orthogonal ``U V^T``, which equals zero-padding the smaller
space, solving the square problem and cropping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import BridgeInputError
from .projection import (
    TRUNCATION_RTOL,
    AnchorSpectrum,
    anchor_spectrum,
    normalize_rows,
    source_factor,
    target_factor,
)


@dataclass
class TranslationMap:
    """A fitted translation, all tensors float64 until the bridge stores them."""

    source_mean: torch.Tensor  # (d_x,)
    source_scale: torch.Tensor  # (d_x,)
    transform: torch.Tensor  # (d_x, d_y)
    bias: torch.Tensor  # (d_y,)
    output_norm: float  # > 0: renormalise rows to this norm; 0: leave norms alone
    target_scale: torch.Tensor  # (d_y,)
    target_mean: torch.Tensor  # (d_y,)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The map as written above (the reference for :meth:`folded`)."""
        y = ((x - self.source_mean) / self.source_scale) @ self.transform + self.bias
        if self.output_norm > 0:
            y = normalize_rows(y) * self.output_norm
        return y * self.target_scale + self.target_mean

    def folded(self) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
        """The same map as ``(weight, bias, output_norm, output_shift)`` for one fused matmul::

            y = x @ weight + bias;  if output_norm: y = output_shift + normalize(y) * output_norm

        Centring and scaling are folded into ``weight`` and ``bias``; so are the target statistics when
        nothing is renormalised (the baselines), which leaves ``output_shift`` at zero.
        """
        weight = self.transform / self.source_scale[:, None]
        bias = self.bias - self.source_mean @ weight
        if self.output_norm > 0:
            if not torch.all(self.target_scale == 1):
                raise ValueError("renormalised maps must not rescale features afterwards")
            return weight, bias, self.output_norm, self.target_mean
        return (
            weight * self.target_scale,
            bias * self.target_scale + self.target_mean,
            0.0,
            torch.zeros_like(self.target_mean),
        )


def _ones(d: int) -> torch.Tensor:
    return torch.ones(d, dtype=torch.float64)


def _zeros(d: int) -> torch.Tensor:
    return torch.zeros(d, dtype=torch.float64)


def irp_map(
    source_anchors: torch.Tensor,
    target: AnchorSpectrum,
    ridge: float,
    output_norm: float,
    whitening_strength: float | None = None,
) -> TranslationMap:
    """IRP as one (d_x, d_y) matrix: ``source_factor @ target_factor``, each from one side only."""
    x = source_anchors.to(torch.float64)
    transform = source_factor(x, whitening_strength) @ target_factor(target, ridge)
    d_x, d_y = transform.shape
    return TranslationMap(
        x.mean(dim=0), _ones(d_x), transform, _zeros(d_y), output_norm, _ones(d_y), target.mean
    )


def fit_irp(
    source_anchors: torch.Tensor,
    target_anchors: torch.Tensor,
    relative_ridge: float,
    scale: float | str = "mean",
    whitening_strength: float | None = None,
) -> TranslationMap:
    """IRP with a ridge relative to the target's mean squared singular value.

    ``scale``: ``"mean"`` restores the mean norm of the centred target anchors, ``"none"`` leaves unit
    norm, a number sets the norm. ``whitening_strength``: shrinkage whitening of both sides before the
    relative projection (see :class:`~hf_latent_bridge.projection.Whitening`); ``None`` is plain IRP.
    """
    spectrum = anchor_spectrum(target_anchors, "target_anchors", whitening_strength)
    output_norm = {"mean": spectrum.norm_scale, "none": 1.0}.get(scale, scale)  # type: ignore[call-overload]
    return irp_map(
        source_anchors,
        spectrum,
        relative_ridge * spectrum.mean_square,
        float(output_norm),
        whitening_strength,
    )


def _standardize(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = a.mean(dim=0)
    std = a.std(dim=0)
    # A constant feature carries nothing; dividing by 1 keeps it at zero instead of NaN.
    std = torch.where(std > 1e-12 * std.max().clamp_min(1e-300), std, torch.ones_like(std))
    return (a - mean) / std, mean, std


def _lstsq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimum-norm least squares through an SVD (robust to rank deficiency, on any device)."""
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    keep = s > TRUNCATION_RTOL * s[0]
    return (vh[keep].T / s[keep]) @ (u[:, keep].T @ b)


def _semi_orthogonal(m: torch.Tensor) -> torch.Tensor:
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


def _direct(solve: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]):
    def fit(source_anchors: torch.Tensor, target_anchors: torch.Tensor) -> TranslationMap:
        x, x_mean, x_std = _standardize(source_anchors.to(torch.float64))
        y, y_mean, y_std = _standardize(target_anchors.to(torch.float64))
        transform, bias = solve(x, y)
        return TranslationMap(x_mean, x_std, transform, bias, 0.0, y_std, y_mean)

    return fit


@_direct
def fit_procrustes(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal Procrustes: the (semi-)orthogonal W maximising trace(W^T X^T Y)."""
    return _semi_orthogonal(x.T @ y), _zeros(y.shape[1])


@_direct
def fit_linear(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares X W ~= Y."""
    return _lstsq(x, y), _zeros(y.shape[1])


@_direct
def fit_affine(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares with a bias, X W + b ~= Y."""
    solution = _lstsq(torch.cat([x, torch.ones_like(x[:, :1])], dim=1), y)
    return solution[:-1], solution[-1]


@_direct
def fit_l_ortho(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares, then projected onto the (semi-)orthogonal matrices by SVD."""
    return _semi_orthogonal(_lstsq(x, y)), _zeros(y.shape[1])


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
    "affine": fit_affine,
    "l-ortho": fit_l_ortho,
    "identity": fit_identity,
}


METHODS = ("irp", *DIRECT_METHODS)
