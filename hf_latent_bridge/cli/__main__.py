"""``python -m hf_latent_bridge.cli`` (also under torchrun / accelerate launch)."""

from hf_latent_bridge.cli import app

app()
