"""The relative baseline (Moschella et al., 2023): stitching without translating anything.

A head is trained on the *relative representation* of one encoder's embeddings (their cosines to that
encoder's centred anchors, :func:`~hf_latent_bridge.core.projection.relative_projection`). Any other
encoder that embeds the same anchor inputs produces a representation of the same size and, if the two
spaces are related by an angle-preserving map, nearly the same values, so the head classifies its
embeddings directly::

    head = RelativeHead.fit(target_anchors, target_train, labels)   # trained in the target's space
    predicted = head.predict(source_test, anchors=source_anchors)   # applied to the source's

The anchors are rows of the same inputs on both sides (row i is input i). It is the baseline IRP is
compared with in Maiorca et al. (2024): IRP maps into the target's *absolute* space, so heads trained
there (or shipped with a pretrained model) work unchanged; the relative baseline needs a head trained
on relative representations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..core.projection import TRUNCATION_RTOL, relative_projection
from ..core.validation import as_tensor, check_matrix
from ..errors import BridgeInputError
from ..models.head import ClassificationHead


class RelativeHead:
    """A classifier on cosines to the anchors, usable with any encoder that embedded the same anchors.

    Args:
        head: a classifier on ``(n, k)`` relative representations.
        anchors: ``(k, d)`` anchors of the space the head was trained in (the default for
            :meth:`logits`; pass another encoder's embeddings of the same anchor inputs to stitch).
    """

    def __init__(self, head: Any, anchors: torch.Tensor) -> None:
        anchors = check_matrix(as_tensor(anchors, "anchors"), "anchors")
        if getattr(head, "input_dim", anchors.shape[0]) != anchors.shape[0]:
            raise BridgeInputError(
                f"the head takes {head.input_dim} relative coordinates but {anchors.shape[0]} anchors were "
                "given; pass the anchors the head was trained with."
            )
        self.head = head
        self.anchors = anchors

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])

    @classmethod
    def fit(
        cls,
        anchors: Any,
        embeddings: Any,
        labels: Any,
        *,
        id2label: Mapping[int, str] | list[str] | None = None,
        **head_options: Any,
    ) -> RelativeHead:
        """Train a logistic-regression :class:`ClassificationHead` on the relative representation.

        ``anchors`` ``(k, d)`` and ``embeddings`` ``(n, d)`` come from one encoder; ``head_options`` go to
        :meth:`ClassificationHead.fit` (``C``, ``max_iter``...). The problem solved is
        ``ClassificationHead.fit(relative, labels)`` on standardised features, but in the span of the
        standardised features: a relative representation has k columns but rank at most d + 1, and the
        L2-penalised optimum lies in that span, so solving there gives the same head much faster.
        """
        anchors = check_matrix(as_tensor(anchors, "anchors"), "anchors")
        features = cls.project(embeddings, anchors).to(torch.float64)
        mean, std = features.mean(0), features.std(0, correction=0)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        _, singular, vh = torch.linalg.svd((features - mean) / std, full_matrices=False)
        basis = vh[singular > TRUNCATION_RTOL * singular[0]].T  # (k, r), orthonormal columns
        reduced = ((features - mean) / std) @ basis
        labels_map = dict(id2label) if isinstance(id2label, Mapping) else id2label
        fitted = ClassificationHead.fit(
            reduced, labels, id2label=labels_map, standardize=False, **head_options
        )
        weight = (fitted.weight.double() @ basis.T) / std
        bias = fitted.bias.double() - weight @ mean
        head = ClassificationHead.from_linear(
            weight.float(),
            bias.float(),
            id2label=fitted.id2label,
            fit_report={**(fitted.config.fit_report or {}), "relative_rank": int(basis.shape[1])},
        )
        return cls(head, anchors)

    def relative(self, embeddings: Any, anchors: Any = None) -> torch.Tensor:
        """``(n, k)`` cosines of ``embeddings`` to ``anchors`` (default: the training space's), centred."""
        anchors = self.anchors if anchors is None else as_tensor(anchors, "anchors")
        if len(anchors) != self.num_anchors:
            raise BridgeInputError(
                f"{anchors.shape[0]} anchors given but the head was trained on {self.num_anchors}; embed the "
                "same anchor inputs, in the same order, with the encoder of these embeddings."
            )
        return self.project(embeddings, anchors)

    @staticmethod
    def project(embeddings: Any, anchors: Any) -> torch.Tensor:
        """``(n, k)`` float32 relative representation: cosines of centred rows to the centred anchors."""
        a = check_matrix(as_tensor(anchors, "anchors"), "anchors")
        x = as_tensor(embeddings, "embeddings")
        if x.ndim == 2 and x.shape[1] != a.shape[1]:
            raise BridgeInputError(
                f"embeddings have dimension {x.shape[1]} but the anchors {a.shape[1]}; both must come from "
                "the same encoder."
            )
        x = check_matrix(x, "embeddings", a.shape[1])
        return relative_projection(x.to(torch.float64), a.to(torch.float64)).to(torch.float32)

    def logits(self, embeddings: Any, anchors: Any = None) -> torch.Tensor:
        """Logits for ``embeddings`` of the encoder that embedded ``anchors`` (default: the training one)."""
        features = self.relative(embeddings, anchors)
        with torch.inference_mode():
            scores = self.head.logits(features) if hasattr(self.head, "logits") else self.head(features)
        return torch.as_tensor(scores)

    def predict(self, embeddings: Any, anchors: Any = None) -> torch.Tensor:
        """Class ids, as :meth:`logits`."""
        return self.logits(embeddings, anchors).argmax(-1)

    def __repr__(self) -> str:
        return f"RelativeHead(num_anchors={self.num_anchors}, head={type(self.head).__name__})"
