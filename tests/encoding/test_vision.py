"""VisionEncoder on a tiny ViT built offline: every kind of image input, each pooling, the batch plan."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

from hf_latent_bridge import load_encoder
from hf_latent_bridge.encoding import VisionEncoder
from tests.encoding.samples import forward_shapes, random_images


def test_every_kind_of_image_input_embeds_as_the_model_and_processor_do(tiny_vit_path, tmp_path):
    encoder = load_encoder(tiny_vit_path)
    assert isinstance(encoder, VisionEncoder) and encoder.ref.pooling == "pooler" and encoder.dim == 32
    arrays = random_images(5)
    paths = [str(tmp_path / f"{i}.png") for i in range(5)]
    for array, path in zip(arrays, paths, strict=True):
        Image.fromarray(array).save(path)
    pil = [Image.fromarray(a) for a in arrays]
    model, processor = (
        AutoModel.from_pretrained(tiny_vit_path).eval(),
        AutoImageProcessor.from_pretrained(tiny_vit_path),
    )
    with torch.no_grad():
        out = model(**processor(images=pil, return_tensors="pt"))
    for inputs in (pil, arrays, paths, np.stack(arrays), [torch.from_numpy(a) for a in arrays]):
        torch.testing.assert_close(
            encoder.embed(inputs, batch_size=2), out.pooler_output, atol=1e-5, rtol=1e-5
        )
    mean = load_encoder(tiny_vit_path, pooling="mean").embed(pil)
    torch.testing.assert_close(mean, out.last_hidden_state.mean(1), atol=1e-5, rtol=1e-5)
    grey = [a[..., 0] for a in arrays]  # (h, w) arrays are grey images: the channel repeated
    torch.testing.assert_close(
        encoder.embed(grey), encoder.embed([np.repeat(g[..., None], 3, -1) for g in grey])
    )


def test_images_run_in_fixed_batches_in_input_order(tiny_vit_path):
    encoder = load_encoder(tiny_vit_path)
    assert [b.tolist() for b in encoder.batches(random_images(7), batch_size=3)] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    shapes = forward_shapes(encoder.model)
    encoder.embed(random_images(7), batch_size=3)
    assert [s[0] for s in shapes] == [3, 3, 1]
