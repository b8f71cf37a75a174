"""The one embedding path: embed_inputs runs the encoder's own batches, caches them, and embed_dataset
is the same call on a dataset column."""

from __future__ import annotations

import os

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits

from hf_latent_bridge import BridgeInputError, CallableEncoder, embed_dataset, load_encoder
from hf_latent_bridge.encoding import embed_inputs
from hf_latent_bridge.errors import OutputError
from tests.encoding.samples import MANY_TEXTS, TEXTS, random_images


def _count_forward_passes(encoder) -> list[int]:
    calls: list[int] = []
    encoder.model.register_forward_hook(lambda *args: calls.append(1))
    return calls


def _cache_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _digits_encoder(calls: list[int] | None = None) -> CallableEncoder:
    weight = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))

    def features(batch: np.ndarray) -> torch.Tensor:
        if calls is not None:
            calls.append(len(batch))
        return torch.as_tensor(np.asarray(batch, dtype=np.float32)).reshape(len(batch), -1) @ weight

    return CallableEncoder(features, name="digits-random-projection", modality="image", dim=16)


# ------------------------------------------------------------------------ one path: the same bits
def test_embed_inputs_gives_the_bits_of_encoder_embed_for_text(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path, pooling="mean+norm")
    local = encoder.embed(MANY_TEXTS, batch_size=8)
    assert torch.equal(embed_inputs(encoder, MANY_TEXTS, batch_size=8), local)
    cached = embed_inputs(encoder, MANY_TEXTS, batch_size=8, cache_dir=tmp_path)
    again = embed_inputs(
        load_encoder(tiny_bert_path, pooling="mean+norm"), MANY_TEXTS, batch_size=8, cache_dir=tmp_path
    )
    assert torch.equal(cached, local) and torch.equal(again, local)


def test_embed_inputs_gives_the_bits_of_encoder_embed_for_images(tiny_vit_path):
    encoder = load_encoder(tiny_vit_path)
    images = random_images(11)
    assert torch.equal(embed_inputs(encoder, images, batch_size=4), encoder.embed(images, batch_size=4))


