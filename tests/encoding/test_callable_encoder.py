"""CallableEncoder: any function or torch module as an encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_latent_bridge import BridgeInputError, CallableEncoder, IncompatibleEncoderError
from tests.encoding.samples import random_images


def test_callable_encoder_wraps_a_torch_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 8))

    def preprocess(batch):
        return torch.as_tensor(np.stack(batch)).float() / 255.0

    encoder = CallableEncoder(net, name="my/net", modality="image", dim=8, preprocess=preprocess)
    images = random_images(5)
    got = encoder.embed(images, batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(got, net(preprocess(images)))
    assert encoder.ref.name_or_path == "my/net" and encoder.ref.dim == 8
    key = encoder.cache_key
    with torch.no_grad():
        net[1].bias.add_(1.0)
    assert encoder.cache_key != key  # the weights are part of the key


def test_callable_text_encoder_batches_by_character_count():
    seen: list[list[str]] = []

    def lengths(batch):
        seen.append(list(batch))
        return torch.tensor([[len(t), t.count(" ")] for t in batch]).float()

    texts = CallableEncoder(lengths, name="lengths", modality="text", dim=2)
    torch.testing.assert_close(texts.embed(["a b", "abc"]), torch.tensor([[3.0, 1.0], [3.0, 0.0]]))
    inputs = ["x" * n for n in (40, 1, 30, 2, 3, 50, 4)]
    seen.clear()
    got = texts.embed(inputs, batch_size=3)
    assert got[:, 0].tolist() == [float(len(t)) for t in inputs]  # input order comes back
    # sorted by length; the long texts in smaller batches (budget: 3 x mean length)
    assert [[len(t) for t in batch] for batch in seen] == [[1, 2, 3], [4], [30], [40], [50]]


def test_callable_encoder_refuses_bad_arguments_and_outputs():
    net = torch.nn.Linear(4, 8)
    with pytest.raises(BridgeInputError, match="dim="):
        CallableEncoder(lambda b: b, name="x", modality="text")
    with pytest.raises(BridgeInputError, match="modality"):
        CallableEncoder(net, name="x", modality="audio", dim=8)
    with pytest.raises(BridgeInputError, match="callable"):
        CallableEncoder("not a function", name="x", modality="text", dim=2)
    bad = CallableEncoder(lambda b: torch.zeros(len(b), 3), name="bad", modality="text", dim=2)
    with pytest.raises(IncompatibleEncoderError, match="expected"):
        bad.embed(["a"])
