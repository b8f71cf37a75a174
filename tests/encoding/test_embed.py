"""The one embedding path: embed_inputs runs the encoder's own batches and caches them on disk, and
embed_dataset is the same call on a dataset column."""

from __future__ import annotations

import os

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from hf_latent_bridge import BridgeInputError, CallableEncoder, embed_dataset, load_encoder
from hf_latent_bridge.encoding import embed_inputs
from hf_latent_bridge.encoding.cache import CACHE_FORMAT
from tests.encoding.samples import MANY_TEXTS, TEXTS, forward_shapes, random_images

ENCODERS = {  # name -> (fixture of the tiny model, load_encoder options, inputs, the module that runs)
    "text": ("tiny_bert_path", {"pooling": "mean+norm"}, MANY_TEXTS, ""),
    "image": ("tiny_vit_path", {}, random_images(11), ""),
    "clip-text": ("tiny_clip_path", {"tower": "text"}, MANY_TEXTS, "text_model"),
    "clip-image": ("tiny_clip_path", {"tower": "image"}, random_images(11), "vision_model"),
}


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_embed_inputs_gives_the_bits_of_encoder_embed_and_a_cache_hit_runs_no_model(kind, request, tmp_path):
    fixture, options, inputs, module = ENCODERS[kind]
    path = request.getfixturevalue(fixture)
    encoder = load_encoder(path, **options)
    local = encoder.embed(inputs, batch_size=4)
    assert torch.equal(embed_inputs(encoder, inputs, batch_size=4, cache_dir=tmp_path), local)
    again = load_encoder(path, **options)  # a fresh encoder object, as in a new process
    shapes = forward_shapes(again.model.get_submodule(module))
    torch.testing.assert_close(again.embed(inputs[:1]), local[:1])
    assert shapes  # the hook sees the model run
    shapes.clear()
    assert torch.equal(embed_inputs(again, list(inputs), batch_size=4, cache_dir=tmp_path), local)
    assert shapes == [] and len(list(tmp_path.iterdir())) == 1  # one file, no temporary debris


def test_whatever_changes_the_embeddings_changes_the_cache_entry(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    png = tmp_path / "picture.png"
    Image.fromarray(random_images(1)[0]).save(png)
    mean_rgb = CallableEncoder(
        lambda b: torch.as_tensor(np.stack(b)).float().mean((1, 2)), name="rgb", modality="image", dim=3
    )
    arrays = np.stack(random_images(4))
    changed = arrays.copy()
    changed[3, 4, 4, 0] ^= 1
    runs = [
        (encoder, TEXTS, 4),
        (encoder, list(TEXTS), 4),  # equal inputs: the same entry
        (encoder, [*TEXTS[:-1], TEXTS[-1] + "!"], 4),  # one character more
        (encoder, TEXTS[::-1], 4),  # another order
        (encoder, TEXTS, 2),  # another batch plan
        (load_encoder(tiny_bert_path, pooling="cls"), TEXTS, 4),  # another pooling
        (load_encoder(tiny_bert_path, dtype=torch.float64), TEXTS, 4),  # another precision
        (mean_rgb, arrays, 4),
        (mean_rgb, changed, 4),  # one bit of one pixel
        (mean_rgb, [str(png)], 4),
    ]
    entries = []
    for other, inputs, batch_size in runs:
        embed_inputs(other, inputs, batch_size=batch_size, cache_dir=tmp_path / "cache")
        entries.append(len(list((tmp_path / "cache").iterdir())))
    first = embed_inputs(mean_rgb, [str(png)], cache_dir=tmp_path / "cache")
    Image.fromarray(random_images(1, seed=5)[0]).save(png)  # the same path, another picture
    os.utime(png, ns=(1, 1))
    assert not torch.equal(embed_inputs(mean_rgb, [str(png)], cache_dir=tmp_path / "cache"), first)
    assert entries == [1, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_a_damaged_or_foreign_cache_file_is_recomputed_and_replaced(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    want = embed_inputs(encoder, TEXTS, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    good = path.read_bytes()
    shapes = forward_shapes(encoder.model)
    damages = [
        lambda: path.write_bytes(good[: len(good) // 2]),  # truncated
        lambda: path.write_bytes(b"not a safetensors file"),
        lambda: path.write_bytes(b""),
        lambda: save_file({"embeddings": want[:3]}, str(path), metadata={"format": CACHE_FORMAT}),
        lambda: save_file({"embeddings": want * float("nan")}, str(path), metadata={"format": CACHE_FORMAT}),
        lambda: save_file({"embeddings": want.double()}, str(path), metadata={"format": CACHE_FORMAT}),
        lambda: save_file({"embeddings": want}, str(path), metadata={"format": "someone else's"}),
    ]
    for damage in damages:
        damage()
        shapes.clear()
        assert torch.equal(embed_inputs(encoder, TEXTS, cache_dir=tmp_path), want)
        assert shapes and torch.equal(load_file(path)["embeddings"], want)  # recomputed, file repaired


def test_a_cache_dir_that_cannot_be_a_folder_is_refused_before_any_compute(tiny_bert_path, tmp_path):
    encoder = load_encoder(tiny_bert_path)
    shapes = forward_shapes(encoder.model)
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    for cache_dir in (a_file, a_file / "below"):
        with pytest.raises(OSError, match=str(a_file)):
            embed_inputs(encoder, TEXTS, cache_dir=cache_dir)
    assert shapes == [] and a_file.read_text() == "mine"


def test_embed_dataset_is_embed_inputs_on_the_column_with_the_same_cache(
    tiny_bert_path, tmp_path, monkeypatch
):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    data = datasets.Dataset.from_dict({"text": TEXTS * 3, "label": list(range(len(TEXTS) * 3))})
    encoder = load_encoder(tiny_bert_path)
    first = embed_dataset(encoder, data, "text", batch_size=4)  # cached under the datasets cache
    assert torch.equal(first, encoder.embed(TEXTS * 3, batch_size=4))
    cache = tmp_path / "hf-datasets" / "hf_latent_bridge_embeddings"
    shapes = forward_shapes(encoder.model)
    assert torch.equal(embed_inputs(encoder, TEXTS * 3, batch_size=4, cache_dir=cache), first)
    assert shapes == [] and len(list(cache.iterdir())) == 1
    with pytest.raises(BridgeInputError, match="column 'sentence' is not in the data set"):
        embed_dataset(encoder, data, "sentence")
    with pytest.raises(BridgeInputError, match="one split"):
        embed_dataset(encoder, datasets.DatasetDict({"train": data}), "text")
    with pytest.raises(BridgeInputError, match="empty batch"):
        embed_dataset(encoder, data.select([]), "text")


def test_embed_dataset_reads_array_and_image_features(tmp_path):
    arrays = np.stack(random_images(6))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 4))
    encoder = CallableEncoder(
        net, name="flat", modality="image", dim=4, preprocess=lambda b: torch.as_tensor(np.asarray(b)).float()
    )
    want = encoder.embed(arrays, batch_size=4)
    features = datasets.Features({"image": datasets.Array3D(shape=(32, 32, 3), dtype="uint8")})
    as_arrays = datasets.Dataset.from_dict({"image": arrays}, features=features)
    as_pictures = datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in arrays]}).cast_column(
        "image", datasets.Image()
    )
    for data in (as_arrays, as_pictures):
        assert torch.equal(embed_dataset(encoder, data, "image", batch_size=4, cache_dir=tmp_path), want)
