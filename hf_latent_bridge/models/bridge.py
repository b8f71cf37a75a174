"""LatentBridge: a fitted translation from one encoder's space to another's, as a transformers model.

The bridge holds the parallel anchors of both sides and the fitted map, folded for one fused matmul
(see :meth:`~hf_latent_bridge.alignment.TranslationMap.folded`), as buffers in ``model.safetensors``.
Shapes live in the config; loading checks tensors against it and refuses missing or unexpected keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..core.alignment import DIRECT_METHODS, IrpProblem, Progress, TranslationMap
from ..core.anchor_set import AnchorSet, fingerprint
from ..core.anchors import ensemble_member_size, ensemble_subsets
from ..core.options import (
    MAX_ENSEMBLE,
    check_fraction,
    check_method,
    check_positive_int,
    check_ridge,
    check_scale,
    check_seed,
    check_whitening,
)
from ..core.projection import DEFAULT_WHITENING
from ..core.validation import (
    as_tensor,
    check_anchor_pair,
    check_matrix,
    check_nonzero_rows,
    power_of_two_scale,
    warn_if_underdetermined,
)
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from . import modeling_latent_bridge
from .anchor_space import AnchorSpace
from .buffers import BufferStateMixin
from .cards import (
    REPO_PLACEHOLDER,
    CardInfo,
    classification_task,
    example_inputs,
    load_encoder_call,
    short_name,
)
from .configs import LatentBridgeConfig
from .hub_mixin import HubCardMixin
from .modeling_latent_bridge import translate_folded

#: Fewer anchors than this and the automatic ridge has nothing to hold out: the plain inverse is used.
MIN_ANCHORS_FOR_AUTO_RIDGE = 10


class LatentBridge(HubCardMixin, BufferStateMixin, PreTrainedModel):
    """Translate embeddings of a source encoder into a target encoder's space.

    Build one with :meth:`fit` from parallel anchors, then :meth:`translate`; share it with
    ``save_pretrained`` / ``push_to_hub`` and get it back with ``from_pretrained``.
    """

    config_class = LatentBridgeConfig
    base_model_prefix = "latent_bridge"
    remote_code_module = modeling_latent_bridge
    main_input_name = "embeddings"
    _keys_to_ignore_on_load_unexpected = None

    def __init__(self, config: LatentBridgeConfig) -> None:
        super().__init__(config)
        k, d_x, d_y = config.num_anchors, config.source_dim, config.target_dim
        if None in (k, d_x, d_y):
            raise CheckpointError(
                "config has no num_anchors/source_dim/target_dim: it does not describe a fitted bridge. "
                "Create bridges with LatentBridge.fit(source_anchors, target_anchors)."
            )
        members, dtype = config.ensemble, _storage_dtype(config)
        self.register_buffer("source_anchors", torch.empty(k, d_x, dtype=dtype))
        self.register_buffer("target_anchors", torch.empty(k, d_y, dtype=dtype))
        self.register_buffer("weight", torch.empty(members, d_x, d_y, dtype=dtype))
        self.register_buffer("bias", torch.empty(members, d_y, dtype=dtype))
        self.register_buffer("output_norm", torch.empty(members, dtype=dtype))
        self.register_buffer("output_shift", torch.empty(members, d_y, dtype=dtype))
        if members > 1:
            size = ensemble_member_size(k, config.ensemble_fraction)
            self.register_buffer("member_indices", torch.empty(members, size, dtype=torch.long))
        self.post_init()

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        source_anchors: Any,
        target_anchors: Any,
        method: str = "irp",
        *,
        ridge: float | str = "auto",
        scale: float | str = "mean",
        whitening: float | None = DEFAULT_WHITENING,
        ensemble: int = 1,
        ensemble_fraction: float = 0.8,
        seed: int = 0,
        folds: int | None = None,
        show_progress: bool = False,
        source_encoder: EncoderRef | dict[str, Any] | str | None = None,
        target_encoder: EncoderRef | dict[str, Any] | str | None = None,
        anchor_set: AnchorSet | dict[str, Any] | None = None,
        dtype: torch.dtype | None = None,
    ) -> LatentBridge:
        """Fit a bridge from parallel anchors, ``(k, d_source)`` and ``(k, d_target)``.

        Args:
            method: ``"irp"`` (default) or a direct baseline (``"procrustes"``, ``"linear"``,
                ``"l-ortho"``, ``"identity"``). ``"affine"`` is a deprecated alias of ``"linear"``
                (on centred anchors its bias is zero).
            ridge: IRP only. ``"auto"`` picks the Tikhonov strength with the best exact leave-one-out
                cosine on the anchors (closed form, one decomposition for every candidate); a number
                sets it, relative to the mean squared singular value of the target anchors (0 is the
                truncated pseudo-inverse).
            whitening: IRP only. Shrinkage whitening of each side before the relative projection:
                every principal direction of the anchors is scaled by 1/sqrt(var + whitening * mean var).
                ``None`` is the plain relative projection of the paper; the default (0.3, see
                ``core.projection.DEFAULT_WHITENING``) evens out anisotropic spaces. Smaller strengths
                move IRP towards least squares in whitened coordinates, larger ones towards the plain
                projection (see benchmarks/README.md for the measured effect).
            scale: IRP only. Output norm: ``"mean"`` norm of the centred target anchors, ``"none"``
                (unit) or a positive number.
            ensemble: average the translations of this many seeded anchor subsets, each holding
                ``ensemble_fraction`` of the anchors.
            source_encoder / target_encoder: where the embeddings came from (recorded in the config).
            anchor_set: which inputs the anchors are (recorded and fingerprinted).
            dtype: storage dtype; default float64 if either side is float64, else float32.
            show_progress: show a progress bar of the fitting steps (tqdm), off by default.
            folds: deprecated and ignored (the automatic ridge is chosen by exact leave-one-out).
        """
        if folds is not None:
            warnings.warn(
                "LatentBridge.fit(folds=...) is ignored: the automatic ridge uses exact leave-one-out "
                "cross-validation. Drop the argument.",
                DeprecationWarning,
                stacklevel=2,
            )
        x = as_tensor(source_anchors, "source_anchors")
        y = as_tensor(target_anchors, "target_anchors")
        check_anchor_pair(x, y)
        method, ridge, scale = check_method(method), check_ridge(ridge), check_scale(scale)
        whitening, seed = check_whitening(whitening), check_seed(seed)
        ensemble = check_positive_int("ensemble", ensemble, MAX_ENSEMBLE)
        ensemble_fraction = check_fraction("ensemble_fraction", ensemble_fraction)
        anchor_set = _check_anchor_set(anchor_set, x.shape[0])
        dtype = _fit_dtype(dtype, x, y)
        if method != "identity":
            warn_if_underdetermined(x.shape[0], y.shape[1])
        x64, y64 = x.detach().cpu().to(torch.float64), y.detach().cpu().to(torch.float64)
        # Each side is fitted in units of a power of two near its spread (exact: no digit changes), so the
        # bridge is the same for embeddings of any scale; the units are folded back into the stored map.
        units = (1.0, 1.0) if method == "identity" else (_spread_unit(x64), _spread_unit(y64))
        xs, ys = x64 / units[0], y64 / units[1]
        if method != "identity":
            check_nonzero_rows(xs, "source_anchors", x.dtype)
            check_nonzero_rows(ys, "target_anchors", y.dtype)

        subsets = ensemble_subsets(x.shape[0], ensemble, ensemble_fraction, seed)
        fit_report: dict[str, Any] = {}
        ridge_selected = None
        members = len(subsets)
        auto = ridge == "auto"
        whole = method == "irp" and (members == 1 or auto)  # decompose all the anchors once
        steps = members + 3 * whole + auto + (3 * members if method == "irp" and members > 1 else 0)
        with _progress_bar(show_progress, steps, f"fitting {method}") as progress:
            if method == "irp":
                problem = IrpProblem.prepare(xs, ys, whitening, progress) if whole else None
                ridge_selected, fit_report = _resolve_ridge(problem, ridge)
                if auto:
                    progress("ridge")
                maps = []
                output_norm = scale if scale == "mean" else (1.0 if scale == "none" else scale) / units[1]
                for rows in subsets:
                    if members > 1:
                        problem = IrpProblem.prepare(xs[rows], ys[rows], whitening, progress)
                    maps.append(problem.map(ridge_selected, output_norm))
                    progress("map")
                del problem
            else:
                maps = []
                for rows in subsets:
                    maps.append(DIRECT_METHODS[method](xs[rows], ys[rows]))
                    progress("map")

        config = LatentBridgeConfig(
            method=method,
            source_dim=x.shape[1],
            target_dim=y.shape[1],
            num_anchors=x.shape[0],
            ridge=ridge,
            ridge_selected=ridge_selected,
            whitening=whitening if method == "irp" else None,
            scale=scale,
            ensemble=ensemble,
            ensemble_fraction=ensemble_fraction,
            seed=seed,
            source_encoder=source_encoder,
            target_encoder=target_encoder,
            anchor_set=None if anchor_set is None else anchor_set.to_dict(),
            anchor_fingerprint=anchor_set.fingerprint if anchor_set else fingerprint([x64, y64]),
            fit_report=fit_report or None,
            dtype=str(dtype).removeprefix("torch."),
        )
        bridge = cls(config)
        bridge._load_fitted(x64, y64, maps, subsets if ensemble > 1 else None, units)
        return bridge

    @torch.no_grad()
    def _load_fitted(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        maps: list[TranslationMap],
        subsets: torch.Tensor | None,
        units: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        """Store the anchors and the maps, fitted on anchors divided by ``units`` (source, target)."""
        self.source_anchors.copy_(x)
        self.target_anchors.copy_(y)
        source_unit, target_unit = units
        for member, translation in enumerate(maps):
            weight, bias, output_norm, output_shift = translation.folded()
            if output_norm > 0:  # renormalised: only the norm and the shift carry target units
                weight, output_norm, output_shift = (
                    weight / source_unit,
                    output_norm * target_unit,
                    output_shift * target_unit,
                )
            else:
                weight, bias = weight * (target_unit / source_unit), bias * target_unit
            self.weight[member].copy_(weight)
            _check_representable(self.weight[member], weight, units)
            self.bias[member].copy_(bias)
            self.output_norm[member] = output_norm
            self.output_shift[member].copy_(output_shift)
        if subsets is not None:
            self.member_indices.copy_(subsets)

    # ------------------------------------------------------------------ translating
    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Translate a (n, d_source) tensor to (n, d_target), computing in the bridge's dtype and returning
        the input's floating dtype. Bad input (shape, NaN/Inf) raises :class:`BridgeInputError`; so does a
        result that is not finite, naming the cause."""
        x = as_tensor(embeddings, "embeddings")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.config.source_dim:
            check_matrix(x, "embeddings", self.config.source_dim)
        y, finite = translate_folded(
            x.to(device=self.weight.device, dtype=self.weight.dtype),
            self.weight,
            self.bias,
            self.output_norm,
            self.output_shift,
        )
        # ``finite`` covers the norms (an overflowed norm would silently map a row to the shift); the
        # final output is checked too, shift and ensemble average included: NaN and Inf survive a sum, so
        # one reduction suffices, and only a sum that overflows needs the element-wise look.
        if not (finite and (bool(torch.isfinite(y.sum())) or bool(torch.isfinite(y).all()))):
            raise self._non_finite_error(x, "translations", _FLOAT64_HINT)
        return _cast_checked(y, x.dtype)

    def translate(self, x: Any) -> Any:
        """Translate source embeddings into the target space.

        ``x`` is (n, d_source) or (d_source,), numpy or torch; the result has the same kind, rank and
        dtype (half precision inputs are computed in the bridge's dtype and cast back). A list of rows
        (what ``datasets.Dataset.map(batched=True)`` hands over) gives a numpy array, so a column
        translates in one line::

            dataset.map(lambda batch: {"translated": bridge.translate(batch["embedding"])}, batched=True)

        NaN or Inf in the input raise :class:`BridgeInputError` naming the rows; nothing non-finite is
        returned.
        """
        is_numpy = isinstance(x, (np.ndarray, list, tuple))
        tensor = as_tensor(x, "embeddings")
        single = tensor.ndim == 1
        if single:
            tensor = tensor.unsqueeze(0)
        y = self(tensor).to(tensor.device)
        if single:
            y = y.squeeze(0)
        return y.cpu().numpy() if is_numpy else y

    @classmethod
    def from_anchor_spaces(
        cls, source_space: AnchorSpace, target_space: AnchorSpace, method: str = "irp", **fit_options: Any
    ) -> LatentBridge:
        """Bridge from ``source_space``'s encoder to ``target_space``'s, from their anchors alone.

        Equal to :meth:`fit` on the same anchor embeddings (with the encoders and anchor set taken from the
        spaces), without loading either encoder. Refuses spaces whose anchor sets differ, including the
        same rows in another order.
        """
        for role, space in (("source_space", source_space), ("target_space", target_space)):
            if not isinstance(space, AnchorSpace):
                raise BridgeInputError(f"{role} must be an AnchorSpace, got {type(space).__name__}.")
        clashes = {"source_encoder", "target_encoder", "anchor_set"} & fit_options.keys()
        if clashes:
            raise BridgeInputError(
                f"{', '.join(sorted(clashes))} come from the anchor spaces; do not pass them."
            )
        if source_space.fingerprint != target_space.fingerprint:
            difference = _describe_difference(source_space.anchor_set, target_space.anchor_set)
            raise IncompatibleEncoderError(
                f"the anchor spaces were built on different anchor sets (fingerprints {source_space.fingerprint} "
                f"and {target_space.fingerprint}: {difference}). Embed the same anchor set, rows in the same "
                "order, with both encoders."
            )
        return cls.fit(
            source_space.anchors,
            target_space.anchors,
            method,
            source_encoder=source_space.encoder,
            target_encoder=target_space.encoder,
            anchor_set=source_space.anchor_set,
            **fit_options,
        )

    # ------------------------------------------------------------------ sharing (card, loading checks)
    def card_info(self) -> CardInfo:
        """The model card: encoders, method and parameters, anchors, measured results, how to use it."""
        config = self.config
        source, target = config.source, config.target
        if source is not None and source.dim is None:
            source = replace(source, dim=config.source_dim)
        if target is not None and target.dim is None:
            target = replace(target, dim=config.target_dim)
        parameters: dict[str, Any] = {
            "dimensions": f"{config.source_dim} -> {config.target_dim}",
            "anchors": config.num_anchors,
        }
        if config.method == "irp":
            parameters["ridge (relative)"] = _ridge_text(config)
            whitening = config.whitening
            parameters["whitening (shrinkage)"] = "off (plain IRP)" if whitening is None else f"{whitening:g}"
            parameters["scale"] = config.scale
        if config.ensemble > 1:
            parameters["ensemble"] = (
                f"{config.ensemble} members x {config.ensemble_fraction:.0%} of the anchors"
            )
        parameters["library version"] = config.library_version
        imports, inputs = example_inputs(source)
        return CardInfo(
            title=f"Latent bridge: {short_name(source)} -> {short_name(target)}",
            summary=(
                "A latent space translation from one encoder's embedding space into another's, fitted on "
                "parallel anchors without training. Feed it the source encoder's embeddings and use the output "
                "wherever the target encoder's embeddings are expected (e.g. the target's classifier head)."
            ),
            usage=(
                f"{imports}from hf_latent_bridge import LatentBridge, load_encoder\n\n"
                f'bridge = LatentBridge.from_pretrained("{REPO_PLACEHOLDER}")\n'
                f"source = {load_encoder_call(source)}\n"
                f"translated = bridge.translate(source.embed({inputs}))  # in {short_name(target)}'s space"
            ),
            source=source,
            target=target,
            method=config.method,
            parameters=parameters,
            anchor_set=config.anchor_set,
            fingerprint=config.anchor_fingerprint,
            num_anchors=config.num_anchors,
            metrics=config.metrics or {},
            task=classification_task(source),
            tags=["latent-bridge", "latent-space-translation"],
        )

    def _check_loaded_tensors(self, where: str) -> None:
        """Finite tensors, non-negative output norms, member subsets that index the anchors."""
        super()._check_loaded_tensors(where)
        if bool((self.output_norm < 0).any()):
            raise CheckpointError(
                f"{where}: output_norm holds a negative value ({self.output_norm.min().item():.4g}); a norm is >= 0, "
                "so the file was altered. Download it again (force_download=True) or fit the bridge again."
            )
        if self.config.ensemble > 1:
            rows = self.member_indices
            if bool((rows < 0).any() | (rows >= self.config.num_anchors).any()) or any(
                int(member.unique().numel()) != member.numel() for member in rows
            ):
                raise CheckpointError(
                    f"{where}: member_indices are not distinct anchor rows in 0..{self.config.num_anchors - 1}; "
                    "the file was altered. Download it again (force_download=True) or fit the bridge again."
                )


