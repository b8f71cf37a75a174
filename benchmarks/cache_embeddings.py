"""Precompute real encoder embeddings for fidelity tuning and benchmarks (saved as ``.npy``).

Run (offline; a few minutes on 2 CPU cores)::

    HF_HUB_OFFLINE=1 python benchmarks/cache_embeddings.py --out /tmp/hlb_embeddings

Written files (``n_chat`` = number of cleaned ChatterBot utterances, see
``hf_latent_bridge.demo.chatterbot_topics``):

* ``chatterbot_text.json`` -- list of ``n_chat`` texts, in ``chatterbot_topics()`` order
* ``chatterbot_labels.npy`` -- int64 ``(n_chat,)`` topic ids; names in ``chatterbot_meta.json``
* ``chatterbot_split.npy`` -- bool ``(n_chat,)``, True = test row of
  ``chatterbot_topics_splits(test_size=0.3, seed=0)`` (stratified by topic)
* ``chatterbot_minilm.npy`` / ``chatterbot_mpnet.npy`` -- float32 ``(n_chat, 384)`` / ``(n_chat, 768)``:
  ``embed_inputs(load_encoder(<model folder>), texts)``, i.e. the folder's sentence-transformers recipe
  (mean pooling over tokens with the attention mask, then L2 normalisation; checked against
  ``SentenceTransformer.encode`` unless ``--skip-verify``)
* ``fmnist_{train,test}_labels.npy`` -- int64 labels of the first ``--n-train`` training and
  ``--n-test`` test images of Fashion-MNIST
* ``fmnist_{train,test}_lite{0,1}.npy`` -- float32 ``(n, 1280)`` EfficientNet-Lite features
  (``extract_features(x).mean((2, 3))``) at ``--image-size`` px: ``embed_inputs`` with a
  ``CallableEncoder`` around ``EfficientNetLiteFeatures``
* ``chatterbot_meta.json`` / ``fmnist_meta.json`` -- label names, sources and settings

All embeddings come from the library's one embedding path (``hf_latent_bridge.encoding.embed_inputs``).
Files are written atomically (temporary name, then rename), ChatterBot first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from hf_latent_bridge.demo import (
    FASHION_MNIST_CLASSES,
    chatterbot_topics,
    chatterbot_topics_splits,
    fashion_mnist_arrays,
    minilm_path,
    mpnet_path,
)
from hf_latent_bridge.demo.models import EfficientNetLiteFeatures
from hf_latent_bridge.encoding import CallableEncoder, Encoder, embed_inputs, load_encoder

logger = logging.getLogger("cache_embeddings")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)
    logger.info("wrote %s %s %s", path, array.shape, array.dtype)


def _save_json(path: Path, obj: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote %s", path)


def embed(encoder: Encoder, inputs: Any, batch_size: int) -> np.ndarray:
    """``encoder``'s embeddings of ``inputs`` through the library's embedding path, as float32 numpy."""
    return embed_inputs(encoder, inputs, batch_size=batch_size, show_progress=False).numpy()


def efficientnet_encoder(name: str, image_size: int) -> CallableEncoder:
    """EfficientNet-Lite ``name`` (``extract_features(x).mean((2, 3))``) as an image encoder."""
    model = EfficientNetLiteFeatures(name, image_size=image_size)
    return CallableEncoder(
        model,
        name=f"efficientnet-{name}",
        modality="image",
        dim=model.hidden_size,
        preprocess=model.preprocess,
        key=f"efficientnet_preprocess(size={image_size})",
    )


def verify_against_sentence_transformers(
    model_path: str, texts: Sequence[str], ours: np.ndarray, tol: float = 1e-5
) -> float:
    """Max |ours - SentenceTransformer.encode| over ``texts``; raises if above ``tol``."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(model_path, device="cpu").encode(
        list(texts), convert_to_numpy=True, batch_size=len(texts)
    )
    diff = float(np.abs(reference.astype(np.float32) - ours).max())
    if diff > tol:
        raise RuntimeError(
            f"{model_path}: mean pooling differs from SentenceTransformer by {diff:.2e} > {tol}"
        )
    return diff


