"""AnchorSpace: one encoder's embeddings of a shared anchor set, as a shareable artifact.

IRP factorises per side (see :mod:`.projection`): the source factor needs only the source encoder's
anchor embeddings and the target factor only the target's. So N encoders need N anchor spaces, not
N x N bridges: any two spaces built on the same anchor set (same data set, revision, split, column and
the same row indices in the same order, i.e. the same fingerprint) compose into a bridge with
:func:`compose_bridge` / ``LatentBridge.from_anchor_spaces`` without loading either encoder.

An anchor space is a ``PreTrainedModel`` (model_type ``latent_anchor_space``, registered with
``AutoConfig``/``AutoModel`` on import): ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``
work as for bridges, with the same strict loading. The anchor set itself can be published as a Hub
data set with :func:`push_anchor_rows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from .anchors import AnchorSet
from .buffers import BufferStateMixin
from .config import EncoderRef
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .hub import HubCardMixin
from .projection import DEFAULT_WHITENING, AnchorSpectrum, anchor_spectrum, source_factor, target_factor
from .validation import as_tensor, check_matrix, check_nonzero_rows

if TYPE_CHECKING:
    import datasets
    from huggingface_hub import CommitInfo

    from .bridge import LatentBridge

#: Relative tolerance for the stored statistics to agree with the stored anchors on load.
STATISTICS_RTOL = 1e-5


class AnchorSpaceConfig(PreTrainedConfig):
    r"""Configuration of an :class:`AnchorSpace`.

    Args:
        encoder: :class:`~hf_latent_bridge.EncoderRef` as a dict (id or path, revision, pooling, ...).
        anchor_set: :class:`~hf_latent_bridge.AnchorSet` as a dict (data set, revision, split, indices).
        anchor_fingerprint: the anchor set's fingerprint; spaces compose only when theirs are equal.
        num_anchors / dim: shape of the anchor embeddings.
        norm_scale: mean norm of the centred anchors (the scale IRP restores on the output side).
    """

    model_type = "latent_anchor_space"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        anchor_set: dict[str, Any] | None = None,
        anchor_fingerprint: str | None = None,
        num_anchors: int | None = None,
        dim: int | None = None,
        norm_scale: float | None = None,
        library_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        ref = EncoderRef.from_any(encoder)
        self.encoder = None if ref is None else ref.to_dict()
        self.anchor_set = anchor_set
        self.anchor_fingerprint = anchor_fingerprint
        self.num_anchors = num_anchors
        self.dim = dim
        self.norm_scale = norm_scale
        if library_version is None:
            from . import __version__

            library_version = __version__
        self.library_version = library_version
        super().__init__(**kwargs)
        for name in ("num_anchors", "dim"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise CheckpointError(f"{name} must be a positive integer, got {value!r}.")


class AnchorSpace(HubCardMixin, BufferStateMixin, PreTrainedModel):
    """One encoder x one anchor set: the anchor embeddings ``(k, d)`` and their mean.

    Build with :meth:`from_embeddings`; compose two with ``LatentBridge.from_anchor_spaces``.
    """

    config_class = AnchorSpaceConfig
    base_model_prefix = "anchor_space"
    main_input_name = "embeddings"

    def __init__(self, config: AnchorSpaceConfig) -> None:
        super().__init__(config)
        if config.num_anchors is None or config.dim is None:
            raise CheckpointError(
                "config has no num_anchors/dim: it does not describe anchor embeddings. "
                "Create anchor spaces with AnchorSpace.from_embeddings(embeddings, anchor_set=..., encoder=...)."
            )
        self.register_buffer("anchors", torch.empty(config.num_anchors, config.dim))
        self.register_buffer("mean", torch.empty(config.dim))
        self.post_init()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_embeddings(
        cls,
        embeddings: Any,
        *,
        anchor_set: AnchorSet | dict[str, Any],
        encoder: EncoderRef | dict[str, Any] | str,
        dtype: torch.dtype | None = None,
    ) -> AnchorSpace:
        """Wrap ``encoder``'s embeddings ``(k, d)`` of the ``k`` rows of ``anchor_set``, in that order."""
        anchor_set = AnchorSet.from_dict(anchor_set) if isinstance(anchor_set, dict) else anchor_set
        if not isinstance(anchor_set, AnchorSet):
            raise BridgeInputError(
                "anchor_set must be an AnchorSet (data set, revision, split, indices): without it two spaces "
                "cannot prove they embedded the same inputs."
            )
        ref = EncoderRef.from_any(encoder)
        if ref is None:
            raise BridgeInputError(
                "encoder is required: pass its Hub id (or EncoderRef with revision and pooling)."
            )
        x = as_tensor(embeddings, "embeddings")
        check_matrix(x, "embeddings")
        k, d = x.shape
        if k != len(anchor_set.indices):
            raise BridgeInputError(
                f"got {k} embeddings for an anchor set of {len(anchor_set.indices)} rows; embed exactly the "
                "rows anchor_set.indices lists, in that order."
            )
        if ref.dim is not None and ref.dim != d:
            raise BridgeInputError(f"encoder says dim={ref.dim} but the embeddings have {d} columns.")
        x64 = x.detach().to(torch.float64)
        check_nonzero_rows(x64 - x64.mean(0), "embeddings")
        config = AnchorSpaceConfig(
            encoder={**ref.to_dict(), "dim": d},
            anchor_set=anchor_set.to_dict(),
            anchor_fingerprint=anchor_set.fingerprint,
            num_anchors=k,
            dim=d,
            norm_scale=float(torch.linalg.vector_norm(x64 - x64.mean(0), dim=1).mean()),
        )
        space = cls(config)
        with torch.no_grad():
            space.anchors.copy_(x64)
            space.mean.copy_(x64.mean(0))
        return space.to(dtype or x.dtype)

    # ------------------------------------------------------------------ what it holds
    @property
    def encoder(self) -> EncoderRef:
        return EncoderRef.from_any(self.config.encoder)

    @property
    def anchor_set(self) -> AnchorSet:
        return AnchorSet.from_dict(self.config.anchor_set)

    @property
    def fingerprint(self) -> str:
        return self.config.anchor_fingerprint

    def source_factor(self, whitening: float | None = DEFAULT_WHITENING) -> torch.Tensor:
        """(d, k) float64: this encoder's side of IRP when it is the source (its anchors only)."""
        return source_factor(self.anchors, whitening)

    def spectrum(self, whitening: float | None = DEFAULT_WHITENING) -> AnchorSpectrum:
        """SVD of the centred, whitened, normalised anchors: this side of IRP as the target."""
        return anchor_spectrum(self.anchors, "anchors", whitening)

    def target_factor(
        self, relative_ridge: float, whitening: float | None = DEFAULT_WHITENING
    ) -> torch.Tensor:
        """(k, d) float64 regularised inverse when this encoder is the target (its anchors only)."""
        spectrum = self.spectrum(whitening)
        return target_factor(spectrum, relative_ridge * spectrum.mean_square)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any):
        """Load (local folder or Hub repo) and check that the anchors, statistics and anchor set agree."""
        wants_info = kwargs.pop("output_loading_info", False)
        space, info = super().from_pretrained(
            pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
        )
        space._check_consistency(str(pretrained_model_name_or_path))
        return (space, info) if wants_info else space

    def _check_consistency(self, name: str) -> None:
        config = self.config
        if config.anchor_set is None or config.encoder is None:
            raise CheckpointError(
                f"{name} records no anchor set or encoder: it is not a usable anchor space."
            )
        recorded = AnchorSet.from_dict(config.anchor_set)
        if recorded.fingerprint != config.anchor_fingerprint or len(recorded.indices) != config.num_anchors:
            raise CheckpointError(
                f"{name}: the anchor set in config.json does not match its fingerprint or anchor count; the "
                "config was edited. Rebuild the space with AnchorSpace.from_embeddings."
            )
        x = self.anchors.to(torch.float64)
        mean = x.mean(0)
        tolerance = STATISTICS_RTOL * (1 + float(x.abs().max()))
        norm_scale = float(torch.linalg.vector_norm(x - mean, dim=1).mean())
        if (mean - self.mean.to(torch.float64)).abs().max() > tolerance or abs(
            norm_scale - config.norm_scale
        ) > tolerance:
            raise CheckpointError(
                f"{name}: the stored statistics do not match the stored anchors; the tensors were altered. "
                "Download it again (force_download=True) or rebuild the space."
            )


