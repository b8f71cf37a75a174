"""Units of work: cost-balanced and fixed chunks, and sharded_map in one process."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge.encoding.sharding import balanced_chunks, fixed_chunks, sharded_map, text_chunks
from hf_latent_bridge.errors import BridgeInputError


def test_balanced_chunks_partition_sorted_rows_into_chunks_of_bounded_cost():
    from hf_latent_bridge.demo import chatterbot_topics

    texts = list(chatterbot_topics()["text"])  # a long tail: most texts are short, a few are 10x longer
    lengths = torch.tensor([len(t) for t in texts])
    chunks = balanced_chunks(lengths.tolist(), batch_size=64)
    rows = torch.cat(chunks)
    assert torch.equal(torch.sort(rows).values, torch.arange(len(texts)))  # a partition
    assert torch.equal(lengths[rows], torch.sort(lengths).values)  # in cost order
    budget = 64 * lengths.double().mean()
    costs = torch.tensor([len(c) * float(lengths[c].max()) for c in chunks])  # padded cost
    assert all(len(c) <= 64 for c in chunks)
    assert all(cost <= budget or len(c) == 1 for c, cost in zip(chunks, costs, strict=True))
    # fixed chunks of 64 sorted texts put the longest texts in one chunk far costlier than the mean
    fixed = torch.sort(lengths).values.split(64)
    assert fixed[-1].numel() * fixed[-1].max() > 5 * budget
    again = balanced_chunks(list(lengths.tolist()), batch_size=64)  # depends only on costs and batch size
    assert len(again) == len(chunks) and all(torch.equal(a, b) for a, b in zip(again, chunks, strict=True))
    # the 0.1 name: the same chunks with character counts as the cost
    assert all(torch.equal(a, b) for a, b in zip(text_chunks(texts, 64), chunks, strict=True))


def test_equal_costs_give_fixed_size_chunks_in_order():
    assert [c.tolist() for c in balanced_chunks([5] * 7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [c.tolist() for c in fixed_chunks(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_sharded_map_puts_rows_back_in_place():
    chunks = balanced_chunks([3, 1, 2, 9, 1, 4], 2)
    result, gathered = sharded_map(lambda rows: rows[:, None].float() * 10, chunks, show_progress=False)
    assert gathered == 6 and result[:, 0].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    with pytest.raises(BridgeInputError, match="no rows"):
        sharded_map(lambda rows: rows[:, None].float(), [torch.arange(0)], show_progress=False)
    with pytest.raises(RuntimeError, match="shape"):
        sharded_map(lambda rows: torch.zeros(1, 2), [torch.arange(3)], show_progress=False)
