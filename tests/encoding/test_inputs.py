"""Inputs are checked once, where they enter an encoder: a bad batch is refused before any compute with an
error naming the input and the fix, and whatever the value, the check accepts it or raises BridgeInputError."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hf_latent_bridge import BridgeInputError, IncompatibleEncoderError, load_encoder
from hf_latent_bridge.encoding import check_inputs, embed_inputs
from tests.encoding.samples import TEXTS, forward_shapes, random_images

PIL_IMAGE = Image.fromarray(random_images(1)[0])

BAD_TEXT_BATCHES = [
    ([], BridgeInputError, "empty batch"),
    (random_images(2), IncompatibleEncoderError, "input 0 is an image"),
    (["fine", PIL_IMAGE], IncompatibleEncoderError, "embeds texts but input 1 is an image"),
    (["fine", 3], IncompatibleEncoderError, "input 1 is int"),
    ({"text": "hi"}, BridgeInputError, "a dict .*pass its values"),
    (None, BridgeInputError, "got None"),
    (b"bytes", BridgeInputError, "got bytes"),
    (np.array(3), BridgeInputError, "takes one input or a list of texts, got ndarray"),
]
BAD_IMAGE_BATCHES = [
    (["a photo of a cat"], IncompatibleEncoderError, "input 0 is a string that is not an image file"),
    (np.zeros((0, 32, 32, 3), dtype=np.uint8), BridgeInputError, "empty batch"),
    (np.zeros((2, 2, 32, 32, 3), dtype=np.uint8), BridgeInputError, r"got shape \(2, 2, 32, 32, 3\)"),
    ([random_images(1)[0], 3.0], IncompatibleEncoderError, "embeds images but input 1 is float"),
    (42, BridgeInputError, "takes one input or a list"),
]


@pytest.mark.parametrize(("batch", "error", "match"), BAD_TEXT_BATCHES)
def test_a_bad_text_batch_is_refused_before_any_compute(tiny_bert_path, batch, error, match):
    encoder = load_encoder(tiny_bert_path)
    shapes = forward_shapes(encoder.model)
    with pytest.raises(error, match=match):
        embed_inputs(encoder, batch)
    assert shapes == []


@pytest.mark.parametrize(("batch", "error", "match"), BAD_IMAGE_BATCHES)
def test_a_bad_image_batch_is_refused_before_any_compute(tiny_vit_path, batch, error, match):
    encoder = load_encoder(tiny_vit_path)
    shapes = forward_shapes(encoder.model)
    with pytest.raises(error, match=match):
        encoder.embed(batch)
    assert shapes == []


def test_options_and_the_encoder_itself_are_checked_at_entry(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    with pytest.raises(BridgeInputError, match="batch_size must be an integer >= 1"):
        encoder.embed(TEXTS, batch_size=0)
    with pytest.raises(BridgeInputError, match="load_encoder.*CallableEncoder"):
        embed_inputs(lambda batch: batch, TEXTS)


ARRAYS = st.builds(
    lambda shape, seed: np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8),
    st.lists(st.integers(0, 4), min_size=0, max_size=5),
    st.integers(0, 9),
)
VALUES = st.recursive(
    st.none() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=4) | ARRAYS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=8,
)


@settings(deadline=None)  # timing varies on a loaded machine; the property does not
@given(value=VALUES, modality=st.sampled_from(["text", "image"]))
def test_any_value_is_a_checked_batch_or_refused_with_a_bridge_input_error(value, modality):
    try:
        items = check_inputs(value, modality)
    except BridgeInputError:
        return
    assert len(items) > 0
    if isinstance(items, (np.ndarray, torch.Tensor)):
        assert modality == "image" and items.ndim in (3, 4)  # a stack of images
    elif modality == "text":
        assert all(isinstance(x, str) for x in items)
    else:
        assert all(isinstance(x, np.ndarray) and x.ndim in (2, 3) for x in items)
