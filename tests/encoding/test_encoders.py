"""Encoders on tiny transformers models built offline: pooling, ordering, towers, caching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer, CLIPModel

from hf_latent_bridge import (
    BridgeInputError,
    CallableEncoder,
    IncompatibleEncoderError,
    embed_dataset,
    load_encoder,
)
from hf_latent_bridge.encoding import ClipTowerEncoder, TextEncoder, VisionEncoder

TEXTS = [
    "Which team won the cup?",
    "hi",
    "The mitochondria is the powerhouse of the cell, as every biology student learns early on.",
    "What is your favourite food?",
    "Tell me a joke about computers and the people who program them every day",
    "ok",
    "Do you like movies?",
]


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(n)]


@torch.no_grad()
def _manual_text(path: str, texts: list[str], pooling: str) -> torch.Tensor:
    """Each text alone (no padding at all), pooled by hand."""
    model, tokenizer = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    rows = []
    for text in texts:
        out = model(**tokenizer(text, return_tensors="pt"))
        hidden = out.last_hidden_state[0]
        rows.append({"mean": hidden.mean(0), "cls": hidden[0], "max": hidden.max(0).values}.get(pooling))
        if pooling == "pooler":
            rows[-1] = out.pooler_output[0]
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "pooler"])
def test_text_pooling_matches_unpadded_reference(tiny_bert_path, pooling):
    encoder = load_encoder(tiny_bert_path, pooling=pooling)
    got = encoder.embed(TEXTS, batch_size=3)  # batches mix lengths; order must come back
    assert isinstance(encoder, TextEncoder) and got.dtype == torch.float32 and got.shape == (len(TEXTS), 32)
    torch.testing.assert_close(got, _manual_text(tiny_bert_path, TEXTS, pooling), atol=1e-5, rtol=1e-5)


def test_text_normalised_pooling_and_batch_size_invariance(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path, pooling="mean+norm")
    one = encoder.embed(TEXTS, batch_size=1)
    many = encoder.embed(TEXTS, batch_size=64)
    torch.testing.assert_close(one, many, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one.norm(dim=1), torch.ones(len(TEXTS)))
    assert encoder.ref.pooling == "mean+norm" and encoder.ref.modality == "text" and encoder.ref.dim == 32


def test_sentence_transformers_folder_recipe_is_honoured(tiny_st_path, tiny_bert_path):
    from sentence_transformers import SentenceTransformer

    encoder = load_encoder(tiny_st_path)
    assert encoder.ref.pooling == "cls+norm"  # from 1_Pooling/config.json and the Normalize module
    assert encoder.max_length == 12  # sentence_bert_config.json
    texts = [*TEXTS, "a long sentence " * 20]
    reference = SentenceTransformer(tiny_st_path, device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(encoder.embed(texts, batch_size=4), reference.cpu(), atol=1e-5, rtol=1e-5)
    plain = load_encoder(tiny_bert_path)  # the same weights without the recipe: mean pooling
    assert plain.ref.pooling == "mean"
    assert not torch.allclose(plain.embed(texts[:2]), encoder.embed(texts[:2]))
    # an explicit pooling overrides the folder's recipe
    assert load_encoder(tiny_st_path, pooling="mean").ref.pooling == "mean"


def test_dtype_and_device_options(tiny_bert_path):
    base = load_encoder(tiny_bert_path).embed(TEXTS)
    wide = load_encoder(tiny_bert_path, dtype=torch.float64, device="cpu")
    assert next(wide.model.parameters()).dtype == torch.float64
    got = wide.embed(TEXTS)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, base, atol=1e-5, rtol=1e-5)
    half = load_encoder(tiny_bert_path, dtype=torch.bfloat16).embed(TEXTS)
    assert half.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(half, base).min() > 0.95


def test_vision_encoder_accepts_pil_arrays_and_paths(tiny_vit_path, tmp_path):
    encoder = load_encoder(tiny_vit_path)
    assert isinstance(encoder, VisionEncoder) and encoder.modality == "image"
    assert encoder.ref.pooling == "pooler" and encoder.dim == 32
    arrays = _images(5)
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
    pil = [Image.fromarray(a) for a in _images(3)]
    with torch.no_grad():
        want_text = model.get_text_features(
            **tokenizer(TEXTS, padding=True, return_tensors="pt")
        ).pooler_output
        want_image = model.get_image_features(**processor(images=pil, return_tensors="pt")).pooler_output
    torch.testing.assert_close(text.embed(TEXTS, batch_size=2), want_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(image.embed(pil), want_image, atol=1e-5, rtol=1e-5)
    assert load_encoder(tiny_clip_path, tower="text", pooling="pooler").dim == 32
    assert text.cache_key != image.cache_key


def test_callable_encoder_wraps_a_torch_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 8))

    def preprocess(batch):
        return torch.as_tensor(np.stack(batch)).float() / 255.0

    encoder = CallableEncoder(net, name="my/net", modality="image", dim=8, preprocess=preprocess)
    images = _images(5)
    got = encoder.embed(images, batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(got, net(preprocess(images)))
    assert encoder.ref.name_or_path == "my/net" and encoder.ref.dim == 8
    key = encoder.cache_key
    with torch.no_grad():
        net[1].bias.add_(1.0)
    assert encoder.cache_key != key  # the weights are part of the key

    texts = CallableEncoder(
        lambda batch: torch.tensor([[len(t), t.count(" ")] for t in batch]).float(),
        name="lengths",
        modality="text",
        dim=2,
    )
    torch.testing.assert_close(texts.embed(["a b", "abc"]), torch.tensor([[3.0, 1.0], [3.0, 0.0]]))
    with pytest.raises(BridgeInputError, match="dim="):
        CallableEncoder(lambda b: b, name="x", modality="text")
    with pytest.raises(BridgeInputError, match="modality"):
        CallableEncoder(net, name="x", modality="audio", dim=8)
    bad = CallableEncoder(lambda b: torch.zeros(len(b), 3), name="bad", modality="text", dim=2)
    with pytest.raises(IncompatibleEncoderError, match="expected"):
        bad.embed(["a"])


def test_cache_key_tracks_what_changes_embeddings(tiny_bert_path, tiny_st_path):
    a, b = load_encoder(tiny_bert_path), load_encoder(tiny_bert_path)
    assert a.cache_key == b.cache_key  # stable across loads
    assert load_encoder(tiny_bert_path, pooling="cls").cache_key != a.cache_key
    assert load_encoder(tiny_bert_path, dtype=torch.float64).cache_key != a.cache_key
    assert load_encoder(tiny_st_path).cache_key != a.cache_key


def test_bad_inputs_fail_before_compute(tiny_bert_path, tiny_vit_path):
    text = load_encoder(tiny_bert_path)
    calls = []
    text.model.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(BridgeInputError, match="empty"):
        text.embed([])
    with pytest.raises(IncompatibleEncoderError, match="embeds text"):
        text.embed(_images(2))
    with pytest.raises(IncompatibleEncoderError, match="input 1"):
        text.embed(["fine", Image.fromarray(_images(1)[0])])
    with pytest.raises(BridgeInputError, match="batch_size"):
        text.embed(TEXTS, batch_size=0)
    assert calls == []
    image = load_encoder(tiny_vit_path)
    with pytest.raises(IncompatibleEncoderError, match="not an image file"):
        image.embed(["a photo of a cat"])
    with pytest.raises(BridgeInputError, match="empty"):
        image.embed(np.zeros((0, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(BridgeInputError, match="unknown pooling"):
        load_encoder(tiny_bert_path, pooling="median")
    with pytest.raises(IncompatibleEncoderError, match="embeds text, not image"):
        load_encoder(tiny_bert_path, modality="image")


def test_progress_bar_on_request(tiny_bert_path, capsys):
    load_encoder(tiny_bert_path).embed(TEXTS, show_progress=True)
    assert "embedding" in capsys.readouterr().err


def test_embed_dataset_caches_on_disk(tiny_bert_path, tmp_path):
    import datasets

    data = datasets.Dataset.from_dict({"text": TEXTS * 3, "label": list(range(len(TEXTS) * 3))})
    encoder = load_encoder(tiny_bert_path)
    calls = []
    encoder.model.register_forward_hook(lambda *args: calls.append(1))
    first = embed_dataset(encoder, data, "text", batch_size=4, cache_dir=str(tmp_path))
    assert calls and first.shape == (len(data), 32)
    torch.testing.assert_close(first, encoder.embed(list(data["text"])))
    calls.clear()

    again = load_encoder(tiny_bert_path)  # a fresh encoder object, as in a new process
    again.model.register_forward_hook(lambda *args: calls.append(1))
    second = embed_dataset(again, data, "text", batch_size=4, cache_dir=str(tmp_path))
    assert calls == []  # read from the cache: no forward pass
    torch.testing.assert_close(second, first)

    other = load_encoder(tiny_bert_path, pooling="cls")
    other.model.register_forward_hook(lambda *args: calls.append(1))
    third = embed_dataset(other, data, "text", cache_dir=str(tmp_path))
    assert calls and not torch.allclose(third, first)  # another pooling is another cache entry
    with pytest.raises(BridgeInputError, match="column"):
        embed_dataset(encoder, data, "sentence")


def test_embed_dataset_images(tmp_path):
    import datasets

    arrays = np.stack(_images(6))
    data = datasets.Dataset.from_dict(
        {"image": arrays},
        features=datasets.Features({"image": datasets.Array3D(shape=(32, 32, 3), dtype="uint8")}),
    )
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 4))
    encoder = CallableEncoder(
        net, name="flat", modality="image", dim=4, preprocess=lambda b: torch.as_tensor(np.asarray(b)).float()
    )
    got = embed_dataset(encoder, data, "image", batch_size=4, cache_dir=str(tmp_path))
    torch.testing.assert_close(got, encoder.embed(list(arrays)))