def _describe_difference(a: AnchorSet, b: AnchorSet) -> str:
    for name in ("dataset", "revision", "split", "column", "extra"):
        if getattr(a, name) != getattr(b, name):
            return f"{name} differs ({getattr(a, name)!r} vs {getattr(b, name)!r})"
    if sorted(a.indices) == sorted(b.indices):
        return "the same rows in a different order (anchor i must be the same input on both sides)"
    return f"different rows ({len(set(a.indices) ^ set(b.indices))} indices differ)"


def compose_bridge(
    source_space: AnchorSpace, target_space: AnchorSpace, method: str = "irp", **fit_options: Any
) -> LatentBridge:
    """Bridge from ``source_space``'s encoder to ``target_space``'s, from their anchors alone.

    Equal to ``LatentBridge.fit`` on the same anchor embeddings (with the encoders and anchor set taken
    from the spaces). Refuses spaces whose anchor sets differ, including the same rows in another order.
    """
    from .bridge import LatentBridge

    for role, space in (("source_space", source_space), ("target_space", target_space)):
        if not isinstance(space, AnchorSpace):
            raise BridgeInputError(f"{role} must be an AnchorSpace, got {type(space).__name__}.")
    clashes = {"source_encoder", "target_encoder", "anchor_set"} & fit_options.keys()
    if clashes:
        raise BridgeInputError(f"{', '.join(sorted(clashes))} come from the anchor spaces; do not pass them.")
    if source_space.fingerprint != target_space.fingerprint:
        difference = _describe_difference(source_space.anchor_set, target_space.anchor_set)
        raise IncompatibleEncoderError(
            f"the anchor spaces were built on different anchor sets (fingerprints {source_space.fingerprint} "
            f"and {target_space.fingerprint}: {difference}). Embed the same anchor set, rows in the same "
            "order, with both encoders."
        )
    return LatentBridge.fit(
        source_space.anchors,
        target_space.anchors,
        method,
        source_encoder=source_space.encoder,
        target_encoder=target_space.encoder,
        anchor_set=source_space.anchor_set,
        **fit_options,
    )


