"""Choosing anchors (which rows of a data set both encoders embed), and ensemble subsets of them."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..errors import BridgeInputError
from .options import check
from .validation import as_tensor, binary_unit, check_matrix

#: Above this many candidate rows, uniform selection samples without a full permutation.
PERMUTATION_LIMIT = 1 << 24


def select_anchors(
    strategy: str,
    num_anchors: int | None,
    *,
    num_rows: int | None = None,
    labels: Any = None,
    embeddings: Any = None,
    seed: int = 0,
) -> torch.Tensor:
    """Row indices of ``num_anchors`` anchors chosen by ``strategy`` (all rows when it is ``None``).

    ``"uniform"``: a seeded sample without replacement; ``"balanced"``: as many rows of every class as
    possible (round robin over classes, needs ``labels``: ids or names); ``"farthest"``: farthest-point
    sampling in cosine geometry from a seeded start (needs ``embeddings`` of the candidate rows).
    """
    strategy, seed = check("strategy", strategy), check("seed", seed)
    needs = {"balanced": ("labels", labels), "farthest": ("embeddings", embeddings)}.get(strategy)
    if needs is not None and needs[1] is None:
        raise BridgeInputError(
            f"strategy={strategy!r} needs {needs[0]}; pass them (or use strategy='uniform')."
        )
    if strategy == "farthest":
        embeddings = check_matrix(as_tensor(embeddings, "embeddings"), "embeddings")
    if num_rows is None:
        num_rows = (
            len(labels) if strategy == "balanced" else len(embeddings) if strategy == "farthest" else None
        )
    if num_rows is None:
        raise BridgeInputError("strategy='uniform' needs num_rows (how many rows to choose from).")
    num_rows = check("num_rows", num_rows)
    num_anchors = check("num_anchors", num_rows if num_anchors is None else num_anchors)
    if num_anchors > num_rows:
        raise BridgeInputError(
            f"cannot select {num_anchors} anchors from {num_rows} rows; lower num_anchors to at most {num_rows} "
            "or use a larger anchor data set."
        )
    if num_anchors == num_rows:
        return torch.arange(num_rows)
    if strategy == "balanced":
        return _balanced(labels, num_anchors, seed)
    if strategy == "farthest":
        return _farthest(embeddings, num_anchors, seed)
    if num_rows > PERMUTATION_LIMIT:  # a permutation of every row would cost 8 bytes per row
        return torch.tensor(random.Random(seed).sample(range(num_rows), num_anchors))
    return torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))[:num_anchors]


def _balanced(labels: Any, num_anchors: int, seed: int) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    try:
        codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    except TypeError:
        raise BridgeInputError(
            "labels must be class ids or names of one kind (all numbers or all strings)."
        ) from None
    generator = torch.Generator().manual_seed(seed)
    codes = torch.as_tensor(codes)
    classes = [torch.nonzero(codes == c).flatten() for c in torch.unique(codes)]
    classes = [members[torch.randperm(len(members), generator=generator)] for members in classes]
    chosen: list[int] = []
    for depth in range(max(map(len, classes))):
        chosen.extend(int(members[depth]) for members in classes if depth < len(members))
    return torch.tensor(chosen[:num_anchors])


def _farthest(embeddings: torch.Tensor, num_anchors: int, seed: int) -> torch.Tensor:
    x = embeddings.detach().cpu().to(torch.float64)
    x = x / binary_unit(x)
    x = x - x.mean(0)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-300)
    chosen = [int(torch.randint(len(x), (1,), generator=torch.Generator().manual_seed(seed)))]
    distance = 1 - x @ x[chosen[0]]
    distance[chosen[0]] = -torch.inf  # a chosen row never returns, even among duplicates
    for _ in range(num_anchors - 1):
        chosen.append(int(torch.argmax(distance)))
        distance = torch.minimum(distance, 1 - x @ x[chosen[-1]])
        distance[chosen[-1]] = -torch.inf
    return torch.tensor(chosen)


def ensemble_member_size(num_anchors: int, fraction: float) -> int:
    """How many anchors each ensemble member holds."""
    return max(2, round(fraction * num_anchors))


def ensemble_subsets(num_anchors: int, members: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """(members, m) index matrix: ``members`` seeded subsets of ``fraction`` of the anchors each."""
    if members == 1:
        return torch.arange(num_anchors).unsqueeze(0)
    size = ensemble_member_size(num_anchors, fraction)
    generator = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.randperm(num_anchors, generator=generator)[:size].sort().values for _ in range(members)]
    )
