"""Choosing anchors: which rows of a data set both encoders embed."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError
from .options import STRATEGIES, check_non_negative_int, check_positive_int, check_seed
from .validation import as_tensor, check_matrix, power_of_two_scale

#: Above this many candidate rows, uniform selection samples without a full permutation (O(num_anchors)).
PERMUTATION_LIMIT = 1 << 24


def _check_count(num_rows: Any, num_anchors: Any) -> tuple[int, int]:
    num_rows = check_non_negative_int("num_rows", num_rows)
    num_anchors = check_positive_int("num_anchors", num_anchors)
    if num_anchors < 2:
        raise BridgeInputError(f"num_anchors must be at least 2, got {num_anchors}.")
    if num_anchors > num_rows:
        raise BridgeInputError(
            f"cannot select {num_anchors} anchors from {num_rows} rows; "
            f"lower num_anchors to at most {num_rows} or use a larger anchor data set."
        )
    return num_rows, num_anchors


def select_uniform(num_rows: int, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Seeded uniform sample without replacement."""
    num_rows, num_anchors = _check_count(num_rows, num_anchors)
    seed = check_seed(seed)
    if num_rows > PERMUTATION_LIMIT:  # a permutation of every row would cost 8 bytes per row
        rows = random.Random(seed).sample(range(num_rows), num_anchors)
        return torch.tensor(rows, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_rows, generator=generator)[:num_anchors]


def select_balanced(labels: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """As many anchors from every class as possible (round robin over classes in seeded order).

    ``labels`` are class ids or class names (any 1-D sequence of hashable, sortable values)."""
    labels = _class_codes(labels)
    _, num_anchors = _check_count(labels.numel(), num_anchors)
    generator = torch.Generator().manual_seed(check_seed(seed))
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


def _class_codes(labels: Any) -> torch.Tensor:
    """A 1-D label column as class codes (the index of each label among the sorted distinct labels)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy() if labels.dtype != torch.bfloat16 else labels.float().numpy()
    if labels is None or isinstance(labels, (str, bytes, dict)):
        raise BridgeInputError(
            f"labels must be a sequence of class ids or names, got {type(labels).__name__}."
        )
    try:
        array = np.asarray(labels)
        if array.ndim != 1:
            raise BridgeInputError(f"labels must be 1-D, got shape {tuple(array.shape)}.")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise BridgeInputError("labels hold NaN or Inf; give every row a class.")
        _, codes = np.unique(array, return_inverse=True)
    except (TypeError, ValueError):
        raise BridgeInputError(
            "labels must be a flat sequence of class ids or names of one kind (all numbers or all strings)."
        ) from None
    return torch.as_tensor(codes.reshape(-1).astype(np.int64))


def select_farthest(embeddings: Any, num_anchors: int, seed: int = 0) -> torch.Tensor:
    """Farthest-point sampling in cosine geometry (centred, normalised), from a seeded start."""
    x = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings")
    _, num_anchors = _check_count(x.shape[0], num_anchors)
    generator = torch.Generator().manual_seed(check_seed(seed))
    x = x.detach().cpu().to(torch.float64)
    x = x / power_of_two_scale(x)
    x = x - x.mean(0)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-300)
    chosen = [int(torch.randint(x.shape[0], (1,), generator=generator))]
    distance = 1 - x @ x[chosen[0]]
    distance[chosen[0]] = -torch.inf  # a chosen row never returns, even among duplicates or zero rows
    for _ in range(num_anchors - 1):
        nxt = int(torch.argmax(distance))
        chosen.append(nxt)
        distance = torch.minimum(distance, 1 - x @ x[nxt])
        distance[nxt] = -torch.inf
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
