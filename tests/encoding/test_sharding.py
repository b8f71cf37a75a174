"""Units of work: cost-balanced chunks (any costs), fixed chunks, and sharded_map in one process (two
processes: tests/evaluation/test_distributed.py)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_latent_bridge.encoding.sharding import balanced_chunks, fixed_chunks, sharded_map


@settings(deadline=None)  # timing varies on a loaded machine; the property does not
@given(costs=st.lists(st.integers(0, 10_000), min_size=1, max_size=300), batch_size=st.integers(1, 70))
def test_balanced_chunks_partition_rows_in_cost_order_within_the_budget(costs, batch_size):
    chunks = balanced_chunks(costs, batch_size)
    values = torch.tensor([max(c, 1) for c in costs], dtype=torch.float64)  # every input costs at least 1
    rows = torch.cat(chunks)
    assert torch.equal(torch.sort(rows).values, torch.arange(len(costs)))  # a partition
    assert torch.equal(values[rows], torch.sort(values, stable=True).values)  # in cost order
    budget = batch_size * float(values.mean())
    for chunk in chunks:  # none bigger than batch_size, none padding past the budget (unless alone)
        assert 0 < len(chunk) <= batch_size
        assert len(chunk) == 1 or len(chunk) * float(values[chunk].max()) <= budget + 1e-9
    again = balanced_chunks(list(costs), batch_size)  # depends only on the costs and the batch size
    assert [c.tolist() for c in again] == [c.tolist() for c in chunks]


def test_equal_costs_give_fixed_size_chunks_in_input_order():
    assert [c.tolist() for c in balanced_chunks([5] * 7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [c.tolist() for c in fixed_chunks(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_sharded_map_puts_every_row_back_in_place():
    chunks = balanced_chunks([3, 1, 2, 9, 1, 4], 2)
    result, gathered = sharded_map(lambda rows: rows[:, None].float() * 10, chunks, show_progress=False)
    assert gathered == 6 and result[:, 0].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
