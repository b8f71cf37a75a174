"""``hf-latent-bridge stitch``: a stitched classifier from two encoders and labelled data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..files import staged_directory
from .app import _errors_as_one_line, app
from .options import (
    DEFAULT_WHITENING_TEXT,
    BatchSize,
    CacheDir,
    Column,
    Data,
    DataConfig,
    DataRevision,
    Method,
    Overwrite,
    Private,
    PushToHub,
    Ridge,
    Scale,
    Seed,
    Source,
    SourceId,
    SourcePooling,
    SourceRevision,
    Split,
    Target,
    TargetColumn,
    TargetId,
    TargetPooling,
    TargetRevision,
    Whitening,
    bridge_options,
    push_if_asked,
    read_auto_config,
    require_shareable,
)


@app.command()
@_errors_as_one_line
def stitch(
    source: Source,
    target: Target,
    data: Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the stitched model to.")],
    column: Column = "text",
    label_column: Annotated[str, typer.Option(help="Label column (class ids or names).")] = "label",
    target_column: TargetColumn = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="Use this head instead of training one: a saved ClassificationHead folder, or a transformers "
            "classifier (Hub id or folder) built on TARGET."
        ),
    ] = None,
    split: Split = "train",
    test_split: Annotated[
        str | None, typer.Option(help="Split to score on; default: hold out --test-size of --split.")
    ] = None,
    test_size: Annotated[float, typer.Option(help="Held-out share when there is no --test-split.")] = 0.2,
    data_config: DataConfig = None,
    data_revision: DataRevision = None,
    num_anchors: Annotated[
        int | None, typer.Option("--num-anchors", "-k", help="Anchors (default: up to 2000 train rows).")
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="Anchor selection: uniform, balanced or farthest.")
    ] = "balanced",
    method: Method = "irp",
    ridge: Ridge = "auto",
    scale: Scale = "mean",
    whitening: Whitening = DEFAULT_WHITENING_TEXT,
    source_revision: SourceRevision = None,
    target_revision: TargetRevision = None,
    source_pooling: SourcePooling = None,
    target_pooling: TargetPooling = None,
    source_id: SourceId = None,
    target_id: TargetId = None,
    seed: Seed = 0,
    batch_size: BatchSize = 32,
    cache_dir: CacheDir = None,
    overwrite: Overwrite = False,
    push_to_hub: PushToHub = None,
    private: Private = False,
) -> None:
    """Classify SOURCE's inputs with a head in TARGET's space: fit the bridge and the head on DATA, score
    them on held-out rows, and save the stitched model (run it with `predict` or the pipeline)."""
    from ..models.stitched import StitchedModel

    options = bridge_options(method, ridge, scale, whitening)
    if push_to_hub:
        require_shareable(source, source_id, target, target_id)
    with staged_directory(output, overwrite) as staging:
        model = StitchedModel.from_encoders(
            source,
            target,
            data,
            text_column=column,
            label_column=label_column,
            target_column=target_column,
            head=_load_head(head) if head else None,
            split=split,
            test_split=test_split,
            test_size=test_size,
            data_config=data_config,
            data_revision=data_revision,
            num_anchors=num_anchors,
            strategy=strategy,
            source_revision=source_revision,
            target_revision=target_revision,
            source_pooling=source_pooling,
            target_pooling=target_pooling,
            source_id=source_id,
            target_id=target_id,
            batch_size=batch_size,
            cache_dir=cache_dir,
            seed=seed,
            show_progress=True,
            **options,
        )
        model.save_pretrained(staging)
    metrics = model.config.metrics
    typer.echo(
        f"saved stitched model to {output}: stitched accuracy {metrics['stitched_accuracy']:.3f} "
        f"(the head on the target's own embeddings: {metrics['native_target_accuracy']:.3f}) on "
        f"{metrics['num_samples']} held-out rows"
    )
    typer.echo(f"run it: hf-latent-bridge predict {output} inputs.txt -o predictions.jsonl")
    push_if_asked(model, push_to_hub, private)


def _load_head(spec: str) -> Any:
    """A saved ClassificationHead, or else a transformers classifier id/folder (used as is)."""
    from ..models.configs import ClassificationHeadConfig
    from ..models.head import ClassificationHead

    if Path(spec, "head_config.json").is_file():  # a head saved by 0.1
        return ClassificationHead.from_pretrained(spec)
    config = read_auto_config(spec, "a ClassificationHead folder or a transformers classifier")
    if isinstance(config, ClassificationHeadConfig):
        return ClassificationHead.from_pretrained(spec)
    return spec
