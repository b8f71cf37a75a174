"""Extra embeddings for the fidelity benchmark: cross-modal captions and scikit-learn digits.

``benchmarks/cache_embeddings.py`` writes ChatterBot (MiniLM, mpnet) and Fashion-MNIST (EfficientNet-Lite0
and Lite1) embeddings. This script adds, into the same folder:

* ``fmnist_{train,test}_caption_{minilm,mpnet}.npy``: the same Fashion-MNIST rows described by a caption of
  their class (``demo.data.fashion_mnist_captions``, 12 phrasings per class), embedded by MiniLM and
  mpnet, so that (image, caption) pairs are parallel anchors across modalities;
* ``digits_{train,test}_{lite0,lite1,caption_minilm}.npy`` and ``digits_{train,test}_labels.npy``:
  scikit-learn's 8x8 digits (70/30 split stratified by class, seed 0), upscaled to 96 px for the
  EfficientNet-Lite encoders, and a caption of each digit's class for MiniLM.

    HF_HUB_OFFLINE=1 python benchmarks/fidelity_embeddings.py --out /tmp/hlb_embeddings
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from hf_latent_bridge.demo import fashion_mnist_arrays, fashion_mnist_captions, minilm_path, mpnet_path
from hf_latent_bridge.demo.models import EfficientNetLiteFeatures

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_TEMPLATES = (
    "a handwritten digit {word}",
    "the number {numeral}, written by hand",
    "a small scanned image of the digit {numeral}",
    "a pen drawing of the number {word}",
)


def digit_captions(labels: np.ndarray) -> list[str]:
    """One caption per digit label, cycling through the templates per class (deterministic)."""
    seen = [0] * 10
    captions = []
    for label in labels.tolist():
        template = DIGIT_TEMPLATES[seen[label] % len(DIGIT_TEMPLATES)]
        seen[label] += 1
        captions.append(template.format(word=DIGIT_WORDS[label], numeral=label))
    return captions


def save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array.astype(np.float32) if array.dtype.kind == "f" else array, allow_pickle=False)
    tmp.replace(path)
    print("wrote", path, array.shape, flush=True)


def text_encoder(name: str):
    from sentence_transformers import SentenceTransformer

    path = minilm_path() if name == "minilm" else mpnet_path()
    return SentenceTransformer(path, device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/hlb_embeddings"))
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=96)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    # Fashion-MNIST captions, aligned with the rows of cache_embeddings.py (first n images of each split).
    _, train_labels = fashion_mnist_arrays("train", args.n_train)
    _, test_labels = fashion_mnist_arrays("test", args.n_test)
    for name in ("minilm", "mpnet"):
        model = text_encoder(name)
        for split, labels in (("train", train_labels), ("test", test_labels)):
            texts = fashion_mnist_captions(labels)
            emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            save(args.out / f"fmnist_{split}_caption_{name}.npy", emb)

    # scikit-learn digits: images through both EfficientNets, captions through MiniLM.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    rows = np.arange(len(images))
    train, test = train_test_split(rows, test_size=0.3, stratify=digits.target, random_state=0)
    for split, index in (("train", train), ("test", test)):
        save(args.out / f"digits_{split}_labels.npy", digits.target[index].astype(np.int64))
    for name in ("lite0", "lite1"):
        encoder = EfficientNetLiteFeatures(name, image_size=args.image_size)
        for split, index in (("train", train), ("test", test)):
            save(args.out / f"digits_{split}_{name}.npy", encoder.encode(images[index]))
    model = text_encoder("minilm")
    for split, index in (("train", train), ("test", test)):
        emb = model.encode(digit_captions(digits.target[index]), batch_size=64, normalize_embeddings=True)
        save(args.out / f"digits_{split}_caption_minilm.npy", emb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
