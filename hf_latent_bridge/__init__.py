"""hf_latent_bridge: reuse pretrained models by composition, through latent space translation.

Importing the package registers ``LatentBridge`` with transformers' Auto classes.
"""

from __future__ import annotations

__version__ = "0.1.0"

from transformers import AutoConfig, AutoModel

from .anchor_space import AnchorSpace, AnchorSpaceConfig
from .anchors import AnchorSet, select_anchors
from .bridge import LatentBridge
from .config import EncoderRef, LatentBridgeConfig
from .encoders import CallableEncoder, Encoder, embed_dataset, load_encoder
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .heads import ClassificationHead, head_from_classifier
from .pipeline import StitchedClassificationPipeline
from .pipeline import register as _register_pipeline
from .projection import inverse_relative_projection, relative_projection
from .stitched import StitchedConfig, StitchedModel

AutoConfig.register(LatentBridgeConfig.model_type, LatentBridgeConfig, exist_ok=True)
AutoModel.register(LatentBridgeConfig, LatentBridge, exist_ok=True)
AutoConfig.register(AnchorSpaceConfig.model_type, AnchorSpaceConfig, exist_ok=True)
AutoModel.register(AnchorSpaceConfig, AnchorSpace, exist_ok=True)
AutoConfig.register(StitchedConfig.model_type, StitchedConfig, exist_ok=True)
AutoModel.register(StitchedConfig, StitchedModel, exist_ok=True)
_register_pipeline()  # the "stitched-classification" task

__all__ = [
    "AnchorSet",
    "AnchorSpace",
    "AnchorSpaceConfig",
    "BridgeInputError",
    "CallableEncoder",
    "CheckpointError",
    "ClassificationHead",
    "Encoder",
    "EncoderRef",
    "IncompatibleEncoderError",
    "LatentBridge",
    "LatentBridgeConfig",
    "StitchedClassificationPipeline",
    "StitchedConfig",
    "StitchedModel",
    "__version__",
    "embed_dataset",
    "head_from_classifier",
    "inverse_relative_projection",
    "load_encoder",
    "relative_projection",
    "select_anchors",
]
