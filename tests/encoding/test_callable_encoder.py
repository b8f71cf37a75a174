"""CallableEncoder: any function or torch module as an encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_latent_bridge import BridgeInputError, CallableEncoder, IncompatibleEncoderError
from hf_latent_bridge.encoding.sharding import balanced_chunks
from tests.encoding.samples import TEXTS, random_images


def test_a_torch_module_is_fed_its_preprocessed_batches_on_its_device_and_dtype():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 8)).double()

    def preprocess(batch):
        return torch.as_tensor(np.stack(batch)).float() / 255.0  # float32: the encoder casts to the net's

    encoder = CallableEncoder(net, name="my/net", modality="image", dim=8, preprocess=preprocess)
    images = random_images(5)
    got = encoder.embed(images, batch_size=2)
    with torch.no_grad():
        want = net(preprocess(images).double()).float()
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert (encoder.ref.name_or_path, encoder.ref.modality, encoder.ref.dim) == ("my/net", "image", 8)


def test_texts_are_batched_by_character_count_and_come_back_in_input_order():
    seen: list[list[str]] = []

    def features(batch):
        seen.append(list(batch))
        return [[float(len(t)), float(t.count(" "))] for t in batch]  # a list: any array-like will do

    encoder = CallableEncoder(features, name="lengths", modality="text", dim=2)
    got = encoder.embed(TEXTS, batch_size=3)
    assert got[:, 0].tolist() == [float(len(t)) for t in TEXTS]
    expected = balanced_chunks([len(t) for t in TEXTS], 3)
    assert seen == [[TEXTS[i] for i in rows] for rows in expected]


def test_bad_arguments_and_outputs_are_refused():
    with pytest.raises(BridgeInputError, match="pass dim="):
        CallableEncoder(lambda b: b, name="x", modality="text")
    with pytest.raises(BridgeInputError, match="modality"):
        CallableEncoder(torch.nn.Linear(4, 8), name="x", modality="audio", dim=8)
    with pytest.raises(BridgeInputError, match="callable"):
        CallableEncoder("not a function", name="x", modality="text", dim=2)
    with pytest.raises(BridgeInputError, match="non-empty name"):
        CallableEncoder(lambda b: b, name="", modality="text", dim=2)
    wrong = CallableEncoder(lambda b: torch.zeros(len(b), 3), name="wrong", modality="text", dim=2)
    with pytest.raises(IncompatibleEncoderError, match=r"expected \(1, 2\)"):
        wrong.embed(["a"])


def test_a_progress_bar_is_shown_on_request(capsys):
    CallableEncoder(lambda b: torch.zeros(len(b), 2), name="zeros", modality="text", dim=2).embed(
        TEXTS, show_progress=True
    )
    assert "embedding" in capsys.readouterr().err
