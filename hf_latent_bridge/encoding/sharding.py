"""Splitting row-wise work over accelerate processes, with results identical to one process.

With an :class:`accelerate.Accelerator` of several processes, embedding and the per-row
evaluation are split over the processes and gathered with ``gather_for_metrics``. The unit of work is a
fixed *global* chunk of rows, identical whatever the number of processes, so every row is computed in
exactly the same batch as in a single-process run; gathered rows carry their global index and are put
back in order; aggregate metrics are computed from the full gathered set. The results are therefore the
single-process results, bit for bit (tested with two CPU processes under ``torchrun``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from ..errors import BridgeInputError

if TYPE_CHECKING:
    from accelerate import Accelerator


def _is_distributed(accelerator: Accelerator | None) -> bool:
    return accelerator is not None and accelerator.num_processes > 1


def _is_main(accelerator: Accelerator | None) -> bool:
    return accelerator is None or accelerator.is_main_process


def fixed_chunks(n: int, size: int) -> list[torch.Tensor]:
    """``range(n)`` cut into consecutive chunks of ``size`` rows."""
    return list(torch.arange(n).split(size))


def balanced_chunks(costs: Sequence[float], batch_size: int) -> list[torch.Tensor]:
    """Rows sorted by cost (stable), cut into chunks of similar total cost: the one length sort.

    A chunk holds at most ``batch_size`` rows and costs at most ``batch_size`` x the mean cost, counted
    as padded cost (rows x the chunk's largest cost). Encoders pass their own measure: token counts for
    text models (see :meth:`~hf_latent_bridge.encoding.Encoder.plan`). Fixed-size chunks of sorted rows
    would leave the longest inputs in one chunk costing many times the others (on ChatterBot, the last
    of 29 chunks took 28% of the time), and under sharding every process would wait for it. The chunks
    depend only on the costs and ``batch_size``.
    """
    values = torch.tensor([max(float(c), 1.0) for c in costs], dtype=torch.float64)
    order = torch.sort(values, stable=True).indices
    budget = batch_size * float(values.mean()) if len(values) else 0.0
    chunks, start = [], 0
    for end, cost in enumerate(values[order].tolist()):
        size = end - start
        if size and (size == batch_size or (size + 1) * cost > budget):
            chunks.append(order[start:end])
            start = end
    chunks.append(order[start:])
    return chunks


def text_chunks(texts: Sequence[str], batch_size: int) -> list[torch.Tensor]:
    """:func:`balanced_chunks` with character counts as the cost (the import path of 0.1)."""
    return balanced_chunks([len(t) for t in texts], batch_size)


def sharded_map(
    fn: Callable[[torch.Tensor], torch.Tensor],
    chunks: Sequence[torch.Tensor],
    *,
    accelerator: Accelerator | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> tuple[torch.Tensor, int]:
    """Apply ``fn`` to chunks of row indices and return the results in row order on every process.

    ``chunks`` partition ``range(n)`` and are the same whatever the number of processes; ``fn(rows)``
    returns one output row per index (m, w). With a distributed ``accelerator`` the chunks are dealt out
    by ``accelerator.prepare`` and collected with ``gather_for_metrics`` (which drops the padding chunks
    of the last step); the gathered rows carry their indices and are scattered back into place.

    Returns:
        ``(result, gathered)``: the (n, w) result and how many rows were gathered (== n).
    """
    n = sum(int(c.numel()) for c in chunks)
    if n == 0:
        raise BridgeInputError("nothing to evaluate: the data set has no rows.")
    chunk_size = max(int(c.numel()) for c in chunks)
    items = torch.full((len(chunks), chunk_size), -1, dtype=torch.long)
    for j, chunk in enumerate(chunks):
        items[j, : len(chunk)] = chunk
    loader: Any = torch.utils.data.DataLoader(items, batch_size=1, shuffle=False)
    if _is_distributed(accelerator):
        loader = accelerator.prepare(loader)  # type: ignore[union-attr]
    disable = (
        (not _is_main(accelerator))
        if show_progress is None
        else not (show_progress and _is_main(accelerator))
    )
    indices: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    for item in tqdm(loader, desc=desc, disable=disable, leave=False):
        rows = item[0].cpu()
        valid = rows[rows >= 0]
        out = fn(valid)
        if out.ndim != 2 or out.shape[0] != len(valid):
            raise RuntimeError(f"sharded function returned shape {tuple(out.shape)} for {len(valid)} rows")
        padded = out.new_zeros((chunk_size, out.shape[1]))
        padded[: len(valid)] = out
        if _is_distributed(accelerator):
            rows_g, padded_g = accelerator.gather_for_metrics((rows[None], padded[None]))  # type: ignore[union-attr]
        else:
            rows_g, padded_g = rows[None], padded[None]
        indices.append(rows_g.reshape(-1).cpu())
        values.append(padded_g.reshape(-1, padded.shape[1]).cpu())
    flat_rows = torch.cat(indices)
    flat_values = torch.cat(values)
    keep = flat_rows >= 0
    flat_rows, flat_values = flat_rows[keep], flat_values[keep]
    gathered = int(flat_rows.numel())
    if gathered != n or not torch.equal(torch.sort(flat_rows).values, torch.arange(n)):
        raise RuntimeError(f"gathered {gathered} rows for a data set of {n}: sharding lost or repeated rows")
    result = flat_values.new_empty((n, flat_values.shape[1]))
    result[flat_rows] = flat_values
    return result, gathered