def test_embed_inputs_runs_the_encoders_batches_in_one_forward_pass_each(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    sizes: list[int] = []
    encoder.model.register_forward_hook(
        lambda m, args, kwargs, out: sizes.append(len(kwargs["input_ids"])), with_kwargs=True
    )
    embed_inputs(encoder, MANY_TEXTS, batch_size=16, show_progress=False)
    assert sizes == [len(b) for b in encoder.batches(MANY_TEXTS, batch_size=16)]


def test_embed_inputs_keeps_input_order_for_texts_sorted_by_length():
    texts = ["a much longer sentence than the others", "short", "mid length text", "x"]
    encoder = CallableEncoder(
        lambda batch: torch.tensor([[float(len(t)), float(t.count(" "))] for t in batch]),
        name="length-features",
        modality="text",
        dim=2,
    )
    result = embed_inputs(encoder, texts, batch_size=2, show_progress=False)
    assert result[:, 0].tolist() == [float(len(t)) for t in texts]


# ------------------------------------------------------------------------------------------ the cache
def test_embed_inputs_matches_the_encoder_and_caches(tmp_path):
    images = load_digits().images[:150, :, :, None].astype(np.float32)  # (n, h, w, 1): a stacked batch
    calls: list[int] = []
    encoder = _digits_encoder(calls)
    direct = encoder.embed(images, batch_size=1000)
    calls.clear()
    first = embed_inputs(encoder, images, batch_size=32, cache_dir=tmp_path, show_progress=False)
    assert calls == [32, 32, 32, 32, 22]
    torch.testing.assert_close(first, direct)
    calls.clear()
    second = embed_inputs(encoder, images, batch_size=32, cache_dir=tmp_path, show_progress=False)
    assert calls == [] and torch.equal(first, second)
    assert len(list(tmp_path.glob("embeddings-*.safetensors"))) == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # written beside, then renamed


def test_the_cache_key_follows_encoder_inputs_and_batches(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    calls = _count_forward_passes(encoder)
    embed_inputs(encoder, TEXTS, batch_size=4, cache_dir=tmp_path)
    assert len(_cache_files(tmp_path)) == 1
    calls.clear()
    embed_inputs(encoder, list(TEXTS), batch_size=4, cache_dir=tmp_path)  # equal inputs: a hit
    assert calls == []
    variants = [
        (encoder, [*TEXTS[:-1], TEXTS[-1] + "!"], 4),  # one character more
        (encoder, TEXTS[::-1], 4),  # another order
        (encoder, TEXTS, 2),  # another batch plan
        (load_encoder(tiny_bert_path, pooling="cls"), TEXTS, 4),  # another encoder
    ]
    for i, (other, texts, batch_size) in enumerate(variants, start=2):
        embed_inputs(other, texts, batch_size=batch_size, cache_dir=tmp_path)
        assert len(_cache_files(tmp_path)) == i


def test_image_cache_keys_follow_pixels_and_files(tmp_path):
    encoder = _digits_encoder()
    images = load_digits().images[:20].astype(np.float32)
    cache = tmp_path / "cache"
    embed_inputs(encoder, images, batch_size=8, cache_dir=cache)
    changed = images.copy()
    changed[3, 4, 4] += 1.0
    embed_inputs(encoder, changed, batch_size=8, cache_dir=cache)
    assert len(_cache_files(cache)) == 2

    png = tmp_path / "a.png"
    Image.fromarray(random_images(1)[0]).save(png)
    rgb = CallableEncoder(
        lambda b: torch.as_tensor(np.stack(b)).float().mean((1, 2)), name="rgb", modality="image", dim=3
    )
    first = embed_inputs(rgb, [str(png)], cache_dir=cache)
    Image.fromarray(random_images(1, seed=5)[0]).save(png)  # the same path, another picture
    os.utime(png, ns=(1, 1))
    second = embed_inputs(rgb, [str(png)], cache_dir=cache)
    assert not torch.equal(first, second) and len(_cache_files(cache)) == 4


def test_a_damaged_cache_file_is_recomputed_and_replaced(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    want = embed_inputs(encoder, TEXTS, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    good = path.read_bytes()
    calls = _count_forward_passes(encoder)
    for damage in (good[: len(good) // 2], b"not a safetensors file", b""):
        path.write_bytes(damage)
        calls.clear()
        assert torch.equal(embed_inputs(encoder, TEXTS, cache_dir=tmp_path), want)
        assert calls and torch.equal(load_file(path)["embeddings"], want)  # recomputed, file repaired

    for tensors, metadata in (
        ({"embeddings": want[:3]}, {"format": "hf_latent_bridge.embeddings/2"}),  # wrong shape
        ({"embeddings": torch.full_like(want, float("nan"))}, {"format": "hf_latent_bridge.embeddings/2"}),
        ({"embeddings": want.double()}, {"format": "hf_latent_bridge.embeddings/2"}),  # wrong dtype
        ({"embeddings": want}, {"format": "someone else's"}),
    ):
        save_file(tensors, str(path), metadata=metadata)
        calls.clear()
        assert torch.equal(embed_inputs(encoder, TEXTS, cache_dir=tmp_path), want) and calls


def test_an_unusable_cache_folder_is_refused_before_any_compute(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    calls = _count_forward_passes(encoder)
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    with pytest.raises(OutputError, match="cache_dir"):
        embed_inputs(encoder, TEXTS, cache_dir=a_file)
    with pytest.raises(OutputError, match="cache_dir"):
        embed_inputs(encoder, TEXTS, cache_dir=a_file / "below")
    assert calls == [] and a_file.read_text() == "mine"


def test_embed_inputs_refuses_what_is_not_an_encoder_or_a_batch_size():
    with pytest.raises(BridgeInputError, match="CallableEncoder"):
        embed_inputs(lambda batch: batch, ["a"])
    encoder = _digits_encoder()
    with pytest.raises(BridgeInputError, match="batch_size"):
        embed_inputs(encoder, np.zeros((3, 8, 8)), batch_size=0)
    with pytest.raises(BridgeInputError, match="empty"):
        embed_inputs(encoder, np.zeros((0, 8, 8)))


# --------------------------------------------------------------------------- embed_dataset: an adapter
def test_embed_dataset_is_embed_inputs_on_the_column_with_the_same_cache(tiny_bert_path, tmp_path):
    data = datasets.Dataset.from_dict({"text": TEXTS * 3, "label": list(range(len(TEXTS) * 3))})
    encoder = load_encoder(tiny_bert_path)
    calls = _count_forward_passes(encoder)
    first = embed_dataset(encoder, data, "text", batch_size=4, cache_dir=str(tmp_path))
    assert calls and first.shape == (len(data), 32)
    assert torch.equal(first, encoder.embed(list(data["text"]), batch_size=4))
    files = _cache_files(tmp_path)
    assert len(files) == 1

    again = load_encoder(tiny_bert_path)  # a fresh encoder object, as in a new process
    calls = _count_forward_passes(again)
    assert torch.equal(embed_dataset(again, data, "text", batch_size=4, cache_dir=tmp_path), first)
    # the same values as a list: the same cache entry
    assert torch.equal(embed_inputs(again, TEXTS * 3, batch_size=4, cache_dir=tmp_path), first)
    assert calls == [] and _cache_files(tmp_path) == files

    other = load_encoder(tiny_bert_path, pooling="cls")
    calls = _count_forward_passes(other)
    third = embed_dataset(other, data, "text", cache_dir=str(tmp_path))
    assert calls and not torch.allclose(third, first)  # another pooling is another cache entry
    with pytest.raises(BridgeInputError, match="column"):
        embed_dataset(encoder, data, "sentence")
    with pytest.raises(BridgeInputError, match="empty"):
        embed_dataset(encoder, data.select([]), "text")
    with pytest.raises(BridgeInputError, match="one split"):
        embed_dataset(encoder, datasets.DatasetDict({"train": data}), "text")


def test_embed_dataset_default_cache_is_under_the_datasets_cache(tiny_bert_path, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    data = datasets.Dataset.from_dict({"text": TEXTS})
    embed_dataset(load_encoder(tiny_bert_path), data, "text")
    assert len(list((tmp_path / "hf-datasets" / "hf_latent_bridge_embeddings").glob("*.safetensors"))) == 1


def test_embed_dataset_images(tmp_path):
    arrays = np.stack(random_images(6))
    features = datasets.Features({"image": datasets.Array3D(shape=(32, 32, 3), dtype="uint8")})
    data = datasets.Dataset.from_dict({"image": arrays}, features=features)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 4))
    encoder = CallableEncoder(
        net, name="flat", modality="image", dim=4, preprocess=lambda b: torch.as_tensor(np.asarray(b)).float()
    )
    got = embed_dataset(encoder, data, "image", batch_size=4, cache_dir=str(tmp_path))
    assert torch.equal(got, encoder.embed(arrays, batch_size=4))

    pictures = datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in arrays]}).cast_column(
        "image", datasets.Image()
    )
    assert torch.equal(embed_dataset(encoder, pictures, "image", batch_size=4, cache_dir=str(tmp_path)), got)
