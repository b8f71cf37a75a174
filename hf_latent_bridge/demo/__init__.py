"""The offline demo and the real models and data it uses (installed from PyPI and Debian).

Nothing else in the library imports this package; the CLI's ``demo`` command and the benchmarks do.
"""

from __future__ import annotations

from ._optional import default_cache_dir
from .data import (
    FASHION_MNIST_CLASSES,
    chatterbot_topics,
    chatterbot_topics_splits,
    fashion_mnist,
    fashion_mnist_arrays,
    fashion_mnist_captions,
)
from .models import efficientnet_lite, efficientnet_preprocess, minilm_path, mpnet_path
from .run import DemoResult, run_demo

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DemoResult",
    "chatterbot_topics",
    "chatterbot_topics_splits",
    "default_cache_dir",
    "efficientnet_lite",
    "efficientnet_preprocess",
    "fashion_mnist",
    "fashion_mnist_arrays",
    "fashion_mnist_captions",
    "minilm_path",
    "mpnet_path",
    "run_demo",
]
