"""``hf-latent-bridge eval``: the stitching matrix of N encoders on a labelled data set."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.options import STRATEGIES, check
from ..errors import BridgeInputError
from . import options as opt
from .app import app, command_line


@app.command("eval")
def eval_command(
    encoders: Annotated[
        list[str], typer.Argument(help="Two or more encoders: [alias=]hub_id_or_folder[@revision].")
    ],
    data: opt.Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the matrix (json, md, png).")],
    column: Annotated[str, typer.Option(help="Input column.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column (class ids or names).")] = "label",
    train_split: Annotated[str, typer.Option(help="Split for anchors and heads.")] = "train",
    test_split: opt.TestSplit = None,
    test_size: opt.TestSize = 0.3,
    data_config: opt.DataConfig = None,
    data_revision: opt.DataRevision = None,
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods (translation methods, and 'relative': the baseline).")
    ] = "identity,procrustes,linear,irp,auto",
    num_anchors: opt.NumAnchors = None,
    strategy: Annotated[str, typer.Option(help=f"Anchor selection: {', '.join(STRATEGIES)}.")] = "balanced",
    pooling: Annotated[
        str | None, typer.Option(help="Pooling of every encoder (default: each one's own).")
    ] = None,
    curve: Annotated[
        list[str] | None, typer.Option(help="Pair 'a->b' for an accuracy-vs-anchors curve (repeatable).")
    ] = None,
    anchor_counts: Annotated[
        str | None, typer.Option(help="Comma-separated anchor counts for --curve.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use at most this many rows of each split.")
    ] = None,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 32,
    chunk_size: Annotated[int, typer.Option(min=1, help="Test rows per evaluation shard.")] = 256,
    cache_dir: opt.CacheDir = None,
    overwrite: opt.Overwrite = False,
    save_models: Annotated[
        bool, typer.Option(help="Also save every scored stitched model under OUTPUT/models/.")
    ] = False,
) -> None:
    """Stitching matrix of ENCODERS on a labelled data set: every (source, target, method) cell.

    Runs on several processes when launched with torchrun or `accelerate launch` (results are identical).
    """
    from ..encoding.loading import load_encoder
    from ..encoding.tables import column_values, labelled_splits
    from ..evaluation import anchor_curve, default_anchor_counts, evaluate_encoders
    from ..evaluation.matrix import MATRIX_METHODS

    # The matrix checks its options only once everything is embedded: these are checked first.
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    for m in method_list:
        if m not in MATRIX_METHODS:
            raise BridgeInputError(f"unknown --methods {m!r}; choose among {', '.join(MATRIX_METHODS)}.")
    check("strategy", strategy, "--strategy")
    specs = [_encoder_spec(s) for s in encoders]
    aliases = [a for a, _, _ in specs]
    if len(specs) < 2 or len(set(aliases)) != len(aliases):
        raise BridgeInputError(
            f"eval needs 2 or more encoders with distinct names, got {', '.join(aliases)}."
        )
    pairs = [_pair(p, aliases) for p in curve or []]
    counts = _counts(anchor_counts) if anchor_counts else None

    accelerator = _accelerator()
    try:
        with _staged(output, overwrite, accelerator.is_main_process) as staging:
            splits = labelled_splits(
                data,
                column=column,
                label_column=label_column,
                split=train_split,
                test_split=test_split,
                test_size=test_size,
                config=data_config,
                revision=data_revision,
                seed=seed,
                limit=limit,
            )
            if num_anchors is not None and num_anchors > len(splits.train):
                raise BridgeInputError(
                    f"--num-anchors {num_anchors} is more than the {len(splits.train)} train rows; use at most that."
                )
            loaded = {a: load_encoder(n, revision=r, pooling=pooling) for a, n, r in specs}
            matrix, train, test = evaluate_encoders(
                loaded,
                column_values(splits.train, column),
                column_values(splits.test, column),
                splits.train_labels,
                splits.test_labels,
                batch_size=batch_size,
                cache_dir=cache_dir,
                accelerator=accelerator,
                methods=method_list,
                num_anchors=num_anchors,
                anchor_strategy=strategy,
                seed=seed,
                id2label=splits.id2label,
                chunk_size=chunk_size,
            )
            curve_result = pairs and anchor_curve(
                train,
                test,
                splits.train_labels,
                splits.test_labels,
                pairs=pairs,
                anchor_counts=counts or default_anchor_counts(len(splits.train_labels)),
                methods=[m for m in method_list if m != "identity"] or ["auto"],
                anchor_strategy=strategy,
                seed=seed,
                id2label=splits.id2label,
                heads=matrix.heads,
            )
            if staging is not None:
                _save(matrix, curve_result, loaded if save_models else None, staging)
        if accelerator.is_main_process:
            typer.echo(matrix.to_markdown("accuracy"))
            typer.echo(f"wrote {output}/stitching_matrix.json, stitching_matrix.md, heatmap.png")
    finally:
        accelerator.end_training()


def _encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """``[alias=]name_or_path[@revision]`` -> (alias, name_or_path, revision)."""
    alias, _, rest = spec.rpartition("=")
    name, revision = rest, None
    if "@" in rest and not Path(rest).exists():
        name, _, revision = rest.rpartition("@")
    if not name:
        raise BridgeInputError(f"encoder {spec!r} is empty; write [alias=]hub_id_or_folder[@revision].")
    return alias or Path(name).name or name, name, revision


def _pair(text: str, aliases: list[str]) -> tuple[str, str]:
    source, sep, target = (part.strip() for part in text.partition("->"))
    if not sep or source not in aliases or target not in aliases or source == target:
        raise BridgeInputError(
            f"--curve {text!r} must be 'a->b' with two different encoders of {', '.join(aliases)}."
        )
    return source, target


def _counts(text: str) -> list[int]:
    with contextlib.suppress(ValueError):
        counts = [int(c) for c in text.split(",") if c.strip()]
        if counts and min(counts) >= 2:
            return counts
    raise BridgeInputError(f"--anchor-counts must be comma-separated integers >= 2, got {text!r}.")


def _accelerator() -> Any:
    import torch
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


def _staged(output: Path, overwrite: bool, main: bool) -> Any:
    """The output folder, staged on the main process; the others only check it (so all fail alike)."""
    from ..files import check_folder_target, staged_folder

    if main:
        return staged_folder(output, overwrite=overwrite)
    check_folder_target(output, overwrite)
    return contextlib.nullcontext()


def _save(matrix: Any, curve: dict[str, Any] | None, encoders: dict[str, Any] | None, folder: Path) -> None:
    """The matrix (json, md, heatmap), the curve, and with ``encoders`` every scored cell as a stitched
    model: its bridge, the target's head, and the cell's scores on its card."""
    from ..evaluation.plots import plot_anchor_curve
    from ..models.stitched import StitchedModel

    matrix.extra["command"] = command_line()
    matrix.save(folder)
    if curve:
        (folder / "anchor_curve.json").write_text(json.dumps(curve, indent=2) + "\n", encoding="utf-8")
        plot_anchor_curve(curve, folder / "anchor_curve.png")
    for (source, target, method), bridge in matrix.bridges.items() if encoders else ():
        cell = matrix.cell(source, target, method)
        model = StitchedModel.from_parts(bridge, matrix.heads[target], source_encoder=encoders[source])
        model.config.metrics = {
            "stitched_accuracy": cell["accuracy"],
            "stitched_macro_f1": cell["macro_f1"],
            "native_target_accuracy": matrix.cell(target, target, "native")["accuracy"],
            "cosine_to_target": cell["cosine"],
            "top1_retrieval": cell["top1_retrieval"],
            "split": "test",
            "num_samples": matrix.num_test,
        }
        model.save_pretrained(folder / "models" / f"{source}-to-{target}-{method}")
