"""hf_latent_bridge: reuse pretrained models by composition, through latent space translation.

Importing the package registers its models with transformers' Auto classes and the
``"stitched-classification"`` pipeline task. The layers, from the bottom: ``core`` (the mathematics,
pure torch), ``encoding`` (inputs to embeddings), ``models`` (the Hugging Face artifacts),
``evaluation``, ``cli``; ``demo`` holds the offline demo and its resources.
"""

from __future__ import annotations

from . import _compat
from ._version import __version__
from .core.anchor_set import AnchorSet
from .core.anchors import select_anchors
from .core.projection import inverse_relative_projection, relative_projection
from .encoding import CallableEncoder, Encoder, EncoderRef, embed_dataset, load_encoder
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError
from .models import (
    AnchorSpace,
    AnchorSpaceConfig,
    ClassificationHead,
    LatentBridge,
    LatentBridgeConfig,
    StitchedClassificationPipeline,
    StitchedConfig,
    StitchedModel,
    head_from_classifier,
)
from .models.registration import register

register()
_compat.install()

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
