"""One encoder serves many threads: every call returns the bits a serial call does, and no per-call state is
left on the encoder."""

from __future__ import annotations

import threading

import pytest
import torch

from hf_latent_bridge import load_encoder
from tests.encoding.samples import MANY_TEXTS, random_images

KINDS = {  # name -> (fixture of the tiny model, load_encoder options, inputs of each thread)
    "text": ("tiny_bert_path", {}, [MANY_TEXTS[k::3][: 4 + k] for k in range(8)]),
    "image": ("tiny_vit_path", {}, [random_images(3 + k, seed=k) for k in range(8)]),
    "clip-text": ("tiny_clip_path", {"tower": "text"}, [MANY_TEXTS[k::5][: 3 + k] for k in range(8)]),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_encoder_serves_eight_threads_bit_for_bit(kind, request):
    fixture, options, subsets = KINDS[kind]
    path = request.getfixturevalue(fixture)
    serial = [load_encoder(path, **options).embed(s, batch_size=2) for s in subsets]
    encoder = load_encoder(path, **options)  # fresh: the first calls race on the tokenizer too
    state = dict(vars(encoder))
    errors: list[BaseException] = []
    wrong: list[int] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait()
        for _ in range(6):
            try:
                if not torch.equal(encoder.embed(subsets[k], batch_size=2), serial[k]):
                    wrong.append(k)
            except Exception as error:  # any failure in a thread is the test's failure
                errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    assert vars(encoder).keys() == state.keys() and all(vars(encoder)[k] is v for k, v in state.items())
