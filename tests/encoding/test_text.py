"""TextEncoder on a tiny BERT built offline: each pooling against a by-hand reference, and the batch plan."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from hf_latent_bridge import load_encoder
from hf_latent_bridge.encoding import TextEncoder
from hf_latent_bridge.encoding.sharding import balanced_chunks
from tests.encoding.samples import MANY_TEXTS, TEXTS, forward_shapes


@torch.no_grad()
def _unpadded(path: str, texts: list[str], pooling: str) -> torch.Tensor:
    """Each text alone (no padding at all), pooled by hand."""
    model, tokenizer = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    rows = []
    for text in texts:
        out = model(**tokenizer(text, return_tensors="pt"))
        hidden = out.last_hidden_state[0]
        mode, _, norm = pooling.partition("+")
        pooled = {"mean": hidden.mean(0), "cls": hidden[0], "max": hidden.max(0).values}.get(mode)
        pooled = out.pooler_output[0] if mode == "pooler" else pooled
        rows.append(torch.nn.functional.normalize(pooled, dim=0) if norm else pooled)
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "pooler", "mean+norm"])
def test_each_pooling_equals_the_text_embedded_alone(tiny_bert_path, pooling):
    encoder = load_encoder(tiny_bert_path, pooling=pooling)
    got = encoder.embed(TEXTS, batch_size=3)  # batches mix lengths and padding; input order comes back
    assert isinstance(encoder, TextEncoder) and got.dtype == torch.float32
    assert (encoder.ref.pooling, encoder.ref.modality, encoder.ref.dim) == (pooling, "text", 32)
    torch.testing.assert_close(got, _unpadded(tiny_bert_path, TEXTS, pooling), atol=1e-5, rtol=1e-5)


def test_embed_runs_one_forward_pass_per_token_balanced_batch(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    lengths = [
        len(ids) for ids in encoder.tokenizer(MANY_TEXTS, truncation=True, max_length=128)["input_ids"]
    ]
    batches = encoder.batches(MANY_TEXTS, batch_size=16)
    assert [b.tolist() for b in batches] == [b.tolist() for b in balanced_chunks(lengths, 16)]
    shapes = forward_shapes(encoder.model)
    encoder.embed(MANY_TEXTS, batch_size=16)
    # padded only to the longest text of each batch
    assert shapes == [(len(b), max(lengths[i] for i in b)) for b in batches]


def test_texts_are_tokenised_once_per_call(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    real, calls = encoder.tokenizer, []

    class CountingTokenizer:  # the real tokenizer, with its calls counted
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, texts, **kwargs):
            calls.append(len(texts))
            return real(texts, **kwargs)

    encoder.tokenizer = CountingTokenizer()
    got = encoder.embed(MANY_TEXTS, batch_size=8)
    encoder.tokenizer = real
    assert calls == [len(MANY_TEXTS)] and torch.equal(got, encoder.embed(MANY_TEXTS, batch_size=8))


def test_dtype_and_device_move_the_model_and_the_output_stays_float32(tiny_bert_path):
    base = load_encoder(tiny_bert_path).embed(TEXTS)
    wide = load_encoder(tiny_bert_path, dtype=torch.float64, device="cpu")
    assert wide.float_dtype == torch.float64 and wide.embed(TEXTS).dtype == torch.float32
    torch.testing.assert_close(wide.embed(TEXTS), base, atol=1e-5, rtol=1e-5)
    half = load_encoder(tiny_bert_path, dtype=torch.bfloat16).embed(TEXTS)
    assert half.dtype == torch.float32 and torch.nn.functional.cosine_similarity(half, base).min() > 0.95


def test_a_model_in_memory_is_an_encoder_and_its_weights_make_its_cache_key(tiny_bert_path):
    model, tokenizer = (
        AutoModel.from_pretrained(tiny_bert_path),
        AutoTokenizer.from_pretrained(tiny_bert_path),
    )
    encoder = TextEncoder(model, tokenizer)
    assert encoder.ref.name_or_path == tiny_bert_path  # the name the model was loaded by
    torch.testing.assert_close(encoder.embed(TEXTS), load_encoder(tiny_bert_path).embed(TEXTS))
    key = encoder.cache_key
    with torch.no_grad():
        model.encoder.layer[0].output.dense.bias.add_(1.0)  # changed in memory: the folder no longer tells
    assert encoder.cache_key != key
