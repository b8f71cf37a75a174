"""Registering the package's models with transformers' Auto classes and its pipeline task.

transformers has no plugin entry point, so this runs when ``hf_latent_bridge`` is imported; it is
idempotent.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel

from .anchor_space import AnchorSpace
from .bridge import LatentBridge
from .head import ClassificationHead
from .pipeline import register_pipeline
from .stitched import StitchedModel


def register() -> None:
    for model_class in (LatentBridge, AnchorSpace, ClassificationHead, StitchedModel):
        config_class = model_class.config_class
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
    register_pipeline()
