"""TextEncoder on a tiny BERT built offline: pooling, token-balanced batches, thread safety, errors."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image
from transformers import AutoModel, AutoTokenizer

from hf_latent_bridge import BridgeInputError, IncompatibleEncoderError, load_encoder
from hf_latent_bridge.encoding import TextEncoder
from tests.encoding.samples import MANY_TEXTS, TEXTS, random_images


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


def test_batches_are_balanced_by_token_count_and_embed_runs_exactly_them(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    tokenizer = encoder.tokenizer
    lengths = torch.tensor(
        [len(ids) for ids in tokenizer(MANY_TEXTS, truncation=True, max_length=128)["input_ids"]]
    )
    batches = encoder.batches(MANY_TEXTS, batch_size=16)
    rows = torch.cat(batches)
    assert torch.equal(torch.sort(rows).values, torch.arange(len(MANY_TEXTS)))  # a partition
    assert torch.equal(lengths[rows], torch.sort(lengths).values)  # in token-count order
    budget = 16 * lengths.double().mean()
    assert all(len(b) <= 16 for b in batches)
    assert all(len(b) * lengths[b].max() <= budget or len(b) == 1 for b in batches)
    assert len(batches[0]) == 16 and len(batches[-1]) < 8  # short texts travel together, long ones apart

    seen: list[tuple[int, int]] = []
    encoder.model.register_forward_hook(
        lambda m, args, kwargs, out: seen.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    encoder.embed(MANY_TEXTS, batch_size=16)
    # one forward pass per planned batch, padded only to the batch's longest text
    assert seen == [(len(b), int(lengths[b].max())) for b in batches]


def test_texts_are_tokenised_once_per_call(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)
    real = encoder.tokenizer
    calls: list[int] = []

    class CountingTokenizer:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, texts, **kwargs):
            calls.append(len(texts))
            return real(texts, **kwargs)

    encoder.tokenizer = CountingTokenizer()
    got = encoder.embed(MANY_TEXTS, batch_size=8)
    assert calls == [len(MANY_TEXTS)]
    encoder.tokenizer = real
    assert torch.equal(got, encoder.embed(MANY_TEXTS, batch_size=8))


def test_one_text_encoder_serves_eight_threads_bit_for_bit(tiny_bert_path):
    encoder = load_encoder(tiny_bert_path)  # fresh: the threads' first calls race on the tokenizer too
    subsets = [MANY_TEXTS[k::3][: 4 + k] for k in range(8)]  # different texts and lengths per thread
    serial = [load_encoder(tiny_bert_path).embed(s, batch_size=4) for s in subsets]
    state = dict(vars(encoder))
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait()
        for _ in range(8):
            try:
                if not torch.equal(encoder.embed(subsets[k], batch_size=4), serial[k]):
                    wrong.append(k)
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    assert vars(encoder).keys() == state.keys()  # no per-call state left on the encoder
    assert all(vars(encoder)[k] is v for k, v in state.items())


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


def test_bad_text_inputs_fail_before_compute(tiny_bert_path):
    import numpy as np

    text = load_encoder(tiny_bert_path)
    calls = []
    text.model.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(BridgeInputError, match="empty"):
        text.embed([])
    with pytest.raises(IncompatibleEncoderError, match="embeds text"):
        text.embed(random_images(2))
    with pytest.raises(IncompatibleEncoderError, match="input 1"):
        text.embed(["fine", Image.fromarray(random_images(1)[0])])
    for bad in (0, -1, 2.5, True, "8", None):
        with pytest.raises(BridgeInputError, match="batch_size"):
            text.embed(TEXTS, batch_size=bad)
    assert calls == []
    assert torch.equal(text.embed(TEXTS, batch_size=np.int64(3)), text.embed(TEXTS, batch_size=3))


def test_progress_bar_on_request(tiny_bert_path, capsys):
    load_encoder(tiny_bert_path).embed(TEXTS, show_progress=True)
    assert "embedding" in capsys.readouterr().err
