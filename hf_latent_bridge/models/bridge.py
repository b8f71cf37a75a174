"""LatentBridge: a fitted translation from one encoder's space into another's, as a transformers model.

The bridge holds the parallel anchors of both sides and the fitted map, folded for one fused matmul
(:meth:`~hf_latent_bridge.core.alignment.TranslationMap.folded`), as buffers in ``model.safetensors``;
the shapes live in the config.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.alignment import DIRECT_METHODS, IrpProblem, TranslationMap
from ..core.anchor_set import AnchorSet, fingerprint
from ..core.anchors import ensemble_member_size, ensemble_subsets
from ..core.projection import anchor_side, coupled_factors, spectrum_of
from ..core.validation import (
    as_tensor,
    binary_unit,
    check_anchor_pair,
    check_matrix,
    check_nonzero_rows,
    warn_if_underdetermined,
)
from ..errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from . import modeling_latent_bridge
from .anchor_space import AnchorSpace
from .artifact import ArtifactMixin, BufferModel
from .cards import (
    REPO_PLACEHOLDER,
    CardInfo,
    classification_task,
    example_inputs,
    load_encoder_call,
    short_name,
)
from .configs import LatentBridgeConfig
from .modeling_latent_bridge import translate_folded

#: Fewer anchors than this and the automatic ridge has nothing to hold out: the plain inverse is used.
MIN_ANCHORS_FOR_AUTO_RIDGE = 10


class LatentBridge(ArtifactMixin, BufferModel):
    """Translate embeddings of a source encoder into a target encoder's space.

    Build one with :meth:`fit` from parallel anchors (or :meth:`from_anchor_spaces`), then
    :meth:`translate`; share it with ``save_pretrained`` / ``push_to_hub``, get it back with
    ``from_pretrained``.
    """

    config_class = LatentBridgeConfig
    base_model_prefix = "latent_bridge"
    main_input_name = "embeddings"
    remote_code_module = modeling_latent_bridge

    def __init__(self, config: LatentBridgeConfig) -> None:
        super().__init__(config)
        k, d_x, d_y = config.num_anchors, config.source_dim, config.target_dim
        members = 2 if config.method_selected == "blend" else config.ensemble  # a blend sums two maps
        if None in (k, d_x, d_y):
            raise BridgeInputError(
                "this config has no num_anchors/source_dim/target_dim: it does not describe a fitted bridge. "
                "Create bridges with LatentBridge.fit(source_anchors, target_anchors)."
            )
        dtype = config.dtype or torch.float32
        for name, shape in {
            "source_anchors": (k, d_x),
            "target_anchors": (k, d_y),
            "weight": (members, d_x, d_y),
            "bias": (members, d_y),
            "output_norm": (members,),
            "output_shift": (members, d_y),
        }.items():
            self.register_buffer(name, torch.empty(shape, dtype=dtype))
        if config.ensemble > 1:
            size = ensemble_member_size(k, config.ensemble_fraction)
            self.register_buffer("member_indices", torch.empty(members, size, dtype=torch.long))
        self.post_init()

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        source_anchors: Any,
        target_anchors: Any,
        method: str = "auto",
        *,
        ridge: float | str = "auto",
        whitening: float | str | None = "auto",
        output_norm: float | str = "mean",
        ensemble: int = 1,
        ensemble_fraction: float = 0.8,
        seed: int = 0,
        head: Any = None,
        blend: bool = True,
        source_encoder: Any = None,
        target_encoder: Any = None,
        anchor_set: AnchorSet | dict[str, Any] | None = None,
        dtype: torch.dtype | str | None = None,
        show_progress: bool = False,
    ) -> LatentBridge:
        """Fit a bridge from parallel anchors, ``(k, d_source)`` and ``(k, d_target)``.

        Args:
            method: ``"auto"`` (default) chooses among IRP (its per-side whitening and ridge), Procrustes,
                linear and a blend of IRP with one of them, by how well each translates held-out anchors
                (:mod:`hf_latent_bridge.core.selection`); or one method: ``"irp"``, ``"procrustes"``,
                ``"linear"``, ``"l-ortho"``, ``"identity"``. The choice and every candidate's score are in
                ``config.method_selected`` and ``config.selection``.
            ridge: IRP's Tikhonov strength, relative to the mean squared singular value of the target anchors
                (0: truncated pseudo-inverse); ``"auto"`` chooses it by leave-one-out on the anchors.
            whitening: IRP's shrinkage whitening before the relative projection: every principal direction is
                scaled by 1/sqrt(var + whitening * mean var); ``None`` is the plain projection of the paper; a
                number applies to both sides, a ``[source, target]`` pair to each; ``"auto"`` chooses each side's
                strength on held-out anchors.
            head: the classifier (a :class:`ClassificationHead` or a callable on target embeddings returning
                logits) the bridge will feed: ``method="auto"`` then judges candidates by how many of the head's
                decisions they keep on held-out anchors, instead of by nearest-anchor retrieval.
            blend: whether ``"auto"`` may choose a blend of two maps (IRP with a direct one) when it scores
                better; ``False`` keeps one map, which sentence-transformers and faiss can express natively.
            output_norm: IRP only. ``"mean"`` norm of the centred target anchors, ``"none"`` (unit) or a number.
            ensemble / ensemble_fraction / seed: average the maps of ``ensemble`` seeded anchor subsets holding
                ``ensemble_fraction`` of the anchors each.
            source_encoder / target_encoder: where the embeddings came from (recorded in the config).
            anchor_set: which inputs the anchors are (recorded and fingerprinted).
            dtype: storage dtype; default float64 if either side is float64, else float32.
            show_progress: a progress bar of the fitting steps.
        """
        x, y = as_tensor(source_anchors, "source_anchors"), as_tensor(target_anchors, "target_anchors")
        check_anchor_pair(x, y)
        anchor_set = AnchorSet.from_dict(anchor_set) if isinstance(anchor_set, dict) else anchor_set
        if anchor_set is not None and len(anchor_set.indices) != len(x):
            raise BridgeInputError(
                f"anchor_set names {len(anchor_set.indices)} rows but {len(x)} anchors were given; row i of the "
                "anchors must embed anchor_set.indices[i]."
            )
        x64, y64 = x.detach().cpu().double(), y.detach().cpu().double()
        config = LatentBridgeConfig(
            method=method,
            source_dim=x.shape[1],
            target_dim=y.shape[1],
            num_anchors=len(x),
            ridge=ridge,
            whitening=whitening if method in ("auto", "irp") else None,
            output_norm=output_norm,
            ensemble=ensemble,
            ensemble_fraction=ensemble_fraction,
            seed=seed,
            blend=blend,
            source_encoder=source_encoder,
            target_encoder=target_encoder,
            anchor_set=None if anchor_set is None else anchor_set.to_dict(),
            anchor_fingerprint=anchor_set.fingerprint if anchor_set else fingerprint([x64, y64]),
            dtype=_storage_dtype(dtype, x, y),
        )
        if config.method != "identity":
            warn_if_underdetermined(len(x), y.shape[1])
        # Each side is fitted in units of a power of two near its spread (exact: no digit changes), so a
        # bridge is the same for embeddings of any scale; the units are folded back into the stored map.
        units = (1.0, 1.0) if config.method == "identity" else (_spread_unit(x64), _spread_unit(y64))
        xs, ys = x64 / units[0], y64 / units[1]
        if config.method != "identity":
            check_nonzero_rows(xs, "source_anchors", x.dtype)
            check_nonzero_rows(ys, "target_anchors", y.dtype)
        subsets = ensemble_subsets(len(x), config.ensemble, config.ensemble_fraction, config.seed)
        with tqdm(
            total=len(subsets), desc=f"fitting {config.method}", disable=not show_progress, leave=False
        ) as bar:
            maps, shares = _fit_maps(
                config, xs, ys, subsets, units[1], _scaled_head(head, units[1], y.dtype), bar
            )
        bridge = cls(config)
        bridge._store(x64, y64, maps, subsets if config.ensemble > 1 else None, units, shares)
        return bridge

    @torch.no_grad()
    def _store(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        maps: list[TranslationMap],
        subsets: torch.Tensor | None,
        units: tuple[float, float],
        shares: list[float] | None = None,
    ) -> None:
        """Store the anchors and the maps, fitted on anchors divided by ``units`` (source, target). The
        translation is the sum of the maps weighted by ``shares`` (default: their mean), folded in."""
        self.source_anchors.copy_(x)
        self.target_anchors.copy_(y)
        source_unit, target_unit = units
        for member, translation in enumerate(maps):
            share = 1 / len(maps) if shares is None else shares[member]
            weight, bias, output_norm, output_shift = translation.folded()
            if output_norm > 0:  # renormalised: only the norm and the shift carry target units and the share
                weight, output_norm, output_shift = (
                    weight / source_unit,
                    output_norm * target_unit * share,
                    output_shift * target_unit * share,
                )
            else:
                weight, bias = weight * (share * target_unit / source_unit), bias * (share * target_unit)
            self.weight[member].copy_(weight)
            error = torch.linalg.vector_norm(
                self.weight[member].double() - weight
            ) / torch.linalg.vector_norm(weight)
            if not float(error) <= 4 * torch.finfo(self.dtype).eps:  # NaN-safe: overflow or subnormal storage
                raise BridgeInputError(
                    f"the fitted map cannot be stored in {self.dtype}: the two sides' scales (about {source_unit:.0e} "
                    f"and {target_unit:.0e}) are too far apart for its range. Fit with dtype=torch.float64, or "
                    "rescale one side's embeddings."
                )
            self.bias[member].copy_(bias)
            self.output_norm[member] = output_norm
            self.output_shift[member].copy_(output_shift)
        if subsets is not None:
            self.member_indices.copy_(subsets)

    @classmethod
    def from_anchor_spaces(
        cls, source_space: AnchorSpace, target_space: AnchorSpace, method: str = "irp", **options: Any
    ) -> LatentBridge:
        """Bridge from ``source_space``'s encoder to ``target_space``'s, from their anchors alone: equal to
        :meth:`fit` on the same embeddings, without loading either encoder. Spaces on different anchor sets
        (the same rows in another order included) are refused."""
        for role, space in (("source_space", source_space), ("target_space", target_space)):
            if not isinstance(space, AnchorSpace):
                raise BridgeInputError(f"{role} must be an AnchorSpace, got {type(space).__name__}.")
        if source_space.fingerprint != target_space.fingerprint:
            raise IncompatibleEncoderError(
                f"the anchor spaces were built on different anchor sets ({source_space.anchor_set.difference(target_space.anchor_set)}); "
                "embed the same anchor set, rows in the same order, with both encoders."
            )
        return cls.fit(
            source_space.anchors,
            target_space.anchors,
            method,
            source_encoder=source_space.config.encoder,
            target_encoder=target_space.config.encoder,
            anchor_set=source_space.anchor_set,
            **options,
        )

    # ------------------------------------------------------------------ translating
    def forward(self, embeddings: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """Translate a checked (n, d_source) tensor to (n, d_target), computing in the bridge's dtype and
        returning the input's; a result that is not finite raises, naming the cause. ``out``: an (n, d_target)
        tensor of the bridge's dtype and device to write into (translating in chunks, one reused buffer)."""
        x = embeddings.to(device=self.weight.device, dtype=self.weight.dtype)
        y, finite = translate_folded(x, self.weight, self.bias, self.output_norm, self.output_shift, out)
        if not finite:
            raise BridgeInputError(
                f"translating overflowed {self.dtype}: the embeddings are too large for this bridge (largest |value| "
                f"{float(embeddings.abs().max()):.3g}); rescale them, or fit the bridge with dtype=torch.float64."
            )
        out = y.to(embeddings.dtype)
        if out.dtype != y.dtype and not bool(torch.isfinite(out).all()):
            raise BridgeInputError(
                f"the translations exceed the range of {out.dtype} (the embeddings' dtype); pass float32 embeddings."
            )
        return out

    def translate(self, x: Any) -> Any:
        """Translate source embeddings into the target space.

        ``x`` is (n, d_source) or (d_source,), numpy or torch; the result has the same kind, rank and dtype.
        A list of rows (what ``datasets.Dataset.map(batched=True)`` hands over) gives a numpy array::

            dataset.map(lambda batch: {"translated": bridge.translate(batch["embedding"])}, batched=True)
        """
        tensor = as_tensor(x, "embeddings")
        single = tensor.ndim == 1
        tensor = check_matrix(tensor.unsqueeze(0) if single else tensor, "embeddings", self.config.source_dim)
        with torch.no_grad():
            y = self(tensor).to(tensor.device)
        y = y.squeeze(0) if single else y
        return y.cpu().numpy() if isinstance(x, (np.ndarray, list, tuple)) else y

    # ------------------------------------------------------------------ sharing
    def card_info(self) -> CardInfo:
        """The model card: encoders, method and parameters, anchors, measured results, how to use it."""
        config = self.config
        source, target = config.source, config.target
        source = source and replace(source, dim=source.dim or config.source_dim)
        target = target and replace(target, dim=target.dim or config.target_dim)
        parameters: dict[str, Any] = {
            "dimensions": f"{config.source_dim} -> {config.target_dim}",
            "anchors": config.num_anchors,
        }
        if config.selection:
            criterion = {"classify": "the head's decisions kept", "search": "nearest-anchor retrieval"}
            parameters["method chosen"] = (
                f"{config.selection['chosen']}, by {criterion[config.selection['use']]} on "
                f"{config.selection['scored_anchors']} held-out anchors (each side's whitening chosen jointly "
                "from both encoders' anchors)"
            )
            ranked = sorted(config.selection["candidates"], key=lambda r: -r["score"])[:5]
            parameters["best candidates (held-out score)"] = "; ".join(
                f"{r['label']}: {r['score']:.4f}" for r in ranked
            )
        if config.ridge_selected is not None:
            chosen = "" if config.ridge != "auto" else " (chosen by leave-one-out on the anchors)"
            parameters["ridge (relative)"] = f"{config.ridge_selected:.4g}{chosen}"
            parameters["whitening (source, target)"] = ", ".join(
                "off (plain IRP)" if w is None else f"{w:g}" for w in config.whitening_selected
            )
            parameters["output norm"] = config.output_norm
        if config.ensemble > 1:
            parameters["ensemble"] = (
                f"{config.ensemble} members x {config.ensemble_fraction:.0%} of the anchors"
            )
        parameters["library version"] = config.library_version
        imports, inputs = example_inputs(source)
        return CardInfo(
            title=f"Latent bridge: {short_name(source)} -> {short_name(target)}",
            summary=(
                "A latent space translation from one encoder's embedding space into another's, fitted on parallel "
                "anchors without training. Feed it the source encoder's embeddings and use the output wherever the "
                "target encoder's embeddings are expected (e.g. the target's classifier head)."
            ),
            usage=(
                f"{imports}from hf_latent_bridge import LatentBridge, load_encoder\n\n"
                f'bridge = LatentBridge.from_pretrained("{REPO_PLACEHOLDER}")\n'
                f"source = {load_encoder_call(source)}\n"
                f"translated = bridge.translate(source.embed({inputs}))  # in {short_name(target)}'s space"
            ),
            source=source,
            target=target,
            method=config.method_selected or config.method,
            parameters=parameters,
            anchor_set=config.anchor_set,
            fingerprint=config.anchor_fingerprint,
            num_anchors=config.num_anchors,
            metrics=config.metrics or {},
            task=classification_task(source),
            tags=["latent-bridge", "latent-space-translation"],
        )

    def _check_loaded(self, where: str) -> None:
        """Finite tensors, non-negative output norms, member subsets that index the anchors."""
        super()._check_loaded(where)
        rows = getattr(self, "member_indices", None)
        bad_rows = rows is not None and (
            bool((rows < 0).any() | (rows >= self.config.num_anchors).any())
            or any(len(member.unique()) != len(member) for member in rows)
        )
        if bool((self.output_norm < 0).any()) or bad_rows:
            raise CheckpointError(
                f"{where}: output_norm is negative or member_indices are not distinct anchor rows, so the file was "
                "altered. Download it again (force_download=True) or fit the bridge again."
            )


