"""Multinomial logistic regression on embeddings (full-batch L-BFGS, float64, deterministic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def fit_logistic(
    z: torch.Tensor,
    y: torch.Tensor,
    num_labels: int,
    C: float,
    max_iter: int,
    tol: float,
    on_evaluation: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Full-batch L-BFGS on the L2-penalised multinomial cross-entropy (float64, deterministic).

    ``on_evaluation`` is called after every evaluation of the loss (at most ``1.25 * max_iter``, L-BFGS'
    default budget), e.g. to advance a progress bar."""
    n, d = z.shape
    params = torch.zeros(d + 1, num_labels, dtype=torch.float64, requires_grad=True)
    penalty = 1.0 / (2.0 * C * n)
    optimizer = torch.optim.LBFGS(
        [params],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = torch.addmm(params[d], z, params[:d])
        loss = torch.nn.functional.cross_entropy(logits, y) + penalty * params[:d].pow(2).sum()
        loss.backward()
        if on_evaluation is not None:
            on_evaluation()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
        final = float(closure().detach())
    state = optimizer.state[params]
    report = {"loss": round(final, 8), "iterations": int(state.get("n_iter", 0))}
    weight = params.detach()[:d].T.contiguous()
    bias = params.detach()[d].clone()
    return weight, bias, report
