"""Stitching fidelity of every translation method on real encoders and data that install offline.

For each pair (both directions) a logistic-regression head (``ClassificationHead``) is trained on the
target encoder's training embeddings; the training split's parallel embeddings are the anchors; the
source's test embeddings are translated and classified by the target head.

Pairs: all-MiniLM-L6-v2 <-> all-mpnet-base-v2 on ChatterBot topics, and EfficientNet-Lite0 <-> Lite1
on Fashion-MNIST (96 px). Embeddings come from ``benchmarks/cache_embeddings.py``::

    python benchmarks/cache_embeddings.py --out /tmp/hlb_embeddings
    python benchmarks/fidelity.py --embeddings /tmp/hlb_embeddings

Writes ``benchmarks/results/fidelity.json`` and ``fidelity.md``. The bar for the default IRP on every
direction: >= 0.95 x native target accuracy and within 1 point of Procrustes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from hf_latent_bridge import ClassificationHead, LatentBridge

METHODS = ("identity", "procrustes", "linear", "affine", "l-ortho", "irp")
#: Ablation: the paper's plain IRP (no whitening), with the same automatic ridge.
VARIANTS = {"irp-plain": ("irp", {"whitening": None})}
#: Fixed relative ridges against which the automatic choice is compared (whitened and plain IRP).
RIDGE_SWEEP = (0.0, 0.1, 0.316, 1.0, 1.78, 3.16, 5.62, 10.0, 31.6, 100.0)
WHITENINGS = {"whitened": 1.0, "plain": None}
RESULTS = Path(__file__).parent / "results"


def load_pairs(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """{data set: {train_<enc>, test_<enc>, train_labels, test_labels}} from the embedding cache."""
    test = np.load(root / "chatterbot_split.npy")
    labels = np.load(root / "chatterbot_labels.npy")
    chat = {"train_labels": labels[~test], "test_labels": labels[test]}
    for name in ("minilm", "mpnet"):
        emb = np.load(root / f"chatterbot_{name}.npy")
        chat[f"train_{name}"], chat[f"test_{name}"] = emb[~test], emb[test]
    fmnist = {
        "train_labels": np.load(root / "fmnist_train_labels.npy"),
        "test_labels": np.load(root / "fmnist_test_labels.npy"),
    }
    for name in ("lite0", "lite1"):
        for split in ("train", "test"):
            fmnist[f"{split}_{name}"] = np.load(root / f"fmnist_{split}_{name}.npy")
    return {"chatterbot-topics": chat, "fashion-mnist": fmnist}


def evaluate_direction(data: dict[str, np.ndarray], source: str, target: str) -> dict[str, object]:
    head = ClassificationHead.fit(data[f"train_{target}"], data["train_labels"])
    labels = torch.as_tensor(data["test_labels"])

    def accuracy(embeddings: np.ndarray | torch.Tensor) -> float:
        return float((head.predict(embeddings) == labels).float().mean())

    def fit(**options: object) -> LatentBridge:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. identity's and the sweep's warnings are expected
            return LatentBridge.fit(data[f"train_{source}"], data[f"train_{target}"], **options)

    def stitched(bridge: LatentBridge) -> float:
        return accuracy(bridge.translate(data[f"test_{source}"]))

    row: dict[str, object] = {"native": accuracy(data[f"test_{target}"])}
    timings = {}
    for method in METHODS:
        if method == "identity" and data[f"train_{source}"].shape[1] != data[f"train_{target}"].shape[1]:
            row[method] = None
            continue
        start = time.perf_counter()
        bridge = fit(method=method)
        timings[method] = round(time.perf_counter() - start, 2)
        row[method] = stitched(bridge)
        if method == "irp":
            row["irp_ridge"] = bridge.config.ridge_selected
    for name, (method, options) in VARIANTS.items():
        bridge = fit(method=method, **options)
        row[name] = stitched(bridge)
        row[f"{name}_ridge"] = bridge.config.ridge_selected
    row["ridge_sweep"] = {
        name: {str(r): stitched(fit(method="irp", ridge=r, whitening=w)) for r in RIDGE_SWEEP}
        for name, w in WHITENINGS.items()
    }
    row["fit_seconds"] = timings
    row["anchors"] = int(data[f"train_{source}"].shape[0])
    row["test_size"] = int(labels.numel())
    irp, native, procrustes = row["irp"], row["native"], row["procrustes"]
    row["bar_native"] = bool(irp >= 0.95 * native)
    row["bar_procrustes"] = bool(irp >= procrustes - 0.01)
    return row


def markdown(results: dict[str, dict[str, dict[str, object]]]) -> str:
    def cell(value: object) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "| data | source -> target | anchors | native | identity | procrustes | linear | affine | l-ortho "
        "| IRP (default) | ridge | IRP / native | IRP - procrustes | plain IRP (no whitening) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, rows in results.items():
        for direction, r in rows.items():
            lines.append(
                f"| {dataset} | {direction} | {r['anchors']} | {cell(r['native'])} | {cell(r['identity'])} "
                f"| {cell(r['procrustes'])} | {cell(r['linear'])} | {cell(r['affine'])} | {cell(r['l-ortho'])} "
                f"| **{cell(r['irp'])}** | {r['irp_ridge']:.3g} | {r['irp'] / r['native']:.3f} "
                f"| {100 * (r['irp'] - r['procrustes']):+.1f} pt | {cell(r['irp-plain'])} |"
            )
    return "\n".join(lines) + "\n"


def sweep_markdown(results: dict[str, dict[str, dict[str, object]]]) -> str:
    """IRP accuracy at every fixed ridge against the automatic choice, and the best single setting."""
    ridges = [str(r) for r in RIDGE_SWEEP]
    lines = [
        "| source -> target | IRP | " + " | ".join(ridges) + " | auto |",
        "|---|---|" + "---|" * (len(ridges) + 1),
    ]
    totals = {name: dict.fromkeys(ridges, 0.0) for name in WHITENINGS}
    rows = [(d, r) for rows in results.values() for d, r in rows.items()]
    for direction, r in rows:
        for name in WHITENINGS:
            sweep = r["ridge_sweep"][name]
            best = max(sweep.values())
            cells = [f"**{sweep[x]:.3f}**" if sweep[x] == best else f"{sweep[x]:.3f}" for x in ridges]
            auto = r["irp"] if name == "whitened" else r["irp-plain"]
            ridge = r["irp_ridge"] if name == "whitened" else r["irp-plain_ridge"]
            lines.append(f"| {direction} | {name} | " + " | ".join(cells) + f" | {auto:.3f} ({ridge:.3g}) |")
            for x in ridges:
                totals[name][x] += sweep[x] / len(rows)
    lines.append("")
    for name in WHITENINGS:
        best = max(totals[name], key=totals[name].__getitem__)
        auto = sum(r["irp"] if name == "whitened" else r["irp-plain"] for _, r in rows) / len(rows)
        lines.append(
            f"- {name}: best single fixed ridge {best} (mean accuracy {totals[name][best]:.3f}); "
            f"automatic choice {auto:.3f}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, default=Path("/tmp/hlb_embeddings"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pairs = {"chatterbot-topics": ("minilm", "mpnet"), "fashion-mnist": ("lite0", "lite1")}
    results: dict[str, dict[str, dict[str, object]]] = {}
    for dataset, data in load_pairs(args.embeddings).items():
        a, b = pairs[dataset]
        results[dataset] = {}
        for source, target in ((a, b), (b, a)):
            row = evaluate_direction(data, source, target)
            results[dataset][f"{source} -> {target}"] = row
            print(
                dataset,
                source,
                "->",
                target,
                {k: v for k, v in row.items() if k != "fit_seconds"},
                flush=True,
            )

    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python benchmarks/fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads},
        "results": results,
    }
    (args.out / "fidelity.json").write_text(json.dumps(payload, indent=1) + "\n")
    report = markdown(results) + "\nIRP accuracy at fixed relative ridges (bold: best per row):\n\n"
    report += sweep_markdown(results)
    (args.out / "fidelity.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