def _fit_maps(
    config: LatentBridgeConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    subsets: torch.Tensor,
    target_unit: float,
    head: Any,
    bar: Any,
) -> tuple[list[TranslationMap], list[float] | None]:
    """The maps and their shares (``None``: equal) of the config's method, one per ensemble member; what
    was chosen on the anchors is recorded in the config."""
    if config.output_norm == "mean":
        norm: float | str = "mean"
    else:  # a number, or "none" (1), in the target's units; the fit runs in units of ``target_unit``
        norm = (1.0 if config.output_norm == "none" else config.output_norm) / target_unit
    if config.method == "auto" or config.whitening == "auto":
        maps, shares = _select(config, x, y, head, norm, ensemble=len(subsets) > 1)
        if len(subsets) == 1:
            bar.update()
            return maps, shares
    method, whitening = config.method_selected or config.method, config.whitening_selected or config.whitening
    maps = []
    if method == "irp" and config.whitening_selected is None:
        config.whitening_selected = list(whitening) if isinstance(whitening, list) else [whitening] * 2
    if method == "irp" and config.ridge_selected is None:
        whole = _irp_problem(x, y, whitening) if len(subsets) == 1 or config.ridge == "auto" else None
        config.ridge_selected, report = _choose_ridge(whole, config.ridge)
        config.fit_report = report or None
    for rows in subsets:
        if method != "irp":
            maps.append(DIRECT_METHODS[method](x[rows], y[rows]))
        elif len(subsets) == 1:
            maps.append(whole.map(config.ridge_selected, norm))
        else:
            maps.append(_irp_problem(x[rows], y[rows], whitening).map(config.ridge_selected, norm))
        bar.update()
    return maps, None


