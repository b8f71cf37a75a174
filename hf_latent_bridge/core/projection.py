"""Relative projection and its inverse: pure functions on tensors.

Notation (Maiorca et al., 2024): anchors ``A`` (k, d) embed k inputs; ``mu`` is their mean; a sample's
*relative representation* is its cosine to every centred anchor. The inverse relative projection
(IRP) recovers a direction in a target space from a relative representation using the target's
anchors only, through a regularised least-squares solve.

The IRP map factorises per side::

    y~ = normalize(x - mu_x) @ source_factor @ target_factor
         source_factor = normalize_rows(A_x - mu_x).T                 (d_x, k)   source anchors only
         target_factor = regularised pinv of normalize_rows(A_y - mu_y).T (k, d_y)  target anchors only

so an encoder's side can be computed without ever seeing the other encoder. Solves run in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .validation import check_nonzero_rows

#: Singular values below ``TRUNCATION_RTOL * s_max`` are treated as exactly zero: on real embeddings
#: they carry round-off, not signal (MiniLM has singular values at 1e-8 and 1e-16 after centring).
TRUNCATION_RTOL = 1e-6


#: Default shrinkage-whitening strength of IRP (see :class:`Whitening`); ``None`` disables it.
DEFAULT_WHITENING = 1.0


def normalize_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise the last dimension (rows of zero norm stay zero)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(eps)


def centre_normalize(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Centre on ``mean`` and L2-normalise each row."""
    return normalize_rows(x - mean)


def relative_projection(
    x: torch.Tensor, anchors: torch.Tensor, mean: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosines of centred samples ``x`` (n, d) to centred anchors (k, d): the (n, k) relative space.

    ``mean`` defaults to the anchors' mean. Invariant to rotations, reflections, isotropic scaling and
    shifts applied to samples and anchors together.
    """
    mean = anchors.mean(dim=0) if mean is None else mean
    return centre_normalize(x, mean) @ centre_normalize(anchors, mean).T


@dataclass(frozen=True)
class Whitening:
    """One side's shrinkage whitening: ``(x - mean) @ basis.T * gain``, with gain = 1 / sqrt(var + w * mean var).

    Embedding spaces are anisotropic: a few directions dominate every cosine. Rescaling each principal
    direction of the anchors towards unit variance (shrunk by ``w`` times the mean variance, so weak and
    noisy directions are not blown up) lets all directions take part in the relative representation.
    Strength ``None`` is the identity (the plain relative projection of the paper).
    """

    mean: torch.Tensor  # (d,)
    basis: torch.Tensor  # (r, d), orthonormal rows
    gain: torch.Tensor  # (r,)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.basis.T * self.gain

    @property
    def forward_matrix(self) -> torch.Tensor:
        """(d, r): centred sample -> whitened coordinates."""
        return self.basis.T * self.gain

    @property
    def inverse_matrix(self) -> torch.Tensor:
        """(r, d): whitened coordinates -> centred sample."""
        return self.basis / self.gain[:, None]


def whitening(anchors: torch.Tensor, strength: float | None) -> Whitening:
    a = anchors.to(torch.float64)
    mean = a.mean(dim=0)
    if strength is None:
        eye = torch.eye(a.shape[1], dtype=torch.float64)
        return Whitening(mean, eye, torch.ones(a.shape[1], dtype=torch.float64))
    _, s, vh = torch.linalg.svd(a - mean, full_matrices=False)
    keep = s > TRUNCATION_RTOL * s[0]
    variance = s[keep] ** 2 / a.shape[0]
    return Whitening(mean, vh[keep], torch.rsqrt(variance + strength * variance.mean()))


@dataclass(frozen=True)
class AnchorSpectrum:
    """One side as a target: thin SVD ``U diag(s) Vh`` of its centred, whitened, normalised anchors."""

    whitening: Whitening
    u: torch.Tensor  # (k, r)
    s: torch.Tensor  # (r,)
    vh: torch.Tensor  # (r, r_w), in whitened coordinates
    #: Mean norm of the centred anchors: the scale the relative step discards.
    norm_scale: float

    @property
    def mean(self) -> torch.Tensor:
        return self.whitening.mean

    @property
    def mean_square(self) -> float:
        """Mean squared singular value: the unit in which ridge strengths are expressed."""
        return float((self.s**2).mean()) if self.s.numel() else 1.0

    @property
    def output_basis(self) -> torch.Tensor:
        """(r, d): right singular vectors mapped back to the centred (unwhitened) space."""
        return self.vh @ self.whitening.inverse_matrix


def anchor_spectrum(
    anchors: torch.Tensor, name: str = "anchors", whitening_strength: float | None = None
) -> AnchorSpectrum:
    """Centre, whiten, normalise and decompose one side's anchors (the expensive step of a fit)."""
    a = anchors.to(torch.float64)
    centred = a - a.mean(dim=0)
    check_nonzero_rows(centred, name)
    norms = torch.linalg.vector_norm(centred, dim=-1)
    white = whitening(a, whitening_strength)
    u, s, vh = torch.linalg.svd(normalize_rows(white.apply(a)), full_matrices=False)
    keep = s > TRUNCATION_RTOL * s[0]
    return AnchorSpectrum(white, u[:, keep], s[keep], vh[keep], float(norms.mean()))


def source_factor(anchors: torch.Tensor, whitening_strength: float | None = None) -> torch.Tensor:
    """(d_x, k) map from a centred source sample to (a positive multiple of) its relative representation."""
    white = whitening(anchors, whitening_strength)
    return white.forward_matrix @ normalize_rows(white.apply(anchors.to(torch.float64))).T


def ridge_filter(s: torch.Tensor, ridge: float) -> torch.Tensor:
    """Tikhonov filter factors ``s / (s^2 + ridge)``; ``ridge = 0`` is the truncated pseudo-inverse."""
    return s / (s * s + ridge)


def target_factor(spectrum: AnchorSpectrum, ridge: float) -> torch.Tensor:
    """(k, d_y) regularised inverse of the target's relative projection, back in its centred space.

    ``ridge`` is absolute (in squared-singular-value units); ``relative_ridge * spectrum.mean_square``
    converts a relative strength.
    """
    return (spectrum.u * ridge_filter(spectrum.s, ridge)) @ spectrum.output_basis


def inverse_relative_projection(
    relative: torch.Tensor, spectrum: AnchorSpectrum, ridge: float
) -> torch.Tensor:
    """Directions ``y~`` (n, d_y), unit norm, whose relative representation best matches ``relative``."""
    return normalize_rows(relative.to(torch.float64) @ target_factor(spectrum, ridge))
