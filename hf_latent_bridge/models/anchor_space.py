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

from typing import Any

import torch
from transformers import PreTrainedModel

from ..core.anchor_set import AnchorSet
from ..core.projection import DEFAULT_WHITENING, AnchorSpectrum, anchor_spectrum, source_factor, target_factor
from ..core.validation import as_tensor, check_matrix, check_nonzero_rows
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError
from .buffers import BufferStateMixin
from .cards import REPO_PLACEHOLDER, CardInfo, short_name
from .configs import AnchorSpaceConfig
from .hub_mixin import HubCardMixin

#: Relative tolerance for the stored statistics to agree with the stored anchors on load.
STATISTICS_RTOL = 1e-5


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
        check_nonzero_rows(x64, "embeddings", x.dtype)
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

    # ------------------------------------------------------------------ sharing (card, loading checks)
    def card_info(self) -> CardInfo:
        """The model card: the encoder, the anchor set and how to compose spaces into a bridge."""
        config = self.config
        return CardInfo(
            title=f"Anchor space: {short_name(self.encoder)}",
            summary=(
                "One encoder's embeddings of a shared, fingerprinted anchor set, with their statistics. "
                "Two anchor spaces on the same anchor set compose into a bridge between their encoders "
                "(`LatentBridge.from_anchor_spaces`) without loading either encoder: N encoders need N "
                "anchor spaces, not N x N bridges."
            ),
            usage=(
                "from hf_latent_bridge import AnchorSpace, LatentBridge\n\n"
                f'space = AnchorSpace.from_pretrained("{REPO_PLACEHOLDER}")\n'
                'other = AnchorSpace.from_pretrained("<an anchor space of another encoder, same fingerprint>")\n'
                "bridge = LatentBridge.from_anchor_spaces(other, space)  # other's encoder -> this one"
            ),
            source=self.encoder,
            parameters={
                "dimension": config.dim,
                "anchors": config.num_anchors,
                "mean norm of the centred anchors": round(float(config.norm_scale), 6),
                "library version": config.library_version,
            },
            anchor_set=config.anchor_set,
            fingerprint=config.anchor_fingerprint,
            num_anchors=config.num_anchors,
            tags=["latent-bridge", "latent-anchor-space"],
            limitations="An anchor space says nothing about other encoders until composed with one of theirs.",
        )

    def _check_loaded_tensors(self, where: str) -> None:
        """Finite anchors, and an anchor set, mean and mean norm that agree with them."""
        super()._check_loaded_tensors(where)
        config = self.config
        if config.anchor_set is None or config.encoder is None or config.norm_scale is None:
            raise CheckpointError(
                f"{where} records no anchor set, encoder or norm_scale: it is not a usable anchor space. "
                "Rebuild it with AnchorSpace.from_embeddings."
            )
        recorded = AnchorSet.from_dict(config.anchor_set)
        if recorded.fingerprint != config.anchor_fingerprint or len(recorded.indices) != config.num_anchors:
            raise CheckpointError(
                f"{where}: the anchor set in config.json does not match its fingerprint or anchor count; the "
                "config was edited. Rebuild the space with AnchorSpace.from_embeddings."
            )
        x = self.anchors.to(torch.float64)
        mean = x.mean(0)
        tolerance = STATISTICS_RTOL * (1 + float(x.abs().max()))
        norm_scale = float(torch.linalg.vector_norm(x - mean, dim=1).mean())
        if not (
            float((mean - self.mean.to(torch.float64)).abs().max()) <= tolerance
            and abs(norm_scale - config.norm_scale) <= tolerance
        ):
            raise CheckpointError(
                f"{where}: the stored statistics do not match the stored anchors; the tensors were altered. "
                "Download it again (force_download=True) or rebuild the space."
            )