def anchor_rows(dataset: datasets.Dataset, anchor_set: AnchorSet) -> datasets.Dataset:
    """The anchor rows of ``dataset`` in anchor order, with ``anchor_index`` and ``row_index`` columns."""
    if len(anchor_set.indices) and max(anchor_set.indices) >= len(dataset):
        raise BridgeInputError(
            f"anchor_set has row index {max(anchor_set.indices)} but the data set has {len(dataset)} rows; "
            "pass the data set (and split) the anchor set was drawn from."
        )
    rows = dataset.select(list(anchor_set.indices))
    rows = rows.add_column("row_index", list(anchor_set.indices))
    return rows.add_column("anchor_index", list(range(len(anchor_set.indices))))


def push_anchor_rows(
    dataset: datasets.Dataset,
    anchor_set: AnchorSet,
    repo_id: str,
    *,
    token: bool | str | None = None,
    private: bool | None = None,
) -> CommitInfo:
    """Publish the anchor rows as a Hub data set (one split named after ``anchor_set.split``).

    The commit message carries the anchor-set fingerprint, so the published rows can be traced back.
    """
    rows = anchor_rows(dataset, anchor_set)
    return rows.push_to_hub(
        repo_id,
        split=anchor_set.split or "train",
        token=token,
        private=private,
        commit_message=f"Anchor rows of {anchor_set.dataset} (anchor-set fingerprint {anchor_set.fingerprint})",
    )
