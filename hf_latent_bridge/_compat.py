"""Import paths of hf_latent_bridge 0.1, which had one flat package: each old module now forwards to
the modules that took over its contents, so ``from hf_latent_bridge.resources import minilm_path``
keeps working (with a ``DeprecationWarning`` naming the new home).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

PACKAGE = __name__.rpartition(".")[0]

#: Old module -> the new modules that hold its public names, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "alignment": ("core.alignment",),
    "anchors": ("core.anchors", "core.anchor_set"),
    "anchor_space": ("models.anchor_space", "models.anchor_rows", "models.configs"),
    "bridge": ("models.bridge",),
    "buffers": ("models.buffers",),
    "config": ("models.configs", "encoding.reference"),
    "encoders": ("encoding", "encoding.embed", "encoding.inputs", "encoding.loading"),
    "heads": ("models.head", "models.classifier_head"),
    "hub": ("models.hub_mixin",),
    "model_card": ("models.cards",),
    "pipeline": ("models.pipeline",),
    "plotting": ("evaluation.plots",),
    "projection": ("core.projection", "core.ridge"),
    "resources": ("demo", "demo.models", "demo.data"),
    "stitched": ("models.stitched", "models.configs"),
    "validation": ("core.validation",),
}


class _MovedModule(types.ModuleType):
    """Stands for an old module; attribute lookups go to the new homes."""

    def __init__(self, name: str, homes: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved: see {', '.join(homes)}.")
        self._homes = tuple(f"{PACKAGE}.{home}" for home in homes)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for home in self._homes:
            module = importlib.import_module(home)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for home in self._homes:
            names.update(n for n in dir(importlib.import_module(home)) if not n.startswith("_"))
        return sorted(names)


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        old = spec.name.rpartition(".")[2]
        homes = MOVED[old]
        warnings.warn(
            f"{spec.name} moved in hf_latent_bridge 0.2: import from "
            f"{' or '.join(f'{PACKAGE}.{h}' for h in homes)} instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MovedModule(spec.name, homes)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module forwards lookups."""


def install() -> None:
    """Serve the old module names (idempotent); after the real finders, so real modules win."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
