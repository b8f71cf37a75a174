"""Reproduce the claims of Maiorca et al. (2024) on the models and data that install offline.

    python benchmarks/claims.py [--fmnist-train 2000] [--fmnist-test 1000] [--threads 1]

Writes ``benchmarks/results/claims/``: ``REPORT.md`` (each claim, the evidence measured here, and where the
evidence disagrees), ``claims.json`` (every figure), the stitching matrices (``matrix_*/``), the scale
checks (``scale_invariance*``) and the anchor curves (``anchors_*``). Everything is computed from scratch
on a fresh machine (embeddings are cached in ``~/.cache/hf_latent_bridge/embeddings`` and the two trained
classifiers in ``~/.cache/hf_latent_bridge/claims``, so a second run is quicker).

Subjects: all-MiniLM-L6-v2 and all-mpnet-base-v2 on the ChatterBot topics; EfficientNet-Lite0 and -Lite1
(ImageNet weights, 96 px) on Fashion-MNIST; MiniLM / mpnet embeddings of Fashion-MNIST captions for the
cross-modal case; heads: the package's logistic head, an MLP, the relative baseline's head, the heads of
two transformers classifiers trained here (MiniLM fine-tuned, a small ViT) and the pretrained ImageNet
heads of the EfficientNets. The analysis is the library's (``hf_latent_bridge.evaluation``,
``hf_latent_bridge.core.scale_invariance``); this script only orchestrates and writes the report.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from dataclasses import replace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from _claims_plots import plot_anchor_grid
from _claims_report import report
from _claims_subjects import minilm_classifier, train_mlp, vit_classifier
from _common import RESULTS, command_line, machine
from stitching_matrix import CACHE, chatterbot, embed_spaces, fashion, fashion_captions

from hf_latent_bridge import (
    ClassificationHead,
    LatentBridge,
    StitchedModel,
    head_from_classifier,
    load_encoder,
)
from hf_latent_bridge.core.scale_invariance import check_head
from hf_latent_bridge.demo import default_cache_dir, efficientnet_lite, minilm_path
from hf_latent_bridge.encoding import embed_inputs
from hf_latent_bridge.evaluation import (
    StitchingMatrix,
    anchor_curve,
    dimension_anchor_counts,
    head_predict,
    stitching_matrix,
)
from hf_latent_bridge.evaluation.plots import plot_scale_invariance
from hf_latent_bridge.evaluation.scale_report import scale_markdown
from hf_latent_bridge.files import write_text

OUT = RESULTS / "claims"
MODELS = default_cache_dir() / "claims"
METHODS = ["identity", "relative", "procrustes", "linear", "irp"]
CURVE_METHODS = ["irp", "procrustes", "linear", "relative"]
STRATEGIES = ["uniform", "balanced", "farthest"]
ENSEMBLE = 5


# ----------------------------------------------------------------------------------------------- data
class Data:
    """One labelled data set embedded by several encoders (train / test rows aligned across encoders)."""

    def __init__(
        self,
        name: str,
        train: dict,
        test: dict,
        train_y: torch.Tensor,
        test_y: torch.Tensor,
        names: list[str],
        seconds: dict[str, float],
    ) -> None:
        self.name, self.train, self.test, self.names, self.seconds = name, train, test, names, seconds
        self.train_y, self.test_y = torch.as_tensor(train_y).long(), torch.as_tensor(test_y).long()

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))


def load_all(n_train: int, n_test: int) -> tuple[dict[str, Data], dict[str, Any]]:
    """The three data sets, every encoder's embeddings, and the two classifiers trained here."""
    encoders, train_x, test_x, train_y, test_y, names = chatterbot()
    train, test, seconds = embed_spaces(encoders, train_x, test_x, 64, CACHE)
    # a transformers text classifier: MiniLM fine-tuned on the same train split
    folder = minilm_classifier(
        minilm_path(), train_x, train_y, names, MODELS / "minilm-chatterbot-classifier"
    )
    text_head = head_from_classifier(str(folder))
    started = time.perf_counter()
    for split, inputs, store in (("train", train_x, train), ("test", test_x, test)):
        store["MiniLM classifier"] = embed_inputs(
            load_encoder(str(folder), pooling=text_head.pooling),
            inputs,
            batch_size=64,
            cache_dir=CACHE,
            desc=split,
        )
    seconds["MiniLM classifier"] = round(time.perf_counter() - started, 1)
    text = Data("chatterbot", train, test, train_y, test_y, names, seconds)

    encoders, train_x, test_x, train_y, test_y, names = fashion(n_train, n_test)
    train, test, seconds = embed_spaces(encoders, train_x, test_x, 128, CACHE)
    grey_train, grey_test = train_x[..., 0], test_x[..., 0]
    folder = vit_classifier(grey_train, train_y, names, MODELS / f"vit-fashion-mnist-{n_train}")
    image_head = head_from_classifier(str(folder))
    started = time.perf_counter()
    for split, inputs, store in (("train", grey_train, train), ("test", grey_test, test)):
        store["ViT classifier"] = embed_inputs(
            load_encoder(str(folder), pooling=image_head.pooling),
            inputs,
            batch_size=256,
            cache_dir=CACHE,
            desc=split,
        )
    seconds["ViT classifier"] = round(time.perf_counter() - started, 1)
    image = Data("fashion_mnist", train, test, train_y, test_y, names, seconds)

    encoders, train_x, test_x, train_y, test_y, names = fashion_captions(n_train, n_test)
    train, test, seconds = embed_spaces(encoders, train_x, test_x, 128, CACHE)
    cross = Data("fashion_mnist_captions", train, test, train_y, test_y, names, seconds)
    classifiers = {"MiniLM classifier": text_head, "ViT classifier": image_head}
    return {"text": text, "image": image, "cross": cross}, classifiers


