"""What every adversarial test checks, and the small real artifacts they attack.

The properties (issue 11): a bad value is refused with the package's own error (a
:class:`~hf_latent_bridge.BridgeInputError`; a :class:`~hf_latent_bridge.CheckpointError` for an artifact
that cannot be loaded) that says what was wrong; nothing hangs; nothing loses or overwrites the user's
data; nothing returns a non-finite result. The artifacts are fitted here on random anchors (and saved
once per session); the command line and the pipeline use the tiny real models of tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    BridgeInputError,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    StitchedModel,
)
from hf_latent_bridge.cli import app

SOURCE = EncoderRef("adversary/source", revision="a" * 40, pooling="mean", modality="text")
TARGET = EncoderRef("adversary/target", revision="b" * 40, pooling="mean", modality="text")
ANCHOR_SET = AnchorSet("adversary/anchors", tuple(range(30)), revision="c" * 40, split="train")
D_SOURCE, D_TARGET, NUM_CLASSES = 6, 5, 3

#: A generous bound that only a hang reaches (refusals take milliseconds; see benchmarks/crafted_configs.py).
HANG_SECONDS = 60


class Hung(AssertionError):
    """Raised in the main thread when an operation runs past :data:`HANG_SECONDS`."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail (instead of waiting forever) if the body runs longer than ``seconds`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused_or_finite(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``call``: it either raises a :class:`BridgeInputError` saying something, or returns a finite result.

    Returns the result, or ``None`` when it was refused. Any other exception fails the test (a raw
    ``TypeError`` from deep inside torch is exactly what the package must not let through).
    """
    try:
        with no_hang():
            result = call(*args, **kwargs)
    except BridgeInputError as error:
        assert str(error).strip(), "an error must say what was wrong"
        return None
    assert_finite(result)
    return result


def assert_finite(result: Any) -> None:
    """Every number in ``result`` (tensors, arrays, floats, dicts and lists of them) is finite."""
    if isinstance(result, torch.Tensor):
        if result.is_floating_point():
            assert bool(torch.isfinite(result).all()), "a non-finite result was returned"
    elif isinstance(result, np.ndarray):
        if result.dtype.kind in "fc":
            assert bool(np.isfinite(result).all()), "a non-finite result was returned"
    elif isinstance(result, float):
        assert np.isfinite(result), "a non-finite number was returned"
    elif isinstance(result, dict):
        for value in result.values():
            assert_finite(value)
    elif isinstance(result, (list, tuple)):
        for value in result:
            assert_finite(value)


def anchors(seed: int = 0, k: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, D_SOURCE, generator=g), torch.randn(k, D_TARGET, generator=g)


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Any]:
    """One fitted model of every kind (bridge, ensemble bridge, anchor space, head, stitched model)."""
    x, y = anchors()
    bridge = LatentBridge.fit(x, y, source_encoder=SOURCE, target_encoder=TARGET, anchor_set=ANCHOR_SET)
    labels = torch.arange(len(y)) % NUM_CLASSES
    head = ClassificationHead.fit(y, labels, id2label=["a", "b", "c"], pooling="mean", encoder=TARGET)
    return {
        "bridge": bridge,
        "ensemble": LatentBridge.fit(x, y, ensemble=3, source_encoder=SOURCE, target_encoder=TARGET),
        "anchor_space": AnchorSpace.from_embeddings(x, anchor_set=ANCHOR_SET, encoder=SOURCE),
        "head": head,
        "stitched": StitchedModel.from_parts(bridge, head),
    }


@pytest.fixture(scope="session")
def saved_artifacts(artifacts, tmp_path_factory) -> dict[str, Path]:
    """Each kind saved once (copy before changing anything)."""
    root = tmp_path_factory.mktemp("adversarial-artifacts")
    folders = {}
    for kind, model in artifacts.items():
        model.save_pretrained(root / kind)
        folders[kind] = root / kind
    return folders


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, tiny_bert_path, tiny_bert48_path) -> dict[str, str]:
    """A small labelled data file (real utterances), the two tiny encoders and a stitched model."""
    from hf_latent_bridge.demo import chatterbot_topics

    root = tmp_path_factory.mktemp("cli-workspace")
    dataset = chatterbot_topics()
    names = dataset.features["label"].names
    by_topic = {t: [r for r in dataset if names[r["label"]] == t][:10] for t in ("food", "sports", "money")}
    rows = [row for group in zip(*by_topic.values(), strict=True) for row in group]  # interleaved topics
    data = root / "topics.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "topic": names[r["label"]]}) + "\n" for r in rows))
    (root / "inputs.txt").write_text("Do you like to play football?\nWhat is money?\n")
    result = CliRunner().invoke(
        app,
        ["stitch", tiny_bert_path, tiny_bert48_path, "-d", str(data), "--label-column", "topic",
         "-o", str(root / "stitched"), "-k", "12", "--strategy", "uniform"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {
        "root": str(root),
        "data": str(data),
        "inputs": str(root / "inputs.txt"),
        "stitched": str(root / "stitched"),
        "source": tiny_bert_path,
        "target": tiny_bert48_path,
    }
