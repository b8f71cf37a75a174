"""The Hugging Face artifacts: configs, the bridge, anchor spaces, heads, stitched models, the pipeline,
and the save/push/load contract and model cards they share."""

from __future__ import annotations

from .anchor_space import AnchorSpace
from .bridge import LatentBridge
from .classifier_head import head_from_classifier
from .configs import AnchorSpaceConfig, ClassificationHeadConfig, LatentBridgeConfig, StitchedConfig
from .head import ClassificationHead
from .pipeline import StitchedClassificationPipeline
from .stitched import StitchedModel

__all__ = [
    "AnchorSpace",
    "AnchorSpaceConfig",
    "ClassificationHead",
    "ClassificationHeadConfig",
    "LatentBridge",
    "LatentBridgeConfig",
    "StitchedClassificationPipeline",
    "StitchedConfig",
    "StitchedModel",
    "head_from_classifier",
]