def _select(
    config: LatentBridgeConfig, x: torch.Tensor, y: torch.Tensor, head: Any, norm: float | str, ensemble: bool
) -> tuple[list[TranslationMap], list[float]]:
    """``method="auto"`` (or IRP with ``whitening="auto"``): the candidate chosen on held-out anchors (for
    an ensemble, whose members share one method, never a blend)."""
    from ..core.selection import select

    blend = ("blend",) if config.blend and not ensemble else ()
    methods = ("irp",) if config.method == "irp" else ("irp", "procrustes", "linear", *blend)
    w = config.whitening
    fixed = None if w == "auto" else tuple(w) if isinstance(w, list) else (w, w)
    selection = select(x, y, head, methods=methods, whitening=fixed, output_norm=norm, seed=config.seed)
    chosen = selection.chosen
    maps, shares = [m for m, _ in selection.maps], [share for _, share in selection.maps]
    if chosen.method in ("irp", "blend"):
        whitening = [chosen.whitening_source, chosen.whitening_target]
        if config.ridge != "auto":  # a fixed ridge: the chosen whitening pair at it
            maps[0] = _irp_problem(x, y, whitening).map(config.ridge, norm)
        config.ridge_selected = chosen.ridge if config.ridge == "auto" else config.ridge
        config.whitening_selected = whitening
    config.method_selected = chosen.method
    config.selection = {
        "use": selection.use,
        "chosen": chosen.label(),
        "scored_anchors": selection.scored,
        "candidates": [
            {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items() if k in SELECTION_FIELDS}
            for row in selection.table
        ],
    }
    return maps, shares