def subset(data: Data, names: list[str]) -> tuple[dict, dict]:
    return {n: data.train[n] for n in names}, {n: data.test[n] for n in names}


# ----------------------------------------------------------------------------------------------- claims 2-4
def matrices(datasets: dict[str, Data]) -> dict[str, StitchingMatrix]:
    """The stitching matrix of every method on the text and the cross-modal encoders; the image matrix is
    the cross-modal one's EfficientNet cells (same anchors, heads and test rows)."""
    out = {}
    for key, names in (
        ("text", ["MiniLM", "mpnet"]),
        ("cross", ["MiniLM (captions)", "mpnet (captions)", "EfficientNet-Lite0", "EfficientNet-Lite1"]),
    ):
        data = datasets[key]
        train, test = subset(data, names)
        started = time.perf_counter()
        out[key] = stitching_matrix(
            train,
            test,
            data.train_y,
            data.test_y,
            methods=METHODS,
            id2label=data.id2label,
            show_progress=False,
        )
        out[key].extra["seconds"] = round(time.perf_counter() - started, 1)
    out["image"] = restrict(out["cross"], ["EfficientNet-Lite0", "EfficientNet-Lite1"])
    for key, matrix in out.items():
        matrix.save(OUT / f"matrix_{key}")
    return out


def restrict(matrix: StitchingMatrix, names: list[str]) -> StitchingMatrix:
    """The cells (and heads, bridges) of ``matrix`` among ``names`` only."""
    keep = set(names)
    return replace(
        matrix,
        encoders=names,
        dims={n: matrix.dims[n] for n in names},
        cells=[c for c in matrix.cells if {c["source"], c["target"]} <= keep],
        extra={
            "relative_native_accuracy": {n: matrix.extra["relative_native_accuracy"][n] for n in names},
            "restricted_from": matrix.encoders,
        },
        heads={n: matrix.heads[n] for n in names},
        bridges={k: b for k, b in matrix.bridges.items() if {k[0], k[1]} <= keep},
        relative_heads={n: matrix.relative_heads[n] for n in names},
    )


def classifier_stitching(datasets: dict[str, Data], classifiers: dict[str, Any]) -> list[dict[str, Any]]:
    """Stitching into heads that came with a model: two trained transformers classifiers, ImageNet heads."""
    rows = []
    text, image = datasets["text"], datasets["image"]
    for data, source, target in (
        (text, "mpnet", "MiniLM classifier"),
        (text, "MiniLM", "MiniLM classifier"),
        (image, "EfficientNet-Lite1", "ViT classifier"),
        (image, "EfficientNet-Lite0", "ViT classifier"),
    ):
        head = classifiers[target]
        row = {
            "source": source,
            "target": target,
            "data": data.name,
            "measure": "accuracy",
            "native": _accuracy(head, data.test[target], data.test_y),
        }
        if data.train[source].shape[1] == data.train[target].shape[1]:
            row["identity"] = _accuracy(head, data.test[source], data.test_y)
        for method in ("procrustes", "linear", "irp"):
            bridge = _fit(data.train[source], data.train[target], method)
            row[method] = _accuracy(head, bridge(data.test[source]), data.test_y)
        rows.append(row)
    # the pretrained ImageNet heads of the EfficientNets: agreement with the target's own top-1 class
    imagenet = {name: _imagenet_head(name) for name in ("EfficientNet-Lite0", "EfficientNet-Lite1")}
    for source, target in (
        ("EfficientNet-Lite0", "EfficientNet-Lite1"),
        ("EfficientNet-Lite1", "EfficientNet-Lite0"),
    ):
        head = imagenet[target]
        reference = head_predict(head, image.test[target])

        def agree(x: torch.Tensor, head: Any = head, reference: torch.Tensor = reference) -> float:
            return float((head_predict(head, x) == reference).double().mean())

        row = {
            "source": source,
            "target": f"{target} ImageNet head",
            "data": image.name,
            "measure": "top-1 agreement with the target's own prediction",
            "native": 1.0,
            "source's own ImageNet head": float(
                (head_predict(imagenet[source], image.test[source]) == reference).double().mean()
            ),
            "identity": agree(image.test[source]),
        }
        for method in ("procrustes", "linear", "irp"):
            row[method] = agree(_fit(image.train[source], image.train[target], method)(image.test[source]))
        rows.append(row)
    return rows


