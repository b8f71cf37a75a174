"""hf_latent_bridge: reuse pretrained models by composition, through latent space translation.

Importing the package registers ``LatentBridge`` with transformers' Auto classes.
"""

from __future__ import annotations

__version__ = "0.1.0"

from transformers import AutoConfig, AutoModel

from .anchors import AnchorSet, select_anchors
from .bridge import LatentBridge
from .config import EncoderRef, LatentBridgeConfig
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .projection import inverse_relative_projection, relative_projection

AutoConfig.register(LatentBridgeConfig.model_type, LatentBridgeConfig, exist_ok=True)
AutoModel.register(LatentBridgeConfig, LatentBridge, exist_ok=True)

__all__ = [
    "AnchorSet",
    "BridgeInputError",
    "CheckpointError",
    "EncoderRef",
    "IncompatibleEncoderError",
    "LatentBridge",
    "LatentBridgeConfig",
    "__version__",
    "inverse_relative_projection",
    "relative_projection",
    "select_anchors",
]
