"""Choosing anchors: which rows of a data set both encoders embed."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError

STRATEGIES = ("uniform", "balanced", "farthest")


def _check_count(num_rows: int, num_anchors: int) -> None:
    if num_anchors < 2:
        raise BridgeInputError(f"num_anchors must be at least 2, got {num_anchors}.")
    if num_anchors > num_rows:
        raise BridgeInputError(
            f"cannot select {num_anchors} anchors from {num_rows} rows; "
            f"lower num_anchors to at most {num_rows} or use a larger anchor data set."
        )


def select_uniform(num_rows: int, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Seeded uniform sample without replacement."""
    _check_count(num_rows, num_anchors)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_rows, generator=generator)[:num_anchors]


def select_balanced(labels: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """As many anchors from every class as possible (round robin over classes in seeded order)."""
    labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim != 1:
        raise BridgeInputError(f"labels must be 1-D, got shape {tuple(labels.shape)}.")
    _check_count(labels.numel(), num_anchors)
    generator = torch.Generator().manual_seed(seed)
    per_class = [
        members[torch.randperm(members.numel(), generator=generator)]
        for members in (torch.nonzero(labels == c).flatten() for c in torch.unique(labels))
    ]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < num_anchors:
        for members in per_class:
            if depth < members.numel() and len(chosen) < num_anchors:
                chosen.append(int(members[depth]))
        depth += 1
    return torch.tensor(chosen, dtype=torch.long)


def select_farthest(embeddings: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Farthest-point sampling in cosine geometry (centred, normalised), from a seeded start."""
    x = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    if x.ndim != 2:
        raise BridgeInputError(f"embeddings must be (n, d), got shape {tuple(x.shape)}.")
    _check_count(x.shape[0], num_anchors)
    x = x.to(torch.float64)
    x = x - x.mean(0)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(x.shape[0], (1,), generator=generator))]
    distance = 1 - x @ x[chosen[0]]
    for _ in range(num_anchors - 1):
        nxt = int(torch.argmax(distance))
        chosen.append(nxt)
        distance = torch.minimum(distance, 1 - x @ x[nxt])
    return torch.tensor(chosen, dtype=torch.long)


def select_anchors(
    strategy: str,
    num_anchors: int,
    *,
    num_rows: int | None = None,
    labels: Any = None,
    embeddings: Any = None,
    seed: int = 0,
) -> torch.Tensor:
    """Row indices of the anchors chosen by ``strategy`` (one of :data:`STRATEGIES`)."""
    if strategy == "uniform":
        if num_rows is None:
            raise BridgeInputError("strategy='uniform' needs num_rows.")
        return select_uniform(num_rows, num_anchors, seed)
    if strategy == "balanced":
        if labels is None:
            raise BridgeInputError("strategy='balanced' needs labels; pass the label column.")
        return select_balanced(labels, num_anchors, seed)
    if strategy == "farthest":
        if embeddings is None:
            raise BridgeInputError("strategy='farthest' needs embeddings of the candidate rows.")
        return select_farthest(embeddings, num_anchors, seed)
    raise BridgeInputError(f"unknown anchor strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")


def ensemble_member_size(num_anchors: int, fraction: float) -> int:
    """How many anchors each ensemble member holds."""
    return max(2, round(fraction * num_anchors))


def ensemble_subsets(num_anchors: int, members: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """(members, m) index matrix: ``members`` seeded subsets of ``fraction`` of the anchors each."""
    if members < 1:
        raise BridgeInputError(f"ensemble must be at least 1, got {members}.")
    if members == 1:
        return torch.arange(num_anchors).unsqueeze(0)
    if not 0 < fraction <= 1:
        raise BridgeInputError(f"ensemble_fraction must be in (0, 1], got {fraction}.")
    size = ensemble_member_size(num_anchors, fraction)
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randperm(num_anchors, generator=generator)[:size].sort().values for _ in range(members)]
    return torch.stack(rows)


def choose_anchor_rows(
    num_rows: int,
    num_anchors: int | None,
    strategy: str,
    *,
    labels: torch.Tensor | None = None,
    embeddings: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Anchor row indices in the train split (all rows when ``num_anchors`` is None)."""
    if strategy not in STRATEGIES:
        raise BridgeInputError(
            f"unknown anchor strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}."
        )
    if num_anchors is None or num_anchors == num_rows:
        return torch.arange(num_rows)
    return select_anchors(
        strategy, num_anchors, num_rows=num_rows, labels=labels, embeddings=embeddings, seed=seed
    ).long()
