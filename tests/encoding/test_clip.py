"""Both towers of a tiny CLIP-style dual encoder built offline."""

from __future__ import annotations

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

from hf_latent_bridge import load_encoder
from hf_latent_bridge.encoding import ClipTowerEncoder
from hf_latent_bridge.encoding.sharding import balanced_chunks
from tests.encoding.samples import MANY_TEXTS, TEXTS, random_images


def test_each_tower_embeds_as_the_dual_encoder_does(tiny_clip_path):
    text, image = load_encoder(tiny_clip_path, tower="text"), load_encoder(tiny_clip_path, tower="image")
    assert isinstance(text, ClipTowerEncoder) and (text.modality, image.modality) == ("text", "image")
    assert text.dim == image.dim == 16  # the shared projection
    assert load_encoder(tiny_clip_path, tower="text", pooling="pooler").dim == 32  # the tower's own width
    model = CLIPModel.from_pretrained(tiny_clip_path).eval()
    tokenizer, processor = (
        AutoTokenizer.from_pretrained(tiny_clip_path),
        AutoImageProcessor.from_pretrained(tiny_clip_path),
    )
    pil = [Image.fromarray(a) for a in random_images(3)]
    with torch.no_grad():
        want_text = model.get_text_features(
            **tokenizer(TEXTS, padding=True, return_tensors="pt")
        ).pooler_output
        want_image = model.get_image_features(**processor(images=pil, return_tensors="pt")).pooler_output
    torch.testing.assert_close(text.embed(TEXTS, batch_size=2), want_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(image.embed(pil), want_image, atol=1e-5, rtol=1e-5)
    # the text tower plans by token counts, as text models do
    lengths = [len(ids) for ids in tokenizer(MANY_TEXTS, truncation=True, max_length=64)["input_ids"]]
    assert [b.tolist() for b in text.batches(MANY_TEXTS, 8)] == [
        b.tolist() for b in balanced_chunks(lengths, 8)
    ]
