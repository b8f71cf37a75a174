"""AnchorSpace: one encoder's embeddings of a shared anchor set, as a shareable artifact.

IRP factorises per side (see :mod:`hf_latent_bridge.core.projection`): the source factor needs only the
source encoder's anchor embeddings, the target factor only the target's. So N encoders need N anchor
spaces, not N x N bridges: any two spaces on the same anchor set (same fingerprint: data set, revision,
split, column and ordered row indices) compose into a bridge with ``LatentBridge.from_anchor_spaces``
without loading either encoder.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.anchor_set import AnchorSet
from ..core.projection import DEFAULT_WHITENING, anchor_spectrum, source_factor, target_factor
from ..core.validation import as_tensor, check_matrix, check_nonzero_rows
from ..encoding.reference import EncoderRef
from ..errors import BridgeInputError, CheckpointError
from .artifact import ArtifactMixin, BufferModel
from .cards import REPO_PLACEHOLDER, CardInfo, short_name
from .configs import AnchorSpaceConfig

#: Relative tolerance for the stored statistics to agree with the stored anchors on load.
STATISTICS_RTOL = 1e-5


class AnchorSpace(ArtifactMixin, BufferModel):
    """One encoder x one anchor set: the anchor embeddings ``(k, d)`` and their mean.

    Build one with :meth:`from_embeddings`; compose two with ``LatentBridge.from_anchor_spaces``.
    """

    config_class = AnchorSpaceConfig
    base_model_prefix = "anchor_space"

    def __init__(self, config: AnchorSpaceConfig) -> None:
        super().__init__(config)
        if None in (config.num_anchors, config.dim, config.anchor_set, config.encoder, config.mean_norm):
            raise BridgeInputError(
                "this config does not describe anchor embeddings (no anchor set, encoder or shape); create anchor "
                "spaces with AnchorSpace.from_embeddings(embeddings, anchor_set=..., encoder=...)."
            )
        dtype = config.dtype or torch.float32
        self.register_buffer("anchors", torch.empty(config.num_anchors, config.dim, dtype=dtype))
        self.register_buffer("mean", torch.empty(config.dim, dtype=dtype))
        self.post_init()

    @classmethod
    def from_embeddings(
        cls,
        embeddings: Any,
        *,
        anchor_set: AnchorSet | dict[str, Any],
        encoder: Any,
        dtype: torch.dtype | None = None,
    ) -> AnchorSpace:
        """Wrap ``encoder``'s embeddings ``(k, d)`` of the ``k`` rows of ``anchor_set``, in that order."""
        anchor_set = AnchorSet.from_dict(anchor_set) if isinstance(anchor_set, dict) else anchor_set
        if not isinstance(anchor_set, AnchorSet):
            raise BridgeInputError(
                "anchor_set must be an AnchorSet (data set, revision, split, indices): without it two spaces cannot "
                "prove they embedded the same inputs."
            )
        x = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings")
        ref = EncoderRef.from_any(encoder)
        if ref is None or (ref.dim or x.shape[1]) != x.shape[1] or len(x) != len(anchor_set.indices):
            raise BridgeInputError(
                f"got {tuple(x.shape)} embeddings for an anchor set of {len(anchor_set.indices)} rows and encoder "
                f"{ref}; embed exactly the rows anchor_set.indices lists, in that order, and name the encoder."
            )
        x64 = x.detach().double()
        check_nonzero_rows(x64, "embeddings", x.dtype)
        config = AnchorSpaceConfig(
            encoder={**ref.to_dict(), "dim": x.shape[1]},
            anchor_set=anchor_set.to_dict(),
            anchor_fingerprint=anchor_set.fingerprint,
            num_anchors=len(x),
            dim=x.shape[1],
            mean_norm=float(torch.linalg.vector_norm(x64 - x64.mean(0), dim=1).mean()),
            dtype=str(dtype or x.dtype).removeprefix("torch."),
        )
        space = cls(config)
        with torch.no_grad():
            space.anchors.copy_(x64)
            space.mean.copy_(x64.mean(0))
        return space

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
        """(d, k) float64: this encoder's side of IRP as the source (its anchors only)."""
        return source_factor(self.anchors, whitening)

    def target_factor(
        self, relative_ridge: float, whitening: float | None = DEFAULT_WHITENING
    ) -> torch.Tensor:
        """(k, d) float64: the regularised inverse when this encoder is the target (its anchors only)."""
        spectrum = anchor_spectrum(self.anchors, "anchors", whitening)
        return target_factor(spectrum, relative_ridge * spectrum.mean_square)

    def card_info(self) -> CardInfo:
        """The model card: the encoder, the anchor set and how to compose spaces into a bridge."""
        config = self.config
        return CardInfo(
            title=f"Anchor space: {short_name(self.encoder)}",
            summary=(
                "One encoder's embeddings of a shared, fingerprinted anchor set. Two anchor spaces on the same "
                "anchor set compose into a bridge between their encoders (`LatentBridge.from_anchor_spaces`) "
                "without loading either encoder: N encoders need N anchor spaces, not N x N bridges."
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
                "mean norm of the centred anchors": round(config.mean_norm, 6),
                "library version": config.library_version,
            },
            anchor_set=config.anchor_set,
            fingerprint=config.anchor_fingerprint,
            num_anchors=config.num_anchors,
            tags=["latent-bridge", "latent-anchor-space"],
            limitations="An anchor space says nothing about other encoders until composed with one of theirs.",
        )

    def _check_loaded(self, where: str) -> None:
        """Finite anchors, and a fingerprint, mean and mean norm that agree with them."""
        super()._check_loaded(where)
        x = self.anchors.double()
        tolerance = STATISTICS_RTOL * (1 + float(x.abs().max()))
        mean_norm = float(torch.linalg.vector_norm(x - x.mean(0), dim=1).mean())
        if (
            self.anchor_set.fingerprint != self.fingerprint
            or float((x.mean(0) - self.mean.double()).abs().max()) > tolerance
            or abs(mean_norm - self.config.mean_norm) > tolerance
        ):
            raise CheckpointError(
                f"{where}: the stored fingerprint or statistics do not match the stored anchors, so the files were "
                "altered. Download it again (force_download=True) or rebuild the space."
            )
