"""``hf-latent-bridge eval``: the stitching matrix of N encoders on a labelled data set."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.anchors import STRATEGIES
from ..core.options import check_method, check_positive_int, check_seed, check_strategy
from ..encoding.loading import load_encoder
from ..encoding.tables import column_values, labelled_splits
from ..files import staged_directory
from .app import UsageError, _command_line, _errors_as_one_line, app
from .options import _parse_counts, _parse_encoder_spec, _parse_pair


@app.command("eval")
@_errors_as_one_line
def eval_command(
    encoders: Annotated[
        list[str], typer.Argument(help="Two or more encoders: [alias=]hub_id_or_folder[@revision].")
    ],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Labelled data set: Hub id or local file/folder.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the matrix (json, md, png).")],
    column: Annotated[str, typer.Option(help="Input column.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column (class ids or names).")] = "label",
    train_split: Annotated[str, typer.Option(help="Split for anchors and heads.")] = "train",
    test_split: Annotated[
        str | None,
        typer.Option(help="Split to evaluate on; default: hold out --test-size of the train split."),
    ] = None,
    test_size: Annotated[float, typer.Option(help="Held-out share when there is no --test-split.")] = 0.3,
    data_config: Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")] = None,
    data_revision: Annotated[str | None, typer.Option(help="Revision of a Hub data set.")] = None,
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods (translation methods, and 'relative': the baseline).")
    ] = "identity,procrustes,irp",
    num_anchors: Annotated[
        int | None, typer.Option("--num-anchors", "-k", help="Anchors (default: all train rows).")
    ] = None,
    strategy: Annotated[str, typer.Option(help=f"Anchor selection: {', '.join(STRATEGIES)}.")] = "balanced",
    pooling: Annotated[
        str | None, typer.Option(help="Pooling for every encoder (default: each model's own).")
    ] = None,
    curve: Annotated[
        list[str] | None, typer.Option(help="Pair 'a->b' for an accuracy-vs-anchors curve (repeatable).")
    ] = None,
    anchor_counts: Annotated[
        str | None, typer.Option(help="Comma-separated anchor counts for --curve.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most this many rows of each split.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, anchors and ridge search.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size (also the sharding unit).")] = 32,
    chunk_size: Annotated[int, typer.Option(help="Test rows per evaluation shard.")] = 256,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache embeddings here (safetensors).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    save_models: Annotated[
        bool,
        typer.Option(
            help="Also save every scored stitched model (bridge + target head) under OUTPUT/models/."
        ),
    ] = False,
) -> None:
    """Stitching matrix of ENCODERS on a labelled data set: every (source, target, method) cell.

    Runs on several processes when launched with torchrun or `accelerate launch` (results are identical).
    """
    from ..evaluation import anchor_curve, default_anchor_counts, evaluate_encoders

    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    for m in method_list:
        if m != "relative":  # the relative baseline: no bridge, a head on cosines to the anchors
            check_method(m, "--methods")
    check_strategy(strategy, "--strategy")
    if len(encoders) < 2:
        raise UsageError(f"eval needs at least 2 encoders, got {len(encoders)}.")
    specs = [_parse_encoder_spec(s) for s in encoders]
    aliases = [a for a, _, _ in specs]
    if len(set(aliases)) != len(aliases):
        raise UsageError(f"encoder names repeat ({', '.join(aliases)}); name them with alias=path.")
    pairs = [_parse_pair(p, aliases) for p in curve or []]
    counts = _parse_counts(anchor_counts) if anchor_counts else None
    if not 0 < test_size < 1:
        raise UsageError(f"--test-size must be between 0 and 1, got {test_size}.")
    check_positive_int("--batch-size", batch_size)
    check_positive_int("--chunk-size", chunk_size)
    check_seed(seed, "--seed")
    for name, value in (("--num-anchors", num_anchors), ("--limit", limit)):
        if value is not None:
            check_positive_int(name, value)

    accelerator = _accelerator()
    try:
        with _maybe_staged(output, overwrite, accelerator.is_main_process) as staging:
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
            train_ds, test_ds = splits.train, splits.test
            if num_anchors is not None and not 2 <= num_anchors <= len(train_ds):
                raise UsageError(
                    f"--num-anchors {num_anchors} is not possible with {len(train_ds)} train rows; "
                    f"use a value between 2 and {len(train_ds)}."
                )
            loaded = {a: load_encoder(n, revision=r, pooling=pooling) for a, n, r in specs}
            train_labels, test_labels, id2label = splits.train_labels, splits.test_labels, splits.id2label
            matrix, train, test = evaluate_encoders(
                loaded,
                column_values(train_ds, column),
                column_values(test_ds, column),
                train_labels,
                test_labels,
                batch_size=batch_size,
                cache_dir=cache_dir,
                accelerator=accelerator,
                methods=method_list,
                num_anchors=num_anchors,
                anchor_strategy=strategy,
                seed=seed,
                id2label=id2label,
                chunk_size=chunk_size,
            )
            curve_result = None
            if pairs:
                curve_result = anchor_curve(
                    train,
                    test,
                    train_labels,
                    test_labels,
                    pairs=pairs,
                    anchor_counts=counts or default_anchor_counts(len(train_labels)),
                    methods=[m for m in method_list if m != "identity"] or ["irp"],
                    anchor_strategy=strategy,
                    seed=seed,
                    id2label=id2label,
                    heads=matrix.heads,
                )
            if staging is not None:
                matrix.extra["command"] = _command_line()
                matrix.save(staging)
                if curve_result is not None:
                    from ..evaluation.plots import plot_anchor_curve
                    from ..files import write_text_atomic

                    write_text_atomic(
                        staging / "anchor_curve.json", json.dumps(curve_result, indent=2) + "\n"
                    )
                    plot_anchor_curve(curve_result, staging / "anchor_curve.png")
                if save_models:
                    save_stitched_models(matrix, loaded, staging / "models")
        if accelerator.is_main_process:
            typer.echo(matrix.to_markdown("accuracy"))
            typer.echo(f"wrote {output}/stitching_matrix.json, stitching_matrix.md, heatmap.png")
    finally:
        accelerator.end_training()


def _accelerator() -> Any:
    import torch
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


@contextlib.contextmanager
def _maybe_staged(output: Path, overwrite: bool, main: bool) -> Iterator[Path | None]:
    if not main:
        from ..files import check_output_dir

        check_output_dir(output, overwrite)  # every process fails alike, so none waits in a gather
        yield None
        return
    with staged_directory(output, overwrite) as staging:
        yield staging


def save_stitched_models(matrix: Any, encoders: dict[str, Any], folder: Path) -> None:
    """Every scored cell as a stitched model: its bridge, the target's head, the cell's scores on the card."""
    from ..models.stitched import StitchedModel

    for (source, target, method), bridge in matrix.bridges.items():
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
        model.save_pretrained(folder / f"{source}-to-{target}-{method}")
