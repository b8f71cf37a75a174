"""Both towers of a tiny CLIP-style dual encoder built offline."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

from hf_latent_bridge import BridgeInputError, load_encoder
from hf_latent_bridge.encoding import ClipTowerEncoder, embed_inputs
from tests.encoding.samples import MANY_TEXTS, TEXTS, random_images


def test_clip_towers(tiny_clip_path):
    with pytest.raises(BridgeInputError, match="tower"):
        load_encoder(tiny_clip_path)
    text = load_encoder(tiny_clip_path, tower="text")
    image = load_encoder(tiny_clip_path, tower="image")
    assert isinstance(text, ClipTowerEncoder) and text.modality == "text" and image.modality == "image"
    assert text.dim == image.dim == 16
    model = CLIPModel.from_pretrained(tiny_clip_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_clip_path)
    processor = AutoImageProcessor.from_pretrained(tiny_clip_path)
    pil = [Image.fromarray(a) for a in random_images(3)]
    with torch.no_grad():
        want_text = model.get_text_features(
            **tokenizer(TEXTS, padding=True, return_tensors="pt")
        ).pooler_output
        want_image = model.get_image_features(**processor(images=pil, return_tensors="pt")).pooler_output
    torch.testing.assert_close(text.embed(TEXTS, batch_size=2), want_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(image.embed(pil), want_image, atol=1e-5, rtol=1e-5)
    assert load_encoder(tiny_clip_path, tower="text", pooling="pooler").dim == 32
    assert text.cache_key != image.cache_key


def test_clip_text_tower_plans_by_tokens_like_text_models(tiny_clip_path):
    text = load_encoder(tiny_clip_path, tower="text")
    lengths = torch.tensor(
        [len(ids) for ids in text.tokenizer(MANY_TEXTS, truncation=True, max_length=64)["input_ids"]]
    )
    rows = torch.cat(text.batches(MANY_TEXTS, batch_size=8))
    assert torch.equal(lengths[rows], torch.sort(lengths).values)
    assert torch.equal(embed_inputs(text, MANY_TEXTS, batch_size=8), text.embed(MANY_TEXTS, batch_size=8))
