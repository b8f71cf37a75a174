"""hf_latent_bridge: reuse pretrained models by composition, through latent space translation.

Importing the package registers its models with transformers' Auto classes and the
``"stitched-classification"`` pipeline task. Layers, from the bottom: ``core`` (the mathematics, pure
torch), ``encoding`` (inputs to embeddings), ``models`` (the Hugging Face artifacts), ``workflow`` (from
two encoders and data to a scored model), ``evaluation`` and ``cli``; ``demo`` is the offline demo.
"""

from __future__ import annotations

from ._version import __version__
from .core.anchor_set import AnchorSet
from .core.anchors import select_anchors
from .core.projection import inverse_relative_projection, relative_projection
from .encoding import CallableEncoder, Encoder, EncoderRef, embed_dataset, load_encoder
from .errors import BridgeInputError, CheckpointError, IncompatibleEncoderError, OutputExistsError
from .models import (
    AnchorSpace,
    AnchorSpaceConfig,
    ClassificationHead,
    ClassificationHeadConfig,
    LatentBridge,
    LatentBridgeConfig,
    StitchedClassificationPipeline,
    StitchedConfig,
    StitchedModel,
    head_from_classifier,
)
from .models.registration import register
from .workflow import fit_from_encoders, stitch

register()

__all__ = [
    "AnchorSet",
    "AnchorSpace",
    "AnchorSpaceConfig",
    "BridgeInputError",
    "CallableEncoder",
    "CheckpointError",
    "ClassificationHead",
    "ClassificationHeadConfig",
    "Encoder",
    "EncoderRef",
    "IncompatibleEncoderError",
    "LatentBridge",
    "LatentBridgeConfig",
    "OutputExistsError",
    "StitchedClassificationPipeline",
    "StitchedConfig",
    "StitchedModel",
    "__version__",
    "embed_dataset",
    "fit_from_encoders",
    "head_from_classifier",
    "inverse_relative_projection",
    "load_encoder",
    "relative_projection",
    "select_anchors",
    "stitch",
]