_FLOAT64_HINT = "or fit the bridge in float64 (LatentBridge.fit(..., dtype=torch.float64))"


def _cast_checked(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``y`` in the caller's ``dtype``; refused if it does not fit there (float16's range ends at 65504)."""
    cast = y.to(dtype)
    if cast.dtype != y.dtype and not bool(torch.isfinite(cast).all()):
        raise BridgeInputError(
            f"the translations exceed the range of {dtype} (the embeddings' dtype): pass the embeddings as "
            "float32 (embeddings.float()) to get them back in float32."
        )
    return cast


def _spread_unit(anchors: torch.Tensor) -> float:
    """A power of two near the largest deviation of ``anchors`` from their mean (float64, exact)."""
    coarse = power_of_two_scale(anchors)
    scaled = anchors / coarse
    return coarse * power_of_two_scale(scaled - scaled.mean(dim=0))


def _check_representable(stored: torch.Tensor, exact: torch.Tensor, units: tuple[float, float]) -> None:
    """Refuse a map that the storage dtype cannot hold: it overflows, or sinks into subnormal numbers
    (a direct map between spaces whose scales differ by ~1e36 or more, in 32 or 16 bits)."""
    error = torch.linalg.vector_norm(stored.double() - exact) / torch.linalg.vector_norm(exact).clamp_min(
        1e-300
    )
    if not bool(torch.isfinite(error)) or float(error) > 4 * torch.finfo(stored.dtype).eps:
        raise BridgeInputError(
            f"the fitted map cannot be stored in {stored.dtype}: the source anchors' scale (about "
            f"{units[0]:.0e}) and the target's (about {units[1]:.0e}) are too far apart for its range. Fit "
            "with dtype=torch.float64, or rescale one side's embeddings."
        )


def _fit_dtype(dtype: Any, x: torch.Tensor, y: torch.Tensor) -> torch.dtype:
    """The storage dtype: the one asked for (a floating torch dtype or its name), else float64 if either
    side is float64, else float32."""
    if dtype is None:
        return torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point and dtype.itemsize >= 2):
        raise BridgeInputError(
            f"dtype must be a floating torch dtype (torch.float32, torch.float64, torch.bfloat16 or "
            f"torch.float16), got {dtype!r}."
        )
    return dtype


def _check_anchor_set(anchor_set: Any, num_anchors: int) -> AnchorSet | None:
    """The anchor set as an :class:`AnchorSet` naming exactly ``num_anchors`` rows (or None)."""
    if anchor_set is None:
        return None
    if isinstance(anchor_set, dict):
        anchor_set = AnchorSet.from_dict(anchor_set)
    if not isinstance(anchor_set, AnchorSet):
        raise BridgeInputError(
            f"anchor_set must be an AnchorSet (or its dict), got {type(anchor_set).__name__}."
        )
    if len(anchor_set.indices) != num_anchors:
        raise BridgeInputError(
            f"anchor_set names {len(anchor_set.indices)} rows but {num_anchors} anchors were given; row i of the "
            "anchors must embed anchor_set.indices[i]."
        )
    return anchor_set


def _ridge_text(config: LatentBridgeConfig) -> str:
    if config.ridge_selected is None:
        return "-"
    chosen = f"{config.ridge_selected:.4g}"
    return f"{chosen} (chosen by cross-validation on the anchors)" if config.ridge == "auto" else chosen


def _storage_dtype(config: LatentBridgeConfig) -> torch.dtype:
    dtype = getattr(config, "dtype", None) or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise CheckpointError(f"config dtype {config.dtype!r} is not a floating point torch dtype.")
    return dtype


def _resolve_ridge(problem: IrpProblem | None, ridge: float | str) -> tuple[float, dict[str, Any]]:
    if ridge != "auto" or problem is None:
        return float(ridge), {}
    if problem.source.rows.shape[0] < MIN_ANCHORS_FOR_AUTO_RIDGE:
        return 0.0, {"ridge_note": f"fewer than {MIN_ANCHORS_FOR_AUTO_RIDGE} anchors: no ridge"}
    best, scores = problem.choose_ridge()
    return best, {"ridge_cv_cosine": {f"{r:.4g}": round(s, 6) for r, s in scores.items()}}


@contextmanager
def _progress_bar(show: bool, total: int, description: str) -> Iterator[Progress]:
    """A ``progress(stage)`` callback that advances a tqdm bar by one step (a no-op when hidden)."""
    with tqdm(total=total, desc=description, disable=not show, leave=False, unit="step") as bar:

        def progress(stage: str) -> None:
            bar.set_postfix_str(stage, refresh=False)
            bar.update()

        yield progress


def _describe_difference(a: AnchorSet, b: AnchorSet) -> str:
    for name in ("dataset", "revision", "split", "column", "extra"):
        if getattr(a, name) != getattr(b, name):
            return f"{name} differs ({getattr(a, name)!r} vs {getattr(b, name)!r})"
    if sorted(a.indices) == sorted(b.indices):
        return "the same rows in a different order (anchor i must be the same input on both sides)"
    return f"different rows ({len(set(a.indices) ^ set(b.indices))} indices differ)"
