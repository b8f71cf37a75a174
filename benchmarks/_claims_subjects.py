"""The classifiers benchmarks/claims.py examines, trained here because none ships offline.

* an MLP head: a small torch network trained on frozen embeddings, used as a plain callable;
* a transformers text classifier: all-MiniLM-L6-v2 fine-tuned end to end as a
  ``BertForSequenceClassification`` on the ChatterBot topics (its head acts on BERT's pooled output);
* a transformers image classifier: a small ``ViTForImageClassification`` built from a config and trained
  from scratch on Fashion-MNIST (its head acts on the first token).

Trained models are saved under a cache folder named by their settings and reused on later runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def train_mlp(
    x: torch.Tensor, y: torch.Tensor, *, hidden: int = 256, epochs: int = 300, seed: int = 0
) -> nn.Module:
    """A 1-hidden-layer ReLU MLP (with biases) trained full-batch with Adam on raw embeddings."""
    torch.manual_seed(seed)
    x, y = x.float(), torch.as_tensor(y).long()
    model = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, int(y.max()) + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _cached(folder: Path, settings: dict[str, Any]) -> bool:
    marker = folder / "claims_settings.json"
    return marker.is_file() and json.loads(marker.read_text()) == settings


def _finish(staging: Path, folder: Path, settings: dict[str, Any]) -> Path:
    (staging / "claims_settings.json").write_text(json.dumps(settings, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder


def minilm_classifier(
    model_path: str,
    texts: Sequence[str],
    labels: torch.Tensor,
    names: Sequence[str],
    folder: Path,
    *,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
) -> Path:
    """all-MiniLM-L6-v2 fine-tuned as a BertForSequenceClassification; the saved folder's path."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    settings = {"kind": "minilm-classifier", "n": len(texts), "epochs": epochs, "lr": lr, "seed": seed,
                "batch_size": batch_size, "labels": list(names)}  # fmt: skip
    if _cached(folder, settings):
        return folder
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = BertForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
    _train(
        model,
        {k: v for k, v in encoded.items()},
        torch.as_tensor(labels).long(),
        epochs,
        batch_size,
        lr,
        seed,
    )
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.eval().save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return _finish(staging, folder, settings)


def vit_classifier(
    images: np.ndarray,
    labels: torch.Tensor,
    names: Sequence[str],
    folder: Path,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> Path:
    """A 4-layer ViT (hidden 64, 28 px, 7 px patches) trained from scratch on grey images ``(n, 28, 28)``."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    settings = {"kind": "vit-classifier", "n": len(images), "epochs": epochs, "lr": lr, "seed": seed,
                "batch_size": batch_size, "labels": list(names)}  # fmt: skip
    if _cached(folder, settings):
        return folder
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=28, patch_size=7, num_channels=3, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=128, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )  # fmt: skip
    processor = ViTImageProcessor(
        do_resize=True, size={"height": 28, "width": 28}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    model = ViTForImageClassification(config)
    rgb = [np.repeat(np.asarray(x)[..., None], 3, axis=-1) for x in images]
    pixels = processor(images=rgb, return_tensors="pt")["pixel_values"]
    _train(model, {"pixel_values": pixels}, torch.as_tensor(labels).long(), epochs, batch_size, lr, seed)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.eval().save_pretrained(staging)
    processor.save_pretrained(staging)
    return _finish(staging, folder, settings)


def _train(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    labels: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> None:
    """AdamW with a linear decay, shuffled mini-batches, cross-entropy on the model's logits."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(labels) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch_size):
            rows = order[start : start + batch_size]
            logits = model(**{k: v[rows] for k, v in inputs.items()}).logits
            loss = nn.functional.cross_entropy(logits, labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