def _fit(source: torch.Tensor, target: torch.Tensor, method: str) -> LatentBridge:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LatentBridge.fit(source, target, method)


def _accuracy(head: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((head_predict(head, x) == y).double().mean())


def _imagenet_head(name: str) -> ClassificationHead:
    """The final layer of the pretrained EfficientNet (1280 -> 1000 ImageNet classes) as a head."""
    linear = efficientnet_lite(name.removeprefix("EfficientNet-").lower())._fc
    head = ClassificationHead(
        linear.in_features, linear.out_features, fit_report={"source": f"{name} ImageNet _fc"}
    )
    with torch.no_grad():
        head.weight.copy_(linear.weight)
        head.bias.copy_(linear.bias)
    return head


# ----------------------------------------------------------------------------------------------- claim 1
def scale_checks(
    datasets: dict[str, Data], mats: dict[str, Any], classifiers: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every head kind about the mean and the origin, and the stitched model's warning on real pairs."""
    text, image = datasets["text"], datasets["image"]
    subjects: dict[str, tuple[Any, Data, str, bool]] = {}  # name -> (head, data, space, labelled)
    for data, key, spaces in (
        (text, "text", ["MiniLM", "mpnet"]),
        (image, "image", ["EfficientNet-Lite0", "EfficientNet-Lite1"]),
    ):
        for space in spaces:
            subjects[f"logistic (ClassificationHead.fit) on {space}"] = (
                mats[key].heads[space],
                data,
                space,
                True,
            )
            subjects[f"MLP (torch, ReLU, biases) on {space}"] = (
                train_mlp(data.train[space], data.train_y),
                data,
                space,
                True,
            )
        relative = mats[key].relative_heads[spaces[0]]
        bound = lambda x, relative=relative: relative.logits(x)  # noqa: E731  (the head on its own space)
        subjects[f"relative head on {spaces[0]}"] = (bound, data, spaces[0], True)
    subjects["MiniLM classifier head (head_from_classifier)"] = (
        classifiers["MiniLM classifier"],
        text,
        "MiniLM classifier",
        True,
    )
    subjects["ViT classifier head (head_from_classifier)"] = (
        classifiers["ViT classifier"],
        image,
        "ViT classifier",
        True,
    )
    for space in ("EfficientNet-Lite0", "EfficientNet-Lite1"):
        subjects[f"{space} pretrained ImageNet head"] = (_imagenet_head(space), image, space, False)

    reports = {}
    for name, (head, data, space, labelled) in subjects.items():
        # IRP rescales about the mean of the target anchors (here all train rows), not of the test rows
        centres = {"mean": data.train[space].double().mean(0), "origin": "origin"}
        labels = data.test_y if labelled else None
        reports[name] = {c: check_head(head, data.test[space], labels, centre=v) for c, v in centres.items()}
        reports[name]["space"] = space
    # the warning of StitchedModel.from_parts, on IRP bridges fitted on the matrices' anchors
    hooks = []
    for data, source, target, head_name in (
        (text, "MiniLM", "mpnet", "logistic (ClassificationHead.fit) on mpnet"),
        (text, "mpnet", "MiniLM", "logistic (ClassificationHead.fit) on MiniLM"),
        (
            image,
            "EfficientNet-Lite0",
            "EfficientNet-Lite1",
            "logistic (ClassificationHead.fit) on EfficientNet-Lite1",
        ),
        (
            image,
            "EfficientNet-Lite1",
            "EfficientNet-Lite0",
            "logistic (ClassificationHead.fit) on EfficientNet-Lite0",
        ),
        (text, "mpnet", "MiniLM classifier", "MiniLM classifier head (head_from_classifier)"),
        (image, "EfficientNet-Lite1", "ViT classifier", "ViT classifier head (head_from_classifier)"),
        (image, "EfficientNet-Lite0", "EfficientNet-Lite1", "EfficientNet-Lite1 pretrained ImageNet head"),
        (image, "EfficientNet-Lite1", "EfficientNet-Lite0", "EfficientNet-Lite0 pretrained ImageNet head"),
    ):
        head = subjects[head_name][0]
        fitted = [m.bridges.get((source, target, "irp")) for m in mats.values()]
        bridge = next((b for b in fitted if b is not None), None) or _fit(
            data.train[source], data.train[target], "irp"
        )
        rows = torch.linspace(0, len(bridge.target_anchors) - 1, 1024).round().long().unique()
        quick = check_head(  # what StitchedModel.from_parts checks: IRP's restore step on the target anchors
            head,
            bridge.target_anchors[rows],
            centre=bridge.output_shift.double().sum(0),
            factors=(),
            random_ranges=(),
            equalize_norm=float(bridge.output_norm.sum()),
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            StitchedModel.from_parts(bridge, head)
        warned = [str(w.message) for w in caught if "depend on the norms" in str(w.message)]
        hooks.append(
            {
                "source": source,
                "target": target,
                "head": head_name,
                "warned": bool(warned),
                "anchor_agreement": quick.trials[0].agreement,
                "anchors_checked": quick.num_samples,
            }
        )
    return reports, hooks


# ----------------------------------------------------------------------------------------------- claim 2: anchors
def curves(datasets: dict[str, Data], mats: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, names in (
        ("text", ["MiniLM", "mpnet"]),
        ("image", ["EfficientNet-Lite0", "EfficientNet-Lite1"]),
    ):
        data = datasets[key]
        train, test = subset(data, names)
        pairs = [(names[0], names[1]), (names[1], names[0])]
        common = {
            "pairs": pairs,
            "anchor_counts": dimension_anchor_counts,
            "anchor_strategy": STRATEGIES,
            "heads": mats[key].heads,
            "id2label": data.id2label,
            "show_progress": False,
        }
        started = time.perf_counter()
        curve = anchor_curve(train, test, data.train_y, data.test_y, methods=CURVE_METHODS, **common)
        ensembles = anchor_curve(
            train, test, data.train_y, data.test_y, methods=["irp"], ensembles=[ENSEMBLE], **common
        )
        curve["points"] += ensembles["points"]
        curve["ensembles"] = [1, ENSEMBLE]
        curve["target_dims"] = {n: int(train[n].shape[1]) for n in names}
        curve["seconds"] = round(time.perf_counter() - started, 1)
        write_text(OUT / f"anchors_{key}.json", json.dumps(curve, indent=1) + "\n")
        plot_anchor_grid(
            curve, OUT / f"anchors_{key}.png", title=f"{data.name}: translation quality against anchors"
        )
        out[key] = curve
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fmnist-train", type=int, default=2000, help="Fashion-MNIST train images (anchors)."
    )
    parser.add_argument("--fmnist-test", type=int, default=1000, help="Fashion-MNIST test images.")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)."
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    host = machine()  # before the run: the load average at the start
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str, since: float) -> float:
        seconds[name] = round(time.perf_counter() - since, 1)
        print(f"[claims] {name}: {seconds[name]} s", flush=True)
        return time.perf_counter()

    t = time.perf_counter()
    datasets, classifiers = load_all(args.fmnist_train, args.fmnist_test)
    t = lap("embeddings and classifiers", t)
    mats = matrices(datasets)
    t = lap("stitching matrices", t)
    stitched_classifiers = classifier_stitching(datasets, classifiers)
    t = lap("classifier heads", t)
    reports, hooks = scale_checks(datasets, mats, classifiers)
    t = lap("scale checks", t)
    anchor_curves = curves(datasets, mats)
    t = lap("anchor curves", t)

    seconds["total"] = round(time.perf_counter() - started, 1)
    payload = {
        "command": command_line(),
        "machine": host,
        "seconds": seconds,
        "embedding_seconds": {k: d.seconds for k, d in datasets.items()},
        "matrices": {k: m.to_dict() for k, m in mats.items()},
        "classifier_stitching": stitched_classifiers,
        "scale_invariance": {
            n: {c: r[c].to_dict() for c in ("mean", "origin")} | {"space": r["space"]}
            for n, r in reports.items()
        },
        "stitched_model_warning": hooks,
        "anchor_curves": anchor_curves,
    }
    write_text(OUT / "claims.json", json.dumps(payload, indent=1) + "\n")
    for centre in ("mean", "origin"):
        plot_scale_invariance(
            {n: r[centre].to_dict() for n, r in reports.items()}, OUT / f"scale_invariance_{centre}.png"
        )
    details = "\n\n".join(
        scale_markdown({c: r[c] for c in ("mean", "origin")}, name) for name, r in reports.items()
    )
    write_text(OUT / "scale_invariance.md", "# Scale checks, every trial\n\n" + details + "\n")
    write_text(OUT / "REPORT.md", report(payload))
    print(f"[claims] wrote {OUT}/REPORT.md in {seconds['total']} s", flush=True)


if __name__ == "__main__":
    main()
