"""load_encoder: the right encoder kind, a sentence-transformers folder's recipe, cache keys, errors."""

from __future__ import annotations

import pytest
import torch

from hf_latent_bridge import BridgeInputError, IncompatibleEncoderError, load_encoder
from tests.encoding.samples import TEXTS


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


def test_cache_key_tracks_what_changes_embeddings(tiny_bert_path, tiny_st_path):
    a, b = load_encoder(tiny_bert_path), load_encoder(tiny_bert_path)
    assert a.cache_key == b.cache_key  # stable across loads
    assert load_encoder(tiny_bert_path, pooling="cls").cache_key != a.cache_key
    assert load_encoder(tiny_bert_path, dtype=torch.float64).cache_key != a.cache_key
    assert load_encoder(tiny_st_path).cache_key != a.cache_key


def test_load_encoder_refuses_bad_options(tiny_bert_path):
    with pytest.raises(BridgeInputError, match="unknown pooling"):
        load_encoder(tiny_bert_path, pooling="median")
    with pytest.raises(IncompatibleEncoderError, match="embeds text, not image"):
        load_encoder(tiny_bert_path, modality="image")
    with pytest.raises(BridgeInputError, match="tower="):
        load_encoder(tiny_bert_path, tower="text")
    with pytest.raises(BridgeInputError, match="name_or_path"):
        load_encoder("")
