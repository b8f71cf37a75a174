"""load_encoder: the right encoder for a folder, a sentence-transformers recipe honoured, clear refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from hf_latent_bridge import BridgeInputError, CheckpointError, IncompatibleEncoderError, load_encoder
from hf_latent_bridge.encoding.loading import as_encoder
from tests.encoding.samples import TEXTS

LONG_TEXTS = [*TEXTS, "a long sentence " * 20]  # past the recipe's max_seq_length of 12


def test_a_sentence_transformers_folder_embeds_as_sentence_transformers_does(tiny_st_path, tiny_bert_path):
    from sentence_transformers import SentenceTransformer

    encoder = load_encoder(tiny_st_path)
    assert (
        encoder.ref.pooling == "cls+norm" and encoder.max_length == 12
    )  # 1_Pooling, Normalize, sentence_bert_config
    reference = SentenceTransformer(tiny_st_path, device="cpu").encode(LONG_TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(encoder.embed(LONG_TEXTS, batch_size=4), reference.cpu(), atol=1e-5, rtol=1e-5)
    assert load_encoder(tiny_bert_path).ref.pooling == "mean"  # the same weights without a recipe
    assert load_encoder(tiny_st_path, pooling="mean").ref.pooling == "mean"  # an explicit pooling wins


def test_a_loaded_sentence_transformer_is_an_encoder_that_keeps_its_recipe(tiny_st_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_st_path, device="cpu")
    encoder = as_encoder(model, hub_id="someone/tiny-st")
    assert (encoder.ref.name_or_path, encoder.ref.pooling, encoder.dim) == ("someone/tiny-st", "cls+norm", 32)
    want = model.encode(LONG_TEXTS, convert_to_tensor=True).cpu()
    torch.testing.assert_close(encoder.embed(LONG_TEXTS, batch_size=3), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        encoder.embed(LONG_TEXTS), load_encoder(tiny_st_path).embed(LONG_TEXTS), atol=1e-5, rtol=1e-5
    )
    loaded = load_encoder(tiny_st_path)
    renamed = as_encoder(loaded, hub_id="someone/else")
    assert renamed.ref.name_or_path == "someone/else" and loaded.ref.name_or_path == tiny_st_path  # a copy


def _damaged(tiny_st_path, tmp_path, damage):
    """Load a copy of the tiny sentence-transformers folder after ``damage(folder)``."""
    folder = tmp_path / "st"
    shutil.copytree(tiny_st_path, folder)
    damage(folder)
    return load_encoder(str(folder))


def _add_dense(folder):
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))


LOAD_ERRORS = {  # case -> (load (tiny sentence-transformers folder, tmp_path), error, message)
    "unknown pooling": (
        lambda p, t: load_encoder(p, pooling="median"),
        BridgeInputError,
        "unknown pooling 'median'",
    ),
    "wrong modality": (
        lambda p, t: load_encoder(p, modality="image"),
        IncompatibleEncoderError,
        "embeds text, not image",
    ),
    "tower of one": (lambda p, t: load_encoder(p, tower="text"), BridgeInputError, "dual encoders only"),
    "empty name": (lambda p, t: load_encoder(""), BridgeInputError, "name_or_path must be"),
    "a file": (lambda p, t: load_encoder(f"{p}/config.json"), CheckpointError, "it is a file"),
    "no such folder": (lambda p, t: load_encoder(f"{p}/nope"), CheckpointError, "cannot load encoder"),
    "no model in it": (lambda p, t: load_encoder(f"{p}/1_Pooling"), CheckpointError, "cannot load encoder"),
    "unreproducible module": (
        lambda p, t: _damaged(p, t, _add_dense),
        IncompatibleEncoderError,
        "Dense.*CallableEncoder",
    ),
    "damaged modules.json": (
        lambda p, t: _damaged(p, t, lambda f: (f / "modules.json").write_text("[{")),
        CheckpointError,
        "modules.json cannot be read as JSON",
    ),
    "bad max_seq_length": (
        lambda p, t: _damaged(
            p, t, lambda f: (f / "sentence_bert_config.json").write_text('{"max_seq_length": 0}')
        ),
        CheckpointError,
        "max_seq_length 0",
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_ERRORS))
def test_what_cannot_be_loaded_is_refused_naming_the_problem(case, tiny_st_path, tmp_path):
    load, error, match = LOAD_ERRORS[case]
    with pytest.raises(error, match=match):
        load(tiny_st_path, tmp_path)
