"""Shared fixtures. Environment first: huggingface_hub reads HF_* variables when it is imported."""

from __future__ import annotations

import os
import tempfile

# ---- environment (must run before anything imports huggingface_hub) --------------------------------
_SESSION_HOME = tempfile.mkdtemp(prefix="hlb-tests-home-")
os.environ["HF_HOME"] = _SESSION_HOME
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)
