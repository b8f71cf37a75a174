"""Inputs shared by the encoding tests (texts of very different lengths, random images), and a counter of
the forward passes a real model makes."""

from __future__ import annotations

import numpy as np
import torch

TEXTS = [
    "Which team won the cup?",
    "hi",
    "The mitochondria is the powerhouse of the cell, as every biology student learns early on.",
    "What is your favourite food?",
    "Tell me a joke about computers and the people who program them every day",
    "ok",
    "Do you like movies?",
]

#: Many texts with a long tail of lengths (some past the tiny BERT's 128 positions, so truncated).
MANY_TEXTS = [
    " ".join(f"w{(i * j) % 97}" for j in range(1 + (i * 7) % 23 + (60 if i % 17 == 0 else 0)))
    for i in range(48)
]


def random_images(n: int, seed: int = 0, size: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def forward_shapes(module: torch.nn.Module) -> list[tuple[int, ...]]:
    """The shape of the first input of every forward pass ``module`` makes from now on (a hook on it)."""
    shapes: list[tuple[int, ...]] = []

    def record(_module, args, kwargs, _out) -> None:
        first = next(iter(kwargs.values())) if kwargs else args[0]
        shapes.append(tuple(first.shape))

    module.register_forward_hook(record, with_kwargs=True)
    return shapes
