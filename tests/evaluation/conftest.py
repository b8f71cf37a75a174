"""Two honest stand-in encoders of a real small data set (scikit-learn digits) that run in milliseconds: PCA
to 24 dimensions and a seeded random-feature map (tanh of a random projection to 40 dimensions) of the 8x8
digit pixels; and the default head, trained once per training set (head fits dominate the runtime)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hf_latent_bridge.core.anchor_set import fingerprint
from hf_latent_bridge.evaluation import default_head_factory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def digits() -> dict[str, object]:
    data = load_digits()
    x, y = torch.tensor(data.data, dtype=torch.float64) / 16.0, torch.tensor(data.target)
    train, test = (
        torch.as_tensor(i)
        for i in train_test_split(np.arange(len(y)), test_size=0.3, stratify=data.target, random_state=0)
    )
    mean = x[train].mean(0)
    pca = ((x - mean) @ torch.linalg.svd(x[train] - mean, full_matrices=False)[2][:24].T).float()
    g = torch.Generator().manual_seed(7)
    w, b = (
        torch.randn(64, 40, generator=g, dtype=torch.float64),
        torch.rand(40, generator=g, dtype=torch.float64),
    )
    rff = torch.tanh(x @ w / 4 + b).float()
    return {
        "train": {"pca": pca[train], "rff": rff[train]},
        "test": {"pca": pca[test], "rff": rff[test]},
        "train_labels": y[train],
        "test_labels": y[test],
    }


@pytest.fixture(scope="session")
def head_factory():
    """:func:`default_head_factory`, trained once per distinct training set of the session."""
    heads: dict[str, object] = {}

    def factory(embeddings, labels, id2label):
        key = fingerprint([embeddings, torch.as_tensor(labels)])
        if key not in heads:
            heads[key] = default_head_factory(embeddings, labels, id2label)
        return heads[key]

    return factory
