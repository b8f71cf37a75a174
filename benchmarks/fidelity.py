"""Stitching fidelity of every translation method on real encoders and data that install offline.

For each directed pair a logistic-regression head (``ClassificationHead``) is trained on the target
encoder's training embeddings; the training split's parallel embeddings are the anchors; the source's
test embeddings are translated and classified by the target head. "Native" accuracies are each encoder's
own head on its own test embeddings.

Pairs (12 directed, 3 data sets):

* ChatterBot topics: all-MiniLM-L6-v2 <-> all-mpnet-base-v2;
* Fashion-MNIST (3000 anchors, 2000 test images at 96 px): EfficientNet-Lite0 <-> Lite1, and across
  modalities Lite0 <-> MiniLM and Lite1 <-> mpnet on captions of each image's class;
* scikit-learn digits (1257 anchors, 540 test, upscaled to 96 px): Lite0 <-> Lite1, Lite0 <-> MiniLM on
  captions.

Embeddings come from ``benchmarks/cache_embeddings.py`` (ChatterBot, Fashion-MNIST images) and
``benchmarks/fidelity_embeddings.py`` (captions, digits)::

    python benchmarks/cache_embeddings.py --out /tmp/hlb_embeddings
    python benchmarks/fidelity_embeddings.py --out /tmp/hlb_embeddings
    python benchmarks/fidelity.py --embeddings /tmp/hlb_embeddings

Writes ``benchmarks/results/fidelity.json`` and ``fidelity.md``. The bars for the default
(``method="auto"``, given the target head) on every pair: accuracy >= max(Procrustes, linear) - 0.005, and
>= 0.97 x the weaker of the two native accuracies.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import write_results

from hf_latent_bridge import ClassificationHead, LatentBridge

DIRECT = ("identity", "procrustes", "linear", "l-ortho")
#: IRP's fixed whitening strength in the "IRP (w 0.3)" column (the previous default).
FIXED_WHITENING = 0.3
#: Ablation: the paper's plain IRP (no whitening), with the same automatic ridge.
VARIANTS = {"irp-plain": {"whitening": None}}
#: Fixed relative ridges against which the automatic choice is compared (default whitening).
RIDGE_SWEEP = (0.0, 0.1, 0.316, 1.0, 1.78, 3.16, 5.62, 10.0)
PAIRS = {
    "chatterbot": (("minilm", "mpnet"), ("mpnet", "minilm")),
    "fashion-mnist": (
        ("lite0", "lite1"),
        ("lite1", "lite0"),
        ("lite0", "caption_minilm"),
        ("caption_minilm", "lite0"),
        ("lite1", "caption_mpnet"),
        ("caption_mpnet", "lite1"),
    ),
    "digits": (
        ("lite0", "lite1"),
        ("lite1", "lite0"),
        ("lite0", "caption_minilm"),
        ("caption_minilm", "lite0"),
    ),
}
NAMES = {
    "minilm": "MiniLM",
    "mpnet": "mpnet",
    "lite0": "Lite0",
    "lite1": "Lite1",
    "caption_minilm": "MiniLM (captions)",
    "caption_mpnet": "mpnet (captions)",
}


def load(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """{data set: {train_<enc>, test_<enc>, train_labels, test_labels}} from the embedding caches."""

    def npy(name: str) -> np.ndarray:
        path = root / f"{name}.npy"
        if not path.is_file():
            raise SystemExit(
                f"{path} is missing: run benchmarks/cache_embeddings.py and benchmarks/fidelity_embeddings.py "
                f"with --out {root} first."
            )
        return np.load(path)

    test = npy("chatterbot_split")
    labels = npy("chatterbot_labels")
    chat = {"train_labels": labels[~test], "test_labels": labels[test]}
    for name in ("minilm", "mpnet"):
        emb = npy(f"chatterbot_{name}")
        chat[f"train_{name}"], chat[f"test_{name}"] = emb[~test], emb[test]
    data = {"chatterbot": chat}
    for dataset, prefix, encoders in (
        ("fashion-mnist", "fmnist", ("lite0", "lite1", "caption_minilm", "caption_mpnet")),
        ("digits", "digits", ("lite0", "lite1", "caption_minilm")),
    ):
        split = {f"{s}_labels": npy(f"{prefix}_{s}_labels") for s in ("train", "test")}
        for name in encoders:
            for s in ("train", "test"):
                split[f"{s}_{name}"] = npy(f"{prefix}_{s}_{name}")
        data[dataset] = split
    return data


class Evaluation:
    """Heads (one per encoder) and accuracies on one data set."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self.data = data
        self.labels = torch.as_tensor(data["test_labels"])
        self.heads: dict[str, ClassificationHead] = {}

    def head(self, encoder: str) -> ClassificationHead:
        if encoder not in self.heads:
            self.heads[encoder] = ClassificationHead.fit(
                self.data[f"train_{encoder}"], self.data["train_labels"]
            )
        return self.heads[encoder]

    def accuracy(self, encoder: str, embeddings: np.ndarray | torch.Tensor) -> float:
        return float((self.head(encoder).predict(embeddings) == self.labels).float().mean())

    def native(self, encoder: str) -> float:
        return self.accuracy(encoder, self.data[f"test_{encoder}"])

    def direction(self, source: str, target: str) -> dict[str, object]:
        x, y = self.data[f"train_{source}"], self.data[f"train_{target}"]
        test = self.data[f"test_{source}"]

        def fit(**options: object) -> tuple[LatentBridge, float]:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. under-determined fits of the sweep are expected
                bridge = LatentBridge.fit(x, y, **options)
            return bridge, time.perf_counter() - start

        row: dict[str, object] = {"native_source": self.native(source), "native_target": self.native(target)}
        seconds = {}
        for method in DIRECT:
            if method == "identity" and x.shape[1] != y.shape[1]:
                row[method] = None
                continue
            bridge, seconds[method] = fit(method=method)
            row[method] = self.accuracy(target, bridge.translate(test))
        bridge, seconds["irp"] = fit(method="irp", whitening=FIXED_WHITENING)
        row["irp"] = self.accuracy(target, bridge.translate(test))
        row["irp_ridge"] = bridge.config.ridge_selected
        bridge, seconds["auto"] = fit(head=self.head(target))  # the default: method="auto"
        row["auto"] = self.accuracy(target, bridge.translate(test))
        row["auto_chosen"] = bridge.config.selection["chosen"]
        row["auto_method"] = bridge.config.method_selected
        for name, options in VARIANTS.items():
            bridge, _ = fit(method="irp", **options)
            row[name] = self.accuracy(target, bridge.translate(test))
            row[f"{name}_ridge"] = bridge.config.ridge_selected
        row["ridge_sweep"] = {
            str(r): self.accuracy(
                target, fit(method="irp", whitening=FIXED_WHITENING, ridge=r)[0].translate(test)
            )
            for r in RIDGE_SWEEP
        }
        row["fit_seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        row["anchors"] = int(x.shape[0])
        row["test_size"] = int(self.labels.numel())
        best_direct = max(row["procrustes"], row["linear"])
        weaker_native = min(row["native_source"], row["native_target"])
        row["bar_direct"] = bool(row["auto"] >= best_direct - 0.005)
        row["bar_native"] = bool(row["auto"] >= 0.97 * weaker_native)
        methods = ("procrustes", "linear", "irp")
        row["best_on_test"] = max(methods, key=lambda m: row[m])
        return row


def cell(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(results: dict[str, dict[str, dict[str, object]]]) -> str:
    rows = [(dataset, direction, r) for dataset, block in results.items() for direction, r in block.items()]
    lines = [
        "| data | source -> target | anchors | native source / target | identity | procrustes | linear "
        "| l-ortho | IRP (w 0.3) | plain IRP | **auto (default)** | auto chose | auto - max(procrustes, linear) "
        "| auto / weaker native |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, direction, r in rows:
        best_direct = max(r["procrustes"], r["linear"])
        weaker = min(r["native_source"], r["native_target"])
        lines.append(
            f"| {dataset} | {direction} | {r['anchors']} | {cell(r['native_source'])} / {cell(r['native_target'])} "
            f"| {cell(r['identity'])} | {cell(r['procrustes'])} | {cell(r['linear'])} | {cell(r['l-ortho'])} "
            f"| {cell(r['irp'])} | {cell(r['irp-plain'])} | **{cell(r['auto'])}** | {r['auto_chosen']} "
            f"| {100 * (r['auto'] - best_direct):+.1f} pt | {r['auto'] / weaker:.3f} |"
        )
    n = len(rows)
    direct_ok = sum(r["bar_direct"] for _, _, r in rows)
    native_ok = sum(r["bar_native"] for _, _, r in rows)
    mean = {
        m: sum(r[m] for _, _, r in rows) / n
        for m in ("procrustes", "linear", "l-ortho", "irp", "irp-plain", "auto")
    }
    mispicks = [
        f"{d}: {direction} (chose {r['auto_method']}, best on test {r['best_on_test']})"
        for d, direction, r in rows
        if {"blend": "irp"}.get(r["auto_method"], r["auto_method"]) != r["best_on_test"]
    ]
    lines += [
        "",
        f"Bars over {n} directed pairs: auto >= max(Procrustes, linear) - 0.005 on **{direct_ok}/{n}**; "
        f"auto >= 0.97 x the weaker native accuracy on **{native_ok}/{n}**.",
        "Mean accuracy: " + ", ".join(f"{m} {v:.3f}" for m, v in mean.items()) + ".",
        "Pairs where auto's method (IRP, Procrustes or linear; a blend counts as IRP) was not the best of them "
        "on the test split: " + ("; ".join(mispicks) or "none") + ".",
        "",
        "IRP accuracy at fixed relative ridges (whitening 0.3; bold: best per row) against the automatic "
        "choice:",
        "",
        "| source -> target | " + " | ".join(str(r) for r in RIDGE_SWEEP) + " | auto (chosen) |",
        "|---|" + "---|" * (len(RIDGE_SWEEP) + 1),
    ]
    totals = dict.fromkeys(map(str, RIDGE_SWEEP), 0.0)
    for dataset, direction, r in rows:
        sweep = r["ridge_sweep"]
        best = max(sweep.values())
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in sweep.values()]
        lines.append(
            f"| {dataset}: {direction} | " + " | ".join(cells) + f" | {r['irp']:.3f} ({r['irp_ridge']:.3g}) |"
        )
        for key, value in sweep.items():
            totals[key] += value / n
    best_fixed = max(totals, key=totals.__getitem__)
    lines += [
        "",
        f"Best single fixed ridge in hindsight: {best_fixed} (mean accuracy {totals[best_fixed]:.3f}); "
        f"automatic choice: mean {mean['irp']:.3f}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, default=Path("/tmp/hlb_embeddings"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results: dict[str, dict[str, dict[str, object]]] = {}
    for dataset, data in load(args.embeddings).items():
        evaluation = Evaluation(data)
        results[dataset] = {}
        for source, target in PAIRS[dataset]:
            row = evaluation.direction(source, target)
            results[dataset][f"{NAMES[source]} -> {NAMES[target]}"] = row
            summary = {k: v for k, v in row.items() if k not in ("fit_seconds", "ridge_sweep")}
            print(dataset, source, "->", target, summary, flush=True)
    report = markdown(results)
    write_results("fidelity", {"results": results}, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
