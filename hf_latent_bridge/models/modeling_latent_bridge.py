"""A self-contained, inference-only latent bridge: the code shipped with ``remote_code=True`` pushes.

Saving a bridge with ``remote_code=True`` copies this file next to ``config.json`` and names its two
classes in ``auto_map``, so ``AutoModel.from_pretrained(repo, trust_remote_code=True)`` loads the bridge
where ``hf_latent_bridge`` is not installed. It reads the same ``config.json`` and ``model.safetensors``
as :class:`hf_latent_bridge.LatentBridge`, whose forward pass is :func:`translate_folded` below, so the
two translate identically. Keep this file free of imports from ``hf_latent_bridge``.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedConfig, PreTrainedModel


def translate_folded(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    output_norm: torch.Tensor,
    output_shift: torch.Tensor,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, bool]:
    """Sum over members of ``y = x @ W + b``, renormalised to ``output_norm`` and shifted when that norm is
    positive. Each member's share (1 / m in an ensemble, a blend's weights) is folded into its tensors.
    Returns the (n, d_target) result, written into ``out`` when given, and whether it is all finite."""
    total, finite, needs_sum = None, True, weight.shape[0] > 1
    for member in range(weight.shape[0]):
        y = torch.addmm(bias[member], x, weight[member], out=out if total is None else None)
        norm = output_norm[member]
        if norm > 0:
            # A NaN or Inf anywhere in a row shows in its norm: n values to check, not n x d.
            row_norms = torch.linalg.vector_norm(y, dim=1, keepdim=True)
            finite = finite and bool(torch.isfinite(row_norms.sum()))
            factor = norm / row_norms.clamp_min(1e-12)
            # In place unless autograd needs y: a second (n, d) buffer costs more than the arithmetic.
            y = torch.addcmul(output_shift[member], y, factor, out=None if y.requires_grad else y)
        else:
            needs_sum = True  # a member without renormalisation: its row norms were not checked
        total = y if total is None else total.add_(y) if out is not None else total + y
    # NaN and Inf survive a sum: one reduction checks the result (a sum that overflows counts as not finite)
    return total, finite and (not needs_sum or bool(torch.isfinite(total.sum())))


class LatentBridgeConfig(PreTrainedConfig):
    """The fields of a bridge's config.json that inference needs; the others are kept as they are."""

    model_type = "latent_bridge"

    def __init__(self, source_dim=None, target_dim=None, num_anchors=None, ensemble=1, **kwargs):
        self.source_dim = source_dim
        self.target_dim = target_dim
        self.num_anchors = num_anchors
        self.ensemble = ensemble
        super().__init__(**kwargs)


class LatentBridge(PreTrainedModel):
    """Translate source-encoder embeddings (n, d_source) into the target encoder's space (n, d_target)."""

    config_class = LatentBridgeConfig
    main_input_name = "embeddings"

    def __init__(self, config: LatentBridgeConfig) -> None:
        super().__init__(config)
        k, d_x, d_y = config.num_anchors, config.source_dim, config.target_dim
        # a blend sums two maps; an ensemble averages its members
        members = 2 if getattr(config, "method_selected", None) == "blend" else config.ensemble
        for name, shape in {
            "source_anchors": (k, d_x),
            "target_anchors": (k, d_y),
            "weight": (members, d_x, d_y),
            "bias": (members, d_y),
            "output_norm": (members,),
            "output_shift": (members, d_y),
        }.items():
            self.register_buffer(name, torch.zeros(shape))
        if config.ensemble > 1:
            size = max(2, round(getattr(config, "ensemble_fraction", 0.8) * k))
            self.register_buffer("member_indices", torch.zeros(members, size, dtype=torch.long))
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Every buffer comes from model.safetensors."""

    @torch.no_grad()
    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = embeddings.to(device=self.weight.device, dtype=self.weight.dtype)
        y, finite = translate_folded(x, self.weight, self.bias, self.output_norm, self.output_shift)
        if not finite:
            raise ValueError("the translation is not finite: the embeddings hold NaN, Inf or huge values.")
        return y.to(embeddings.dtype)

    def translate(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self(embeddings)
