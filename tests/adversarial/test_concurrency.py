"""Inference from many threads at once: bridges, heads, stitched models, encoders and the pipeline.

tests/models/test_pipeline.py runs one pipeline from eight threads; here every inference entry point
runs at the same time from eight threads, mixed with calls that fail (bad input must be refused in its
own thread without disturbing the others), and every result must equal the serial one bit for bit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch
from transformers import pipeline

from hf_latent_bridge import LatentBridge, load_encoder
from hf_latent_bridge.errors import BridgeInputError
from tests.adversarial.conftest import D_SOURCE, D_TARGET, anchors

THREADS, CALLS_PER_THREAD = 8, 40


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def outcome(call: Callable[[], Any]) -> Any:
    """A call's result, or the package error's type and message (refusals must be stable too)."""
    try:
        return call()
    except BridgeInputError as error:
        return (type(error).__name__, str(error))


def run_concurrently(calls: list[Callable[[], Any]]) -> None:
    """Every call from ``THREADS`` threads released together; each result equals the serial one."""
    serial = [outcome(call) for call in calls]
    start = threading.Barrier(THREADS)

    def work(t: int) -> list[tuple[int, Any]]:
        start.wait()
        picks = [(t * 5 + 3 * j) % len(calls) for j in range(CALLS_PER_THREAD)]
        return [(i, outcome(calls[i])) for i in picks]

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for f in [pool.submit(work, t) for t in range(THREADS)] for r in f.result()]
    assert len(results) == THREADS * CALLS_PER_THREAD
    assert [i for i, result in results if not same(result, serial[i])] == []


def test_models_of_every_kind_from_eight_threads_are_bit_identical_to_serial(artifacts):
    bridge, ensemble, head, stitched = (artifacts[k] for k in ("bridge", "ensemble", "head", "stitched"))
    half = LatentBridge.fit(*anchors(7), dtype=torch.float16)
    g = torch.Generator().manual_seed(11)
    xs = [torch.randn(n, D_SOURCE, generator=g) for n in (1, 3, 17, 64)]
    ys = [torch.randn(n, D_TARGET, generator=g) for n in (1, 5, 33)]
    bad = [torch.full((2, D_SOURCE), float("nan")), torch.randn(2, D_SOURCE + 1), "text", None]
    calls: list[Callable[[], Any]] = []
    for x in xs:
        calls += [
            lambda x=x: bridge.translate(x),
            lambda x=x: bridge.translate(x.numpy()),
            lambda x=x: bridge.translate(x[0]),
            lambda x=x: ensemble.translate(x.double()),
            lambda x=x: half.translate(x.half()),
            lambda x=x: bridge(x),
            lambda x=x: stitched.logits_from_embeddings(x),
            lambda x=x: stitched(x).logits,
        ]
    for y in ys:
        calls += [lambda y=y: head.logits(y), lambda y=y: head.predict(y), lambda y=y: head.predict_proba(y)]
    for b in bad:
        calls += [lambda b=b: bridge.translate(b), lambda b=b: stitched.logits_from_embeddings(b)]
    run_concurrently(calls)


@pytest.fixture(scope="module")
def text_stack(workspace):
    """The tiny text encoder, and the CLI-built stitched model's pipeline on it."""
    encoder = load_encoder(workspace["source"])
    classifier = pipeline(
        "stitched-classification", model=workspace["stitched"], source_encoder=encoder, strict=False
    )
    return encoder, classifier


def test_pipeline_encoder_and_models_shared_by_threads_with_failing_calls_mixed_in(text_stack, artifacts):
    """One encoder and one pipeline shared by threads that also call models and send bad inputs."""
    encoder, classifier = text_stack
    texts = ["Do you like football?", "What is money?", "I love pizza and pasta", "a", "longer " * 30]
    calls: list[Callable[[], Any]] = [
        lambda: classifier(texts[0]),
        lambda: classifier(texts, top_k=2, batch_size=2),
        lambda: classifier(texts[1:4], top_k=None),
        lambda: classifier({"text": "a dict"}),  # refused
        lambda: classifier([texts[0], None]),  # refused
        lambda: classifier(texts, batch_size=0),  # refused
        lambda: encoder.embed(texts),
        lambda: encoder.embed(texts[::-1], batch_size=1),
        lambda: encoder.embed([]),  # refused
        lambda: artifacts["bridge"].translate(torch.ones(3, D_SOURCE)),
        lambda: artifacts["head"].predict_proba(torch.ones(2, D_TARGET)),
    ]
    run_concurrently(calls)
