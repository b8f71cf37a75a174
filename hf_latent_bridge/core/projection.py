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
DEFAULT_WHITENING = 0.3


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
        return (x - self.mean) @ self.forward_matrix

    @property
    def forward_matrix(self) -> torch.Tensor:
        """(d, r): centred sample -> whitened coordinates."""
        return self.basis.T * self.gain

    @property
    def inverse_matrix(self) -> torch.Tensor:
        """(r, d): whitened coordinates -> centred sample."""
        return self.basis / self.gain[:, None]


def gram_eigh(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared singular values (descending) and right singular vectors (d, r) of ``rows`` (k, d), float64.

    Through the (d, d) Gram matrix: several times faster than an SVD of the tall (k, d) matrix and it
    never holds a (k, d) left factor. Eigenvalues below ``TRUNCATION_RTOL**2`` of the largest (plus the
    Gram matrix's own round-off) are dropped: they carry no signal.
    """
    gram = rows.T @ rows
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0), vectors.flip(1)
    floor = max(TRUNCATION_RTOL**2, GRAM_ROUND_OFF * rows.shape[1]) * values[0].clamp_min(0)
    keep = values > floor if values.numel() and values[0] > 0 else values > 0
    return values[keep], vectors[:, keep]


#: Relative round-off of a float64 Gram matrix's eigenvalues, per dimension (a few machine epsilons).
GRAM_ROUND_OFF = 8 * torch.finfo(torch.float64).eps


def whitening(anchors: torch.Tensor, strength: float | None) -> Whitening:
    a = anchors.to(torch.float64)
    mean = a.mean(dim=0)
    if strength is None:
        eye = torch.eye(a.shape[1], dtype=torch.float64)
        return Whitening(mean, eye, torch.ones(a.shape[1], dtype=torch.float64))
    squares, vectors = gram_eigh(a - mean)
    variance = squares / a.shape[0]
    return Whitening(mean, vectors.T.contiguous(), torch.rsqrt(variance + strength * variance.mean()))


@dataclass(frozen=True)
class AnchorSide:
    """One side's anchors centred, whitened and L2-normalised: the rows of its relative projection."""

    whitening: Whitening
    rows: torch.Tensor  # (k, r_w), unit rows
    #: Mean norm of the centred anchors: the scale the relative step discards.
    mean_norm: float

    @property
    def mean(self) -> torch.Tensor:
        return self.whitening.mean

    @property
    def factor(self) -> torch.Tensor:
        """(d, k): centred sample -> (a positive multiple of) its relative representation."""
        return self.whitening.forward_matrix @ self.rows.T


def anchor_side(
    anchors: torch.Tensor, name: str = "anchors", whitening_strength: float | None = None
) -> AnchorSide:
    """Centre, whiten and normalise one side's anchors (float64)."""
    check_nonzero_rows(anchors, name)
    a = anchors.to(torch.float64)
    mean_norm = float(torch.linalg.vector_norm(a - a.mean(dim=0), dim=-1).mean())
    white = whitening(a, whitening_strength)
    return AnchorSide(white, normalize_rows(white.apply(a)), mean_norm)


@dataclass(frozen=True)
class AnchorSpectrum:
    """One side as a target: ``rows = U diag(s) V^T``, the thin SVD of its centred, whitened, normalised
    anchors, held as ``s`` and ``V`` (``U = rows V / s`` is formed on demand)."""

    side: AnchorSide
    s: torch.Tensor  # (r,)
    v: torch.Tensor  # (r_w, r), in whitened coordinates

    @property
    def whitening(self) -> Whitening:
        return self.side.whitening

    @property
    def mean(self) -> torch.Tensor:
        return self.side.mean

    @property
    def mean_norm(self) -> float:
        return self.side.mean_norm

    @property
    def u(self) -> torch.Tensor:
        """(k, r) left singular vectors."""
        return self.side.rows @ self.v / self.s

    @property
    def vh(self) -> torch.Tensor:
        return self.v.T

    @property
    def mean_square(self) -> float:
        """Mean squared singular value: the unit in which ridge strengths are expressed."""
        return float((self.s**2).mean()) if self.s.numel() else 1.0

    @property
    def output_basis(self) -> torch.Tensor:
        """(r, d): right singular vectors mapped back to the centred (unwhitened) space."""
        return self.v.T @ self.whitening.inverse_matrix


def spectrum_of(side: AnchorSide) -> AnchorSpectrum:
    squares, v = gram_eigh(side.rows)
    return AnchorSpectrum(side, squares.sqrt(), v)


def anchor_spectrum(
    anchors: torch.Tensor, name: str = "anchors", whitening_strength: float | None = None
) -> AnchorSpectrum:
    """Centre, whiten, normalise and decompose one side's anchors (the expensive step of a fit)."""
    return spectrum_of(anchor_side(anchors, name, whitening_strength))


def source_factor(anchors: torch.Tensor, whitening_strength: float | None = None) -> torch.Tensor:
    """(d_x, k) map from a centred source sample to (a positive multiple of) its relative representation."""
    return anchor_side(anchors, "source_anchors", whitening_strength).factor


def ridge_filter(s: torch.Tensor, ridge: float) -> torch.Tensor:
    """Tikhonov filter factors ``s / (s^2 + ridge)``; ``ridge = 0`` is the truncated pseudo-inverse."""
    return s / (s * s + ridge)


def target_factor(spectrum: AnchorSpectrum, ridge: float) -> torch.Tensor:
    """(k, d_y) regularised inverse of the target's relative projection, back in its centred space.

    ``ridge`` is absolute (in squared-singular-value units); ``relative_ridge * spectrum.mean_square``
    converts a relative strength.
    """
    return (spectrum.u * ridge_filter(spectrum.s, ridge)) @ spectrum.output_basis


def coupled_factors(source: AnchorSide, target: AnchorSpectrum) -> torch.Tensor:
    """(r_x, r): ``source.rows^T U``, the only product of a fit that needs both sides' anchors.

    ``source.factor @ target_factor(target, ridge) == source.whitening.forward_matrix @ coupled
    * ridge_filter(s, ridge) @ target.output_basis`` for every ridge, so one (k x r_x x r) product serves
    every candidate strength; computed as ``(rows_x^T rows_y) V / s`` without forming ``U``.
    """
    return (source.rows.T @ target.side.rows) @ target.v / target.s


def irp_transform(
    source: AnchorSide, target: AnchorSpectrum, ridge: float, coupled: torch.Tensor
) -> torch.Tensor:
    """(d_x, d_y) IRP matrix from :func:`coupled_factors`: equal to ``source.factor @ target_factor(...)``."""
    inner = (coupled * ridge_filter(target.s, ridge)) @ target.output_basis
    return source.whitening.forward_matrix @ inner


def inverse_relative_projection(
    relative: torch.Tensor, spectrum: AnchorSpectrum, ridge: float
) -> torch.Tensor:
    """Directions ``y~`` (n, d_y), unit norm, whose relative representation best matches ``relative``."""
    return normalize_rows(relative.to(torch.float64) @ target_factor(spectrum, ridge))
