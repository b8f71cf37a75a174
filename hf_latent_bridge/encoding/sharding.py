"""Splitting row-wise work (embedding, evaluation) over accelerate processes, bit for bit as one process.

The unit of work is a fixed chunk of rows, the same whatever the number of processes, so every row is
computed in the batch it has in a single-process run; gathered rows carry their index and go back in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

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
    """Rows sorted by cost (stable), cut into chunks of at most ``batch_size`` rows whose padded cost (rows x
    the largest cost) is at most ``batch_size`` x the mean cost; they depend only on the costs and
    ``batch_size``. Fixed-size chunks of sorted rows would put the longest inputs in one chunk costing many
    times the others (on ChatterBot the last of 29 took 28% of the time), which every process would wait for.
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


def sharded_map(
    fn: Callable[[torch.Tensor], torch.Tensor],
    chunks: Sequence[torch.Tensor],
    *,
    accelerator: Accelerator | None = None,
    desc: str | None = None,
    show_progress: bool | None = None,
) -> tuple[torch.Tensor, int]:
    """``(result, gathered)``: ``fn`` applied to ``chunks`` (a partition of ``range(n)``; ``fn(rows)`` gives one
    ``(len(rows), w)`` row per index), as ``(n, w)`` in row order on every process, and how many rows were
    gathered (n). A distributed ``accelerator`` deals the chunks out (``accelerator.prepare``) and collects
    them with ``gather_for_metrics``, which drops the padding of the last step."""
    n = sum(int(c.numel()) for c in chunks)
    chunk_size = max(int(c.numel()) for c in chunks)
    items = torch.full((len(chunks), chunk_size), -1, dtype=torch.long)
    for j, chunk in enumerate(chunks):
        items[j, : len(chunk)] = chunk
    loader: Any = torch.utils.data.DataLoader(items, batch_size=1, shuffle=False)
    if _is_distributed(accelerator):
        loader = accelerator.prepare(loader)  # type: ignore[union-attr]
    disable = show_progress is False or not _is_main(accelerator)
    indices: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    for item in tqdm(loader, desc=desc, disable=disable, leave=False):
        rows = item[0].cpu()
        valid = rows[rows >= 0]
        out = fn(valid)
        padded = torch.cat([out, out.new_zeros((chunk_size - len(valid), out.shape[1]))])
        pair = (rows[None], padded[None])
        rows_g, padded_g = accelerator.gather_for_metrics(pair) if _is_distributed(accelerator) else pair  # type: ignore[union-attr]
        indices.append(rows_g.reshape(-1).cpu())
        values.append(padded_g.reshape(-1, padded.shape[1]).cpu())
    flat_rows, flat_values = torch.cat(indices), torch.cat(values)
    keep = flat_rows >= 0
    flat_rows, flat_values = flat_rows[keep], flat_values[keep]
    gathered = int(flat_rows.numel())
    if gathered != n or not torch.equal(torch.sort(flat_rows).values, torch.arange(n)):
        raise RuntimeError(f"gathered {gathered} rows for a data set of {n}: sharding lost or repeated rows")
    result = flat_values.new_empty((n, flat_values.shape[1]))
    result[flat_rows] = flat_values
    return result, gathered
