"""The mathematics of latent space translation, on torch tensors only (never imports transformers).

``projection`` (relative projection and its inverse), ``ridge`` (choosing IRP's regularisation),
``alignment`` (IRP and the direct baselines as one :class:`~.alignment.TranslationMap`), ``anchors``
(choosing anchor rows), ``anchor_set`` (naming them), ``options`` (the rule of every option),
``validation`` (checks of user tensors), ``metrics``, ``logistic`` (the heads' solver) and
``scale_invariance`` (does a head survive IRP's norm restore?).
"""

from __future__ import annotations

from .alignment import DIRECT_METHODS, TranslationMap
from .anchor_set import AnchorSet, fingerprint
from .anchors import select_anchors
from .options import METHODS, STRATEGIES
from .projection import inverse_relative_projection, relative_projection

__all__ = [
    "DIRECT_METHODS",
    "METHODS",
    "STRATEGIES",
    "AnchorSet",
    "TranslationMap",
    "fingerprint",
    "inverse_relative_projection",
    "relative_projection",
    "select_anchors",
]
