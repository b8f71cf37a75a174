"""``method="auto"``: choose the translation by a held-out criterion computed on the anchors alone.

Candidates: IRP at every pair of per-side whitening strengths (:data:`WHITENING_GRID`, each pair at its
best ridge), Procrustes, linear least squares, and blends ``w * IRP + (1 - w) * direct`` of the best IRP
pair with the better direct method (:data:`BLEND_WEIGHTS`). Every candidate predicts the same held-out
anchors in the target space:

* Held-out groups: at most :data:`MAX_SCORED` seeded anchors, in groups whose centring and whitening
  statistics (both sides) and the direct methods' standardisation come from the other anchors only: the
  statistics of a plain leave-one-out include the held-out anchor and flatter strong whitening.
* IRP: within a group, exact leave-one-out in closed form (Sherman-Morrison, as in :mod:`.ridge`), so one
  decomposition per side, group and strength serves every ridge; each pair's ridge maximises the held-out
  cosine in the centred target space (where the map's output lives).
* Linear: exact leave-one-out (PRESS). Procrustes: refitted without each group, from sums.
* Blends: the same blend of the two held-out predictions.

Criteria: with a head (``use="classify"``), the share of held-out anchors on which the head decides the
same on the translation as on the true target anchor; without one (``use="search"``), the mean
reciprocal rank of the true target anchor among all scored target anchors by cosine to the translation
(rank-based, like retrieval; the mean cosine alone rewards IRP's shrunken, averaged outputs, which rank
the counterpart worse). IRP is the prior: a direct map replaces it, and a blend (two stored maps) the
best single candidate, only by more than one standard error of their paired per-anchor difference, so
that a few anchors' noise does not choose (small anchor sets kept IRP's lead on the anchor curves). On a
ceiling (the same value on every anchor) the higher mean cosine decides, then fewer stored maps.

Cost: beyond ``max(SEARCH_ANCHORS, SEARCH_PER_DIM * d)`` anchors the whitening pairs are screened
coordinate-wise on a seeded subset, and only the winner is decomposed on all anchors; its decomposition
(statistics from all anchors but the first held-out group) is then the final map.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import torch

from .alignment import CONSTANT_RTOL, IrpProblem, TranslationMap, _semi_orthogonal, _standardize
from .projection import (
    TRUNCATION_RTOL,
    AnchorSide,
    AnchorSpectrum,
    Whitening,
    coupled_factors,
    gram_eigh,
    normalize_rows,
    spectrum_of,
)

#: Shrinkage-whitening strengths tried on each side (see :class:`~.projection.Whitening`).
WHITENING_GRID = (0.1, 0.3, 1.0)
#: Relative ridges tried, half decades (0: the truncated pseudo-inverse; caption spaces need 1e3).
RIDGE_GRID = (0.0, *(10.0 ** (e / 2) for e in range(-6, 7)))
#: IRP's shares in the blends ``w * irp + (1 - w) * direct``.
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
#: Fewer anchors leave too few to hold out (one anchor moves a score by 1 / 8): plain IRP, ridge 0.
MIN_ANCHORS = 8
#: Anchors held out and scored at most (seeded): scores of 1024 anchors are exact to about 1 point.
MAX_SCORED = 1024
#: A held-out group is at most 1 / STATS_FOLDS of the anchors and at most STATS_BIAS * k^2 / d of them:
#: leaving h anchors out of the statistics moves their noise (about d / k) by d h / k^2; at 1 / 4 of the
#: anchors (Fashion-MNIST Lite0 -> MiniLM captions, k 3000, d 1280) strong whitening lost 2 points.
STATS_FOLDS = 4
STATS_BIAS = 0.05
#: ... in at most this many groups (each costs one decomposition per side and strength).
MAX_GROUPS = 16
#: Beyond max(SEARCH_ANCHORS, SEARCH_PER_DIM * d) anchors the whitening pairs are screened on a seeded
#: subset of that size (the best strengths depend on k / d, so the subset must not be much smaller) ...
SEARCH_ANCHORS = 1536
SEARCH_PER_DIM = 3
#: ... with this many of them scored.
SEARCH_SCORED = 512
#: Whitened directions over which the held-out output norm is exact when choosing the ridge (the rest
#: at their mean variance): O(m r NORM_HEAD) per ridge instead of O(m r^2).
NORM_HEAD = 32
#: Preference among candidates with equal scores (fewest stored maps last).
_ORDER = {"irp": 0, "procrustes": 1, "linear": 2, "blend": 3}

Head = Callable[[torch.Tensor], torch.Tensor]
METHODS = ("irp", "procrustes", "linear", "blend")


@dataclass(frozen=True)
class Candidate:
    """One translation: a method and its settings (``weight``: IRP's share in a blend with ``partner``)."""

    method: str  # "irp", "procrustes", "linear" or "blend"
    whitening_source: float | None = None
    whitening_target: float | None = None
    ridge: float | None = None  # relative to the target's mean squared singular value
    weight: float | None = None
    partner: str | None = None

    def label(self) -> str:
        if self.method in ("procrustes", "linear"):
            return self.method
        w = [("off" if v is None else f"{v:g}") for v in (self.whitening_source, self.whitening_target)]
        irp = f"irp(w_x={w[0]}, w_y={w[1]}, ridge={self.ridge:.3g})"
        return (
            irp if self.method == "irp" else f"{self.weight:g} * {irp} + {1 - self.weight:g} * {self.partner}"
        )


@dataclass
class Selection:
    """The chosen candidate and its maps: the translation is ``sum(share * map.apply(x))`` over ``maps``.

    ``table`` has one row per candidate scored: its fields, ``label``, ``stage`` (``"whitening"``: an IRP
    pair screened; ``"final"``: compared for the choice, exactly one IRP row among them) and its scores.
    """

    chosen: Candidate
    maps: list[tuple[TranslationMap, float]]
    use: str  # "search" or "classify"
    scored: int  # held-out anchors of the final comparison
    table: list[dict[str, object]]


def _pca(centred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared singular values and right singular vectors of ``centred`` (n, d), through the smaller Gram."""
    if centred.shape[0] >= centred.shape[1]:
        return gram_eigh(centred)
    squares, left = gram_eigh(centred.T)
    return squares, (centred.T @ left) / squares.sqrt()


@dataclass(frozen=True)
class _Stats:
    """One side's centring and principal directions, shared by every whitening strength."""

    mean: torch.Tensor
    vectors: torch.Tensor  # (d, r)
    variance: torch.Tensor  # (r,)
    scores: torch.Tensor  # (k, r): every anchor's principal coordinates
    mean_norm: float

    @classmethod
    def of(cls, anchors: torch.Tensor, held_out: torch.Tensor | None = None) -> _Stats:
        """Statistics of the anchors but ``held_out``; coordinates of all of them."""
        fit = anchors
        if held_out is not None:
            keep = torch.ones(len(anchors), dtype=torch.bool)
            keep[held_out] = False
            fit = anchors[keep]
        mean = fit.mean(dim=0)
        squares, vectors = _pca(fit - mean)
        norm = float(torch.linalg.vector_norm(fit - mean, dim=-1).mean())
        return cls(mean, vectors, squares / len(fit), (anchors - mean) @ vectors, norm)

    def gain(self, strength: float | None) -> torch.Tensor:
        if strength is None:  # the plain projection (the principal basis only rotates it)
            return torch.ones_like(self.variance)
        return torch.rsqrt(self.variance + strength * self.variance.mean())

    def side(self, strength: float, rows: torch.Tensor | None = None) -> AnchorSide:
        """:func:`~.projection.anchor_side` at ``strength`` (of the anchors ``rows``, default all)."""
        gain = self.gain(strength)
        scores = self.scores if rows is None else self.scores[rows]
        whitening = Whitening(self.mean, self.vectors.T.contiguous(), gain)
        return AnchorSide(whitening, normalize_rows(scores * gain), self.mean_norm)


@dataclass(frozen=True)
class _TargetFold:
    """A target spectrum and what scoring its held-out anchors needs, in its singular basis."""

    spectrum: AnchorSpectrum
    u: torch.Tensor  # (m, r): the held-out anchors' rows of U
    truth: torch.Tensor  # (m, r): their centred targets times output_basis^T
    truth_norm: torch.Tensor  # (m,)
    head: torch.Tensor  # (q, r): the NORM_HEAD strongest whitened directions
    excess: torch.Tensor  # (q,): their output variance above the tail's
    tail: float  # mean output variance of the other whitened directions

    @classmethod
    def of(cls, stats: _Stats, strength: float, rows: torch.Tensor, position: torch.Tensor) -> _TargetFold:
        """The spectrum of anchors ``rows``; ``rows[position]`` are held out."""
        spectrum = spectrum_of(stats.side(strength, rows))
        gain = stats.gain(strength)
        scores = stats.scores[rows[position]]
        variance = gain**-2  # centred output variance per whitened unit, descending
        q = min(NORM_HEAD, len(variance) - 1)
        tail = float(variance[q:].mean())
        u = spectrum.side.rows[position] @ spectrum.v / spectrum.s
        truth = (scores / gain) @ spectrum.v
        return cls(spectrum, u, truth, scores.norm(dim=1), spectrum.v[:q], variance[:q] - tail, tail)


@dataclass(frozen=True)
class _IrpFold:
    """Leave-one-out predictions of one IRP problem for the held-out anchors (algebra: :mod:`.ridge`)."""

    problem: IrpProblem
    target: _TargetFold
    c: torch.Tensor  # (m, r): U^T S s_i
    n: torch.Tensor  # (m, 1): |s_i|^2

    @classmethod
    def of(cls, source: AnchorSide, target: _TargetFold, position: torch.Tensor) -> _IrpFold:
        problem = IrpProblem(source, target.spectrum, coupled_factors(source, target.spectrum))
        rows = source.rows[position]
        return cls(problem, target, rows @ problem.coupled, (rows * rows).sum(1, keepdim=True))

    def _filters(self, relative_ridges: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Filter factors f (R, r) and Sherman-Morrison weights g (m, R): prediction ``f * (c + g u)``."""
        s, u = self.target.spectrum.s, self.target.u
        denom = s**2 + torch.tensor(relative_ridges, dtype=s.dtype)[:, None] * self.problem.target.mean_square
        f, w = s / denom, s**2 / denom
        h = ((u * u) @ w.T).clamp_max(1 - 1e-12)
        return f, ((u * self.c) @ w.T - self.n) / (1 - h)

    def cosines(self, relative_ridges: list[float]) -> torch.Tensor:
        """Sum over the held-out anchors of the cosine in the centred target space, per ridge.

        The centred output of ``coef`` has squared norm ``sum_p var_p (coef . v_p)^2`` over the whitened
        directions p: exact over the ``NORM_HEAD`` strongest, the others at their mean variance.
        """
        t = self.target
        f, g = self._filters(relative_ridges)
        c, u, f2 = self.c, t.u, (f * f).T
        dot = (c * t.truth) @ f.T + g * ((u * t.truth) @ f.T)
        norm2 = t.tail * ((c * c) @ f2 + 2 * g * ((c * u) @ f2) + g * g * ((u * u) @ f2))
        weights = (f[:, None, :] * t.head[None]).reshape(-1, f.shape[1])  # (R q, r)
        along = c @ weights.T + (u @ weights.T) * g.repeat_interleave(len(t.head), 1)
        norm2 = norm2 + (along.reshape(len(c), len(f), -1) ** 2 * t.excess).sum(-1)
        tiny = torch.finfo(dot.dtype).tiny
        return (dot / (norm2.clamp_min(tiny).sqrt() * t.truth_norm[:, None].clamp_min(tiny))).sum(0)

    def predictions(self, relative_ridge: float) -> torch.Tensor:
        """(m, d_y) held-out translations in the target space (the map's output)."""
        f, g = self._filters([relative_ridge])
        out = normalize_rows(((self.c + g * self.target.u) * f) @ self.problem.target.output_basis)
        return out * self.problem.target.mean_norm + self.problem.target.mean


def _polar(c: torch.Tensor) -> torch.Tensor:
    """``U V^T`` of the thin SVD of ``c``, through the eigendecomposition of its smaller Gram matrix when
    ``c`` has full rank; otherwise the SVD, whose completion keeps every output direction (as the
    package's fit does: zeroing them skewed digits Lite1 -> Lite0 to 0.10 head agreement)."""
    wide = c.shape[0] <= c.shape[1]
    m = c if wide else c.T
    values, vectors = torch.linalg.eigh(m @ m.T)
    if not bool(values[0] > 1e-12 * values[-1].clamp_min(1e-300)):
        return _semi_orthogonal(c)
    w = ((vectors * values.rsqrt()) @ vectors.T) @ m
    return w if wide else w.T


def _direct(
    x_anchors: torch.Tensor, y_anchors: torch.Tensor, groups: list[torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, Callable[[], TranslationMap]]]:
    """Held-out predictions of the anchors ``cat(groups)`` (linear: PRESS; Procrustes: refitted without
    each group) and the fits on all anchors, in standardised coordinates as :mod:`.alignment`'s."""
    x, x_mean, x_std, x_keep = _standardize(x_anchors)
    y, y_mean, y_std, y_keep = _standardize(y_anchors)
    k, scored, cross = len(x), torch.cat(groups), x.T @ y

    def output(z: torch.Tensor) -> torch.Tensor:  # standardised informative target -> target space
        full = y_mean.expand(len(z), -1).clone()
        full[:, y_keep] += z * y_std[y_keep]
        return full

    squares, vectors = _pca(x)  # linear: truncated minimum-norm least squares, and its PRESS residuals
    keep = squares > TRUNCATION_RTOL**2 * squares[0]
    squares, vectors = squares[keep], vectors[:, keep]
    weight = (vectors / squares) @ (vectors.T @ cross)
    u = (x[scored] @ vectors) / squares.sqrt()
    h = 1.0 / k + (u * u).sum(1, keepdim=True)  # the intercept is in the hat matrix
    if bool(h.max() < 1 - 1e-6):
        linear = y[scored] - (y[scored] - x[scored] @ weight) / (1 - h)
    else:  # as many anchors as dimensions: least squares interpolates them, so refit without each group
        linear = torch.cat([_held_out_least_squares(x, y, p) for p in groups])

    procrustes, sx, sy, qx, qy = [], x.sum(0), y.sum(0), (x * x).sum(0), (y * y).sum(0)
    for p in groups:  # means, scales and cross-covariance of the other anchors, from sums
        n = k - len(p)
        mx, my = (sx - x[p].sum(0)) / n, (sy - y[p].sum(0)) / n
        dx = ((qx - (x[p] ** 2).sum(0) - n * mx**2) / (n - 1)).clamp_min(0).sqrt()
        dy = ((qy - (y[p] ** 2).sum(0) - n * my**2) / (n - 1)).clamp_min(0).sqrt()
        # features constant on the other anchors are left out of their fit, as ``_standardize`` does
        dx = torch.where(dx > CONSTANT_RTOL * dx.max(), dx, torch.inf)
        dy = torch.where(dy > CONSTANT_RTOL * dy.max(), dy, 0.0)
        c = (cross - x[p].T @ y[p] - n * torch.outer(mx, my)) / torch.outer(
            dx, torch.where(dy > 0, dy, torch.inf)
        )
        procrustes.append(((x[p] - mx) / dx) @ _polar(c) * dy + my)

    def fitted(solution: torch.Tensor) -> TranslationMap:  # as ``alignment._direct`` builds it
        transform = torch.zeros(len(x_mean), len(y_mean), dtype=torch.float64)
        transform[torch.outer(x_keep, y_keep)] = solution.flatten()
        return TranslationMap(x_mean, x_std, transform, torch.zeros_like(y_mean), 0.0, y_std, y_mean)

    predictions = {"procrustes": output(torch.cat(procrustes)), "linear": output(linear)}
    return predictions, {"procrustes": lambda: fitted(_polar(cross)), "linear": lambda: fitted(weight)}


def _held_out_least_squares(x: torch.Tensor, y: torch.Tensor, held_out: torch.Tensor) -> torch.Tensor:
    """Minimum-norm least squares fitted on the rows but ``held_out`` (fewer than the dimensions: in kernel
    form), predicting the ``held_out`` rows."""
    keep = torch.ones(len(x), dtype=torch.bool)
    keep[held_out] = False
    kernel = torch.linalg.pinv(x[keep] @ x[keep].T, hermitian=True, rtol=TRUNCATION_RTOL**2)
    return (x[held_out] @ x[keep].T) @ (kernel @ y[keep])


def _groups(k: int, d: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Disjoint seeded groups of held-out anchors (see :data:`STATS_FOLDS`, :data:`MAX_GROUPS`)."""
    total = min(k, MAX_SCORED)
    size = min(total, max(1, k // STATS_FOLDS), max(1, int(STATS_BIAS * k * k / d), -(-total // MAX_GROUPS)))
    chosen = torch.randperm(k, generator=generator)[:total]
    return [part.sort().values for part in chosen.tensor_split(-(-total // size))]


def _scores(
    predicted: torch.Tensor, truth: torch.Tensor, head: Head | None, decisions: torch.Tensor | None
) -> tuple[dict[str, float], torch.Tensor]:
    """A candidate's criteria on the held-out anchors, and the per-anchor values whose mean is its score."""
    if not bool(torch.isfinite(predicted).all()):
        worst = {"score": float("-inf"), "cosine": -1.0, "hit": 0.0, "mrr": 0.0}
        return worst | ({} if head is None else {"agreement": 0.0}), torch.zeros(
            len(truth), dtype=torch.float64
        )
    p, t = normalize_rows(predicted.float()), normalize_rows(truth.float())
    cosine = (p * t).sum(1)
    rank = ((p @ t.T) > cosine[:, None] + 1e-6).sum(1)  # ties count for the counterpart (duplicates)
    reciprocal = 1.0 / (1.0 + rank.double())
    out = {
        "cosine": float(cosine.mean()),
        "hit": float((rank == 0).double().mean()),
        "mrr": float(reciprocal.mean()),
    }
    per_anchor = reciprocal
    if head is not None:
        per_anchor = (head(predicted).argmax(-1) == decisions).double()
        out["agreement"] = float(per_anchor.mean())
    return {"score": float(per_anchor.mean()), **out}, per_anchor


def _candidate(row: dict[str, object]) -> Candidate:
    return Candidate(**{f: row[f] for f in Candidate.__dataclass_fields__})


def _rank(row: dict[str, object]) -> tuple[float, float, int]:
    return float(row["score"]), float(row["cosine"]), -_ORDER[str(row["method"])]


def select(
    source_anchors: torch.Tensor,
    target_anchors: torch.Tensor,
    head: Head | None = None,
    *,
    methods: Collection[str] = METHODS,
    whitening: tuple[float | None, float | None] | None = None,
    output_norm: float | str = "mean",
    seed: int = 0,
) -> Selection:
    """Choose the translation from ``source_anchors`` (k, d_x) to ``target_anchors`` (k, d_y), both in
    units near 1, among the candidates of ``methods``. ``head``: a callable on (n, d_y) float64 target
    embeddings returning logits; given, the criterion is its agreement on held-out anchors, otherwise
    nearest-anchor retrieval. ``whitening``: a fixed (source, target) pair of IRP's strengths instead of
    the grid. ``output_norm``: the IRP map's, as in :meth:`~.alignment.IrpProblem.map`."""
    x, y = source_anchors.detach().to(torch.float64), target_anchors.detach().to(torch.float64)
    k, d = len(x), max(x.shape[1], y.shape[1])
    use = "search" if head is None else "classify"
    if k < MIN_ANCHORS:
        plain = Candidate("irp", None, None, 0.0)
        row = {
            **plain.__dict__,
            "label": plain.label(),
            "stage": f"fallback: fewer than {MIN_ANCHORS} anchors",
        }
        return Selection(plain, [(IrpProblem.prepare(x, y, None).map(0.0, output_norm), 1.0)], use, 0, [row])
    grid_x, grid_y = (WHITENING_GRID,) * 2 if whitening is None else ((whitening[0],), (whitening[1],))
    generator = torch.Generator().manual_seed(seed)
    groups = _groups(k, d, generator)
    stats = [(_Stats.of(x, group), _Stats.of(y, group)) for group in groups]
    table: list[dict[str, object]] = []
    per_anchor: dict[Candidate, torch.Tensor] = {}

    def scorer(rows: torch.Tensor) -> Callable[[Candidate, torch.Tensor, str], dict[str, object]]:
        truth = y[rows]
        decisions = None if head is None else head(truth).argmax(-1)

        def record(candidate: Candidate, predicted: torch.Tensor, stage: str) -> dict[str, object]:
            scores, per_anchor[candidate] = _scores(predicted, truth, head, decisions)
            table.append({**candidate.__dict__, "label": candidate.label(), "stage": stage, **scores})
            return table[-1]

        return record

    def best_ridge(folds: list[_IrpFold]) -> tuple[float, torch.Tensor]:
        ridge = RIDGE_GRID[int(sum(f.cosines(list(RIDGE_GRID)) for f in folds).argmax())]
        return ridge, torch.cat([f.predictions(ridge) for f in folds])

    # 1. Whitening pairs, each at its best ridge: on all anchors, or screened on a seeded subset.
    search = max(SEARCH_ANCHORS, SEARCH_PER_DIM * d)
    subset = k > search
    layouts = []  # per group: the anchors of its IRP problems, the positions of the scored ones among them
    for group in groups:
        if not subset:
            layouts.append((torch.arange(k), group))
            continue
        share = max(1, min(SEARCH_SCORED * len(group) // min(k, MAX_SCORED), len(group), search // 2))
        others = torch.ones(k, dtype=torch.bool)
        others[group[:share]] = False
        others = others.nonzero().flatten()
        picked = others[torch.randperm(len(others), generator=generator)[: search - share]]
        layouts.append((torch.cat([group[:share], picked]), torch.arange(share)))
    record = scorer(torch.cat([rows[position] for rows, position in layouts]))
    targets: dict[float, list[_TargetFold]] = {}
    folds: dict[tuple[float, float], list[_IrpFold]] = {}
    pairs: dict[tuple[float, float], dict[str, object]] = {}

    def screen(wx: float, wy: float) -> None:
        if wy not in targets:
            targets[wy] = [
                _TargetFold.of(sy, wy, *layout) for layout, (_, sy) in zip(layouts, stats, strict=True)
            ]
        folds[wx, wy] = [
            _IrpFold.of(sx.side(wx, rows), target, position)
            for (rows, position), (sx, _), target in zip(layouts, stats, targets[wy], strict=True)
        ]
        ridge, predicted = best_ridge(folds[wx, wy])
        pairs[wx, wy] = record(Candidate("irp", wx, wy, ridge), predicted, "whitening")

    if subset:  # coordinate-wise: the source strength at the middle target strength, then the target's
        middle = grid_y[len(grid_y) // 2]
        for wx in grid_x:
            screen(wx, middle)
        wx = max(grid_x, key=lambda w: _rank(pairs[w, middle]))
        for wy in grid_y:
            if (wx, wy) not in pairs:
                screen(wx, wy)
    else:
        for wy in grid_y:
            for wx in grid_x:
                screen(wx, wy)
    (wx, wy), best = max(pairs.items(), key=lambda item: _rank(item[1]))

    # 2. The best pair on all anchors (already there unless screened on a subset).
    if subset:
        record = scorer(torch.cat(groups))
        winner = [
            _IrpFold.of(sx.side(wx), _TargetFold.of(sy, wy, torch.arange(k), group), group)
            for group, (sx, sy) in zip(groups, stats, strict=True)
        ]
        ridge, irp_predicted = best_ridge(winner)
        irp = Candidate("irp", wx, wy, ridge)
        finalists = [record(irp, irp_predicted, "final")]
    else:
        winner, irp = folds[wx, wy], Candidate("irp", wx, wy, float(best["ridge"]))
        irp_predicted = torch.cat([f.predictions(irp.ridge) for f in winner])
        best["stage"] = "final"
        finalists = [best]
    targets.clear(), folds.clear()  # free the screened decompositions

    # 3. The direct methods, and blends of the IRP pair with the better one, on the same anchors.
    blends: list[Candidate] = []
    if set(methods) - {"irp"}:
        direct, direct_maps = _direct(x, y, groups)
        finalists += [record(Candidate(name), predicted, "final") for name, predicted in direct.items()]
        partner = str(max(finalists[1:], key=_rank)["method"])
        blends = [Candidate("blend", wx, wy, irp.ridge, w, partner) for w in BLEND_WEIGHTS]
        for blend in blends:
            predicted = blend.weight * irp_predicted + (1 - blend.weight) * direct[partner]
            finalists.append(record(blend, predicted, "final"))

    # 4. The choice: IRP unless another candidate beats it significantly (a direct map: over IRP; a blend:
    # over the best so far), by more than one standard error of the paired per-anchor difference, or
    # scores the same on every anchor with a higher mean cosine (a ceiling: e.g. an exact direct map).
    def beats(row: dict[str, object], other: dict[str, object]) -> bool:
        gain = per_anchor[_candidate(row)] - per_anchor[_candidate(other)]
        row["gain"], row["gain_se"] = float(gain.mean()), float(gain.std() / len(gain) ** 0.5)
        tied = not bool(gain.any())
        return (tied or row["gain"] > row["gain_se"]) and _rank(row) > _rank(other)

    top = finalists[0]
    for row in finalists[1:3]:
        if row["method"] in methods and beats(row, finalists[0]) and _rank(row) > _rank(top):
            top = row
    for row in finalists[3:] if "blend" in methods else ():
        if beats(row, top):
            top = row
    chosen = _candidate(top)
    maps: list[tuple[TranslationMap, float]] = []
    if chosen.method in ("irp", "blend"):
        if subset:  # statistics from all anchors but the first held-out group: no second decomposition
            problem = winner[0].problem
        else:
            source, target = _Stats.of(x).side(wx), spectrum_of(_Stats.of(y).side(wy))
            problem = IrpProblem(source, target, coupled_factors(source, target))
        maps.append((problem.map(irp.ridge, output_norm), 1.0 if chosen.weight is None else chosen.weight))
    if chosen.method != "irp":
        share = 1.0 if chosen.weight is None else 1.0 - chosen.weight
        maps.append((direct_maps[chosen.partner or chosen.method](), share))
    return Selection(chosen, maps, use, len(torch.cat(groups)), table)
