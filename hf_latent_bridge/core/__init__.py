"""The mathematics of latent space translation, on torch tensors only (never imports transformers).

``projection`` (relative projection and its inverse), ``ridge`` (choosing IRP's regularisation),
``alignment`` (IRP and the direct baselines as one :class:`~.alignment.TranslationMap`), ``anchors``
(choosing anchor rows), ``anchor_set`` (naming them), ``metrics``, ``logistic`` (the heads' solver) and
``validation`` (checks of user tensors).
"""

from __future__ import annotations

from .alignment import DIRECT_METHODS, METHODS, TranslationMap
from .anchor_set import AnchorSet, fingerprint
from .anchors import STRATEGIES, select_anchors
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
