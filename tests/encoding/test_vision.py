"""VisionEncoder on a tiny ViT built offline: input kinds, pooling, thread safety, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

from hf_latent_bridge import BridgeInputError, IncompatibleEncoderError, load_encoder
from hf_latent_bridge.encoding import VisionEncoder
from tests.encoding.samples import random_images


def test_vision_encoder_accepts_pil_arrays_and_paths(tiny_vit_path, tmp_path):
    encoder = load_encoder(tiny_vit_path)
    assert isinstance(encoder, VisionEncoder) and encoder.modality == "image"
    assert encoder.ref.pooling == "pooler" and encoder.dim == 32
    arrays = random_images(5)
    paths = []
    for i, array in enumerate(arrays):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    pil = [Image.fromarray(a) for a in arrays]
    from_arrays = encoder.embed(arrays, batch_size=2)
    torch.testing.assert_close(encoder.embed(pil, batch_size=3), from_arrays)
    torch.testing.assert_close(encoder.embed(paths), from_arrays)
    torch.testing.assert_close(encoder.embed(np.stack(arrays)), from_arrays)
    model = AutoModel.from_pretrained(tiny_vit_path).eval()
    processor = AutoImageProcessor.from_pretrained(tiny_vit_path)
    with torch.no_grad():
        out = model(**processor(images=pil, return_tensors="pt"))
    torch.testing.assert_close(from_arrays, out.pooler_output, atol=1e-5, rtol=1e-5)
    mean = load_encoder(tiny_vit_path, pooling="mean").embed(pil)
    torch.testing.assert_close(mean, out.last_hidden_state.mean(1), atol=1e-5, rtol=1e-5)
    grey = [a[..., 0] for a in arrays]  # (h, w) arrays are read as grey images
    assert encoder.embed(grey).shape == (5, 32)


def test_images_run_in_fixed_batches_in_input_order(tiny_vit_path):
    encoder = load_encoder(tiny_vit_path)
    batches = encoder.batches(random_images(7), batch_size=3)
    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    seen: list[int] = []
    encoder.model.register_forward_hook(
        lambda m, args, kwargs, out: seen.append(len(kwargs["pixel_values"])), with_kwargs=True
    )
    encoder.embed(random_images(7), batch_size=3)
    assert seen == [3, 3, 1]


def test_one_vision_encoder_serves_eight_threads_bit_for_bit(tiny_vit_path):
    encoder = load_encoder(tiny_vit_path)
    subsets = [random_images(3 + k, seed=k) for k in range(8)]
    serial = [encoder.embed(s, batch_size=2) for s in subsets]
    state = dict(vars(encoder))
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait()
        for _ in range(10):
            try:
                if not torch.equal(encoder.embed(subsets[k], batch_size=2), serial[k]):
                    wrong.append(k)
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    assert vars(encoder).keys() == state.keys() and all(vars(encoder)[k] is v for k, v in state.items())


def test_bad_image_inputs_fail_before_compute(tiny_vit_path):
    image = load_encoder(tiny_vit_path)
    calls = []
    image.model.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(IncompatibleEncoderError, match="not an image file"):
        image.embed(["a photo of a cat"])
    with pytest.raises(BridgeInputError, match="empty"):
        image.embed(np.zeros((0, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(IncompatibleEncoderError, match="embeds images"):
        image.embed([random_images(1)[0], 3.0])
    assert calls == []