def _irp_problem(x: torch.Tensor, y: torch.Tensor, whitening: float | list[float] | None) -> IrpProblem:
    """IRP's decomposed sides, whitened by one strength or by a [source, target] pair."""
    source_strength, target_strength = whitening if isinstance(whitening, list) else (whitening, whitening)
    source = anchor_side(x, "source_anchors", source_strength)
    target = spectrum_of(anchor_side(y, "target_anchors", target_strength))
    return IrpProblem(source, target, coupled_factors(source, target))


def _choose_ridge(problem: IrpProblem | None, ridge: float | str) -> tuple[float, dict[str, Any]]:
    if ridge != "auto":
        return float(ridge), {}
    if problem.source.rows.shape[0] < MIN_ANCHORS_FOR_AUTO_RIDGE:
        return 0.0, {"ridge_note": f"fewer than {MIN_ANCHORS_FOR_AUTO_RIDGE} anchors: no ridge"}
    best, scores = problem.choose_ridge()
    return best, {"ridge_cv_cosine": {f"{r:.4g}": round(s, 6) for r, s in scores.items()}}


#: What the config keeps of each scored candidate.
SELECTION_FIELDS = ("label", "stage", "score", "cosine", "hit", "agreement", "gain", "gain_se")


def _scaled_head(head: Any, target_unit: float, dtype: torch.dtype) -> Any:
    """``head`` as the selection calls it: on target anchors divided by ``target_unit``, returning logits."""
    if head is None:
        return None
    logits = head.logits if hasattr(head, "logits") else head
    return lambda t: torch.as_tensor(logits((t * target_unit).to(dtype))).double()


def _spread_unit(anchors: torch.Tensor) -> float:
    """A power of two near the largest deviation of ``anchors`` from their mean (float64, exact)."""
    coarse = binary_unit(anchors)
    scaled = anchors / coarse
    return coarse * binary_unit(scaled - scaled.mean(dim=0))


def _storage_dtype(dtype: Any, x: torch.Tensor, y: torch.Tensor) -> str:
    """The storage dtype's name: the one asked for, else float64 if either side is, else float32."""
    if dtype is None:
        dtype = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    dtype = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point and dtype.itemsize >= 2):
        raise BridgeInputError(
            f"dtype must be a floating torch dtype (e.g. torch.float32 or torch.float64), got {dtype!r}."
        )
    return str(dtype).removeprefix("torch.")