def cache_chatterbot(out: Path, batch_size: int, verify: bool, n_verify: int = 8) -> None:
    dataset = chatterbot_topics()
    texts = list(dataset["text"])
    labels = np.asarray(dataset["label"], dtype=np.int64)
    names = dataset.features["label"].names
    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    position = {t: i for i, t in enumerate(texts)}
    if len(position) != len(texts):
        raise RuntimeError("chatterbot_topics() texts are not unique; cannot map the split back")
    is_test = np.zeros(len(texts), dtype=bool)
    is_test[[position[t] for t in splits["test"]["text"]]] = True
    if int(is_test.sum()) != len(splits["test"]) or len(splits["train"]) + len(splits["test"]) != len(texts):
        raise RuntimeError("split bookkeeping mismatch")

    _save_json(out / "chatterbot_text.json", texts)
    _save_npy(out / "chatterbot_labels.npy", labels)
    _save_npy(out / "chatterbot_split.npy", is_test)

    models = {"minilm": minilm_path(), "mpnet": mpnet_path()}
    verify_rows = np.linspace(0, len(texts) - 1, n_verify).round().astype(int)
    check: dict[str, float] = {}
    for key, path in models.items():
        t0 = time.perf_counter()
        encoder = load_encoder(path)
        if encoder.ref.pooling != "mean+norm":
            raise RuntimeError(
                f"{path}: expected the folder's recipe 'mean+norm', got {encoder.ref.pooling!r}"
            )
        embeddings = embed(encoder, texts, batch_size)
        logger.info("%s: encoded %d texts in %.1fs", key, len(texts), time.perf_counter() - t0)
        if verify:
            check[key] = verify_against_sentence_transformers(
                path, [texts[i] for i in verify_rows], embeddings[verify_rows]
            )
            logger.info("%s: max |diff| vs SentenceTransformer.encode = %.2e", key, check[key])
        _save_npy(out / f"chatterbot_{key}.npy", embeddings)

    _save_json(
        out / "chatterbot_meta.json",
        {
            "label_names": names,
            "n": len(texts),
            "n_test": int(is_test.sum()),
            "split": "chatterbot_topics_splits(test_size=0.3, seed=0); True = test",
            "pooling": "mean over tokens with attention mask, then L2 normalisation",
            "embedding": f"embed_inputs(load_encoder(<model folder>), texts, batch_size={batch_size})",
            "models": {
                "minilm": "sentence-transformers/all-MiniLM-L6-v2",
                "mpnet": "sentence-transformers/all-mpnet-base-v2",
            },
            "max_abs_diff_vs_sentence_transformers": check,
        },
    )


def cache_fashion_mnist(out: Path, n_train: int, n_test: int, image_size: int, batch_size: int) -> None:
    train_images, train_labels = fashion_mnist_arrays("train", limit=n_train)
    test_images, test_labels = fashion_mnist_arrays("test", limit=n_test)
    _save_npy(out / "fmnist_train_labels.npy", train_labels)
    _save_npy(out / "fmnist_test_labels.npy", test_labels)
    for name in ("lite0", "lite1"):
        encoder = efficientnet_encoder(name, image_size)
        for split, images in (("train", train_images), ("test", test_images)):
            t0 = time.perf_counter()
            features = embed(encoder, images, batch_size)
            logger.info("%s %s: %d images in %.1fs", name, split, len(images), time.perf_counter() - t0)
            _save_npy(out / f"fmnist_{split}_{name}.npy", features)
    _save_json(
        out / "fmnist_meta.json",
        {
            "label_names": list(FASHION_MNIST_CLASSES),
            "train": f"first {len(train_labels)} training images",
            "test": f"first {len(test_labels)} test images",
            "image_size": image_size,
            "preprocessing": "grey->RGB, bilinear resize (antialias), (x/255 - 0.5) / 0.5",
            "features": "EfficientNet-Lite extract_features(x).mean((2, 3)), dynamic SAME padding",
            "embedding": f"embed_inputs(CallableEncoder(EfficientNetLiteFeatures), images, batch_size={batch_size})",
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hlb_embeddings"), help="output directory")
    parser.add_argument("--only", choices=("all", "chatterbot", "fmnist"), default="all")
    parser.add_argument("--text-batch-size", type=int, default=64)
    parser.add_argument("--image-batch-size", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--skip-verify", action="store_true", help="skip the SentenceTransformer check")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.only in ("all", "chatterbot"):
        cache_chatterbot(args.out, args.text_batch_size, verify=not args.skip_verify)
        logger.info("chatterbot done after %.1fs", time.perf_counter() - start)
    if args.only in ("all", "fmnist"):
        cache_fashion_mnist(args.out, args.n_train, args.n_test, args.image_size, args.image_batch_size)
        logger.info("fashion-mnist done after %.1fs", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
